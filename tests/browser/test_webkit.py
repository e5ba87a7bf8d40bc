"""The phone's offline path in WebKit, the engine of every iPhone browser.

Debian's WebKitGTK (`webkit2gtk-driver`, installed by `make test`) is driven through its
WebDriver with Selenium, in a virtual X server of its own (Xvfb). With no options the driver
starts WebKitGTK's MiniBrowser in automation mode, with an ephemeral profile: every test starts
as a phone that never saw this instance. WebDriver has no offline switch, so the network goes
away as a phone loses it: the instance stops answering (its process is stopped), and comes back
on the same address. A browser restarted (Safari drops session cookies often) is its session
cookie deleted: the device cookie, persistent on a phone, stays.
"""

from __future__ import annotations

import os
import select
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait
from selenium.webdriver.webkitgtk.options import Options
from selenium.webdriver.webkitgtk.service import Service

from fieldapp import i18n
from fieldapp.phones import devices
from sync import peers

pytestmark = [
    pytest.mark.browser,
    # Selenium's own WebKitGTK class hands its driver's address to RemoteConnection the way
    # Selenium itself has deprecated (seen with 4.51); nothing this test could pass avoids it.
    pytest.mark.filterwarnings(
        "ignore:setting remote_server_addr in RemoteConnection:DeprecationWarning"
    ),
]

DRIVER = shutil.which("WebKitWebDriver") or "/usr/bin/WebKitWebDriver"
XVFB = shutil.which("Xvfb") or "/usr/bin/Xvfb"


@pytest.fixture(scope="module")
def display():
    """A virtual X server on a free display number (Xvfb picks it and tells us via -displayfd)."""
    if not (os.path.exists(DRIVER) and os.path.exists(XVFB)):
        pytest.fail("WebKitWebDriver or Xvfb is missing: `make webkit` installs them")
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        [XVFB, "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        number = b""
        deadline = time.monotonic() + 20
        while not number.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read], [], [], left)[0]:
                raise RuntimeError("Xvfb did not start")
            chunk = os.read(read, 16)
            if not chunk:
                raise RuntimeError(f"Xvfb exited ({xvfb.wait()})")
            number += chunk
        yield ":" + number.decode().strip()
    finally:
        os.close(read)
        xvfb.terminate()
        xvfb.wait(timeout=10)


@pytest.fixture
def webkit(display, tmp_path):
    """A WebKitGTK browser (MiniBrowser --automation, the driver's default) on the Xvfb display."""
    service = Service(
        executable_path=DRIVER,
        env=dict(os.environ, DISPLAY=display),
        log_output=str(tmp_path / "webkitwebdriver.log"),
    )
    driver = webdriver.WebKitGTK(options=Options(), service=service)
    try:
        driver.set_window_rect(width=390, height=844)  # about a phone's
        driver.set_script_timeout(30)
        yield driver
    finally:
        driver.quit()


def run(driver, body: str, *args):
    """Run the body of an async JS function (its arguments in `args`) and return its result."""
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const args = Array.prototype.slice.call(arguments, 0, -1);"
        f"(async (...args) => {{ {body} }})(...args)"
        ".then(done, (e) => done({jsError: String(e && e.stack || e)}));",
        *args,
    )
    if isinstance(result, dict) and "jsError" in result:
        raise AssertionError(result["jsError"])
    return result


def wait(driver, check, what: str, timeout: float = 45):
    """Wait until check(driver) is true; fail saying what did not happen. The bound is wide: a
    full run on two busy cores once took WebKit over 20 s to save offline (it returns at once
    when the check holds)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: check(d), f"{what}: not within {timeout} s"
    )


def text(driver, selector: str) -> str:
    return driver.execute_script(
        "const el = document.querySelector(arguments[0]); return el ? el.textContent : '';",
        selector,
    )


READY = """
  if (!navigator.serviceWorker.controller) return false;
  return !!(await caches.match(location.pathname, {ignoreVary: true}));
"""
DIAG = """
  const reg = await navigator.serviceWorker.getRegistration();
  return {controller: !!navigator.serviceWorker.controller,
          active: reg && reg.active && reg.active.state, caches: await caches.keys()};
"""
SUMMARY = "return await FieldOutbox.summary();"
# The instance is unreachable from the page (the service worker lets /ping through to it). WebKit
# reports no workerStart for a navigation its service worker answered, and a page no worker
# controls reloads offline as "Could not connect to 127.0.0.1": the gate page shown with the
# network down is the copy the service worker kept.
NETWORK_DOWN = """
  try {
    await fetch("/ping", {cache: "no-store"});
    return false;
  } catch (_) {
    return true;
  }
"""


def enrol(driver, server) -> tuple[str, str]:
    """Make the browser an enrolled gate phone (the device cookie) that reads Chinese."""
    site = server.query("SELECT id, code FROM sites WHERE active = 1 ORDER BY name LIMIT 1")[0]
    conn = sqlite3.connect(server.database, isolation_level=None)
    try:
        device, token = peers.create(conn, "device", "苹果手机", site["id"])
    finally:
        conn.close()
    driver.get(server.url + "/ping")  # cookies can be added only for the page's origin
    driver.add_cookie(
        {
            "name": devices.COOKIE,
            "value": token,
            "path": "/",
            "httpOnly": True,
            "sameSite": "Strict",
        }
    )
    # The language a phone set to Chinese asks for, whatever the locale this test runs in.
    driver.add_cookie({"name": i18n.COOKIE, "value": "zh_Hans", "path": "/"})
    return device.id, site["code"]


def fill_and_save(driver, name: str, temperature: str) -> None:
    """As a volunteer does: taps the choices, types the fields, taps save."""
    wait(
        driver,
        lambda d: not d.find_element(By.ID, "entry-form").get_attribute("aria-busy"),
        "form free",
    )
    form = driver.find_element(By.ID, "entry-form")
    form.find_element(By.CSS_SELECTOR, "[name=direction][value=in]").click()
    form.find_element(By.CSS_SELECTOR, "[name=person_type][value=resident]").click()
    for field, value in (("name", name), ("phone", "13812345678"), ("temperature", temperature)):
        box = form.find_element(By.NAME, field)
        box.clear()
        box.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button.save").click()


def test_webkit_phone_keeps_an_entry_offline_and_delivers_it_once(server, webkit):
    driver = webkit
    device, code = enrol(driver, server)
    driver.get(f"{server.url}/s/{code}")
    wait(driver, lambda d: d.find_elements(By.ID, "entry-form"), "the volunteer's gate form")
    assert driver.execute_script("return document.visibilityState") == "visible"
    try:
        wait(driver, lambda d: run(d, READY), "service worker in control, gate page kept")
    except AssertionError as e:
        raise AssertionError(f"{e}: {run(driver, DIAG)}") from None

    server.stop()  # the phone loses the network
    fill_and_save(driver, "离线一", "36.6")
    wait(driver, lambda d: "已保存在本机" in text(d, "[data-outbox-flash]"), "saved on this phone")
    assert "1 条待发送" in text(driver, "[data-outbox-flash]")
    assert run(driver, SUMMARY)["waiting"] == 1
    assert driver.find_element(By.NAME, "name").get_attribute("value") == ""  # a fresh form

    driver.refresh()  # still offline: the service worker answers with the kept page
    wait(driver, lambda d: d.find_elements(By.ID, "entry-form"), "the kept gate page")
    assert run(driver, NETWORK_DOWN)  # so this page is the one the service worker kept
    wait(driver, lambda d: "1 条待发送" in text(d, "[data-status-waiting]"), "1 waiting shown")
    wait(driver, lambda d: "离线" in text(d, "[data-status-net]"), "offline shown")

    # The phone enforces the instance's rules offline: 45 °C is refused beside its field.
    fill_and_save(driver, "发烧四十五", "45")
    error = wait(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, ".field.temperature #temperature-error"),
        "the error beside the temperature",
    )[0]
    assert "45" in error.text and "不可能" in error.text, error.text
    assert driver.find_element(By.NAME, "name").get_attribute("value") == "发烧四十五"  # kept
    assert run(driver, SUMMARY)["waiting"] == 1

    server.start()  # the network is back: the same instance, on the same address
    # The page sends by itself (a timer every 3 s while something waits, visible page).
    wait(driver, lambda d: run(d, SUMMARY)["waiting"] == 0, "the outbox sent")
    summary = run(driver, SUMMARY)
    assert (summary["waiting"], summary["attention"]) == (0, 0)
    wait(
        driver, lambda d: "没有待发送" in text(d, "[data-status-waiting]"), "nothing waiting shown"
    )
    rows = server.query("SELECT name, temperature, phone, device FROM entries")
    assert [tuple(r) for r in rows] == [("离线一", 36.6, "13812345678", device)]


def test_webkit_a_typed_site_code_opens_a_kept_gate_offline(server, webkit):
    driver = webkit
    _device, code = enrol(driver, server)
    other, name = server.query(
        "SELECT code, name FROM sites WHERE active = 1 ORDER BY name DESC LIMIT 1"
    )[0]
    driver.get(f"{server.url}/s/{other}")  # opened once with a network: the phone keeps it
    wait(driver, lambda d: d.find_elements(By.ID, "entry-form"), "the other site's gate form")
    wait(driver, lambda d: run(d, READY), "service worker in control, gate page kept")
    driver.get(server.url + "/scan")
    wait(driver, lambda d: d.find_elements(By.ID, "code"), "the scanner page")

    server.stop()  # the phone loses the network
    driver.find_element(By.ID, "code").send_keys(other)
    driver.find_element(By.CSS_SELECTOR, "form[action='/go'] button").click()
    wait(
        driver,
        lambda d: d.current_url.endswith(f"/s/{other}") and d.find_elements(By.ID, "entry-form"),
        "the kept gate page",
    )
    assert text(driver, "h1") == name
    assert run(driver, NETWORK_DOWN)

    # The phone's own site was never opened on it: its poster's address says so, offline.
    driver.get(f"{server.url}/s/{code}")
    wait(driver, lambda d: code in text(d, "[data-scan-error]"), "not on this phone yet")
    assert "/scan?missing=" in driver.current_url
    assert "网络" in text(driver, "[data-scan-error]")


def entry_form_ready(driver) -> None:
    """The gate form is on the page and outbox.js (which gate.js loads once the form is usable)
    with it."""
    wait(driver, lambda d: d.find_elements(By.ID, "entry-form"), "the gate form")
    wait(driver, lambda d: d.execute_script("return !!self.FieldOutbox"), "outbox.js loaded")


def saved_text(driver) -> str:
    """What the box above the form says (the confirmation of the last save)."""
    return driver.execute_script(
        "const box = document.getElementById('gate-saved');"
        "return box && !box.hidden ? box.textContent.replace(/\\s+/g, ' ').trim() : '';"
    )


# Every save's answer as the page got it (status, X-Fieldapp-Token, the record's uuid), from
# gate.js's own fetch: the refusal a lost session brings is seen, not inferred.
RECORD_SAVES = """
  const first = !window.saves;
  window.saves = [];
  if (!first) return;  // this page's fetch records already
  const real = window.fetch;
  window.fetch = function (url, init) {
    const answer = real.apply(this, arguments);
    if (!init || init.method !== "POST") return answer;
    const uuid = new URLSearchParams(String(init.body)).get("uuid");
    return answer.then((res) => {
      window.saves.push([res.status, res.headers.get("X-Fieldapp-Token"), uuid]);
      return res;
    });
  };
"""
FORM_UUID = "return document.querySelector('#entry-form [name=uuid]').value;"


def lose_the_session(driver) -> None:
    """What Safari does to a phone's session cookie (the browser restarted, the tab was closed):
    the session, which the page's CSRF token belongs to, is gone; the device cookie, which is
    persistent, stays."""
    driver.delete_cookie("session")
    cookies = [c["name"] for c in driver.get_cookies()]
    assert "session" not in cookies and devices.COOKIE in cookies, cookies


def save_with_a_lost_session(driver, server, name: str, device: str) -> None:
    """Save `name` from a page whose token is of a session the browser no longer has: it is
    refused once for its token, with a renewed one, and sent again as the same record."""
    run(driver, RECORD_SAVES)
    uuid = driver.execute_script(FORM_UUID)  # the record's id, which the tap sends
    fill_and_save(driver, name, "36.6")
    wait(driver, lambda d: f"已登记：{name}" in saved_text(d), f"the confirmation for {name}")
    # (A refused form comes to the page as a 200 fragment: pages.page_or_fragment.)
    saves = driver.execute_script("return window.saves")
    assert saves == [[200, "renewed", uuid], [200, None, uuid]], saves
    assert not driver.find_elements(By.CSS_SELECTOR, "#entry-form .errors, #entry-form .error")
    assert driver.find_element(By.NAME, "name").get_attribute("value") == ""  # the next person
    assert run(driver, SUMMARY)["waiting"] == 0  # stored by the instance, not kept on the phone
    rows = server.query(
        "SELECT uuid, temperature, phone, device FROM entries WHERE name = ?", (name,)
    )
    assert [tuple(r) for r in rows] == [(uuid, 36.6, "13812345678", device)]


def test_webkit_the_first_save_after_the_session_was_lost_is_stored_once(server, webkit):
    """Safari drops a phone's session cookie (the browser restarted, iOS ended the tab) while
    the gate page, open or kept by the service worker, carries a CSRF token of that session.
    The first save is refused for its token alone, with a renewed one, and gate.js sends the
    same record again: the volunteer sees it saved, the instance holds it once."""
    driver = webkit
    device, code = enrol(driver, server)
    driver.get(f"{server.url}/s/{code}")
    entry_form_ready(driver)
    wait(driver, lambda d: run(d, READY), "service worker in control, gate page kept")
    driver.refresh()  # the kept page, whose list (last.js) renews its token as it loads:
    entry_form_ready(driver)  # that is over before the session goes
    wait(
        driver,
        lambda d: d.execute_script(
            "return performance.getEntriesByType('resource')"
            ".some((e) => /\\/last$/.test(e.name) && e.responseEnd > 0);"
        ),
        "the last entries asked for",
    )
    run(driver, "await new Promise((done) => setTimeout(done, 300));")

    # The page left open.
    lose_the_session(driver)
    save_with_a_lost_session(driver, server, "开着的页面", device)

    # The page kept by the service worker, opened with no network (its token could not be
    # renewed), then saved once the network is back.
    lose_the_session(driver)
    server.stop()
    driver.refresh()
    entry_form_ready(driver)
    assert run(driver, NETWORK_DOWN)  # the kept page, as it was kept
    wait(
        driver,
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-last-offline]").is_displayed(),
        "its list could not be renewed (nor its token)",
    )
    server.start()
    assert "session" not in [c["name"] for c in driver.get_cookies()]
    save_with_a_lost_session(driver, server, "留着的页面", device)

    # The next save goes with the renewed token at once.
    run(driver, RECORD_SAVES)
    fill_and_save(driver, "之后", "36.6")
    wait(driver, lambda d: "已登记：之后" in saved_text(d), "the confirmation")
    saves = driver.execute_script("return window.saves")
    assert [s[:2] for s in saves] == [[200, None]], saves
    rows = server.query("SELECT name, COUNT(*) FROM entries GROUP BY uuid ORDER BY name")
    assert sorted(tuple(r) for r in rows) == [("之后", 1), ("开着的页面", 1), ("留着的页面", 1)]


KEPT_HAS = """
  const kept = await (await caches.open("fieldapp-pages")).match(args[0]);
  return !!kept && (await kept.text()).includes(args[1]);
"""
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the instance's TIMEZONE (its default)


def list_items(driver) -> list[tuple[bool, str]]:
    """The gate's last entries as shown, top first: (marked not sent, its text)."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#gate .last-entries li.entry')].map((li) =>"
        " [li.classList.contains('entry-unsent'), li.textContent.replace(/\\s+/g, ' ').trim()]);"
    )
    return [tuple(row) for row in rows]


def offline_note(driver) -> str:
    """The list's note that it is as it was (last.js), or "" while it is hidden."""
    return driver.execute_script(
        "const note = document.querySelector('#gate .last-entries [data-last-offline]');"
        "return note && !note.hidden ? note.textContent : '';"
    )


def test_webkit_offline_the_gate_lists_its_last_entries_as_of_then_and_what_waits_on_top(
    server, webkit
):
    """The instance goes away after entries were registered: the gate page opened again is the
    copy the phone kept, its list as it was then. It says so (离线：截至 HH:MM), and the entry
    still waiting on the phone comes first, marked 未发送. Back online it is sent, and listed
    once, as the instance lists it."""
    driver = webkit
    device, code = enrol(driver, server)
    site_id = server.query("SELECT id FROM sites WHERE code = ?", (code,))[0][0]
    path = f"/s/{code}"
    driver.get(server.url + path)
    entry_form_ready(driver)
    wait(driver, lambda d: run(d, READY), "service worker in control, gate page kept")
    fill_and_save(driver, "在线登记", "36.6")
    wait(driver, lambda d: "已登记：在线登记" in saved_text(d), "the confirmation")
    driver.refresh()  # the kept page answers; the worker keeps the network's, with the entry
    wait(driver, lambda d: run(d, KEPT_HAS, path, "在线登记"), "the page kept with its list")

    server.stop()  # the phone loses the network
    fill_and_save(driver, "还在手机上", "36.8")
    wait(
        driver,
        lambda d: "已登记：还在手机上" in saved_text(d) and "已保存在本机" in saved_text(d),
        "saved on this phone",
    )
    driver.refresh()  # the volunteer opens the gate again: the kept page
    entry_form_ready(driver)
    assert run(driver, NETWORK_DOWN)
    wait(driver, lambda d: offline_note(d), "the list says it is as it was")
    as_of = driver.find_element(By.CSS_SELECTOR, "#gate .last-entries").get_attribute("data-as-of")
    made = datetime.fromisoformat(as_of.replace("Z", "+00:00")).astimezone(SHANGHAI)
    # As the list writes its times: the time alone today, the date too on another day.
    when = (
        f"{made:%H:%M}" if made.date() == datetime.now(SHANGHAI).date() else f"{made:%m-%d %H:%M}"
    )
    assert offline_note(driver) == f"离线：截至 {when}"
    shown = wait(driver, lambda d: len(list_items(d)) == 2 and list_items(d), "both listed")
    (unsent, first), (sent, second) = shown
    assert unsent and "未发送" in first and "还在手机上" in first, shown
    assert not sent and "在线登记" in second and "未发送" not in second, shown
    assert run(driver, SUMMARY)["waiting"] == 1
    assert [r[0] for r in server.query("SELECT name FROM entries")] == ["在线登记"]

    server.start()  # the network is back: the page sends by itself, and its list follows
    wait(driver, lambda d: run(d, SUMMARY)["waiting"] == 0, "the outbox sent", timeout=60)
    wait(
        driver,
        lambda d: [u for u, _ in list_items(d)] == [False, False] and not offline_note(d),
        "the instance's list",
    )
    shown = list_items(driver)
    assert ["还在手机上" in words for _, words in shown] == [True, False], shown
    assert "未发送" not in " ".join(words for _, words in shown)
    rows = server.query("SELECT name, site_id, device FROM entries ORDER BY recorded_at")
    assert [tuple(r) for r in rows] == [
        ("在线登记", site_id, device),
        ("还在手机上", site_id, device),
    ]


DAY_MS = 86_400_000
# The page's clock moved by args[0] ms, as a flat battery moves a phone's date (0: right again).
# WebDriver cannot move the browser's clock: the page's Date is replaced by one that runs that
# far off. The service worker's clock is not moved; it stamps nothing the test looks at (the
# page stamps a record's time as the tap sends it, gate.js, and sends it, status.js).
SHIFT_CLOCK = """
  const Real = window.RealDate || Date;
  window.RealDate = Real;
  const shift = args[0];
  window.Date = !shift ? Real : class extends Real {
    constructor(...a) { if (a.length) super(...a); else super(Real.now() + shift); }
    static now() { return Real.now() + shift; }
  };
  return new Date().toISOString();
"""
# The last contact with the instance, as this phone heard its time, an hour ago (the test cannot
# wait an hour): the records after it have room to keep the gap between them. In ms.
HOUR_AGO = """
  const c = await FieldOutbox.getMeta("clock");
  const at = c.at + c.offset_ms - 3600000;
  await FieldOutbox.setMeta("clock", {offset_ms: c.offset_ms, at: at - c.offset_ms, server_at: at});
  return at;
"""
KEPT_RECORDS = """
  return (await FieldOutbox.all("outbox")).map((r) => [r.data.name, r.recorded_at, r.contact_at]);
"""


def when(value: str | float) -> datetime:
    """An ISO 8601 time or ms since the epoch, as an aware datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return datetime.fromtimestamp(value / 1000, UTC)


def test_webkit_kept_forty_days_slow_and_sent_with_the_clock_right_it_is_stored_once(
    server, webkit
):
    """The phone met the instance, lost the network, and its date went 40 days back (past the
    21-day horizon) while it recorded; its clock is right again when it sends. Each record kept
    remembers that contact (contact_at), so the phone times it again between the contact and
    the moment of sending: stored once, nothing refused, the gap between them kept."""
    driver = webkit
    device, code = enrol(driver, server)
    driver.get(f"{server.url}/s/{code}")
    entry_form_ready(driver)
    wait(driver, lambda d: run(d, READY), "service worker in control, gate page kept")
    wait(driver, lambda d: run(d, 'return !!(await FieldOutbox.getMeta("clock"));'), "a contact")

    server.stop()  # the phone loses the network
    contact = when(run(driver, HOUR_AGO))
    slow = when(run(driver, SHIFT_CLOCK, -40 * DAY_MS))  # the battery ran flat
    assert slow < contact - timedelta(days=21)
    for n, name in enumerate(("慢钟一", "慢钟二"), 1):
        fill_and_save(driver, name, "36.6")
        wait(
            driver,
            lambda d, name=name: (
                f"已登记：{name}" in saved_text(d) and "已保存在本机" in saved_text(d)
            ),
            f"{name} saved on this phone",
        )
        assert run(driver, SUMMARY)["waiting"] == n
    kept = {name: (when(at), contact_at) for name, at, contact_at in run(driver, KEPT_RECORDS)}
    assert set(kept) == {"慢钟一", "慢钟二"}
    for at, contact_at in kept.values():
        assert isinstance(contact_at, int | float), kept  # it remembers the contact before it
        assert when(contact_at) == contact
        assert at < contact - timedelta(days=21)  # stamped by the slow clock
    assert server.query("SELECT COUNT(*) FROM entries")[0][0] == 0

    run(driver, SHIFT_CLOCK, 0)  # network time came back with the signal
    server.start()
    wait(driver, lambda d: run(d, SUMMARY)["waiting"] == 0, "the outbox sent", timeout=60)
    sent = datetime.now(UTC)
    summary = run(driver, SUMMARY)
    assert (summary["waiting"], summary["attention"]) == (0, 0)
    rows = server.query("SELECT name, recorded_at, device FROM entries ORDER BY name")
    assert [(r[0], r[2]) for r in rows] == [("慢钟一", device), ("慢钟二", device)]
    assert server.query("SELECT COUNT(*) FROM sync_rejects")[0][0] == 0
    stored = {r[0]: datetime.fromisoformat(r[1]) for r in rows}
    for at in stored.values():  # after the contact, no later than the sending
        assert contact <= at <= sent, (contact, at, sent)
    # The phone's clock ran at its pace from a wrong start: the gap between them is kept.
    assert stored["慢钟二"] - stored["慢钟一"] == kept["慢钟二"][0] - kept["慢钟一"][0]
