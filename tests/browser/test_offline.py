"""The phone offline: entries kept in the outbox and delivered exactly once, whatever happens."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.browser

READY = """async () => {
  if (!navigator.serviceWorker.controller) return false;
  return !!(await caches.match(location.pathname, {ignoreVary: true}));
}"""


def until(page, script: str, arg=None, timeout: float = 30) -> None:
    """Wait until an (async) script is true in the page; evaluate() awaits what it returns."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(script, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {script}")
        time.sleep(0.05)


DIAG = """async () => {
  const reg = await navigator.serviceWorker.getRegistration();
  const keys = [];
  for (const name of await caches.keys()) {
    for (const r of await (await caches.open(name)).keys()) keys.push(name + " " + r.url);
  }
  return {controller: !!navigator.serviceWorker.controller,
          active: reg && reg.active && reg.active.state, keys: keys.filter(k => !k.includes("static"))};
}"""


def ready(page) -> None:
    """Wait until the service worker controls the page and keeps it for offline use."""
    try:
        until(page, READY, timeout=20)
    except AssertionError:
        raise AssertionError(page.evaluate(DIAG)) from None


def fill(page, name: str, temperature: str = "36.5") -> None:
    page.check("#entry-form [name=direction][value=in]")
    page.check("#entry-form [name=person_type][value=resident]")
    page.fill("#entry-form [name=name]", name)
    page.fill("#entry-form [name=phone]", "13812345678")
    page.fill("#entry-form [name=temperature]", temperature)
    if float(temperature) >= 37.3:
        page.check("#entry-form [name=fever_action][value=clinic]")


def save(page, name: str, temperature: str = "36.5") -> None:
    fill(page, name, temperature)
    page.click("#entry-form button.save")


def waiting(page) -> int:
    return page.evaluate("async () => (await FieldOutbox.summary()).waiting")


def wait_waiting(page, n: int, timeout: float = 30) -> None:
    until(page, "async (n) => (await FieldOutbox.summary()).waiting === n", n, timeout)


def attention(page) -> list[tuple[str, str]]:
    return [
        tuple(r)
        for r in page.evaluate(
            "async () => (await FieldOutbox.all('attention')).map(r => [r.data.name, r.reason])"
        )
    ]


def names(server) -> list[str]:
    return [r[0] for r in server.query("SELECT name FROM entries ORDER BY name")]


def no_duplicates(server) -> None:
    rows = server.query("SELECT uuid, COUNT(*) FROM entries GROUP BY uuid HAVING COUNT(*) > 1")
    assert rows == []


def queue(page, count: int, prefix: str = "离线") -> None:
    """Put records straight into the outbox, as the service worker does when offline."""
    page.evaluate(
        """async ([count, prefix]) => {
          const form = document.getElementById("entry-form");
          for (let i = 0; i < count; i++) {
            const data = new FormData(form);
            data.set("name", prefix + String(i).padStart(4, "0"));
            data.set("person_type", "resident");
            data.set("direction", "in");
            data.set("phone", "13812345678");
            data.set("temperature", "36.6");
            await FieldOutbox.add(FieldOutbox.fromForm(data, "entry", []));
          }
        }""",
        [count, prefix],
    )


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
