"""Importing a phone's exported outbox: the same idempotent path as a push, all or nothing."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from phone_clock_cases import CASES, EPOCH, phone_records, times
from screening_support import TZ, answer, make_campaign, make_sites

from fieldapp import days
from fieldapp.gate import sites
from fieldapp.phones import devices, outbox_import
from sync import peers
from sync.store import iso

NOW = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
MS = timedelta(milliseconds=1)
EN = {"FIELDAPP_LANG": "en"}


@pytest.fixture
def site(db):
    return sites.add_site(db, "幸福小区", "residential")


def record(site, name="张三", **data):
    return {
        "uuid": str(uuid.uuid4()),
        "kind": "entry",
        "recorded_at": NOW,
        "data": {
            "site_id": site["id"],
            "direction": "in",
            "person_type": "resident",
            "name": name,
            "phone": "",
            "temperature": "36.5",
            "health_code": "green",
            "travel": False,
            **data,
        },
    }


def export(records, device=None) -> dict:
    return {"format": "fieldapp-outbox", "version": 1, "device": device, "records": records}


def names(db):
    return [r[0] for r in db.execute("SELECT name FROM entries ORDER BY name")]


def test_cli_import_is_idempotent(runner, db, site, tmp_path):
    path = tmp_path / "outbox.json"
    path.write_text(json.dumps(export([record(site, "甲"), record(site, "乙")])), "utf-8")
    first = runner.invoke(args=["import-outbox", str(path)])
    assert first.exit_code == 0, first.output
    assert "新增 2 条" in first.output
    again = runner.invoke(args=["import-outbox", str(path)])
    assert "新增 0 条，已存在 2 条" in again.output
    assert names(db) == ["乙", "甲"]


def test_import_after_the_phone_pushed_the_same_records_counts_them_once(
    client, db, site, runner, tmp_path
):
    peer, token = peers.create(db, "device", "东门", site["id"])
    client.set_cookie(devices.COOKIE, token)
    rec = record(site, "甲")
    pushed = client.post("/sync/v1/push", json={"source": peer.id, "records": [rec]}).get_json()[
        "results"
    ]
    assert pushed[0]["status"] == "applied"
    path = tmp_path / "outbox.json"
    path.write_text(json.dumps(export([rec], device=peer.id)), "utf-8")
    result = runner.invoke(args=["import-outbox", str(path)])
    assert "已存在 1 条" in result.output  # a duplicate, not a conflict
    assert names(db) == ["甲"]


def test_a_refused_record_is_reported_and_the_rest_imported(runner, db, site, tmp_path):
    path = tmp_path / "outbox.json"
    bad = record(site, "坏", temperature="99")
    path.write_text(json.dumps(export([record(site, "好"), bad])), "utf-8")
    result = runner.invoke(args=["import-outbox", str(path)])
    assert result.exit_code == 0
    assert "被拒收 1 条" in result.output and bad["uuid"] in result.output
    assert names(db) == ["好"]
    assert db.execute("SELECT COUNT(*) FROM sync_rejects").fetchone()[0] == 1


def test_a_file_with_records_not_storable_yet_exits_non_zero_for_scripts(
    runner, db, site, tmp_path
):
    """A record naming a site this instance does not know yet is held: the command says to
    keep the file, and its exit status says so too (`import-outbox f && rm f` keeps it)."""
    path = tmp_path / "outbox.json"
    unknown = record(site, "远", site_id="nowhere")
    path.write_text(json.dumps(export([record(site, "近"), unknown])), "utf-8")
    result = runner.invoke(args=["import-outbox", str(path)])
    assert result.exit_code == 1, result.output
    assert "新增 1 条" in result.output and "1 条暂未保存" in result.output
    assert names(db) == ["近"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json at all", "不是 JSON"),
        (json.dumps({"format": "other"}).encode(), "不是从门岗手机导出"),
        (json.dumps({"format": "fieldapp-outbox", "version": 9, "records": []}).encode(), "版本"),
        (json.dumps({"format": "fieldapp-outbox", "version": 1, "records": {}}).encode(), "列表"),
        (b"\xff\xfe not UTF-8", "不是 JSON"),
        (b'{"format": "fieldapp-outbox", "n": ' + b"9" * 5000 + b"}", "不是 JSON"),
    ],
)
def test_a_bad_file_is_refused_with_a_clear_message(runner, db, tmp_path, content, message):
    path = tmp_path / "outbox.json"
    path.write_bytes(content)
    result = runner.invoke(args=["import-outbox", str(path)])
    assert result.exit_code != 0
    assert message in result.output
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0


def test_a_record_nested_too_deep_is_refused_alone(runner, db, site, tmp_path):
    """json.loads gives up near a thousand levels (a traceback, a 500 on the web): the file is
    read as a push is, and only the record holding it is refused."""
    deep = record(site, "深")
    deep["data"]["note"] = "NESTED"
    text = json.dumps(
        {"format": "fieldapp-outbox", "version": 1, "records": [record(site, "好"), deep]}
    ).replace('"NESTED"', "[" * 2000 + "]" * 2000)
    path = tmp_path / "outbox.json"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(args=["import-outbox", str(path)])
    assert result.exit_code == 0, result.output
    assert "被拒收 1 条" in result.output
    assert names(db) == ["好"]


def test_nothing_is_half_written_when_the_import_fails(app, db, site, monkeypatch):
    from fieldapp import records

    calls = []
    real = records.save

    def failing_save(conn, items, **kw):
        calls.append(len(items))
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(conn, items, **kw)

    monkeypatch.setattr(records, "save", failing_save)
    items = [record(site, f"人{i}") for i in range(outbox_import.BATCH + 1)]
    with app.app_context(), pytest.raises(RuntimeError):
        outbox_import.import_records(db, items, source="test")
    assert calls == [outbox_import.BATCH, 1]
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0


def test_upload_page_needs_an_enrolled_phone_and_imports(client, db, site):
    assert client.get("/outbox/import").status_code == 403
    _peer, token = peers.create(db, "device", "办公室电脑", site["id"])
    client.set_cookie(devices.COOKIE, token)
    page = client.get("/outbox/import")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    data = json.dumps(export([record(site, "上传")])).encode()
    response = client.post(
        "/outbox/import",
        data={"csrf_token": csrf, "file": (io.BytesIO(data), "outbox.json")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "新增 1 条" in response.text
    assert names(db) == ["上传"]
    bad = client.post(
        "/outbox/import",
        data={"csrf_token": csrf, "file": (io.BytesIO(b"{}"), "x.json")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400 and "不是从门岗手机导出" in bad.text


# ---- a phone whose clock was wrong while it recorded ----------------------------------------
# The file carries what the phone knew of its clock (static/js/outbox.js exportData): each
# record's last contact before it was kept (contact_at, the instance's time, and how far the
# clock was off then), the phone's clock as it exported, and its last contact (clock). The
# import times the records as the phone would before sending them.

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def ms(at: datetime) -> int:
    return (at - EPOCH) // timedelta(milliseconds=1)


def phone_file(records, *, exported_at, offset, contact, device=None) -> dict:
    """An export made when the phone's clock read exported_at, its last contact at `contact`
    (the instance's time) when its clock was `offset` behind the instance's."""
    clock = {"offset_ms": offset // MS, "at": ms(contact - offset), "server_at": ms(contact)}
    return {**export(records, device), "exported_at": iso(exported_at), "clock": clock}


def kept_after(rec, contact, offset=timedelta(0)):
    """The record as the phone kept it after that contact (its clock `offset` behind then)."""
    return {**rec, "contact_at": ms(contact), "contact_offset": offset // MS}


def stamped(rec, at: datetime):
    return {**rec, "recorded_at": iso(at)}


def entries(db):
    rows = db.execute("SELECT name, recorded_at, temperature FROM entries ORDER BY recorded_at")
    return [(r[0], datetime.fromisoformat(r[1]), r[2]) for r in rows]


def imported(runner, path, doc):
    path.write_text(json.dumps(doc), "utf-8")
    result = runner.invoke(args=["import-outbox", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(("what", "offset_now", "recs", "expected", "count"), CASES)
def test_the_import_times_records_by_the_phones_rule(what, offset_now, recs, expected, count):
    """The phone's rule (outbox.js retimeWrongClock), case by case, in its Python mirror; the
    browser test runs both on the same records (tests/browser/test_phone_clock.py)."""
    phone = ms(datetime(2026, 11, 23, 8, 30, tzinfo=UTC))
    kept = phone_records(phone, recs)
    timed, n = outbox_import.retime_wrong_clock(kept, offset_now, phone + offset_now)
    got = times(phone, recs, timed)
    if expected is not None:
        assert got == expected, what
    if count is not None:
        assert n == count, what
    assert [r["uuid"] for r in timed] == [r["uuid"] for r in kept]  # none lost, none added


def test_recorded_forty_days_slow_and_exported_with_the_clock_right_is_stored_once(
    runner, db, site, tmp_path
):
    """The phone met the instance (its clock right), recorded offline 40 days slow (past the
    21-day horizon), then its clock was right again when the volunteer exported: as the phone
    would before sending, the records are timed after that contact and no later than the
    export, the gap between them kept; stored once, the fever a case to follow up."""
    now = datetime.now(UTC)
    contact = now - HOUR
    slow = now - 40 * DAY
    normal = stamped(kept_after(record(site, "慢钟一"), contact), slow - 10 * timedelta(minutes=1))
    fever = stamped(
        kept_after(record(site, "慢钟发热", temperature="38.1", fever_action="clinic"), contact),
        slow,
    )
    doc = phone_file([normal, fever], exported_at=now, offset=timedelta(0), contact=contact)
    out = imported(runner, tmp_path / "outbox.json", doc)
    assert "新增 2 条" in out and "超过保存期限 0 条" in out
    (name1, first, _t), (name2, second, temperature) = entries(db)
    assert (name1, name2, temperature) == ("慢钟一", "慢钟发热", 38.1)
    assert contact <= first < second <= datetime.now(UTC)
    assert second - first == timedelta(minutes=10)  # the clock ran at its pace, from a wrong start
    (case,) = db.execute(
        "SELECT c.recorded_at, c.closed FROM fever_cases c JOIN entries e USING (uuid)"
        " WHERE e.name = '慢钟发热'"
    ).fetchall()
    assert (datetime.fromisoformat(case[0]), case[1]) == (second, 0)

    again = imported(runner, tmp_path / "outbox.json", doc)
    assert "新增 0 条，已存在 2 条" in again
    assert len(entries(db)) == 2
    assert db.execute("SELECT COUNT(*) FROM fever_cases").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM sync_rejects").fetchone()[0] == 0


@pytest.mark.parametrize(
    "clock_at_export",
    [pytest.param(2 * DAY, id="still two days slow"), pytest.param(timedelta(0), id="set right")],
)
def test_recorded_two_days_slow_is_filed_under_its_own_day(
    runner, db, site, tmp_path, clock_at_export
):
    """The clock was two days slow at the contact and as it recorded; exported with it still
    slow, or set right since: the entry is stored at the hour it was made, not two days
    before."""
    now = datetime.now(UTC)
    made = now - 3 * HOUR
    contact = now - 5 * HOUR
    rec = stamped(kept_after(record(site, "慢两天"), contact, 2 * DAY), made - 2 * DAY)
    doc = phone_file([rec], exported_at=now - clock_at_export, offset=2 * DAY, contact=contact)
    out = imported(runner, tmp_path / "outbox.json", doc)
    assert "新增 1 条" in out
    assert entries(db) == [("慢两天", datetime.fromisoformat(iso(made)), 36.5)]
    assert "新增 0 条，已存在 1 条" in imported(runner, tmp_path / "outbox.json", doc)


def test_a_file_exported_while_the_clock_was_still_wrong_says_what_it_did_not_import(
    runner, db, site, tmp_path
):
    """Exported while the clock was still 40 days slow, after a contact with it right: the
    file cannot tell how far off it was, so what it stamped cannot be placed. The command says
    so (and what to do), names each record, and stores nothing of them; a record the phone had
    timed already is stored."""
    now = datetime.now(UTC)
    contact = now - HOUR
    fever = stamped(
        kept_after(record(site, "错钟发热", temperature="38.1", fever_action="clinic"), contact),
        now - 40 * DAY,
    )
    timed = {**stamped(kept_after(record(site, "已计时"), contact), now - 30 * 60 * MS)}
    timed["restamped"] = True
    doc = phone_file(
        [fever, timed], exported_at=now - 40 * DAY, offset=timedelta(0), contact=contact
    )
    out = imported(runner, tmp_path / "outbox.json", doc)
    assert "新增 1 条" in out
    assert "1 条未导入：无法从文件判断导出时手机的日期时间是否准确" in out
    assert "这些记录仍在手机上，手机联网连上本站后会自动发送" in out
    assert f"{fever['uuid']}\t未导入：无法从文件判断导出时手机的日期时间是否准确" in out
    assert [name for name, *_ in entries(db)] == ["已计时"]
    assert db.execute("SELECT COUNT(*) FROM fever_cases").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM sync_rejects").fetchone()[0] == 0
    english = runner.invoke(args=["import-outbox", str(tmp_path / "outbox.json")], env=EN)
    assert "1 not imported: the file cannot tell whether the phone's clock was right" in (
        english.output
    )
    assert [name for name, *_ in entries(db)] == ["已计时"]


def test_a_slow_clocks_file_imported_days_later_is_not_filed_days_off(runner, db, site, tmp_path):
    """The phone was two days slow at its last contact, five days ago; the volunteer set its
    clock right (as the status line asks) and recorded, then exported two days later. Slow or
    set right at the export, both fit between the contact and the import: the file cannot
    tell which, and a guess would file the entry two days off. It is not imported (it stays on
    the phone, which sends it itself) and the command says why."""
    now = datetime.now(UTC)
    contact = now - 5 * DAY
    rec = stamped(kept_after(record(site, "两可"), contact, 2 * DAY), contact + 2 * DAY)
    doc = phone_file([rec], exported_at=contact + 3 * DAY, offset=2 * DAY, contact=contact)
    out = imported(runner, tmp_path / "outbox.json", doc)
    assert "新增 0 条" in out and "1 条未导入" in out
    assert entries(db) == []


@pytest.mark.parametrize(
    ("crafted", "stored"),
    [
        # No evidence left of a wrong clock: stored as stamped.
        pytest.param({"contact_at": 10**400}, True, id="contact_at"),
        # A clock whose offset is no number: the file cannot tell, not imported.
        pytest.param({"clock": {"offset_ms": 10**400}}, False, id="clock offset"),
        # No contact known: the export's own time is taken as right.
        pytest.param({"clock": {"offset_ms": 0, "server_at": -(10**400)}}, True, id="contact"),
    ],
)
def test_a_number_no_phone_would_write_is_no_number_not_a_crash(
    runner, db, site, tmp_path, crafted, stored
):
    """A file holding an integer of 400 digits where a time is (json reads it; no float holds
    it): the import answers as for a file without that evidence, and nothing crashes."""
    now = datetime.now(UTC)
    rec = record(site, "大数")
    if "contact_at" in crafted:
        rec = {**rec, **crafted}
        doc = {**export([rec]), "exported_at": iso(now)}
    else:
        doc = {**export([rec]), "exported_at": iso(now), **crafted}
    path = tmp_path / "outbox.json"
    path.write_text(json.dumps(doc), "utf-8")
    result = runner.invoke(args=["import-outbox", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output
    assert [name for name, *_ in entries(db)] == (["大数"] if stored else [])
    assert ("1 条未导入" in result.output) is not stored


def test_pushed_by_the_phone_and_imported_from_its_file_is_stored_once(
    client, runner, db, site, tmp_path
):
    """The phone timed its slow records itself and sent them; the file it exported before is
    imported too, its records timed at the export: the same records, not conflicts."""
    peer, token = peers.create(db, "device", "东门", site["id"])
    client.set_cookie(devices.COOKIE, token)
    now = datetime.now(UTC)
    contact = now - HOUR
    rec = stamped(kept_after(record(site, "两路"), contact), now - 40 * DAY)
    sent = {**rec, "recorded_at": iso(now - 20 * 60 * MS), "restamped": True}
    body = {"source": peer.id, "sent_at": iso(now), "records": [sent]}
    assert client.post("/sync/v1/push", json=body).get_json()["results"][0]["status"] == "applied"
    doc = phone_file(
        [rec], exported_at=now - 10 * 60 * MS, offset=timedelta(0), contact=contact, device=peer.id
    )
    out = imported(runner, tmp_path / "outbox.json", doc)
    assert "新增 0 条，已存在 1 条" in out and "被拒收 0 条" in out
    assert [(n, at) for n, at, _t in entries(db)] == [
        ("两路", datetime.fromisoformat(iso(now - 20 * 60 * MS)))
    ]
    assert db.execute("SELECT COUNT(*) FROM sync_rejects").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("what", "clock", "was"),
    [("40 days slow", -40 * DAY, "stored 40 days back"), ("a day fast", DAY, "refused")],
)
def test_a_screening_answer_from_a_wrong_clock_is_of_the_day_it_was_given(
    app, runner, db, tmp_path, what, clock, was
):
    """A screening answer's day is "today" by the phone's clock. Kept by a clock 40 days slow
    (or a day fast) and exported with it still wrong, the import times it by the instance's
    clock, and its day moves with it: today's answer, counted in today's coverage (it was filed
    40 days back, the person "not yet" screened today; a day fast, refused as for a day that
    has not come yet)."""
    site = make_sites(db)[0]
    campaign = make_campaign(app, db)
    now = datetime.now(UTC)
    contact = now - HOUR
    phone = now + clock  # the phone's clock
    given = phone - 10 * timedelta(minutes=1)
    rec = answer(campaign.id, site["id"], site["people"][0], day=days.today(TZ, given))
    rec = {**stamped(kept_after(rec, contact, -clock), given), "day_tz": TZ}
    doc = phone_file([rec], exported_at=phone, offset=-clock, contact=contact)
    out = imported(runner, tmp_path / "outbox.json", doc)
    assert "新增 1 条" in out and "被拒收 0 条" in out, (what, was)
    ((day, at),) = db.execute("SELECT day, recorded_at FROM screenings").fetchall()
    assert abs(datetime.fromisoformat(at) - (now - 10 * timedelta(minutes=1))) < timedelta(
        seconds=2
    )
    assert day == days.today(TZ, datetime.fromisoformat(at)).isoformat()
    assert db.execute("SELECT COUNT(*) FROM sync_rejects").fetchone()[0] == 0
    shown = runner.invoke(args=["screening", "coverage", campaign.name, "--date", day]).output
    assert "已排查 1 人" in shown, shown


@pytest.mark.parametrize("days_ago", [0, 1])
def test_a_test_date_a_chip_set_by_a_clock_a_day_fast_moves_with_the_day(
    app, runner, db, tmp_path, days_ago
):
    """On a phone a day fast, the screening page's "Today" (or "Yesterday") chip gave the test
    date by that clock, as it gave the day. Exported with the clock still wrong, the import
    times the answer by the instance's clock, and the test date moves with the day: stored,
    the test today (yesterday); "Today" was refused, the test after the day of screening, and
    lost. A date typed in another answer stays as typed."""
    site = make_sites(db)[0]
    campaign = make_campaign(app, db)
    now = datetime.now(UTC)
    contact = now - HOUR
    phone = now + DAY  # the phone's clock
    given = phone - 10 * timedelta(minutes=1)
    by_phone = days.today(TZ, given)
    today = days.today(TZ, now - 10 * timedelta(minutes=1))
    typed = (today - timedelta(days=1)).isoformat()
    chosen = (by_phone - timedelta(days=days_ago)).isoformat()
    recs = []
    for person, nat_date, by_chip in ((0, chosen, True), (1, typed, False)):
        rec = answer(
            campaign.id, site["id"], site["people"][person], day=by_phone,
            nat_result="negative", nat_date=nat_date,
        )  # fmt: skip
        rec = {**stamped(kept_after(rec, contact, -DAY), given), "day_tz": TZ}
        recs.append({**rec, "nat_date_by_clock": True} if by_chip else rec)
    doc = phone_file(recs, exported_at=phone, offset=-DAY, contact=contact)
    out = imported(runner, tmp_path / "outbox.json", doc)
    assert "新增 2 条" in out and "被拒收 0 条" in out, out
    assert db.execute("SELECT COUNT(*) FROM sync_rejects").fetchone()[0] == 0
    stored = db.execute("SELECT person_id, day, nat_date FROM screenings").fetchall()
    assert sorted(tuple(r) for r in stored) == sorted(
        [
            (site["people"][0], today.isoformat(), (today - days_ago * DAY).isoformat()),
            (site["people"][1], today.isoformat(), typed),
        ]
    )
