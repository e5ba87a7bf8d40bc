"""The phone offline: entries kept in the outbox and delivered exactly once, whatever happens."""

from __future__ import annotations

import time

from phone_support import (
    SAVE_MANY,
    WORKER_STATE,
    attention,
    exported_outbox,
    names,
    no_duplicates,
    outbox_loaded,
    queue,
    queue_refused,
    ready,
    save,
    until,
    wait_waiting,
    waiting,
    worker_versions,
)
from servers import enrol_browser, enrol_cookie
from wait import wait_until


def test_online_entry_is_saved_by_the_instance(server, enrolled_page):
    page = enrolled_page
    ready(page)
    save(page, "在线一")
    page.wait_for_selector("#gate .flash:has-text('在线一')")
    assert names(server) == ["在线一"]
    row = server.query("SELECT device, self_registered FROM entries")[0]
    device = server.query("SELECT id FROM peers WHERE kind = 'device'")[0][0]
    assert tuple(row) == (device, 0)
    assert waiting(page) == 0


def test_offline_entry_survives_reload_and_is_delivered_once(server, context, enrolled_page):
    page = enrolled_page
    ready(page)
    context.set_offline(True)
    save(page, "离线一", "38.2")
    page.wait_for_selector("[data-outbox-flash]:has-text('已保存在本机，1 条待发送')")
    assert page.input_value("#entry-form [name=name]") == ""  # a fresh form
    save(page, "离线二")
    page.wait_for_selector("[data-outbox-flash]:has-text('2 条待发送')")
    page.reload()  # offline: the kept gate page
    page.wait_for_selector("#entry-form")
    page.wait_for_selector("[data-status-waiting]:has-text('2 条待发送')")
    assert "离线" in page.inner_text("[data-status-net]")
    assert names(server) == []
    context.set_offline(False)
    wait_waiting(page, 0)
    assert attention(page) == []
    assert names(server) == ["离线一", "离线二"]
    no_duplicates(server)
    fever = server.query("SELECT temperature, fever_action FROM entries WHERE name = '离线一'")[0]
    assert tuple(fever) == (38.2, "clinic")


def save_many_offline(context, page, count: int, prefix: str) -> None:
    """With the service worker ready, the phone goes offline and the volunteer saves `count`
    entries (prefix0000, prefix0001, ...) with the form: they wait in the outbox."""
    ready(page)
    context.set_offline(True)
    page.evaluate(SAVE_MANY, [count, prefix])


def gate_url(server) -> str:
    code = server.query("SELECT code FROM sites WHERE active = 1 ORDER BY name LIMIT 1")[0][0]
    return f"{server.url}/s/{code}"


def test_fifty_offline_then_page_closed_then_new_page_sends_all_once(
    server, context, enrolled_page
):
    page = enrolled_page
    save_many_offline(context, page, 50, "五十")
    assert waiting(page) == 50
    page.close()
    context.set_offline(False)
    later = context.new_page()
    later.goto(gate_url(server))
    wait_waiting(later, 0)
    got = names(server)
    assert len(got) == 50 and got == sorted(f"五十{i:04d}" for i in range(50))
    no_duplicates(server)
    later.wait_for_selector("[data-status-waiting]:has-text('没有待发送的记录')")


def test_instance_failing_with_500_then_recovering_gets_everything_once(
    server, context, enrolled_page
):
    page = enrolled_page
    save_many_offline(context, page, 3, "五百")
    failures = []

    def fail_twice(route):
        if len(failures) < 2:
            failures.append(route.request.url)
            route.fulfill(status=500, body="boom")
        else:
            route.continue_()

    context.route("**/sync/v1/push", fail_twice)
    context.set_offline(False)
    wait_waiting(page, 0)  # backs off, retries by itself (timer), then succeeds
    assert len(failures) == 2
    assert names(server) == ["五百0000", "五百0001", "五百0002"]
    no_duplicates(server)


def test_answer_lost_after_commit_is_resent_and_counted_once(server, context, enrolled_page):
    page = enrolled_page
    save_many_offline(context, page, 4, "丢失")
    dropped = []

    def commit_then_drop(route):
        if not dropped:
            answer = route.fetch()  # the instance applies the batch...
            dropped.append(answer.status)
            route.abort("connectionreset")  # ...but the phone never hears back
        else:
            route.continue_()

    context.route("**/sync/v1/push", commit_then_drop)
    context.set_offline(False)
    wait_waiting(page, 0)
    assert dropped == [200]
    assert len(names(server)) == 4
    no_duplicates(server)
    peer = server.query("SELECT records_in FROM peers WHERE kind = 'device'")[0][0]
    assert peer == 4


def test_invalid_record_needs_attention_and_the_others_are_delivered(
    server, context, enrolled_page
):
    page = enrolled_page
    ready(page)
    context.set_offline(True)
    save(page, "好一")
    save(page, "好二")
    # A record the phone now refuses to keep (45 °C), queued by an older version of the app
    # that did not check the rules: the instance refuses it and the others still go.
    queue_refused(page)
    wait_waiting(page, 3)
    context.set_offline(False)
    wait_waiting(page, 0)
    assert names(server) == ["好一", "好二"], attention(page)
    [(name, reason)] = attention(page)
    assert name == "坏体温" and "体温" in reason
    assert server.query("SELECT COUNT(*) FROM sync_rejects")[0][0] == 1
    page.wait_for_selector("[data-status-attention]:has-text('1 条记录需要处理')")
    page.click("[data-status-attention] a")
    page.wait_for_selector("[data-outbox-attention] li:has-text('坏体温')")
    assert reason in page.inner_text("[data-outbox-attention]")


def test_an_entry_stamped_days_ahead_of_the_phone_clock_is_stored_no_later_than_it_was_sent(
    server, context, enrolled_page
):
    """An entry stamped two days ahead of the phone's clock as it sends (the clock was ahead
    while it recorded, and has been set right since) was made no later than it is sent: the
    phone times it so, marked restamped, and the instance stores it once, where it used to be
    held as "future" for two days."""
    from datetime import UTC, datetime, timedelta

    page = enrolled_page
    ready(page)
    context.set_offline(True)
    save(page, "好一")
    page.evaluate(
        """async () => {
          const data = new FormData(document.getElementById("entry-form"));
          data.delete("uuid");
          for (const [k, v] of Object.entries({name: "快钟", direction: "in",
               person_type: "resident", phone: "13812345678", temperature: "36.6"})) data.set(k, v);
          const rec = FieldOutbox.fromForm(data, "entry", []);
          rec.recorded_at = new Date(Date.now() + 2 * 86400000).toISOString();
          await FieldOutbox.add(rec);
        }"""
    )
    wait_waiting(page, 2)
    context.set_offline(False)
    wait_waiting(page, 0)
    assert names(server) == ["好一", "快钟"]
    no_duplicates(server)
    assert server.query("SELECT COUNT(*) FROM sync_rejects")[0][0] == 0
    assert attention(page) == []
    (at,) = server.query("SELECT recorded_at FROM entries WHERE name = '快钟'")[0]
    assert datetime.fromisoformat(at) <= datetime.now(UTC)
    assert datetime.fromisoformat(at) > datetime.now(UTC) - timedelta(minutes=10)


# The phone's clock in its service worker too (Playwright's clock moves the pages' only): on a
# phone both read the same clock, and either may send the outbox.
WORKER_CLOCK = """(offset) => {
  const Real = Date;
  class PhoneDate extends Real {
    constructor(...args) { if (args.length) super(...args); else super(Real.now() + offset); }
    static now() { return Real.now() + offset; }
  }
  self.Date = PhoneDate;
  return new Date().toISOString();
}"""


def test_a_phone_forty_days_slow_stores_its_offline_fever_at_the_right_time(server, context):
    """A cheap phone whose date was reset (flat battery, no network time): 40 days slow. The
    entries it keeps offline carry its wrong date, past the 21-day retention horizon: the
    instance holds them with the offset, the phone times them again and they are stored once,
    at the time they were made, the fever included, instead of acknowledged as "expired" and
    dropped without a word. The status line tells the volunteer to set the clock right."""
    from datetime import UTC, datetime, timedelta

    behind = timedelta(days=40)
    context.clock.install(time=datetime.now(UTC) - behind)
    page = context.new_page()
    enrol_browser(server, page)
    ready(page)
    [worker] = context.service_workers
    worker.evaluate(WORKER_CLOCK, -behind // timedelta(milliseconds=1))
    warning = page.locator("[data-status-clock]")
    warning.wait_for()
    assert "手机日期时间不准（慢了 40天）" in warning.inner_text()
    assert "自动设置日期和时间" in warning.inner_text()

    context.set_offline(True)
    save(page, "慢钟发热", "38.1")
    page.wait_for_selector("[data-outbox-flash]:has-text('已保存在本机，1 条待发送')")
    save(page, "慢钟二")
    page.wait_for_selector("[data-outbox-flash]:has-text('2 条待发送')")
    kept = page.evaluate("async () => (await FieldOutbox.all('outbox')).map(r => r.recorded_at)")
    assert all(at < (datetime.now(UTC) - timedelta(days=21)).isoformat() for at in kept)
    assert names(server) == []
    context.set_offline(False)
    wait_waiting(page, 0)
    assert attention(page) == []
    assert names(server) == ["慢钟二", "慢钟发热"]
    no_duplicates(server)
    assert server.query("SELECT COUNT(*) FROM sync_rejects")[0][0] == 0
    now = datetime.now(UTC)
    for name, at in server.query("SELECT name, recorded_at FROM entries"):
        assert abs(datetime.fromisoformat(at) - now) < timedelta(minutes=10), (name, at)
    fever = server.query("SELECT temperature, fever_action FROM entries WHERE name = '慢钟发热'")
    assert tuple(fever[0]) == (38.1, "clinic")
    page.wait_for_selector("[data-status-waiting]:has-text('没有待发送的记录')")
    assert warning.is_visible()  # until the phone's clock is set right


SLOW_ANSWERS = """() => {
  // One bar of signal: every answer reaches the page 0.4 s later than it came.
  const fetchNow = window.fetch;
  window.fetch = function (...args) {
    return fetchNow.apply(this, args).then((res) => new Promise((r) => setTimeout(() => r(res), 400)));
  };
}"""


def test_typing_during_a_slow_save_is_kept_for_the_next_record(server, context, enrolled_page):
    page = enrolled_page
    ready(page)
    page.evaluate(SLOW_ANSWERS)
    context.set_offline(True)
    save(page, "快一")
    page.wait_for_selector("#entry-form[aria-busy=true]")  # shown as saving, takes no typing
    save(page, "快二")  # typed at once: it waits for the fresh form, not cleared by it
    save(page, "快三")
    wait_waiting(page, 3)
    kept = page.evaluate("async () => (await FieldOutbox.all('outbox')).map(r => r.data.name)")
    assert sorted(kept) == ["快一", "快三", "快二"]
    page.wait_for_selector("[data-outbox-flash]:has-text('3 条待发送')")
    page.wait_for_selector("#gate-saved:has-text('快三')")  # the last answer is here
    assert page.get_attribute("#entry-form", "aria-busy") is None
    assert page.input_value("#entry-form [name=name]") == ""
    context.set_offline(False)
    wait_waiting(page, 0)
    assert attention(page) == []
    assert names(server) == ["快一", "快三", "快二"]


# What the page sees of its workers and caches (said when a new version does not take over).


def test_new_service_worker_version_keeps_the_waiting_records(server, context, enrolled_page):
    page = enrolled_page
    ready(page)
    old = page.evaluate("async () => (await caches.keys()).filter(k => k.includes('shell'))")
    context.set_offline(True)
    page.evaluate(SAVE_MANY, [3, "升级"])
    context.route("**/sync/v1/push", lambda route: route.fulfill(status=503, body="down"))
    # A new deployment: same instance, new version of the app.
    server.stop()
    server.env["FIELDAPP_APP_VERSION"] = "next"
    server.start()
    context.set_offline(False)
    # The browser looks for a new worker at each visit; here, at each poll, until one is found
    # (a look while the restarted server was still busy could come back empty). The new one
    # takes over when the old one stops. A phone's browser stops an idle worker by itself; one
    # that DevTools drives, as here, keeps its workers running and lets the old one go only at
    # its first idle moment after the new one came. A request from the page in that moment
    # starts it again, and it then runs on for the five minutes Chromium waits at most (300 s,
    # measured with two test runs at once). So while the new one waits, this test stops the old
    # one every 2 s, as a phone's browser would once it is idle (never the new one: stopped
    # while it activates, it would not clear the old version's shell).
    cdp, versions = worker_versions(context, page)
    stopped = [time.monotonic()]

    def taken_over() -> bool:
        state = page.evaluate(
            """async (old) => {
              const shells = (await caches.keys()).filter(k => k.includes('shell'));
              if (shells.length === 1 && shells[0] !== old[0]) return "done";
              const reg = await navigator.serviceWorker.getRegistration();
              if (reg.waiting) return "waiting";
              if (!reg.installing) await reg.update().catch(() => null);
              return "looking";
            }""",
            old,
        )
        if state == "waiting" and time.monotonic() - stopped[0] > 2:
            for v in list(versions.values()):
                if v["status"] == "activated" and v["runningStatus"] != "stopped":
                    cdp.send("ServiceWorker.stopWorker", {"versionId": v["versionId"]})
            stopped[0] = time.monotonic()
        return state == "done"

    try:
        wait_until(taken_over, 60, "a new worker version took over")
    except AssertionError:
        state = page.evaluate(WORKER_STATE)
        raise AssertionError(f"no new worker version took over: {state}") from None
    assert waiting(page) == 3
    page.reload()
    wait_waiting(page, 3)
    context.unroute("**/sync/v1/push")
    page.click("[data-send-now]")
    wait_waiting(page, 0)
    assert names(server) == ["升级0000", "升级0001", "升级0002"]
    no_duplicates(server)


def test_a_replaced_versions_shell_is_not_made_again(server, context, enrolled_page):
    """A newer version's activation deletes the old shell cache while the old worker may still
    answer a request for a static file: that must not make the old cache again (it did: a
    static file not yet kept went into a caches.open() of the deleted name)."""
    page = enrolled_page
    ready(page)
    (shell,) = page.evaluate("async () => (await caches.keys()).filter(k => k.includes('shell'))")
    # What the newer version's activation does to this one's shell, then a file it had not kept.
    kept = page.evaluate(
        """async (shell) => {
          await caches.delete(shell);
          const src = document.querySelector('script[src*="/static/js/rules."]').src;
          const res = await fetch(src + '?again');
          return res.ok && (await caches.keys()).includes(shell);
        }""",
        shell,
    )
    assert kept is False


def test_outbox_of_an_older_version_is_migrated_not_dropped(server, context, page):
    page.goto(server.url + "/ping")  # this origin, before any of the app's scripts run
    page.evaluate(
        """async (site) => new Promise((resolve, reject) => {
          const req = indexedDB.open("fieldapp-outbox", 1);
          req.onupgradeneeded = () => req.result.createObjectStore("queue", { keyPath: "uuid" });
          req.onsuccess = () => {
            const tx = req.result.transaction("queue", "readwrite");
            for (const name of ["旧一", "旧二"]) {
              tx.objectStore("queue").put({
                uuid: crypto.randomUUID(), kind: "entry", saved_at: Date.now(),
                form: { site_id: site, direction: "in", person_type: "resident", name,
                        phone: "13812345678", temperature: "36.5", health_code: "green",
                        travel: "false", recorded_at: new Date().toISOString() },
              });
            }
            tx.oncomplete = () => { req.result.close(); resolve(); };
            tx.onerror = () => reject(tx.error);
          };
        })""",
        server.query("SELECT id FROM sites WHERE active = 1 ORDER BY name LIMIT 1")[0][0],
    )
    enrol_browser(server, page, "旧手机")
    wait_waiting(page, 0)
    assert attention(page) == []
    assert names(server) == ["旧一", "旧二"]


def test_five_hundred_waiting_are_delivered_in_batches(server, context, enrolled_page):
    page = enrolled_page
    ready(page)
    pushes = []  # watched from before the queue fills: the outbox may start sending at once
    context.on("request", lambda r: pushes.append(r) if r.url.endswith("/sync/v1/push") else None)
    queue(page, 500, "批")
    page.click("[data-send-now]")
    wait_waiting(page, 0, seconds=60)
    assert server.query("SELECT COUNT(DISTINCT uuid), COUNT(*) FROM entries")[0][:] == (500, 500)
    assert len(pushes) >= 2  # the outbox sends at most 250 records per batch


def test_revoked_phone_keeps_its_queue_asks_to_enrol_and_sends_after_re_enrolment(
    server, context, enrolled_page
):
    page = enrolled_page
    save_many_offline(context, page, 2, "吊销")
    server.cli("device", "revoke", "测试手机")
    context.set_offline(False)
    save(page, "吊销后")  # the instance answers 401: kept on the phone too
    page.wait_for_selector("[data-outbox-flash]:has-text('3 条待发送')")
    # It waits for a new enrolment link, not for the network (which is here) or for time.
    note = page.locator("#gate-saved [data-outbox-note]")
    assert note.inner_text() == "已保存在本机；这部手机用负责人发来的新登记链接重新登记后才会发送。"
    page.click("[data-send-now]")
    page.wait_for_selector("[data-status-enrol]:not([hidden])")
    flash = page.locator("[data-outbox-flash]", has_text="未发送")
    assert (
        flash.inner_text()
        == "未发送：这部手机需要新的登记链接。记录保留在本机，重新登记后才会发送。"
    )
    assert waiting(page) == 3 and names(server) == []
    page.goto(gate_url(server))  # the kept volunteer page, not the visitor's form
    page.wait_for_selector("[data-status-enrol]:not([hidden])")
    enrol_browser(server, page, "新手机")
    wait_waiting(page, 0)
    assert names(server) == ["吊销0000", "吊销0001", "吊销后"]
    new_id = server.query("SELECT id FROM peers WHERE name = '新手机'")[0][0]
    assert {r[0] for r in server.query("SELECT device FROM entries")} == {new_id}
    page.wait_for_selector("[data-status-enrol][hidden]", state="attached")


def test_export_imported_at_the_office_then_the_phone_sends_the_same_once(
    server, context, enrolled_page, tmp_path
):
    page = enrolled_page
    save_many_offline(context, page, 2, "导出")
    path = exported_outbox(server, page, tmp_path / "outbox.json", "导出0001")  # offline
    result = server.cli("import-outbox", str(path))
    assert "新增 2 条" in result.stdout
    context.set_offline(False)
    page.click("[data-send-now]")
    wait_waiting(page, 0)
    assert names(server) == ["导出0000", "导出0001"]
    assert server.query("SELECT COUNT(*) FROM sync_rejects")[0][0] == 0  # duplicates, no conflict


def test_phone_pages_fit_360_px_and_have_big_touch_targets(server, context, enrolled_page):
    page = enrolled_page
    page.set_viewport_size({"width": 360, "height": 740})
    code = gate_url(server).rsplit("/", 1)[1]
    for path in (f"/s/{code}", "/outbox", "/scan", "/outbox/import"):
        page.goto(server.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
        small = page.evaluate(
            """() => [...document.querySelectorAll("#outbox-status button, #outbox-status a.button,"
                + " main button, main a.button")]
              .filter((el) => el.offsetParent !== null)
              .filter((el) => el.getBoundingClientRect().height < 44)
              .map((el) => el.textContent.trim())"""
        )
        assert small == [], path
    visitor = context.browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    try:
        other = visitor.new_page()
        other.goto(gate_url(server))
        other.wait_for_selector("#self-register")
        assert other.evaluate("document.documentElement.scrollWidth") <= 360
        assert "保存" in other.inner_text("#privacy") and "天" in other.inner_text("#privacy")
    finally:
        visitor.close()
    page.goto(server.url + "/outbox")
    page.wait_for_selector("[data-ios-hint]", state="attached")
    assert page.locator("[data-ios-hint]").is_hidden()  # not on this (Android-like) browser
    iphone = context.browser.new_context(
        viewport={"width": 375, "height": 740},
        locale="zh-CN",
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 15_7 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Version/15.6 Mobile/15E148 Safari/604.1",
    )
    try:
        other = iphone.new_page()
        other.goto(server.url + "/outbox")
        other.wait_for_selector("[data-ios-hint]:has-text('添加到主屏幕')")
    finally:
        iphone.close()


def test_installed_app_start_url_opens_the_gate_offline(server, context, enrolled_page):
    page = enrolled_page
    ready(page)
    until(page, "async () => (await FieldOutbox.getMeta('last_gate')) === location.pathname")
    manifest = page.evaluate("async () => (await fetch('/manifest.webmanifest')).json()")
    context.set_offline(True)
    page.goto(server.url + manifest["start_url"])
    page.wait_for_selector("#entry-form")
    assert page.url == gate_url(server)


def test_with_no_service_worker_the_page_keeps_an_offline_entry_itself(server, browser):
    """The worker is not in control (its registration failed, or the browser dropped it) and
    the network is gone: the page keeps the entry in the outbox itself, says so as the worker
    would, and sends it when the network is back. It went as a plain post into the browser's
    'no internet' page, and the entry was gone."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", service_workers="block"
    )
    try:
        page = context.new_page()
        site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
        enrol_cookie(server, context, site["id"])
        page.goto(f"{server.url}/s/{site['code']}")
        outbox_loaded(page)
        context.set_offline(True)
        save(page, "无助手")
        page.locator("#gate-saved", has_text="无助手").wait_for()
        assert page.locator("[data-outbox-note]").is_visible()  # kept on this phone
        assert page.input_value("#entry-form [name=name]") == ""  # a fresh form
        assert waiting(page) == 1
        context.set_offline(False)
        wait_waiting(page, 0, 60)  # the status line sends it
        assert names(server) == ["无助手"]
    finally:
        context.close()


def test_with_no_service_worker_a_revoked_phone_keeps_its_entry_and_a_strange_page_saves_nothing(
    server, browser
):
    """No worker in control. The instance answers 401 (the phone's enrolment was revoked): the
    page keeps the entry on the phone, as the worker does, until it is enrolled again. A page
    that is not the instance's answer (a captive portal's login, status 200): nothing is said
    to be saved, and what was typed stays."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", service_workers="block"
    )
    try:
        page = context.new_page()
        site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
        enrol_cookie(server, context, site["id"], name="将撤销")
        page.goto(f"{server.url}/s/{site['code']}")
        outbox_loaded(page)

        page.route(
            "**/entries",
            lambda route: route.fulfill(status=200, body="<html><p>请先登录 WiFi</p></html>"),
        )
        save(page, "门户页")
        page.locator("#entry-form [data-not-saved]").wait_for()
        assert page.input_value("#entry-form [name=name]") == "门户页"
        assert waiting(page) == 0
        page.unroute("**/entries")

        server.cli("device", "revoke", "将撤销")
        page.click("#entry-form button.save")
        page.locator("#gate-saved", has_text="门户页").wait_for()
        assert waiting(page) == 1
        assert page.evaluate("async () => await FieldOutbox.getMeta('needs_enrol')") is True
        assert names(server) == []
    finally:
        context.close()
