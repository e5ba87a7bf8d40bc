"""A tap on "保存登记" never loses the person, never asks for them to be typed again, and never
waits without end: after the browser was restarted (the page's CSRF token is of a session the
browser no longer has), and on a phone with no service worker whose network does not answer."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from phone_support import fill, names, outbox_loaded, ready, wait_waiting, waiting
from servers import CHROMIUM, enrol_browser, enrol_cookie


def typed_entry(server, name: str) -> list[tuple]:
    """The rows the instance holds for `name`: what the volunteer typed (phone_support.fill)."""
    rows = server.query(
        "SELECT direction, person_type, phone, temperature FROM entries WHERE name = ?", (name,)
    )
    return [tuple(r) for r in rows]


@pytest.mark.parametrize("restart", ["offline", "token-late"])
def test_the_first_save_after_a_browser_restart_is_stored_once(server, browser, tmp_path, restart):
    """The phone's browser was closed and opened again: its session cookie (which the gate
    form's CSRF token belongs to) is gone, and the service worker answers with the gate page it
    kept, token and all. Opened offline (the token could not be renewed), or online while the
    renewal is still on its way: the first save was refused as 页面已过期. Now it is saved once,
    with what was typed, and the confirmation says so."""
    profile = tmp_path / "profile"

    def launch():
        return browser.browser_type.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking"],
            viewport={"width": 390, "height": 844},
            locale="zh-CN",
        )

    phone = launch()
    try:
        page = phone.pages[0] if phone.pages else phone.new_page()
        enrol_browser(server, page)
        ready(page)
        gate = page.url
    finally:
        phone.close()

    phone = launch()  # the browser restarted: no session cookie, the device cookie kept
    try:
        assert "session" not in [c["name"] for c in phone.cookies()]
        page = phone.pages[0] if phone.pages else phone.new_page()
        renewals = []
        if restart == "offline":
            page.on("requestfailed", lambda r: "/last" in r.url and renewals.append(r.url))
            phone.set_offline(True)
        else:  # one bar of signal: the renewal of the kept page's token does not come back yet
            phone.route("**/last", lambda route: renewals.append(route))
        page.goto(gate)
        page.wait_for_selector("#entry-form")
        page.wait_for_function("() => !!navigator.serviceWorker.controller")
        outbox_loaded(page)
        for _ in range(300):  # the kept page asked for a new token, and did not get it
            if renewals:
                break
            page.wait_for_timeout(100)
        assert renewals
        phone.set_offline(False)

        fill(page, "重启后")
        page.click("#entry-form button.save")
        page.locator("#gate-saved", has_text="已登记：重启后").wait_for()
        assert page.locator("#entry-form .errors, #entry-form .error").count() == 0
        assert page.input_value("#entry-form [name=name]") == ""  # the next person's form
        assert typed_entry(server, "重启后") == [("in", "resident", "13812345678", 36.5)]
        assert waiting(page) == 0  # stored by the instance itself, not left on the phone

        # The next save goes with the renewed token at once.
        phone.unroute("**/last")
        fill(page, "重启后二")
        page.click("#entry-form button.save")
        page.locator("#gate-saved", has_text="已登记：重启后二").wait_for()
        assert names(server) == ["重启后", "重启后二"]
    finally:
        phone.close()


@pytest.fixture
def no_worker(server, browser):
    """A volunteer's browser with no service worker (a first visit, a browser that has none):
    an enrolled phone on the gate page, outbox.js loaded."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", service_workers="block"
    )
    page = context.new_page()
    site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}")
    outbox_loaded(page)
    yield context, page
    context.close()


def limit_of(page) -> float:
    """A bound for what must come within the save's time limit (ms): thrice the limit, not a
    measure of it."""
    return 3 * page.evaluate("() => FieldOutbox.SUBMIT_TIMEOUT_MS")


def test_with_no_worker_a_save_the_network_never_answers_is_kept_on_the_phone(server, no_worker):
    """One bar of signal and no service worker: the instance's answer never comes. The save
    waited for ever on "正在保存…". Now, past the worker's time limit, the page keeps the entry
    in the outbox and says so as the worker would; it is sent once the network answers."""
    context, page = no_worker
    held = []
    # Sent, never answered: the save, and the outbox's pushes (which would deliver the entry
    # at once, and the note that it waits would go).
    page.route("**/entries", lambda route: held.append(route))
    page.route("**/sync/v1/push", lambda route: None)
    bound = limit_of(page)
    fill(page, "一格信号")
    page.click("#entry-form button.save")
    saved = page.locator("#gate-saved", has_text="一格信号")
    saved.wait_for(timeout=bound)
    assert held  # it did go out
    assert page.locator("#gate-saved [data-outbox-note]").is_visible()
    assert "已保存在本机" in saved.inner_text()
    assert page.input_value("#entry-form [name=name]") == ""
    assert waiting(page) == 1
    assert names(server) == []

    page.unroute("**/entries")
    page.unroute("**/sync/v1/push")
    wait_waiting(page, 0, 90)  # the status line sends it
    assert typed_entry(server, "一格信号") == [("in", "resident", "13812345678", 36.5)]


@pytest.mark.parametrize("network", ["offline", "no-answer"])
def test_with_no_worker_and_no_outbox_a_save_that_fails_says_so_and_keeps_the_form(
    server, no_worker, network
):
    """No worker, and a browser that cannot keep the entry on the phone (private mode: its
    IndexedDB refuses). With no network the form went as a plain post into the browser's own
    "no internet" page, the person lost; with one that never answers it waited for ever. Now,
    within the time limit, the form says it was not saved and keeps what was typed; tapped
    again with a network, the entry is stored once."""
    context, page = no_worker
    gate = page.url
    bound = limit_of(page)
    page.evaluate("() => { FieldOutbox.add = () => Promise.reject(new Error('private mode')); }")
    if network == "offline":
        context.set_offline(True)
    else:
        page.route("**/entries", lambda route: None)  # sent, never answered
    fill(page, "无痕模式")
    page.click("#entry-form button.save")
    said = page.locator("#entry-form [data-not-saved]")
    said.wait_for(timeout=bound)
    assert "未保存" in said.inner_text() and "填写的内容还在" in said.inner_text()
    assert page.url == gate
    assert page.get_attribute("#entry-form", "aria-busy") is None  # no longer "正在保存…"
    assert page.input_value("#entry-form [name=name]") == "无痕模式"
    assert names(server) == []

    context.set_offline(False)
    page.unroute("**/entries")
    page.click("#entry-form button.save")
    page.locator("#gate-saved", has_text="已登记：无痕模式").wait_for()
    assert typed_entry(server, "无痕模式") == [("in", "resident", "13812345678", 36.5)]


def test_a_gate_page_whose_rules_did_not_load_still_saves(server, browser):
    """One bar: gate.js came and rules.js did not (or a page kept from before rules.js came
    with it runs today's gate.js). The phone's own check of the rules is then missing, not the
    save: the instance checks the entry and stores it once, and the page says so."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", service_workers="block"
    )
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/js/rules.*", lambda route: route.abort())
        site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
        enrol_cookie(server, context, site["id"])
        page.goto(f"{server.url}/s/{site['code']}")
        outbox_loaded(page)
        assert page.evaluate("() => typeof self.FieldRules") == "undefined"
        fill(page, "规则未到")
        page.click("#entry-form button.save")
        page.locator("#gate-saved", has_text="已登记：规则未到").wait_for()
        assert typed_entry(server, "规则未到") == [("in", "resident", "13812345678", 36.5)]
        assert errors == []
    finally:
        context.close()


def test_a_phone_hours_slow_saving_online_is_timed_by_the_instance(server, browser):
    """A phone whose clock is three hours slow (set by hand, no network time) saves online
    through the gate form: the entry is stored at the instance's time, as a push from that
    phone would be, not three hours back (the day before, after midnight), and the last
    entries show it at the time it was made."""
    from datetime import UTC, datetime, timedelta

    from fieldapp import days

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    try:
        context.clock.install(time=datetime.now(UTC) - timedelta(hours=3))
        page = context.new_page()
        enrol_browser(server, page)
        ready(page)
        before = datetime.now(UTC) - timedelta(seconds=1)
        fill(page, "慢三小时")
        page.click("#entry-form button.save")
        page.locator("#gate-saved", has_text="已登记：慢三小时").wait_for()
        after = datetime.now(UTC) + timedelta(seconds=1)
        ((at,),) = server.query("SELECT recorded_at FROM entries WHERE name = ?", ("慢三小时",))
        stored = datetime.fromisoformat(at.replace("Z", "+00:00"))
        assert before <= stored <= after
        shown = page.locator(".last-entries li", has_text="慢三小时").locator(".when")
        local = days.local(at, "Asia/Shanghai")
        assert shown.text_content() in (local.strftime("%H:%M"), local.strftime("%m-%d %H:%M"))
    finally:
        context.close()


# On every page: the stamps FieldOutbox.recordedAt gives, in self.stamps as it gives them. On
# the page opened with sessionStorage "tap" set: the form filled and saved as soon as it is
# there (DOMContentLoaded), before the page has loaded outbox.js; self.tapped: the page's
# clock just before and just after that tap.
TAP_FIRST = """(() => {
  const stamps = (self.stamps = []);
  let outbox;
  Object.defineProperty(self, "FieldOutbox", {
    configurable: true,
    get: () => outbox,
    set: (value) => {
      const stamp = value.recordedAt;
      value.recordedAt = (ms) => { const s = stamp(ms); stamps.push(s); return s; };
      outbox = value;
    },
  });
  if (sessionStorage.getItem("tap") !== "1") return;
  sessionStorage.removeItem("tap");
  document.addEventListener("DOMContentLoaded", () => {
    const f = document.getElementById("entry-form");
    f.querySelector("[name=direction][value=in]").checked = true;
    f.querySelector("[name=person_type][value=resident]").checked = true;
    f.elements.name.value = "先点保存";
    f.elements.phone.value = "13812345678";
    f.elements.temperature.value = "36.5";
    self.outboxAtTap = !!outbox;
    const before = Date.now();
    f.requestSubmit(f.querySelector("button.save"));
    self.tapped = [before, Date.now()];
  });
})()"""


@pytest.mark.parametrize("served_by", ["instance", "worker"])
def test_a_save_before_outbox_js_is_here_is_stamped_at_the_tap_by_the_one_stamp(
    server, browser, served_by
):
    """When the person passed (recorded_at) is stamped in one place, FieldOutbox.recordedAt.
    The gate page saves before it has loaded outbox.js (it loads it once the form is usable),
    and gate.js stamped such a save itself: a second copy of the rule. Now that save too is
    stamped by recordedAt, with the moment of the tap: the entry the instance stores, from the
    save itself or (the page served by the service worker, offline) from the phone's outbox,
    carries that stamp, in its one form (UTC, milliseconds, Z)."""
    worker = served_by == "worker"
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        locale="zh-CN",
        service_workers="allow" if worker else "block",
    )
    try:
        site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
        enrol_cookie(server, context, site["id"])
        context.add_init_script(TAP_FIRST)
        page = context.new_page()
        page.goto(f"{server.url}/s/{site['code']}")
        if worker:
            ready(page)
            context.set_offline(True)
        page.evaluate("() => sessionStorage.setItem('tap', '1')")
        page.reload()
        page.locator("#gate-saved", has_text="先点保存").wait_for()
        assert page.evaluate("() => self.outboxAtTap") is False
        kept = None
        if worker:
            assert page.evaluate("() => !!navigator.serviceWorker.controller")
            wait_waiting(page, 1)
            (kept,) = page.evaluate(
                "async () => (await FieldOutbox.all('outbox')).map(r => r.recorded_at)"
            )
            context.set_offline(False)
            wait_waiting(page, 0)
        (stored,) = server.query("SELECT recorded_at FROM entries WHERE name = '先点保存'")[0]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stored)
        assert stored in page.evaluate("() => self.stamps")
        assert kept in (None, stored)
        before, after = page.evaluate("() => self.tapped")
        at = datetime.fromisoformat(stored).timestamp() * 1000
        assert before <= at <= after
    finally:
        context.close()
