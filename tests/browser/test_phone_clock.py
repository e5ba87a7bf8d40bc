"""A phone whose clock was wrong while it recorded and is right again when it sends (its date
reset by a flat battery, offline; network time back with the signal): nothing it kept is lost
without a word, and what the evidence shows was stamped wrongly is stored once, in its bounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from operator import itemgetter

import pytest
from console_support import add_user_cli, sign_in
from phone_clock_cases import CASES, phone_records, times
from phone_support import (
    attention,
    exported_outbox,
    names,
    no_duplicates,
    outbox_loaded,
    ready,
    save,
    until,
    wait_waiting,
)
from servers import enrol_browser, enrol_cookie

from fieldapp import days
from fieldapp.phones import outbox_import

TZ = "Asia/Shanghai"  # the instances' TIMEZONE (fieldapp/settings.py)

DAY = timedelta(days=1)


def stored(server, name: str) -> tuple:
    (row,) = server.query(
        "SELECT recorded_at, temperature, fever_action FROM entries WHERE name = ?", (name,)
    )
    return (datetime.fromisoformat(row[0]), row[1], row[2])


HOUR_AGO = """async () => {
  const c = await FieldOutbox.getMeta("clock");
  const at = c.at + c.offset_ms - 3600000;
  await FieldOutbox.setMeta("clock", {offset_ms: c.offset_ms, at: at - c.offset_ms, server_at: at});
  return at;
}"""


def met_then_forty_days_slow(server, context):
    """An enrolled phone that met the instance (its clock right), then went offline and its
    date 40 days back (the battery ran flat): its page, and the last contact, the instance's
    time as this phone heard it, an hour ago (the test cannot wait an hour: the records after
    it have room to keep the gap between them)."""
    context.clock.install(time=datetime.now(UTC))
    page = context.new_page()
    enrol_browser(server, page)
    ready(page)
    outbox_loaded(page)
    until(page, "async () => !!(await FieldOutbox.getMeta('clock'))")
    context.set_offline(True)
    contact = datetime.fromtimestamp(page.evaluate(HOUR_AGO) / 1000, UTC)
    context.clock.set_system_time(datetime.now(UTC) - 40 * DAY)
    return page, contact


def test_recorded_forty_days_slow_and_sent_with_the_clock_right_the_fever_is_stored_once(
    server, context
):
    """The phone met the instance (its clock right), then recorded offline 40 days slow, past
    the 21-day horizon, then sent with its clock right again: the instance, judging by the
    records' times, would answer `expired`. The phone knows better: they were kept after that
    contact, so it times them again between the contact and the moment of sending (the latest,
    keeping the gap between them) and they are stored once, the fever a case to follow up."""
    page, contact = met_then_forty_days_slow(server, context)
    save(page, "慢钟一")
    page.wait_for_selector("[data-outbox-flash]:has-text('已保存在本机，1 条待发送')")
    save(page, "慢钟发热", "38.1")
    page.wait_for_selector("[data-outbox-flash]:has-text('2 条待发送')")
    kept = dict(
        page.evaluate(
            "async () => (await FieldOutbox.all('outbox')).map(r => [r.data.name, r.recorded_at])"
        )
    )
    kept = {name: datetime.fromisoformat(at) for name, at in kept.items()}
    assert all(at < contact - 21 * DAY for at in kept.values())

    context.clock.set_system_time(datetime.now(UTC))  # network time came back with the signal
    context.set_offline(False)
    wait_waiting(page, 0)
    sent = datetime.now(UTC)
    assert attention(page) == []
    assert names(server) == ["慢钟一", "慢钟发热"]
    no_duplicates(server)
    assert server.query("SELECT COUNT(*) FROM sync_rejects")[0][0] == 0
    first, fever = stored(server, "慢钟一"), stored(server, "慢钟发热")
    for at, *_ in (first, fever):  # after the contact, no later than the sending
        assert contact <= at <= sent, (contact, at, sent)
    # The phone's clock ran at its pace from a wrong start: the gap between them is kept.
    assert fever[0] - first[0] == kept["慢钟发热"] - kept["慢钟一"]
    assert fever[1:] == (38.1, "clinic")
    # A case for the coordinators, opened at the time it is stored at.
    (case,) = server.query(
        "SELECT c.recorded_at, c.closed FROM fever_cases c JOIN entries e USING (uuid)"
        " WHERE e.name = '慢钟发热'"
    )
    assert (datetime.fromisoformat(case[0]), case[1]) == (fever[0], 0)


# An entry kept by the version of the app before this one: it remembers no contact, so nothing
# on the phone shows that its date is wrong.
KEEP_OLD = """async () => {
  const data = new FormData(document.getElementById("entry-form"));
  data.delete("uuid");
  for (const [k, v] of Object.entries({name: "旧发热", direction: "in", person_type: "resident",
       phone: "13812345678", temperature: "38.1", fever_action: "clinic"})) data.set(k, v);
  const rec = FieldOutbox.fromForm(data, "entry", []);
  rec.recorded_at = new Date(Date.now() - 30 * 86400000).toISOString();
  const db = await FieldOutbox.open();
  await new Promise((done, fail) => {
    const tx = db.transaction("outbox", "readwrite");
    tx.objectStore("outbox").put(rec);
    tx.oncomplete = done;
    tx.onerror = () => fail(tx.error);
  });
}"""


def test_an_entry_answered_expired_waits_on_the_phone_to_be_exported_or_removed(
    server, context, enrolled_page
):
    """The instance answers `expired` for an entry dated before its horizon and does not store
    it. The phone used to take that as delivered and delete it (a fever gone without a word);
    now it needs attention: it says why, goes into the export, and is removed only when the
    volunteer says so."""
    page = enrolled_page
    ready(page)
    outbox_loaded(page)
    context.set_offline(True)
    page.evaluate(KEEP_OLD)
    wait_waiting(page, 1)
    context.set_offline(False)
    wait_waiting(page, 0)
    assert names(server) == []  # past the horizon: not stored, as retention promises
    assert server.query("SELECT COUNT(*) FROM sync_rejects")[0][0] == 0
    statuses = page.evaluate(
        "async () => (await FieldOutbox.all('attention')).map(r => [r.data.name, r.status])"
    )
    assert statuses == [["旧发热", "expired"]]
    page.wait_for_selector("[data-status-attention]:has-text('1 条记录需要处理')")

    page.goto(server.url + "/outbox")
    item = page.locator("[data-outbox-attention] li[data-expired]:has-text('旧发热')")
    item.wait_for()
    assert "办公室没有保存这条记录" in item.inner_text()
    assert "38.1 °C" in item.inner_text()
    exported = page.evaluate(
        "async () => (await FieldOutbox.exportData()).records.map(r => [r.data.name, r.data.temperature])"
    )
    assert exported == [["旧发热", "38.1"]]

    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    item.locator("button").click()
    assert asked and "永久" in asked[0]
    assert attention(page) != []  # not confirmed: kept
    page.once("dialog", lambda d: d.accept())
    item.locator("button").click()
    item.wait_for(state="detached")
    assert attention(page) == []


# The outbox made of records as the phone keeps them, timed again as a round does with the
# clock's offset measured now, the phone's clock held at `phone` meanwhile: what they became.
RETIME_AT = """async ([phone, offsetNow, recs]) => {
  const db = await FieldOutbox.open();
  await new Promise((done, fail) => {
    const tx = db.transaction("outbox", "readwrite");
    const store = tx.objectStore("outbox");
    store.clear();
    for (const r of recs) store.put(r);
    tx.oncomplete = done;
    tx.onerror = () => fail(tx.error);
  });
  const real = Date.now;
  Date.now = () => phone;
  try {
    const count = await FieldOutbox.retimeWrongClock(offsetNow);
    return [count, await FieldOutbox.all("outbox")];
  } finally {
    Date.now = real;
  }
}"""


def test_the_import_times_a_file_as_the_phones_own_code_does(context, enrolled_page):
    """fieldapp/phones/outbox_import.py mirrors outbox.js retimeWrongClock: the same records
    (tests/phone_clock_cases.py), by the phone's code and by the import's, become the same."""
    page = enrolled_page
    ready(page)
    outbox_loaded(page)
    context.set_offline(True)  # no round of its own meanwhile
    phone = int(datetime(2026, 11, 23, 8, 30, tzinfo=UTC).timestamp() * 1000)
    for what, offset_now, recs, expected, count in CASES:
        kept = phone_records(phone, recs)
        js_count, by_phone = page.evaluate(RETIME_AT, [phone, offset_now, kept])
        by_import, py_count = outbox_import.retime_wrong_clock(kept, offset_now, phone + offset_now)
        key = itemgetter("uuid")
        assert sorted(by_import, key=key) == sorted(by_phone, key=key), what
        assert py_count == js_count, what
        if expected is not None:
            assert times(phone, recs, by_phone) == expected, what
        if count is not None:
            assert js_count == count, what


def test_exported_after_recording_forty_days_slow_the_office_imports_it_at_the_right_time(
    server, context, tmp_path
):
    """The phone met the instance, recorded offline 40 days slow, its clock came right again
    (network time) with still no way to the instance, and the volunteer exported the outbox for
    the office. The import times the records as the phone would have: stored once, after the
    contact and no later than the export, the fever a case; the phone's own sending later is
    the same records."""
    page, contact = met_then_forty_days_slow(server, context)
    save(page, "导出慢钟")
    page.wait_for_selector("[data-outbox-flash]:has-text('1 条待发送')")
    save(page, "导出发热", "38.1")
    page.wait_for_selector("[data-outbox-flash]:has-text('2 条待发送')")
    context.clock.set_system_time(datetime.now(UTC))  # network time came back; no instance
    path = exported_outbox(server, page, tmp_path / "outbox.json", "导出发热")  # offline
    exported = datetime.now(UTC)
    # The export's moment by the instance's clock as the phone knew it: its own time then, plus
    # the offset it measured at its last contact (from an answer's Date header, whole seconds):
    # within a second of the real moment, on either side.
    doc = json.loads(path.read_text("utf-8"))
    known = datetime.fromisoformat(doc["exported_at"]) + timedelta(
        milliseconds=doc["clock"]["offset_ms"]
    )
    assert abs(known - exported) < timedelta(seconds=2), (known, exported)

    result = server.cli("import-outbox", str(path))
    assert "新增 2 条" in result.stdout and "超过保存期限 0 条" in result.stdout
    assert names(server) == ["导出发热", "导出慢钟"]
    first, fever = stored(server, "导出慢钟"), stored(server, "导出发热")
    for at, *_ in (first, fever):
        assert contact <= at <= known, (contact, at, known)
    assert fever[1:] == (38.1, "clinic")
    (case,) = server.query(
        "SELECT c.recorded_at FROM fever_cases c JOIN entries e USING (uuid)"
        " WHERE e.name = '导出发热'"
    )
    assert datetime.fromisoformat(case[0]) == fever[0]
    assert "新增 0 条，已存在 2 条" in server.cli("import-outbox", str(path)).stdout

    context.set_offline(False)  # the phone reaches the instance at last and sends them too
    page.click("[data-send-now]")
    wait_waiting(page, 0)
    assert attention(page) == []
    assert names(server) == ["导出发热", "导出慢钟"]
    no_duplicates(server)
    assert server.query("SELECT COUNT(*) FROM sync_rejects")[0][0] == 0
    assert server.query("SELECT COUNT(*) FROM fever_cases")[0][0] == 1


ANSWER = ("whereabouts", "district"), ("contact", "no"), ("status", "here"), ("nat_result", "none")


@pytest.mark.parametrize(("what", "clock"), [("40 days slow", -40 * DAY), ("a day fast", DAY)])
def test_a_screening_answer_by_a_wrong_clock_is_of_the_day_it_was_given(
    server, context, browser, what, clock
):
    """The screening page answers for "today" by the phone's clock. A phone 40 days slow (or a
    day fast) saves an answer; its push is held for the clock and timed again by the instance's,
    and the answer's day moves with its time: stored for today, and the console's page of the
    site shows the person screened today (it was filed 40 days back, the person "not yet"
    today; a day fast, refused as for a day that has not come yet, and lost)."""
    server.cli("screening", "campaign", "add", "--name", "复工人员排查", "--all-sites")
    cid = server.query("SELECT id FROM screening_campaigns")[0][0]
    site = server.query("SELECT id, code FROM sites ORDER BY name LIMIT 1")[0]
    person = server.query(
        "SELECT id, name FROM roster WHERE site_id = ? ORDER BY name LIMIT 1", (site["id"],)
    )[0]
    context.clock.install(time=datetime.now(UTC))
    enrol_cookie(server, context, site["id"])
    context.clock.set_system_time(datetime.now(UTC) + clock)
    page = context.new_page()
    page.goto(f"{server.url}/s/{site['code']}/screening/{cid}")
    page.locator(f"#people li[data-person='{person['id']}'] a").click()
    page.wait_for_selector("#screen-form:not([hidden])")
    for name, value in (*ANSWER, ("vaccine_doses", "3")):
        page.locator(f'#screen-form label:has(input[name={name}][value="{value}"])').click()
    page.click("#screen-form > button.save")
    page.wait_for_selector(f"[data-screening-flash]:has-text('已保存：{person['name']}')")
    wait_waiting(page, 0)
    assert attention(page) == [], what
    assert server.query("SELECT status, reason FROM sync_rejects") == [], what
    ((day, at),) = server.query("SELECT day, recorded_at FROM screenings")
    at = datetime.fromisoformat(at)
    assert abs(at - datetime.now(UTC)) < timedelta(minutes=2), (what, at)
    assert day == days.today(TZ, at).isoformat(), what

    office = browser.new_context(locale="zh-CN")
    try:
        add_user_cli(server, "admin", "admin")
        desk = office.new_page()
        sign_in(desk, server.url, "admin")
        desk.goto(f"{server.url}/console/screening/{cid}/sites/{site['id']}?day={day}")
        row = desk.locator(f"tr[data-person='{person['id']}']").inner_text()
        assert "已排查" in row and "未排查" not in row, (what, row)
    finally:
        office.close()


def screening_page(server, context, clock):
    """A site phone's screening page for a new campaign, its clock `clock` off (it met the
    instance meanwhile: it knows by how much): (page, campaign id, site, its people)."""
    server.cli("screening", "campaign", "add", "--name", "复工人员排查", "--all-sites")
    cid = server.query("SELECT id FROM screening_campaigns")[0][0]
    site = server.query("SELECT id, code FROM sites ORDER BY name LIMIT 1")[0]
    people = server.query(
        "SELECT id, name FROM roster WHERE site_id = ? ORDER BY name", (site["id"],)
    )
    context.clock.install(time=datetime.now(UTC))
    enrol_cookie(server, context, site["id"])
    context.clock.set_system_time(datetime.now(UTC) + clock)
    page = context.new_page()
    page.goto(f"{server.url}/s/{site['code']}/screening/{cid}")
    page.wait_for_selector("#people li[data-person]")
    return page, cid, site, people


def answer_tested(page, person, chip=None, typed=None):
    """Screen the person, tested negative on the day a chip gives, or one typed; the test date
    the form showed."""
    page.locator(f"#people li[data-person='{person['id']}'] a").click()
    page.wait_for_selector("#screen-form:not([hidden])")
    for name, value in (*ANSWER[:3], ("nat_result", "negative"), ("vaccine_doses", "3")):
        page.locator(f'#screen-form label:has(input[name={name}][value="{value}"])').click()
    if chip is not None:
        page.click(f"#screen-form [data-days-ago='{chip}']")
    else:
        page.fill("#screen-form input[name=nat_date]", typed)
    shown = page.input_value("#screen-form input[name=nat_date]")
    page.click("#screen-form > button.save")
    page.wait_for_selector(f"[data-screening-flash]:has-text('已保存：{person['name']}')")
    return shown


KNOWS_OFFSET = """async (least) => {
  const c = await FieldOutbox.getMeta("clock");
  return !!c && Math.abs(c.offset_ms) > least;
}"""


def test_a_test_date_given_as_today_by_a_clock_a_day_fast_is_stored_as_today(server, context):
    """On a phone a day fast, "Today" and "Yesterday" gave the test date by that clock, and the
    answer's day moved back a day when the instance timed it again while the test date did
    not: "Today" was refused (the test after the day of screening) and lost. Now the dates the
    chips gave move with the day; the form showed them by the instance's time (the page knows
    how far the clock is off) and they are stored as shown. A typed date is stored as typed."""
    page, _cid, _site, people = screening_page(server, context, DAY)
    until(page, KNOWS_OFFSET, 12 * 3600 * 1000)
    now = datetime.now(UTC)
    today = days.today(TZ, now)
    yesterday = (today - DAY).isoformat()
    shown = {
        people[0]["id"]: answer_tested(page, people[0], chip=0),
        people[1]["id"]: answer_tested(page, people[1], chip=1),
        people[2]["id"]: answer_tested(page, people[2], typed=yesterday),
    }
    expected = {
        people[0]["id"]: today.isoformat(),
        people[1]["id"]: yesterday,
        people[2]["id"]: yesterday,
    }
    wait_waiting(page, 0)
    assert attention(page) == []
    assert server.query("SELECT status, reason FROM sync_rejects") == []
    stored = server.query("SELECT person_id, day, nat_date FROM screenings")
    assert sorted(tuple(r) for r in stored) == sorted(
        (pid, today.isoformat(), nat_date) for pid, nat_date in expected.items()
    )
    assert shown == expected  # the form showed the dates by the instance's time


def test_the_screening_list_of_a_phone_a_day_fast_is_of_today_at_the_gates(server, context):
    """A phone a day fast that knows it (the instance told it how far its clock is off): its
    screening page counts the answers of today by the instance's time, not of tomorrow by its
    own clock (it listed everyone "not yet", those screened today too, until the page was
    reloaded after sending; reloaded, as here, as well)."""
    page, _cid, _site, people = screening_page(server, context, timedelta(0))
    answer_tested(page, people[0], chip=0)
    wait_waiting(page, 0)
    assert server.query("SELECT COUNT(*) FROM screenings")[0][0] == 1

    context.clock.set_system_time(datetime.now(UTC) + DAY)
    page.reload()
    until(page, KNOWS_OFFSET, 12 * 3600 * 1000)
    count = page.locator("[data-count]")
    all_ = len(people)
    expected = f"共 {all_} 人，已排查 1 人，未排查 {all_ - 1} 人"
    page.wait_for_selector(f"[data-count]:has-text('{expected}')", timeout=5000)
    assert expected in count.inner_text()
    assert page.locator(f"#people li[data-person='{people[0]['id']}']").count() == 0  # not yet
    assert page.locator(f"#people li[data-person='{people[1]['id']}']").count() == 1
