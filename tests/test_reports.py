"""Daily reports: counts from entries, zero reports, supersede, the gate page, the CLI."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from console_support import save_corrected_day
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reports_support import DAY, TZ, entry, local, report_data

import sync
from fieldapp import days, records
from fieldapp.console import cases
from fieldapp.db import transaction
from fieldapp.gate import sites
from fieldapp.reports import daily as reports
from fieldapp.reports import rollcall
from sync import peers
from sync.store import iso


@pytest.fixture
def site(app, db):
    with app.app_context():
        return dict(sites.add_site(db, "阳光花园小区", "residential", district="金坛区"))


def enrol(client, db, site):
    """Make the client an enrolled gate phone; return the phone's peer id."""
    from fieldapp.phones import devices

    peer, token = peers.create(db, "device", "东门 1 号机", site["id"])
    client.set_cookie(devices.COOKIE, token)
    return peer.id


def save(app, db, recs):
    with app.app_context():
        return records.save(db, recs, source="test")


def test_counts_match_the_entries_of_the_local_day(app, db, site):
    sid = site["id"]
    recs = [
        entry(sid, local(DAY, 8)),
        entry(sid, local(DAY, 9), direction="out"),
        entry(sid, local(DAY, 10), person_type="visitor", plate="苏D12345"),
        entry(sid, local(DAY, 11), person_type="worker", temperature=37.8, fever_action="clinic"),
        entry(sid, local(DAY, 12), person_type="delivery", direction="out", health_code="yellow"),
        entry(sid, local(DAY, 13), health_code="red", travel=True, travel_where="武汉"),
        entry(sid, local(DAY, 0, 5)),  # 00:05 local is still the day (16:05 UTC the day before)
        entry(sid, local(DAY, 23, 59)),
        # Outside the local day: 23:59 the evening before, 00:00 the day after.
        entry(sid, local(DAY - timedelta(days=1), 23, 59)),
        entry(sid, local(DAY + timedelta(days=1), 0, 0)),
    ]
    assert {r.status for r in save(app, db, recs)} == {"applied"}
    counts = reports.compute_counts(db, sid, DAY, TZ)
    assert counts["in_resident"] == 4
    assert counts["out_resident"] == 1
    assert counts["in_visitor"] == 1 and counts["in_worker"] == 1 and counts["out_delivery"] == 1
    assert reports.entries_in(counts) == 6 and reports.entries_out(counts) == 2
    assert counts["fevers"] == 1 and counts["fever_clinic"] == 1 and counts["fever_refused"] == 0
    assert counts["code_red"] == 1 and counts["code_yellow"] == 1
    assert counts["travel"] == 1 and counts["vehicles"] == 1
    # Cross-check against the rows themselves.
    start, end = days.bounds(DAY, TZ)
    n = db.execute(
        "SELECT count(*) FROM entries WHERE site_id = ? AND recorded_at >= ? AND recorded_at < ?",
        (sid, start, end),
    ).fetchone()[0]
    assert n == reports.entries_in(counts) + reports.entries_out(counts) == 8


def test_report_is_stored_through_save_and_is_a_zero_report_without_entries(app, db, site):
    with app.test_request_context():
        data = reports.draft(db, site["id"], DAY, TZ, reporter="李四")
        assert data["zero"] is True and data["supersedes"] == ""
        result = reports.submit(db, data, recorded_at=local(DAY, 18))
    assert result.status == "applied"
    row = db.execute("SELECT * FROM daily_reports").fetchone()
    assert row["zero"] == 1 and row["day"] == DAY.isoformat() and row["reporter"] == "李四"
    assert db.execute("SELECT kind FROM changes WHERE uuid = ?", (row["uuid"],)).fetchone()[0] == (
        "daily_report"
    )


def test_supersede_keeps_both_and_the_later_is_current(app, db, site):
    sid = site["id"]
    save(app, db, [entry(sid, local(DAY, 8))])
    with app.test_request_context():
        first = reports.draft(db, sid, DAY, TZ)
        assert first["zero"] is False and first["in_resident"] == 1
        r1 = reports.submit(db, first, recorded_at=local(DAY, 18))
        save(app, db, [entry(sid, local(DAY, 19), direction="out")])
        second = reports.draft(db, sid, DAY, TZ)
        assert second["supersedes"] == r1.uuid
        second["remarks"] = "补登一人"
        r2 = reports.submit(db, second, recorded_at=local(DAY, 19, 30))
        assert r2.status == "applied"
        now = reports.current_report(db, sid, DAY)
    assert now.uuid == r2.uuid and now.entries_out == 1 and now.remarks == "补登一人"
    rows = db.execute("SELECT uuid, out_resident FROM daily_reports ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [(r1.uuid, 0), (r2.uuid, 1)]  # the first is not edited


def test_a_report_naming_itself_stays_in_force_on_every_page(app, db, site):
    """No form sends a report that supersedes itself, and sync takes one (its validation does
    not know its uuid): the report pages and the roll-call both still show the site reported,
    with that report's counts, and a later report superseding it is in force after it."""
    sid, rid = site["id"], str(uuid.uuid4())
    odd = reports.new_record(
        report_data(sid, DAY, in_resident=3, supersedes=rid), uuid=rid, recorded_at=local(DAY, 18)
    )
    assert [r.status for r in save(app, db, [odd])] == ["applied"]
    with app.test_request_context():
        assert reports.current_report(db, sid, DAY).uuid == rid
        row = next(r for r in rollcall.build(db, DAY, tz_name=TZ, cutoff="20:00").rows)
        assert (row.state, row.values[0]) == (rollcall.REPORTED, 3)
        later = reports.new_record(
            report_data(sid, DAY, in_resident=4, supersedes=rid), recorded_at=local(DAY, 19)
        )
        save(app, db, [later])
        assert reports.current_report(db, sid, DAY).uuid == later["uuid"]
        row = next(r for r in rollcall.build(db, DAY, tz_name=TZ, cutoff="20:00").rows)
        assert row.values[0] == 4


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"zero": True, "in_resident": 3}, "A zero report cannot have counts."),
        ({"in_resident": -1}, "The count “In: Resident” must be a whole number from 0 to 1000000."),
        ({"in_resident": "many"}, "The count “In: Resident”"),
        ({"day": "2026-13-01"}, "The report's day: the date must look like 2020-02-15"),
        ({"day": "2099-01-01"}, "has not come yet"),
        ({"site_id": "nope"}, "The record names a site this instance does not know."),
        ({"fevers": 1, "fever_clinic": 2}, "more fever outcomes than fevers"),
        ({"supersedes": "not-a-uuid"}, "supersedes"),
        ({"remarks": "x" * 501}, "Remarks: At most 500 characters."),
        # Remarks are a textarea's: its line breaks are kept (below), no other control character.
        ({"remarks": "门岗\x1b[31m"}, "Remarks: Cannot hold tabs or invisible characters."),
        ({"remarks": "一\r二"}, "Remarks: Cannot hold tabs or invisible characters."),
        ({"remarks": "一\u202e二"}, "Remarks: Cannot hold tabs or invisible characters."),
        ({"remarks": "一\u2066二"}, "Remarks: Cannot hold tabs or invisible characters."),
        ({"remarks": "一\u200b二\u206f"}, "Remarks: Cannot hold tabs or invisible characters."),
        (
            {"reporter": "李\n四"},
            "Your name: Must be one line, without tabs or invisible characters.",
        ),
        # A count left empty is not a zero: the roll-call would show a day without fevers.
        ({"in_resident": 5, "fevers": ""}, "The count “Fevers"),
        ({"in_resident": 5, "fevers": None}, "The count “Fevers"),
        # Counts no day's entries can give: each counts people who came in or went out.
        (
            {"in_resident": 1, "fevers": 2},
            "“Fevers (≥ 37.3 °C)” is more than the people in and out (1).",
        ),
        (
            {"in_resident": 1, "out_worker": 1, "vehicles": 3},
            "“Vehicles” is more than the people in and out (2).",
        ),
        ({"travel": 1}, "“Travel to risk areas” is more than the people in and out (0)."),
        ({"in_visitor": 1, "code_red": 1, "code_yellow": 1}, "Red and yellow codes together"),
    ],
)
def test_invalid_reports_are_rejected_with_a_reason_and_not_stored(app, db, site, change, reason):
    data = report_data(site["id"], DAY, **change)
    with app.test_request_context(headers={"Accept-Language": "en"}):
        result = reports.submit(db, data)
    # A site this instance has not received yet: the sender keeps the report and sends it again.
    assert result.status == ("held" if "does not know" in reason else "rejected")
    assert reason in result.reason
    assert db.execute("SELECT count(*) FROM daily_reports").fetchone()[0] == 0


def test_remarks_keep_their_line_breaks(app, db, site):
    """Remarks are typed in a textarea, which sends its line breaks as "\r\n"."""
    remarks = "东门：正常\r\n西门：修缮\n南门：关闭"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        result = reports.submit(db, report_data(site["id"], DAY, remarks=remarks))
    assert result.status == "applied", result.reason
    assert db.execute("SELECT remarks FROM daily_reports").fetchone()[0] == remarks


@pytest.mark.parametrize(
    "remarks, stored",
    [
        # A line or paragraph separator pasted in shows as a line break: stored as one.
        ("东门：正常\u2028西门：修缮\u2029", "东门：正常\n西门：修缮"),
        # The invisible marks a paste brings are removed, the spaces around then trimmed.
        ("\ufeff东门\u200b正常\u200e\r\n\u2060", "东门正常"),
    ],
)
def test_remarks_pasted_with_invisible_marks_are_stored_as_they_show(
    app, db, site, remarks, stored
):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        result = reports.submit(db, report_data(site["id"], DAY, remarks=remarks))
    assert result.status == "applied", result.reason
    assert db.execute("SELECT remarks FROM daily_reports").fetchone()[0] == stored


def test_a_report_without_one_of_its_counts_is_refused_not_read_as_zero(app, db, site):
    """A sender that leaves a count out (an old or broken phone, a hand-made push) does not
    get a report of nothing: the roll-call would show the site as having had no fevers."""
    data = report_data(site["id"], DAY, in_resident=3, fevers=1)
    del data["fevers"]
    with app.test_request_context(headers={"Accept-Language": "en"}):
        result = reports.submit(db, data)
        bare = reports.submit(db, {"site_id": site["id"], "day": DAY.isoformat()})
    assert result.status == bare.status == "rejected"
    assert "The count “Fevers (≥ 37.3 °C)” must be a whole number" in result.reason
    assert db.execute("SELECT count(*) FROM daily_reports").fetchone()[0] == 0
    kept = db.execute("SELECT uuid FROM sync_rejects WHERE kind = 'daily_report'").fetchall()
    assert sorted(r[0] for r in kept) == sorted([result.uuid, bare.uuid])  # kept for review


def test_supersede_must_name_a_report_of_the_same_site_and_day(app, db, site):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        r1 = reports.submit(db, report_data(site["id"], DAY))
        other_day = DAY - timedelta(days=1)
        bad = reports.submit(db, report_data(site["id"], other_day, supersedes=r1.uuid))
    assert bad.status == "rejected" and "same site and day" in bad.reason


def test_form_strings_are_accepted_like_json(app, db, site):
    """The offline outbox posts form fields as strings."""
    data = {k: "0" for k in reports.COUNT_KEYS}
    data.update(site_id=site["id"], day=DAY.isoformat(), zero="true", supersedes="", remarks="")
    with app.test_request_context():
        assert reports.submit(db, data).status == "applied"


def test_daily_reports_do_not_expire_with_the_entries(app, db, site):
    old = (datetime.now() - timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with app.test_request_context():
        result = reports.submit(
            db, report_data(site["id"], old[:10]), recorded_at=old, source="downstream"
        )
    assert result.status == "applied"
    assert save(app, db, [entry(site["id"], old)])[0].status == "expired"


# ---- the gate page ---------------------------------------------------------------------------


def test_a_visitor_who_scanned_the_poster_cannot_report(client, app, db, site):
    r = client.get(f"/s/{site['code']}/report")
    assert r.status_code == 403 and "登记" in r.text
    app.config["WTF_CSRF_ENABLED"] = False
    r = client.post(f"/s/{site['code']}/report", data={"day": days.today(TZ).isoformat()})
    assert r.status_code == 403
    assert db.execute("SELECT count(*) FROM daily_reports").fetchone()[0] == 0


def test_gate_page_zero_report_in_one_tap(client, app, db, site):
    phone = enrol(client, db, site)
    gate = client.get(f"/s/{site['code']}")
    assert f'href="/s/{site["code"]}/report"' in gate.text  # the gate page links to it
    page = client.get(f"/s/{site['code']}/report")
    assert page.status_code == 200
    assert "提交零报告" in page.text  # "Submit zero report"
    assert 'data-outbox-kind="daily_report"' in page.text
    assert page.headers["Vary"] and "HX-Request" in page.headers["Vary"]
    form = {
        "csrf_token": "",
        "uuid": str(uuid.uuid4()),
        "recorded_at": "",
        "site_id": site["id"],
        "day": "",
        "zero": "true",
        "supersedes": "",
        **{k: "0" for k in reports.COUNT_KEYS},
    }
    app.config["WTF_CSRF_ENABLED"] = False
    form["day"] = days.today(TZ).isoformat()
    r = client.post(f"/s/{site['code']}/report", data=form)
    assert r.status_code == 303
    assert r.headers["Location"].startswith(f"/s/{site['code']}/report")
    row = db.execute("SELECT zero, uuid, device FROM daily_reports").fetchone()
    assert row["zero"] == 1 and row["uuid"] == form["uuid"]
    assert row["device"] == phone  # stamped with the enrolled phone that sent it
    after = client.get(r.headers["Location"])
    assert "零报告已提交" in after.text  # flash: zero report submitted
    assert "提交更正报告" in after.text  # the button now submits a corrected report
    # A second tap on the same form is harmless.
    again = client.post(f"/s/{site['code']}/report", data=form)
    assert again.status_code == 303
    assert db.execute("SELECT count(*) FROM daily_reports").fetchone()[0] == 1


def test_gate_page_shows_counts_and_rejects_bad_input_visibly(client, app, db, site):
    enrol(client, db, site)
    today = days.today(TZ)
    save(app, db, [entry(site["id"], iso(datetime.now(UTC)))])
    page = client.get(f"/s/{site['code']}/report", headers={"Accept-Language": "en"})
    assert "Counts from the gate register" in page.text
    assert 'name="in_resident" value="1"' in page.text
    app.config["WTF_CSRF_ENABLED"] = False
    bad = {"day": today.isoformat(), "in_resident": "-3", "remarks": "x"}
    r = client.post(
        f"/s/{site['code']}/report",
        data=bad,
        headers={"Accept-Language": "en", "HX-Request": "true"},
    )
    # HTMX gets the fragment only, as a 200: htmx swaps in nothing else, and the phone would
    # show no reason (tests/browser/test_refused_forms.py).
    assert r.status_code == 200
    assert "The report was not saved" in r.text and "in_resident" in r.text
    assert "<html" not in r.text
    r = client.post(f"/s/{site['code']}/report", data=bad, headers={"Accept-Language": "en"})
    assert r.status_code == 422 and "<html" in r.text  # the page, refused
    assert "The report was not saved" in r.text
    assert db.execute("SELECT count(*) FROM daily_reports").fetchone()[0] == 0


def test_gate_report_needs_a_current_code_and_a_recent_day(client, app, db, site):
    enrol(client, db, site)
    assert client.get("/s/nosuchcode/report").status_code == 404
    old = (days.today(TZ) - timedelta(days=30)).isoformat()
    assert client.get(f"/s/{site['code']}/report?day={old}").status_code == 400
    with app.app_context():
        new = sites.rotate_code(db, site["id"])
    # The site's own phone follows it to the new code (tests/test_old_codes.py); anyone else's
    # old code goes to the gate page, which says the poster is out of date.
    r = client.get(f"/s/{site['code']}/report")
    assert r.status_code == 302 and r.headers["Location"] == f"/s/{new}/report"
    r = app.test_client().get(f"/s/{site['code']}/report")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/s/{site['code']}")


def test_a_site_closed_today_still_reports_the_day(client, app, db, site):
    """阳光花园小区 registered one person this morning and was closed at noon: today's roll-call
    still lists it, so its phone can still send today's report (from the closed gate's page,
    a link leads there); the roll-call then says reported, not missing. A site closed the day
    before reports that day, not today."""
    enrol(client, db, site)
    app.config["WTF_CSRF_ENABLED"] = False
    today = days.today(TZ)
    with transaction(db):
        db.execute("UPDATE sites SET created_at = ? WHERE id = ?", (local(DAY, 0), site["id"]))
    save(app, db, [entry(site["id"], iso(datetime.now(UTC)))])
    with app.app_context():
        sites.set_active(db, site["id"], False)
    gate = client.get(f"/s/{site['code']}")
    assert gate.status_code == 404 and "此场所已停用" in gate.text
    url = f"/s/{site['code']}/report"
    assert f'href="{url}"' in gate.text  # the day's report, from the closed gate's page
    page = client.get(url)
    assert page.status_code == 200
    form = report_form(page.text)
    assert form["in_resident"] == "1"
    assert client.post(url, data=form).status_code == 303
    with app.test_request_context():
        (row,) = rollcall.build(db, today, tz_name=TZ, cutoff="23:59").rows
    assert row.state == rollcall.REPORTED and row.figures["in"] == 1

    # Closed yesterday: yesterday's report, not today's.
    closed = local(today - timedelta(days=1), 12)
    with transaction(db):
        db.execute("UPDATE sites SET closed_at = ? WHERE id = ?", (closed, site["id"]))
        db.execute("UPDATE site_closures SET closed_at = ? WHERE site_id = ?", (closed, site["id"]))
    yesterday = (today - timedelta(days=1)).isoformat()
    assert client.get(url).status_code == 404
    assert client.get(f"{url}?day={yesterday}").status_code == 200
    assert f'href="{url}"' not in client.get(f"/s/{site['code']}").text
    # A visitor who scans the closed poster gets no link.
    assert "/report" not in app.test_client().get(f"/s/{site['code']}").text


def test_a_report_opened_before_the_code_changed_is_saved(client, app, db, site):
    """The report page was open when the poster's code was changed: the tap still stores it
    (the page's site), as the phone's outbox would have, and the answer leads to the new code."""
    enrol(client, db, site)
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        new = sites.rotate_code(db, site["id"])
    form = {
        "uuid": str(uuid.uuid4()),
        "day": days.today(TZ).isoformat(),
        "zero": "true",
        **{k: "0" for k in reports.COUNT_KEYS},
    }
    r = client.post(f"/s/{site['code']}/report", data=form)
    assert r.status_code == 303 and r.headers["Location"].startswith(f"/s/{new}/report")
    row = db.execute("SELECT uuid, site_id, zero FROM daily_reports").fetchone()
    assert tuple(row) == (form["uuid"], site["id"], 1)
    assert client.post("/s/nosuchcode/report", data=form).status_code == 404


def report_form(page: str) -> dict[str, str]:
    """The report form's fields as the page drew them (its hidden inputs: counts, supersedes)."""
    form = re.search(r'<form[^>]*class="report-form".*?</form>', page, re.S).group(0)
    return dict(
        re.findall(r'<input type="hidden" (?:id="\w+" )?name="(\w+)" value="([^"]*)"', form)
    )


def test_a_report_page_left_open_does_not_put_old_counts_over_a_later_report(client, app, db, site):
    """Phone 2 opened the report page in the morning (1 in). Entries came, and phone 1 sent the
    day's report in the afternoon (2 in). Phone 2's morning form, tapped in the evening, would
    have become the report in force (the latest is), with the morning's count. It is refused:
    the page is drawn again with the counts as of now, and what was typed is kept; tapped
    again, it corrects phone 1's report."""
    enrol(client, db, site)
    app.config["WTF_CSRF_ENABLED"] = False
    url = f"/s/{site['code']}/report"
    now = datetime.now(UTC)
    save(app, db, [entry(site["id"], iso(now))])
    morning = report_form(client.get(url).text)
    assert (morning["in_resident"], morning["supersedes"]) == ("1", "")
    save(app, db, [entry(site["id"], iso(now))])
    afternoon = report_form(client.get(url).text)
    assert client.post(url, data=afternoon).status_code == 303  # phone 1's report
    first = reports.current_report(db, site["id"], days.today(TZ))
    assert first.counts["in_resident"] == 2

    late = client.post(url, data={**morning, "remarks": "晚班补交"})
    assert late.status_code == 422
    assert "打开此页后登记数字有变化" in late.text
    assert reports.current_report(db, site["id"], days.today(TZ)).uuid == first.uuid
    assert db.execute("SELECT COUNT(*) FROM daily_reports").fetchone()[0] == 1
    redrawn = report_form(late.text)
    assert (redrawn["in_resident"], redrawn["supersedes"]) == ("2", first.uuid)
    assert "晚班补交" in late.text  # the remarks typed are still there
    assert client.post(url, data={**redrawn, "remarks": "晚班补交"}).status_code == 303
    now_in_force = reports.current_report(db, site["id"], days.today(TZ))
    assert (now_in_force.supersedes, now_in_force.remarks) == (first.uuid, "晚班补交")

    # One phone alone, its page open while the gate went on registering: the same.
    stale = report_form(client.get(url).text)
    save(app, db, [entry(site["id"], iso(now))])
    assert client.post(url, data=stale).status_code == 422
    assert db.execute("SELECT COUNT(*) FROM daily_reports").fetchone()[0] == 2


def test_a_report_sent_after_the_cutoff_from_a_slow_phone_is_late(
    client, app, db, site, monkeypatch
):
    """At 20:30 (the cutoff is 20:00) a phone whose clock is two hours slow (18:30) sends the
    day's zero report: the roll-call says it is late, submitted at 20:30, and so does the
    gate's page; the phone's clock would have made it on time."""
    enrol(client, db, site)
    app.config["WTF_CSRF_ENABLED"] = False
    today = days.today(TZ)
    now = datetime.fromisoformat(local(today, 20, 30).replace("Z", "+00:00"))
    monkeypatch.setattr(sync, "utcnow", lambda: now)
    url = f"/s/{site['code']}/report"
    form = report_form(client.get(url).text)
    phone = iso(now - timedelta(hours=2))
    sent = client.post(
        url, data={**form, "recorded_at": phone}, headers={"X-Fieldapp-Sent-At": phone}
    )
    assert sent.status_code == 303
    assert db.execute("SELECT recorded_at FROM daily_reports").fetchone()[0] == iso(now)
    with app.test_request_context():
        (row,) = rollcall.build(db, today, tz_name=TZ, cutoff="20:00").rows
    assert (row.state, row.submitted_at) == (rollcall.LATE, "20:30")
    assert "零报告已于 20:30 提交" in client.get(url).text


def test_cli_report_daily_prints_the_roll_call(runner, app, db, site):
    with app.test_request_context():
        reports.submit(db, report_data(site["id"], DAY), recorded_at=local(DAY, 9))
    r = runner.invoke(
        args=["report", "daily", "--date", DAY.isoformat()], env={"LANG": "zh_CN.UTF-8"}
    )
    assert r.exit_code == 0, r.output
    assert "阳光花园小区" in r.output and "零报告" in r.output and "金坛区" in r.output
    bad = runner.invoke(
        args=["report", "daily", "--date", "20-11-2026"], env={"LANG": "en_US.UTF-8"}
    )
    assert bad.exit_code != 0 and "2020-02-15" in bad.output
    none = runner.invoke(args=["report", "daily", "--district", "无此区"], env={"LANG": "en_US"})
    assert none.exit_code != 0 and "No site of district 无此区 was open" in none.output


def test_an_offline_phone_outbox_push_of_the_report_form_is_stored(client, app, db, site):
    """What the service worker sends later: the form's fields as strings, pushed as JSON."""
    phone = enrol(client, db, site)
    day = days.today(TZ).isoformat()
    data = {k: "0" for k in reports.COUNT_KEYS}
    data.update(site_id=site["id"], day=day, zero=True, supersedes="", reporter="", remarks="")
    record = {
        "uuid": str(uuid.uuid4()),
        "kind": "daily_report",
        "recorded_at": iso(datetime.now(UTC)),
        "data": data,
    }
    r = client.post("/sync/v1/push", json={"source": phone, "records": [record]})
    assert r.status_code == 200, r.text
    assert r.json["results"] == [{"uuid": record["uuid"], "status": "applied"}]
    again = client.post("/sync/v1/push", json={"source": phone, "records": [record]})
    assert again.json["results"][0]["status"] == "duplicate"
    row = db.execute("SELECT zero, device, day FROM daily_reports").fetchone()
    assert tuple(row) == (1, phone, day)


def test_htmx_submit_answers_with_the_fragment_and_coordinators_may_report(app, db, site):
    from console_support import login, make_user

    make_user(app, "jt", "coordinator", districts=["金坛区"])
    client = app.test_client()
    login(client, "jt")
    page = client.get(f"/s/{site['code']}/report")
    assert page.status_code == 200
    app.config["WTF_CSRF_ENABLED"] = False
    form = {k: "0" for k in reports.COUNT_KEYS}
    form.update(uuid=str(uuid.uuid4()), day=days.today(TZ).isoformat(), zero="true")
    r = client.post(f"/s/{site['code']}/report", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    assert "零报告已提交" in r.text and "HX-Request" in r.headers["Vary"]
    assert db.execute("SELECT device FROM daily_reports").fetchone()[0] is None
    # A coordinator of another district, and a read-only viewer, may not.
    with app.app_context():
        other = sites.add_site(db, "河西小区", "residential", district="溧阳市")
    assert client.get(f"/s/{other['code']}/report").status_code == 403
    make_user(app, "look", "viewer")
    app.config["WTF_CSRF_ENABLED"] = True
    viewer = app.test_client()
    login(viewer, "look")
    assert viewer.get(f"/s/{site['code']}/report").status_code == 403


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    people=st.lists(
        st.tuples(
            st.integers(min_value=-6 * 60, max_value=30 * 60),  # minutes from local midnight
            st.sampled_from(["in", "out"]),
            st.sampled_from(list(reports.PERSON_TYPES)),
            st.sampled_from([36.2, 36.8, 37.2, 37.3, 38.5]),
            st.sampled_from(["green", "green", "yellow", "red", "none"]),
            st.booleans(),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_counts_always_add_up_to_the_days_entries(app, db, site, people):
    """Whatever passes the gate, the report's figures are the entries of the local day."""
    db.execute("DELETE FROM changes")
    db.execute("DELETE FROM entries")
    midnight = datetime(DAY.year, DAY.month, DAY.day) - timedelta(hours=8)  # UTC of 00:00 local
    recs = []
    for minutes, direction, ptype, temp, code, travel, car in people:
        at = (midnight + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        extra = {"fever_action": "refused"} if temp >= 37.3 else {}
        recs.append(
            entry(
                site["id"],
                at,
                direction=direction,
                person_type=ptype,
                temperature=temp,
                health_code=code,
                travel=travel,
                travel_where="外地" if travel else "",
                plate="苏D12345" if car else "",
                **extra,
            )
        )
    if recs:
        assert {r.status for r in save(app, db, recs)} == {"applied"}
    today = [p for p in people if 0 <= p[0] < 24 * 60]
    counts = reports.compute_counts(db, site["id"], DAY, TZ)
    assert reports.entries_in(counts) == sum(p[1] == "in" for p in today)
    assert reports.entries_out(counts) == sum(p[1] == "out" for p in today)
    for t in reports.PERSON_TYPES:
        assert counts[f"in_{t}"] == sum(p[1] == "in" and p[2] == t for p in today)
    assert counts["fevers"] == counts["fever_refused"] == sum(p[3] >= 37.3 for p in today)
    assert counts["code_red"] == sum(p[4] == "red" for p in today)
    assert counts["code_yellow"] == sum(p[4] == "yellow" for p in today)
    assert counts["travel"] == sum(p[5] for p in today)
    assert counts["vehicles"] == sum(p[6] for p in today)
    assert reports.is_zero(counts) == (not today)


def test_the_report_counts_the_entries_as_corrected(runner, client, app, db, site):
    """A voided duplicate, fevers corrected in and out, travel answers corrected and a
    correction that came before its entry: the draft, the gate page and `report daily` count
    each entry's current value, and the fevers are the day's fever cases."""
    expected = save_corrected_day(app, site["id"], lambda hour: local(DAY, hour))
    with app.test_request_context():
        data = reports.draft(db, site["id"], DAY, TZ)
    assert {k: data[k] for k in reports.COUNT_KEYS if data[k]} == {
        "in_resident": 6,
        "in_visitor": 1,
        "fevers": 3,
        # What was done at the gate: the two fevers raised by corrections have none.
        "fever_refused": 1,
        "travel": 1,
    }
    start, end = days.bounds(DAY, TZ)
    now = datetime.now(UTC)
    fever_cases = cases.listing(db, [site["id"]], now, "all", since=start, until=end)
    assert sorted(c["entry"]["name"] for c in fever_cases) == sorted(expected["fever_names"])
    assert data["fevers"] == len(fever_cases)
    enrol(client, db, site)
    page = client.get(f"/s/{site['code']}/report?day={DAY.isoformat()}")
    for key, value in (("in_resident", 6), ("out_resident", 0), ("fevers", 3), ("travel", 1)):
        assert f'name="{key}" value="{value}"' in page.text, key
    with app.test_request_context():
        assert reports.submit(db, data, recorded_at=local(DAY, 19)).status == "applied"
    r = runner.invoke(
        args=["report", "daily", "--date", DAY.isoformat(), "--format", "csv"],
        env={"LANG": "zh_CN.UTF-8"},
    )
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(r.output)))
    line = dict(zip(rows[0], next(row for row in rows if row[1] == "阳光花园小区"), strict=True))
    assert {k: line[k] for k in ("进", "出", "访客", "发热", "行程")} == {
        "进": "7",
        "出": "0",
        "访客": "1",
        "发热": "3",
        "行程": "1",
    }


def test_a_report_sent_on_a_later_day_says_that_day_on_the_gate_page(client, app, db, site):
    """A report of DAY sent the next morning: the gate's page says when, with the date (the
    roll-call does), not only the time of day, which would read as sent on DAY itself."""
    enrol(client, db, site)
    next_day = DAY + timedelta(days=1)
    with app.test_request_context():
        reports.submit(db, report_data(site["id"], DAY), recorded_at=local(next_day, 9, 5))
        reports.submit(db, report_data(site["id"], next_day), recorded_at=local(next_day, 19, 30))
        (row,) = rollcall.build(db, DAY, tz_name=TZ, cutoff="20:00").rows
    assert row.submitted_at == f"{next_day.isoformat()} 09:05"
    page = client.get(f"/s/{site['code']}/report?day={DAY.isoformat()}").text
    assert f"{DAY.isoformat()} 的零报告已于 {next_day.isoformat()} 09:05 提交" in page
    page = client.get(f"/s/{site['code']}/report?day={next_day.isoformat()}").text
    assert f"{next_day.isoformat()} 的零报告已于 19:30 提交" in page


def test_cli_report_daily_refuses_a_day_to_come_as_the_console_does(runner, app, db, site):
    """Tomorrow's roll-call would list every site as missing: the console refuses the day,
    and so does the command, in the user's language, printing no table."""
    tomorrow = (days.today(TZ) + timedelta(days=1)).isoformat()
    r = runner.invoke(args=["report", "daily", "--date", tomorrow], env={"LANG": "zh_CN.UTF-8"})
    assert r.exit_code == 2, r.output
    assert f"{tomorrow} 还没有到：点名只显示今天和之前的日子。" in r.output
    assert "阳光花园小区" not in r.output and "未报" not in r.output
    r = runner.invoke(args=["report", "daily", "--date", tomorrow], env={"LANG": "zh_TW.UTF-8"})
    assert f"{tomorrow} 還沒有到：點名只顯示今天和之前的日子。" in r.output
    today = runner.invoke(args=["report", "daily"], env={"LANG": "zh_CN.UTF-8"})
    assert today.exit_code == 0 and "阳光花园小区" in today.output and "未报" in today.output


def test_a_report_day_that_is_no_date_is_said_as_text_never_read_as_html(client, app, db, site):
    """?day= (or the form's day) is shown back in the error: markup typed there is text, not a
    link on the gate phone's page; nothing is stored."""
    enrol(client, db, site)
    typed = "<a href=//x.cn>点此</a>"
    url = f"/s/{site['code']}/report"
    app.config["WTF_CSRF_ENABLED"] = False
    for r in (
        client.get(url, query_string={"day": typed}),
        client.post(url, data={"day": typed, "zero": "true"}),
    ):
        assert r.status_code == 400
        assert "2020-02-15" in r.text and "<a href=//x.cn>" in r.text
        assert r.mimetype == "text/plain"
    old = (days.today(TZ) - timedelta(days=30)).isoformat()
    r = client.get(url, query_string={"day": old})
    assert r.status_code == 400 and "过去 7 天" in r.text and r.mimetype == "text/plain"
    assert db.execute("SELECT count(*) FROM daily_reports").fetchone()[0] == 0
