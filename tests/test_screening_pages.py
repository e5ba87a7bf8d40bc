"""Screening pages: the site phone's list and form, the console's campaigns, coverage, exports,
a site's people, the follow-ups, and the roll-call beside them: what users see, what is stored,
what is audited."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta

import pytest
from console_support import csrf, login, make_user
from reports_support import added_on
from screening_support import TZ, added, answer, local, make_campaign, make_sites, save, today

from fieldapp.gate import sites
from fieldapp.phones import devices
from fieldapp.screening import coverage
from sync import peers
from sync.store import iso, utcnow


@pytest.fixture
def world(app, db):
    with app.app_context():
        made = make_sites(db)
    campaign = make_campaign(app, db)
    return {"jintan": made[0], "site": made[1], "liyang": made[2], "campaign": campaign}


def enrol(client, db, site):
    peer, token = peers.create(db, "device", "东门 1 号机", site["id"])
    client.set_cookie(devices.COOKIE, token)
    return peer.id


def page_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="screening-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


# ---- the site phone -------------------------------------------------------------------------


def test_only_enrolled_phones_and_coordinators_screen(client, app, db, world):
    site = world["jintan"]
    r = client.get(f"/s/{site['code']}/screening")
    assert r.status_code == 403 and "只有本场所已登记的手机" in r.text
    cid = world["campaign"].id
    assert client.get(f"/s/{site['code']}/screening/{cid}").status_code == 403
    assert client.post(f"/s/{site['code']}/screening/{cid}", data={}).status_code in (400, 403)


def test_the_phone_page_carries_the_campaign_roster_and_rules(client, app, db, world):
    site, campaign = world["jintan"], world["campaign"]
    enrol(client, db, site)
    r = client.get(f"/s/{site['code']}/screening")
    assert r.status_code == 302 and r.headers["Location"].endswith(
        f"/s/{site['code']}/screening/{campaign.id}"
    )
    r = client.get(r.headers["Location"])
    assert r.status_code == 200
    assert r.headers["X-Fieldapp-Page"] == "screening"  # the service worker keeps it
    assert "共 4 人，已排查 0 人，未排查 4 人" in r.text
    data = page_data(r.text)
    assert data["campaign"]["id"] == campaign.id and data["tz"] == "Asia/Shanghai"
    assert [p["name"] for p in data["people"]] == ["张建国", "李秀英", "王磊", "陈晓梅"]
    assert "phone" not in data["people"][0]  # the screening needs no phone numbers of them
    rules = json.loads(re.search(r"data-rules='([^']*)'", r.text).group(1).replace("&#34;", '"'))
    names = [f["name"] for f in rules["fields"]]
    assert names[:2] == ["day", "added"] and "nat_date" in names
    assert next(f for f in rules["fields"] if f["name"] == "nat_date")["not_after"] == "day"
    # A site the campaign does not cover has no screening page.
    other = world["liyang"]
    assert client.get(f"/s/{other['code']}/screening/{campaign.id}").status_code == 404
    assert "今天没有覆盖本场所的排查任务" in client.get(f"/s/{other['code']}/screening").text


def test_a_re_check_starts_from_the_last_answer(client, app, db, world):
    site, campaign = world["jintan"], world["campaign"]
    person = site["people"][1]
    yesterday = today() - timedelta(days=1)
    assert save(
        app,
        db,
        [
            answer(
                campaign.id,
                site["id"],
                person,
                day=yesterday,
                whereabouts="other_province",
                whereabouts_where="湖北",
                status="home_isolation",
            )
        ],
    )
    enrol(client, db, site)
    r = client.get(f"/s/{site['code']}/screening/{campaign.id}?person={person}")
    assert 'name="whereabouts" value="other_province" checked' in r.text
    assert 'name="status" value="home_isolation" checked' in r.text
    assert 'value="湖北"' in r.text
    assert f"上次排查 {yesterday.isoformat()}" in r.text
    data = page_data(r.text)
    p = next(p for p in data["people"] if p["id"] == person)
    assert p["last"]["status"] == "home_isolation" and p["current"] is None  # not yet today


# A roster person's answer as the form without script posts it: here, well, vaccinated.
HERE_AND_WELL = {
    "added": "false",
    "whereabouts": "district",
    "contact": "no",
    "status": "here",
    "nat_result": "none",
    "vaccine_doses": "3",
}


def test_the_form_without_script_saves_through_the_instance(client, app, db, world):
    app.config["WTF_CSRF_ENABLED"] = False
    site, campaign = world["jintan"], world["campaign"]
    device = enrol(client, db, site)
    url = f"/s/{site['code']}/screening/{campaign.id}"
    form = {"person_id": site["people"][0], "person_name": "张建国", **HERE_AND_WELL}
    r = client.post(url, data=form)
    assert r.status_code == 303 and r.headers["Location"].endswith(url)
    assert "已保存：张建国。" in client.get(url).text
    row = db.execute("SELECT person_id, day, device, status FROM screenings").fetchone()
    assert tuple(row) == (site["people"][0], today().isoformat(), device, "here")
    # A refused answer says why, keeps what was typed and stores nothing.
    r = client.post(url, data={**form, "status": "", "note": "电话联系"})
    assert r.status_code == 422
    assert "目前状态：请选择一项。" in r.text and 'value="电话联系"' in r.text
    assert db.execute("SELECT count(*) FROM screenings").fetchone()[0] == 1


def test_an_answer_posted_after_the_code_changed_is_saved(client, app, db, world):
    """The form was open when the poster's code changed: its answer is stored all the same."""
    app.config["WTF_CSRF_ENABLED"] = False
    site, campaign = world["jintan"], world["campaign"]
    enrol(client, db, site)
    with app.app_context():
        new = sites.rotate_code(db, site["id"])
    form = {"person_id": site["people"][0], **HERE_AND_WELL}
    r = client.post(f"/s/{site['code']}/screening/{campaign.id}", data=form)
    assert r.status_code == 303
    assert r.headers["Location"].endswith(f"/s/{new}/screening/{campaign.id}")
    assert db.execute("SELECT count(*) FROM screenings").fetchone()[0] == 1


def test_a_screening_page_under_an_old_code_opens_under_the_new_one_for_the_sites_phone(
    client, app, db, world
):
    """The gate page, and the screening page, the phone kept before the code changed link to
    the old code's screening: the site's phone is sent to the new code's page, with today's
    answers; another site's phone and a browser that is no phone get the 404 they got."""
    site, campaign = world["jintan"], world["campaign"]
    enrol(client, db, site)
    save(app, db, [answer(campaign.id, site["id"], site["people"][0])])
    old = site["code"]
    with app.app_context():
        new = sites.rotate_code(db, site["id"])
    for path in (f"/screening/{campaign.id}?person={site['people'][0]}", "/screening"):
        r = client.get(f"/s/{old}{path}")
        assert r.status_code == 302 and r.headers["Location"] == f"/s/{new}{path}"
    r = client.get(f"/s/{old}/screening/{campaign.id}", follow_redirects=True)
    assert r.status_code == 200 and r.headers["X-Fieldapp-Page"] == "screening"
    data = page_data(r.text)
    assert data["site"]["id"] == site["id"]
    assert [p["id"] for p in data["people"] if p["current"]] == [site["people"][0]]
    other = app.test_client()
    enrol(other, db, world["liyang"])
    for browser in (other, app.test_client()):
        assert browser.get(f"/s/{old}/screening/{campaign.id}").status_code == 404
        assert browser.get(f"/s/{old}/screening").status_code == 404
    sites.set_active(db, site["id"], False)
    assert client.get(f"/s/{old}/screening/{campaign.id}").status_code == 404


def test_the_gate_page_links_to_the_screening_only_while_a_campaign_runs(client, app, db, world):
    site = world["jintan"]
    enrol(client, db, site)
    assert "/screening" in client.get(f"/s/{site['code']}").text
    assert "/screening" not in client.get(f"/s/{world['liyang']['code']}").text


# ---- the console ----------------------------------------------------------------------------


@pytest.fixture
def screened(app, db, world):
    """Three answers at 阳光花园 (one into home isolation) and one person added on site."""
    site, campaign = world["jintan"], world["campaign"]
    recs = [
        answer(campaign.id, site["id"], site["people"][0]),
        answer(
            campaign.id,
            site["id"],
            site["people"][1],
            status="home_isolation",
            whereabouts="other_province",
            whereabouts_where="湖北",
        ),
        answer(campaign.id, site["id"], site["people"][2], whereabouts="city"),
        added(campaign.id, site["id"], "刘新来"),
    ]
    assert {r.status for r in save(app, db, recs)} == {"applied"}
    return recs


def signed_in(app, name, role, **scope):
    make_user(app, name, role, **scope)
    client = app.test_client()
    assert login(client, name).status_code in (302, 303)
    return client


def test_coverage_page_table_summary_and_fragment(app, db, world, screened):
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    campaign = world["campaign"]
    listing = coordinator.get("/console/screening")
    assert campaign.name in listing.text and "金坛区" in listing.text
    assert "新建排查任务" not in listing.text  # only an admin makes campaigns
    r = coordinator.get(f"/console/screening/{campaign.id}")
    assert r.status_code == 200 and "<html" in r.text
    assert 'hx-target="#coverage"' in r.text and '<option value="金坛区"' in r.text
    summary = re.search(r'<p class="screening-summary" data-summary>(.*?)</p>', r.text, re.S)
    text = summary.group(1)
    assert "应排查 8 人，已排查 4 人（含名单外新增 1 人），未排查 4 人" in text
    assert "1 人去过外省（其中 1 人居家隔离）" in text
    total = re.search(r"<tr class=\"total-row\" data-total>(.*?)</tr>", r.text, re.S).group(1)
    assert re.findall(r"<td[^>]*>(\d+)</td>", total)[:3] == ["8", "4", "4"]
    fragment = coordinator.get(
        f"/console/screening/{campaign.id}?district=金坛区", headers={"HX-Request": "true"}
    )
    assert "<html" not in fragment.text and 'id="coverage"' in fragment.text
    assert "HX-Request" in fragment.headers["Vary"]
    printed = coordinator.get(f"/console/screening/{campaign.id}?print=1")
    assert "print-view" in printed.text and "应排查 8 人" in printed.text
    bad = coordinator.get(f"/console/screening/{campaign.id}?day=2020-13-01")
    assert bad.status_code == 400 and "2020-02-15" in bad.text
    # Another district's coordinator does not see the campaign at all.
    other = signed_in(app, "liyang", "coordinator", districts=["溧阳市"])
    assert other.get(f"/console/screening/{campaign.id}").status_code == 404


def test_exports_are_audited(app, db, world, screened):
    import openpyxl

    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    cid = world["campaign"].id
    r = coordinator.get(f"/console/screening/{cid}/coverage.csv")
    assert r.status_code == 200 and r.data.startswith("\ufeff".encode())
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"  # the charset once
    assert "已排查 4 人" in r.data.decode("utf-8-sig").splitlines()[0]
    r = coordinator.get(f"/console/screening/{cid}/coverage.xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(r.data)).active
    assert "已排查 4 人" in sheet.cell(2, 1).value
    targets = [
        r[0] for r in db.execute("SELECT target FROM audit_log WHERE action = 'export' ORDER BY id")
    ]
    assert targets == ["screening.csv", "screening.xlsx"]


def test_a_sites_people_are_masked_by_role_and_looking_is_audited(app, db, world, screened):
    site, cid = world["jintan"], world["campaign"].id
    viewer = signed_in(app, "guest", "viewer")
    r = viewer.get(f"/console/screening/{cid}/sites/{site['id']}")
    assert r.status_code == 200
    assert "张**" in r.text and "张建国" not in r.text and "刘**" in r.text
    assert "居家隔离" in r.text
    assert viewer.get(f"/console/screening/{cid}/sites/{site['id']}/added.csv").status_code == 403
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    r = coordinator.get(f"/console/screening/{cid}/sites/{site['id']}")
    assert "张建国" in r.text and "名单外" in r.text
    r = coordinator.get(f"/console/screening/{cid}/sites/{site['id']}/added.csv")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"  # the charset once
    lines = r.data.decode("utf-8-sig").splitlines()
    assert lines == ["name,phone,unit,person_type", "刘新来,13900001111,临时工棚,worker"]
    looked = db.execute(
        "SELECT actor, target FROM audit_log WHERE action = 'screening_view' ORDER BY id"
    ).fetchall()
    assert [tuple(r) for r in looked] == [("guest", site["id"]), ("jintan", site["id"])]
    assert (
        db.execute(
            "SELECT count(*) FROM audit_log WHERE target = 'screening.added.csv'"
        ).fetchone()[0]
        == 1
    )
    # Outside one's scope: no such page.
    other = signed_in(app, "liyang", "coordinator", districts=["溧阳市"])
    assert other.get(f"/console/screening/{cid}/sites/{site['id']}").status_code == 404


def test_someone_added_on_site_then_imported_into_the_roster_is_counted_once(
    app, db, world, runner, tmp_path
):
    """The audit's case, by docs/screening.md's path: 刘新来 is added on site and screened; the
    coordinator downloads the site's added people and the central imports them with
    `fieldapp roster import`. The coverage page, its summary, the CLI, the roll-call's cell
    and the site's list still count 刘新来 once, today and on the day before."""
    site, campaign = world["jintan"], world["campaign"]
    cid, yesterday = campaign.id, today() - timedelta(days=1)
    added_on(db, yesterday - timedelta(days=1))  # the sites were open yesterday: on its roll-call
    newcomer = added(cid, site["id"], "刘新来", day=yesterday)
    person = newcomer["data"]["person_id"]
    recs = [
        newcomer,
        answer(cid, site["id"], site["people"][0], day=yesterday),
        *(answer(cid, site["id"], p) for p in site["people"]),
        answer(
            cid,
            site["id"],
            person,
            added=True,
            name="刘新来",
            phone="13900001111",
            unit="临时工棚",
            person_type="worker",
        ),
    ]
    assert {r.status for r in save(app, db, recs)} == {"applied"}
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    said = {
        today(): "应排查 8 人，已排查 5 人（含名单外新增 1 人），未排查 3 人",
        yesterday: "应排查 8 人，已排查 2 人（含名单外新增 1 人），未排查 6 人",
    }
    cells = {today(): "5/5", yesterday: "2/5"}

    def shown(day):
        page = coordinator.get(f"/console/screening/{cid}?day={day.isoformat()}").text
        summary = re.search(r'<p class="screening-summary" data-summary>(.*?)</p>', page, re.S)
        rc = coordinator.get(f"/console/rollcall?day={day.isoformat()}").text
        row = re.search(f'data-site="{site["id"]}">(.*?)</tr>', rc, re.S).group(1)
        return summary.group(1), re.findall(r"\b\d+/\d+\b", row)

    for day in said:
        summary, cell = shown(day)
        assert said[day] in summary and cells[day] in cell, day
    people = coordinator.get(f"/console/screening/{cid}/sites/{site['id']}").text
    assert people.count("刘新来") == 1
    listed = coordinator.get(f"/console/screening/{cid}/sites/{site['id']}/added.csv")
    (tmp_path / "join.csv").write_bytes(listed.data)

    result = runner.invoke(args=["roster", "import", site["code"], str(tmp_path / "join.csv")])
    assert result.exit_code == 0, result.output
    joined = db.execute(
        "SELECT id FROM roster WHERE site_id = ? AND name = '刘新来'", (site["id"],)
    ).fetchone()[0]
    for day in said:  # today's figures as they were, and the day before's too
        summary, cell = shown(day)
        assert said[day] in summary and cells[day] in cell, day
    printed = runner.invoke(args=["screening", "coverage", cid])
    assert said[today()] in printed.output
    # The site's list has them once, on the roster, screened; nobody is left to import.
    people = coordinator.get(f"/console/screening/{cid}/sites/{site['id']}").text
    assert people.count("刘新来") == 1
    listed = coordinator.get(f"/console/screening/{cid}/sites/{site['id']}/added.csv")
    assert listed.data.decode("utf-8-sig").splitlines() == ["name,phone,unit,person_type"]

    # The phone, with the new roster, screens them again under their roster id: still once.
    again = answer(cid, site["id"], joined, at=iso(utcnow()))
    assert {r.status for r in save(app, db, [again])} == {"applied"}
    summary, cell = shown(today())
    assert "应排查 8 人，已排查 5 人，未排查 3 人" in summary and "5/5" in cell


def test_home_isolation_is_followed_up_until_closed(app, db, world, screened):
    site, campaign = world["jintan"], world["campaign"]
    person = site["people"][1]
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    r = coordinator.get("/console/screening/followups")
    assert "李秀英" in r.text and "居家隔离" in r.text
    url = f"/console/screening/followups/{campaign.id}/{person}"
    page = coordinator.get(url)
    assert page.status_code == 200 and "李秀英" in page.text and "测温逾期" not in page.text
    token = csrf(coordinator, url)
    r = coordinator.post(
        url + "/action", data={"csrf_token": token, "action": "check", "temperature": "37,6"}
    )
    assert r.status_code == 303
    row = db.execute(
        "SELECT action, temperature, author, site_id FROM screening_actions"
    ).fetchone()
    assert tuple(row) == ("check", 37.6, "jintan", site["id"])
    # A refused step shows the page again with why, and the form as it was typed.
    typed = {"csrf_token": token, "action": "check", "temperature": "51", "note": "门口复测"}
    refused = coordinator.post(url + "/action", data=typed)
    assert refused.status_code == 422 and "51 °C" in refused.text
    assert 'name="temperature" value="51"' in refused.text
    assert 'name="note" value="门口复测"' in refused.text
    assert db.execute("SELECT count(*) FROM screening_actions").fetchone()[0] == 1
    typed = {"csrf_token": token, "action": "close", "outcome": "", "note": "转走"}
    refused = coordinator.post(url + "/action", data=typed)
    assert refused.status_code == 422 and 'name="note" value="转走"' in refused.text
    assert 'name="temperature" value=""' in refused.text  # the check's form is not the one
    again = coordinator.get(url).text  # opened again: no reason, empty forms
    assert "51 °C" not in again and 'value="51"' not in again and "转走" not in again
    assert db.execute("SELECT count(*) FROM screening_actions").fetchone()[0] == 1
    r = coordinator.post(
        url + "/action", data={"csrf_token": token, "action": "close", "outcome": "completed"}
    )
    assert "期满，身体正常" in coordinator.get(url).text
    assert "李秀英" not in coordinator.get("/console/screening/followups").text
    assert "李秀英" in coordinator.get("/console/screening/followups?status=closed").text
    audit = db.execute(
        "SELECT detail FROM audit_log WHERE action = 'screening_action' ORDER BY id"
    ).fetchall()
    assert [r[0] for r in audit] == ["check", "close"]
    # An isolating answer after the close opens the follow-up again.
    later = answer(campaign.id, site["id"], person, at=iso(utcnow()), status="medical_observation")
    assert save(app, db, [later])
    assert "李秀英" in coordinator.get("/console/screening/followups").text
    # A viewer reads, masked, and cannot record a step.
    viewer = signed_in(app, "guest", "viewer")
    assert "李**" in viewer.get("/console/screening/followups").text
    assert viewer.post(url + "/action", data={"action": "note"}).status_code in (400, 403)


def test_admins_make_campaigns_at_the_central(app, db, world):
    admin = signed_in(app, "boss", "admin")
    page = admin.get("/console/screening")
    assert "新建排查任务" in page.text
    token = csrf(admin, "/console/screening")
    form = {
        "csrf_token": token,
        "name": "返岗人员排查",
        "start_day": today().isoformat(),
        "daily": "1",
        "questions": ["whereabouts", "status"],
        "scope": "chosen",
        "districts": ["溧阳市"],
    }
    r = admin.post("/console/screening", data=form)
    assert r.status_code == 303
    row = db.execute(
        "SELECT questions, districts FROM screening_campaigns WHERE name = '返岗人员排查'"
    ).fetchone()
    assert tuple(row) == ("whereabouts,status", '["溧阳市"]')
    r = admin.post("/console/screening", data={**form, "name": "另一个", "districts": []})
    assert r.status_code == 400 and "请选择排查范围" in r.text
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    token = csrf(coordinator, "/console/screening")
    assert (
        coordinator.post("/console/screening", data={**form, "csrf_token": token}).status_code
        == 403
    )


def test_the_roll_call_shows_screening_beside_the_daily_report(app, db, world, screened):
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    r = coordinator.get("/console/rollcall")
    assert "排查：复工人员排查" in r.text
    row = re.search(f'data-site="{world["jintan"]["id"]}">(.*?)</tr>', r.text, re.S).group(1)
    assert "4/5" in row
    row = re.search(f'data-site="{world["site"]["id"]}">(.*?)</tr>', r.text, re.S).group(1)
    assert "0/3" in row


def test_the_roll_calls_screening_cells_are_the_coverage_pages_figures(app, db, world, screened):
    """The roll-call reads only (screened, to screen); the coverage page sums every answer's
    breakdown: both say the same for every site, district and the whole scope."""
    ids = [r[0] for r in db.execute("SELECT id FROM sites")]
    with app.test_request_context():
        (cell,) = coverage.for_rollcall(db, today(), ids, TZ)
        full = coverage.build(db, world["campaign"], today(), tz=TZ, site_ids=ids)
    assert cell["sites"] == {r.site_id: (r.screened, r.to_screen) for r in full.rows}
    assert cell["districts"] == {d.name: (d.screened, d.to_screen) for d in full.districts}
    assert cell["total"] == (full.total.screened, full.total.to_screen)
    assert cell["sites"][world["jintan"]["id"]] == (4, 5)

    # A one-off campaign over every site, its answers from its start up to the day.
    once = make_campaign(app, db, name="一次性排查", daily=False, districts=[], all_sites=True)
    site = world["liyang"]
    assert {r.status for r in save(app, db, [answer(once.id, site["id"], site["people"][0])])} == {
        "applied"
    }
    with app.test_request_context():
        cells = coverage.for_rollcall(db, today(), ids, TZ)
        full = coverage.build(db, once, today(), tz=TZ, site_ids=ids)
    (cell,) = [c for c in cells if c["campaign"].id == once.id]
    assert cell["sites"] == {r.site_id: (r.screened, r.to_screen) for r in full.rows}
    assert cell["total"] == (full.total.screened, full.total.to_screen)
    assert cell["sites"][site["id"]][0] == 1


def test_a_follow_up_without_a_check_for_12_hours_is_highlighted_overdue(app, db, world):
    site, campaign = world["jintan"], world["campaign"]
    person, other = site["people"][1], site["people"][2]  # 李秀英, 王磊
    now = utcnow()
    opened = iso(now - timedelta(hours=13))
    recs = [
        answer(campaign.id, site["id"], person, at=opened, status="medical_observation"),
        answer(
            campaign.id,
            site["id"],
            other,
            at=iso(now - timedelta(hours=1)),
            status="home_isolation",
        ),
    ]
    assert {r.status for r in save(app, db, recs)} == {"applied"}
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])

    def item(html: str, pid: str) -> str:
        return re.search(f'<li class="case ([^"]*)" data-person="{pid}">(.*?)</li>', html, re.S)

    listed = coordinator.get("/console/screening/followups").text
    late, fresh = item(listed, person), item(listed, other)
    assert "overdue" in late.group(1) and "测温逾期" in late.group(2)
    assert "overdue" not in fresh.group(1) and "测温逾期" not in fresh.group(2)
    only_late = coordinator.get("/console/screening/followups?status=overdue").text
    assert "李秀英" in only_late and "王磊" not in only_late
    url = f"/console/screening/followups/{campaign.id}/{person}"
    assert "测温逾期" in coordinator.get(url).text
    # A check now: no longer overdue, for twelve hours.
    token = csrf(coordinator, url)
    r = coordinator.post(
        url + "/action", data={"csrf_token": token, "action": "check", "temperature": "36.5"}
    )
    assert r.status_code == 303
    assert "测温逾期" not in coordinator.get(url).text
    assert "李秀英" not in coordinator.get("/console/screening/followups?status=overdue").text


def test_the_follow_ups_of_every_site_read_at_once_are_the_same(app, db, world, screened):
    """The list over many sites reads everyone followed with two joins, over a few site by
    site: the same follow-ups either way, and only those in scope."""
    from fieldapp.screening import followup

    site, campaign = world["jintan"], world["campaign"]
    other = world["site"]  # another site of the district
    recs = [
        answer(campaign.id, other["id"], other["people"][0], status="medical_observation"),
        followup.wire(
            {"campaign_id": campaign.id, "site_id": site["id"], "person_id": site["people"][1]},
            "王主任",
            "check",
            temperature=36.9,
        ),
    ]
    assert {r.status for r in save(app, db, recs)} == {"applied"}
    now = utcnow()

    def listed(scope=None, **kw):
        with app.test_request_context():
            return [
                (f["person_id"], f["site_id"], f["name"], f["overdue"], len(f["checks"]))
                for f in followup.listing(db, scope, now, **kw)
            ]

    def every_way():
        return listed(status="all"), listed(campaign_id=campaign.id), listed([other["id"]])

    followup.WHOLE_AT, before = 10**9, followup.WHOLE_AT
    try:
        by_site = every_way()
        followup.WHOLE_AT = 0
        at_once = every_way()
    finally:
        followup.WHOLE_AT = before
    assert at_once == by_site
    named = db.execute("SELECT name FROM roster WHERE id = ?", (other["people"][0],)).fetchone()
    assert {(p, n, c) for p, _s, n, _o, c in by_site[0]} == {
        (site["people"][1], "李秀英", 1),
        (other["people"][0], named[0], 0),
    }
    assert [p for p, *_rest in by_site[2]] == [other["people"][0]]  # a scope of one site


def test_a_close_made_on_an_answer_from_a_phone_whose_clock_ran_ahead_closes_it(app, db, world):
    """The phone's clock was 3 minutes ahead (sync accepts 10): its isolation answer is stamped
    later than the coordinator's now. The close, made on that page, still comes after it."""
    from fieldapp.screening import followup

    site, campaign = world["jintan"], world["campaign"]
    person = site["people"][1]
    ahead = iso(utcnow() + timedelta(minutes=3))
    rec = answer(campaign.id, site["id"], person, at=ahead, status="home_isolation")
    assert [r.status for r in save(app, db, [rec])] == ["applied"]
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    url = f"/console/screening/followups/{campaign.id}/{person}"
    token = csrf(coordinator, url)
    data = {"csrf_token": token, "action": "close", "outcome": "completed"}
    assert coordinator.post(url + "/action", data=data).status_code == 303
    closed_at = db.execute("SELECT recorded_at FROM screening_actions").fetchone()[0]
    assert closed_at > ahead
    assert followup.listing(db, None, utcnow() + timedelta(days=1), "open") == []
    assert "李秀英" not in coordinator.get("/console/screening/followups").text
    assert "李秀英" in coordinator.get("/console/screening/followups?status=closed").text


def test_a_past_days_coverage_keeps_a_site_closed_since_and_leaves_out_one_closed_that_day(
    app, db, world, monkeypatch
):
    """人民医院扩建工地 screened all three of its people yesterday and closed this morning;
    阳光花园 was closed from three days ago to yesterday evening (opened again). The coverage
    page and its export of the day before yesterday, as the roll-call of that day, list the
    sites open on it: the building site with its three, not 阳光花园 with its four not screened."""
    jintan, building, cid = world["jintan"], world["site"], world["campaign"].id
    yesterday, before = today() - timedelta(days=1), today() - timedelta(days=2)
    recs = [
        answer(cid, building["id"], p, day=d)
        for d in (yesterday, before)
        for p in building["people"]
    ]
    assert {r.status for r in save(app, db, recs)} == {"applied"}
    with app.app_context():
        for at, site, active in (
            (local(today() - timedelta(days=3), 12), jintan, False),
            (local(yesterday, 20), jintan, True),
            (iso(utcnow() - timedelta(minutes=1)), building, False),
        ):
            stamp = datetime.fromisoformat(at.replace("Z", "+00:00"))
            monkeypatch.setattr(sites, "utcnow", lambda stamp=stamp: stamp)
            assert sites.set_active(db, site["id"], active)
        monkeypatch.undo()
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    for day, said, listed in (
        (yesterday, "应排查 7 人，已排查 3 人，未排查 4 人", {jintan["id"], building["id"]}),
        (before, "应排查 3 人，已排查 3 人，未排查 0 人", {building["id"]}),
    ):
        page = coordinator.get(f"/console/screening/{cid}?day={day.isoformat()}").text
        summary = re.search(r'<p class="screening-summary" data-summary>(.*?)</p>', page, re.S)
        assert said in summary.group(1), day
        assert set(re.findall(r'<tr data-site="([^"]+)"', page)) == listed, day
        exported = coordinator.get(f"/console/screening/{cid}/coverage.csv?day={day.isoformat()}")
        assert said in exported.data.decode("utf-8-sig").splitlines()[0]
        rc = coordinator.get(f"/console/rollcall?day={day.isoformat()}").text
        assert set(re.findall(r'data-site="([^"]+)"', rc)) >= listed


def test_a_follow_up_step_sent_twice_is_recorded_once(app, db, world, screened):
    """A double click on "save the check" (or a retry after a lost answer) sends the page's
    form twice: one check is stored, today's count says one, and the second says so."""
    site, campaign = world["jintan"], world["campaign"]
    person = site["people"][1]
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    url = f"/console/screening/followups/{campaign.id}/{person}"
    page = coordinator.get(url).text
    for action in ("check", "close"):
        form = re.search(
            rf'<form method="post" action="{url}/action"[^>]*>(?:(?!</form>).)*'
            rf'name="action" value="{action}"(?:(?!</form>).)*</form>',
            page,
            re.S,
        ).group(0)
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
        assert "uuid" in fields, form
        typed = {"check": {"temperature": "36.6"}, "close": {"outcome": "completed"}}[action]
        first = coordinator.post(url + "/action", data={**fields, **typed})
        assert first.status_code == 303
        second = coordinator.post(url + "/action", data={**fields, **typed})
        assert second.status_code == 303
        page = coordinator.get(url).text
        assert "已经保存过了" in page
        if action == "check":
            assert "已测 1 次，应测 2 次" in page
    rows = db.execute("SELECT action FROM screening_actions ORDER BY recorded_at").fetchall()
    assert [r[0] for r in rows] == ["check", "close"]
    audit = db.execute("SELECT detail FROM audit_log WHERE action = 'screening_action'").fetchall()
    assert [r[0] for r in audit] == ["check", "close"]


def test_ending_a_campaign_leaves_the_days_it_ran_on_their_roll_call(app, db, world, runner):
    """The campaign screened 阳光花园 yesterday and today and is ended this afternoon: the
    roll-calls of yesterday and today keep its cells (and say so as they did); the gate page
    no longer links to it, and the campaign list says the day it ended."""
    site, campaign = world["jintan"], world["campaign"]
    yesterday = today() - timedelta(days=1)
    recs = [answer(campaign.id, site["id"], p, day=yesterday) for p in site["people"][:2]]
    recs.append(answer(campaign.id, site["id"], site["people"][0]))
    assert {r.status for r in save(app, db, recs)} == {"applied"}
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])

    def cell(day):
        rc = coordinator.get(f"/console/rollcall?day={day.isoformat()}").text
        row = re.search(f'data-site="{site["id"]}">(.*?)</tr>', rc, re.S).group(1)
        return "排查：复工人员排查" in rc, re.findall(r"\b\d+/\d+\b", row)

    before = {day: cell(day) for day in (yesterday, today())}
    assert before == {yesterday: (True, ["2/4"]), today(): (True, ["1/4"])}
    result = runner.invoke(args=["screening", "campaign", "end", campaign.id])
    assert result.exit_code == 0, result.output
    assert {day: cell(day) for day in (yesterday, today())} == before
    listed = runner.invoke(args=["screening", "campaign", "list"]).output
    assert f"{campaign.start_day.isoformat()}–{today().isoformat()}" in listed
    client = app.test_client()
    enrol(client, db, site)
    assert "/screening" not in client.get(f"/s/{site['code']}").text


def test_a_day_that_is_no_date_is_said_as_text_never_read_as_html(app, db, world, screened):
    """?day= is shown back in the error: markup typed there is text, not a link on our page."""
    site, cid = world["jintan"], world["campaign"].id
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    typed = "<a href=//x.cn>点此</a>"
    for path in (
        f"/console/screening/{cid}/sites/{site['id']}",
        f"/console/screening/{cid}/coverage.csv",
        f"/console/screening/{cid}/coverage.xlsx",
    ):
        r = coordinator.get(path, query_string={"day": typed})
        assert r.status_code == 400, path
        assert "2020-02-15" in r.text and "<a href=//x.cn>" in r.text, path
        assert r.mimetype == "text/plain", path


def test_a_past_days_site_page_lists_the_roster_of_that_day(app, db, world, runner, tmp_path):
    """周新人 joins 阳光花园's roster today: yesterday's page of the site's people lists the
    four its coverage counted that day, not a fifth 'not yet' who was not there to screen."""
    site, cid = world["jintan"], world["campaign"].id
    yesterday = today() - timedelta(days=1)
    assert {
        r.status for r in save(app, db, [answer(cid, site["id"], site["people"][0], day=yesterday)])
    } == {"applied"}
    (tmp_path / "new.csv").write_text(
        "name,phone,unit,person_type\n周新人,13900003333,9-9-909,resident\n"
    )
    result = runner.invoke(args=["roster", "import", site["code"], str(tmp_path / "new.csv")])
    assert result.exit_code == 0, result.output
    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    shown = {
        day: coordinator.get(
            f"/console/screening/{cid}/sites/{site['id']}?day={day.isoformat()}"
        ).text
        for day in (yesterday, today())
    }
    assert "周新人" not in shown[yesterday] and "周新人" in shown[today()]
    assert len(re.findall(r'<tr class="state-[^"]+" data-person=', shown[yesterday])) == 4
    cov = coordinator.get(f"/console/screening/{cid}?day={yesterday.isoformat()}").text
    assert "应排查 7 人，已排查 1 人，未排查 6 人" in cov


def test_a_past_days_district_choice_lists_the_districts_of_that_days_sites(
    app, db, world, monkeypatch
):
    """The coverage page's and the roll-call's district drop-down on a day lists the districts
    of the sites open that day: 武进区's one site, closed a minute ago, was open yesterday;
    溧阳市's one site, closed three days ago and open again a minute ago, was not."""
    liyang = world["liyang"]
    campaign = make_campaign(app, db, name="全市排查", districts=[], all_sites=True)
    with app.app_context():
        wujin = dict(sites.add_site(db, "湖塘新村", "residential", district="武进区"))
        added_on(db, today() - timedelta(days=30))
        for at, site, active in (
            (local(today() - timedelta(days=3), 12), liyang, False),
            (iso(utcnow() - timedelta(minutes=2)), liyang, True),
            (iso(utcnow() - timedelta(minutes=1)), wujin, False),
        ):
            stamp = datetime.fromisoformat(at.replace("Z", "+00:00"))
            monkeypatch.setattr(sites, "utcnow", lambda stamp=stamp: stamp)
            assert sites.set_active(db, site["id"], active)
        monkeypatch.undo()
    admin = signed_in(app, "chief", "admin")
    yesterday = today() - timedelta(days=1)
    for day, listed in (
        (yesterday, ["武进区", "金坛区"]),
        (today(), ["武进区", "溧阳市", "金坛区"]),
    ):
        for url in (f"/console/screening/{campaign.id}", "/console/rollcall"):
            page = admin.get(url, query_string={"day": day.isoformat()})
            assert page.status_code == 200, url
            select = re.search(r'<select id="district".*?</select>', page.text, re.S).group(0)
            shown = re.findall(r'<option value="([^"]+)"', select)
            assert sorted(shown) == sorted(listed), (url, day)
    # A day that is no date: the page says so, and offers the districts open today.
    page = admin.get(f"/console/screening/{campaign.id}", query_string={"day": "昨天"})
    assert page.status_code == 400 and '<option value="溧阳市"' in page.text
