"""A volunteer submits a zero report offline; after reconnection the coordinator's roll-call
shows the site as zero-reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from console_support import add_user_cli, sign_in
from phone_support import add_site, names, one_entry_waiting, wait_waiting
from servers import enrol_cookie

CONTROLLED = "() => !!navigator.serviceWorker.controller"
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"
SHOTS = Path("/tmp")


def test_zero_report_offline_then_roll_call(server, browser, context, page):
    code = add_site(server, "零报告小区")
    add_user_cli(server, "jintan", "coordinator", "--districts", "金坛区")
    # The volunteer's phone is enrolled at that gate (a one-time link from the coordinator).
    link = server.cli("device", "enrol", "--site", code, "--name", "东门手机").stdout.strip()
    page.goto(link)
    page.click("form button[type=submit]")
    page.click("#open-gate")
    page.wait_for_selector("#entry-form")

    page.goto(f"{server.url}/s/{code}/report")
    # Once the service worker is active, a page loaded after it is controlled by it.
    page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    if not page.evaluate(CONTROLLED):
        page.reload()
    page.wait_for_function(CONTROLLED, polling=100, timeout=45000)
    page.wait_for_selector("text=本门岗没有任何登记")
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    box = page.locator("button.report-submit").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44
    page.screenshot(path=str(SHOTS / "zero_report_360.png"), full_page=True)
    context.set_offline(True)
    page.click("button.report-submit")  # one tap
    page.wait_for_selector("[data-outbox-flash]:has-text('已保存在本机，1 条待发送')")
    assert server.query("SELECT count(*) FROM daily_reports")[0][0] == 0

    context.set_offline(False)
    wait_waiting(page, 0, 60)
    rows = server.query("SELECT zero, device, site_id FROM daily_reports")
    refused = [tuple(r) for r in server.query("SELECT status, reason, body FROM sync_rejects")]
    assert refused == []
    assert len(rows) == 1 and rows[0]["zero"] == 1 and rows[0]["device"]

    # The server ran its daily purge by itself when it started (the background job).
    assert [r[0] for r in server.query("SELECT trigger FROM purge_log")] == ["background"]

    # The coordinator, on a desktop browser, reads the roll-call.
    office = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    try:
        desk = office.new_page()
        sign_in(desk, server.url, "jintan")
        desk.goto(f"{server.url}/console/rollcall")
        desk.set_viewport_size({"width": 360, "height": 740})
        row = desk.locator("tr", has_text="零报告小区")
        row.wait_for()
        # On time "零报告"; after REPORT_CUTOFF (20:00 in Shanghai) "迟报 （零报告）": a late
        # zero report still says it is one.
        assert "零报告" in row.locator("td", has=desk.locator(".state")).inner_text()
        others = desk.locator("tr.state-missing")
        assert others.count() >= 1  # the demo's sites have not reported: missing
        assert "未报" in others.first.inner_text()
        assert desk.evaluate(NO_SIDEWAYS_SCROLL)  # the wide table scrolls inside its box
        desk.screenshot(path=str(SHOTS / "rollcall_360.png"), full_page=True)
    finally:
        office.close()


def test_no_zero_report_while_this_gates_entries_wait_on_the_phone(server, context, page):
    """Entries kept on the phone are not yet in the instance's counts: the report page says so
    and keeps its zero report from going, which would tell the roll-call nobody came. Once they
    are sent, the page asks for the counts again: no longer zero."""
    code, site_id = one_entry_waiting(server, context, page, "待发小区", "离线待发")
    # The network is back but the phone's sends fail (one bar of signal).
    context.route("**/sync/v1/push", lambda route: route.abort())
    context.set_offline(False)
    # And one of two days ago, which is not in today's report either way (kept then, after a
    # contact with the instance the day before: else its time would be evidence of a wrong
    # clock, and the phone would time it again as of now).
    page.evaluate(
        """async (site) => {
          const at = new Date(Date.now() - 2 * 86400000).toISOString();
          const rec = FieldOutbox.fromFields({site_id: site, name: "前天的",
            direction: "in", person_type: "resident", temperature: "36.5", health_code: "green",
            recorded_at: at}, "entry", ["travel"]);
          rec.contact_at = Date.now() - 3 * 86400000;
          await FieldOutbox.add(rec);
        }""",
        site_id,
    )
    page.goto(f"{server.url}/s/{code}/report")
    note = page.locator("[data-report-waiting]")
    note.wait_for()
    assert "有 1 条" in note.inner_text() and "立即发送" in note.inner_text()
    assert page.locator("button.report-submit").is_disabled()  # it says 提交零报告
    assert server.query("SELECT count(*) FROM daily_reports")[0][0] == 0

    page.fill("#reporter", "王值班")  # typed while the entry waits: kept when the counts come
    context.unroute("**/sync/v1/push")
    page.click("[data-send-now]")
    page.locator("#gate-report .report-counts").wait_for()  # the counts, one person in
    assert page.locator("[data-report-waiting]").is_hidden()
    assert page.locator("button.report-submit").is_enabled()
    assert page.input_value("#reporter") == "王值班"
    assert sorted(names(server)) == ["前天的", "离线待发"]


def far_zone() -> str:
    """A phone's zone whose date is not the gates' (the instance's TIMEZONE, Asia/Shanghai)
    now nor in five minutes (the test's span): twelve hours behind UTC until 19:55 at the
    gates, fourteen ahead from 18:00 to 23:55. In the last five minutes before the gates'
    midnight no zone is on another date all along: the test waits for the next run."""
    gates = ZoneInfo("Asia/Shanghai")
    now = datetime.now(UTC)
    for name in ("Etc/GMT+12", "Pacific/Kiritimati"):
        if all(
            t.astimezone(ZoneInfo(name)).date() != t.astimezone(gates).date()
            for t in (now, now + timedelta(minutes=5))
        ):
            return name
    pytest.skip("the gates' midnight is minutes away: no phone zone keeps another date")


# The phone's own date, by its own zone.
PHONE_DAY = """() => {
  const d = new Date();
  return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-"
    + String(d.getDate()).padStart(2, "0");
}"""

# The one rule of a day at the gates (FieldDays, outbox.js), with a zone that changes its
# clocks (New York, 10 March 2024: 02:00 EST to 03:00 EDT) and one this browser does not know.
DAYS = """(phoneDay) => [
  FieldDays.day("2024-03-10T04:30:00Z", "America/New_York"),
  FieldDays.day("2024-03-10T07:30:00Z", "America/New_York"),
  FieldDays.clock("2024-03-10T07:30:00Z", "America/New_York"),
  FieldDays.day("2024-03-10T07:30:00Z", "No/Such_Zone") === FieldDays.day("2024-03-10T07:30:00Z"),
  FieldDays.today("No/Such_Zone") === phoneDay,
]"""


def test_the_waiting_entries_are_of_the_gates_day_on_a_phone_in_another_zone(server, browser):
    """A phone whose own zone is on another date than the gates: an entry it keeps now is of
    the gates' today, so today's report says it waits (not the phone's date's report)."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", timezone_id=far_zone()
    )
    try:
        page = context.new_page()
        code, _site_id = one_entry_waiting(server, context, page, "远方时区小区", "时区之外")
        context.route("**/sync/v1/push", lambda route: route.abort())
        context.set_offline(False)

        page.goto(f"{server.url}/s/{code}/report")
        note = page.locator("[data-report-waiting]")
        note.wait_for()
        day = page.input_value("#gate-report form [name=day]")
        assert day == datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        phone_day = page.evaluate(PHONE_DAY)
        assert phone_day != day  # the phone's own date is another
        assert "有 1 条" in note.inner_text()
        assert page.locator("button.report-submit").is_disabled()
        assert page.evaluate(DAYS, phone_day) == [
            "2024-03-09",
            "2024-03-10",
            "03-10 03:30",
            True,
            True,
        ]
        assert names(server) == []
    finally:
        context.close()


def test_a_report_from_a_phone_hours_slow_is_timed_by_the_instance(server, browser):
    """A phone whose clock is three hours slow sends the day's zero report online: it is
    stored at the instance's time (after the cutoff it is late, whatever the phone's clock
    said), and the page says when it was submitted by that time."""
    code = add_site(server, "慢钟小区")
    site_id = server.query("SELECT id FROM sites WHERE code = ?", (code,))[0][0]
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    try:
        context.clock.install(time=datetime.now(UTC) - timedelta(hours=3))
        enrol_cookie(server, context, site_id)
        page = context.new_page()
        page.goto(f"{server.url}/s/{code}/report")
        page.wait_for_selector("text=本门岗没有任何登记")
        before = datetime.now(UTC) - timedelta(seconds=1)
        page.click("button.report-submit")
        page.wait_for_selector("text=零报告已提交")
        after = datetime.now(UTC) + timedelta(seconds=1)
        ((at,),) = server.query("SELECT recorded_at FROM daily_reports")
        stored = datetime.fromisoformat(at.replace("Z", "+00:00"))
        assert before <= stored <= after
        shown = stored.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%H:%M")
        assert page.locator(f"text=于 {shown} 提交").count() == 1
    finally:
        context.close()
