"""A phone in the browser tests: its service worker ready, the gate form filled and saved, its
outbox read; and what the instance holds."""

from __future__ import annotations

import json

import pytest
from servers import enrol_cookie
from wait import wait_until

# The two phone screens the gate must work on without scrolling to what the volunteer taps.
SCREENS = [pytest.param((360, 640), id="360x640"), pytest.param((390, 844), id="390x844")]

# Whether an element is wholly on the screen.
IN_VIEW = """(el) => {
  const r = el.getBoundingClientRect();
  return r.height > 0 && r.top >= 0 && r.left >= 0
    && r.bottom <= window.innerHeight && r.right <= window.innerWidth;
}"""


def until(page, script: str, arg=None, seconds: float = 60) -> None:
    """Wait until a script is true in the page. evaluate() awaits an async script's answer,
    which Playwright's wait_for_function does not (it takes the promise for true)."""
    wait_until(lambda: page.evaluate(script, arg), seconds, script)


READY = """async () => {
  if (!navigator.serviceWorker.controller) return false;
  return !!(await caches.match(location.pathname, {ignoreVary: true}));
}"""


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
        until(page, READY, seconds=60)  # a limit for a loaded machine, not a measure
    except AssertionError:
        raise AssertionError(page.evaluate(DIAG)) from None


def fill(page, name: str, temperature: str = "36.5") -> None:
    # As a volunteer does: wait while the form shows the last save on its way.
    page.wait_for_selector("#entry-form:not([aria-busy])")
    page.check("#entry-form [name=direction][value=in]")
    page.check("#entry-form [name=person_type][value=resident]")
    page.fill("#entry-form [name=name]", name)
    page.fill("#entry-form [name=phone]", "13812345678")
    page.fill("#entry-form [name=temperature]", temperature)
    if 37.3 <= float(temperature) <= 43:
        page.check("#entry-form [name=fever_action][value=clinic]")


def save(page, name: str, temperature: str = "36.5") -> None:
    fill(page, name, temperature)
    page.click("#entry-form button.save")


def outbox_loaded(page) -> None:
    """Wait for outbox.js: the gate page loads it once its form is usable (static/js/gate.js)."""
    until(page, "() => !!self.FieldOutbox", seconds=30)


def waiting(page) -> int:
    outbox_loaded(page)
    return page.evaluate("async () => (await FieldOutbox.summary()).waiting")


def wait_waiting(page, n: int, seconds: float = 30) -> None:
    outbox_loaded(page)
    until(page, "async (n) => (await FieldOutbox.summary()).waiting === n", n, seconds)


def attention(page) -> list[tuple[str, str]]:
    outbox_loaded(page)
    return [
        tuple(r)
        for r in page.evaluate(
            "async () => (await FieldOutbox.all('attention')).map(r => [r.data.name, r.reason])"
        )
    ]


def exported_outbox(server, page, path, listed: str):
    """The phone's outbox exported into the file at path, from its outbox page (offline: the app
    shell's), once the entry named `listed` shows there as waiting."""
    page.goto(server.url + "/outbox")
    page.wait_for_selector(f"[data-outbox-waiting] li:has-text('{listed}')")
    with page.expect_download() as download:
        page.click("[data-export]")
    download.value.save_as(path)
    return path


def names(server) -> list[str]:
    return [r[0] for r in server.query("SELECT name FROM entries ORDER BY name")]


def no_duplicates(server) -> None:
    rows = server.query("SELECT uuid, COUNT(*) FROM entries GROUP BY uuid HAVING COUNT(*) > 1")
    assert rows == []


def queue(page, count: int, prefix: str = "离线") -> None:
    """Put records straight into the outbox, as the service worker does when offline."""
    outbox_loaded(page)
    page.evaluate(
        """async ([count, prefix]) => {
          const form = document.getElementById("entry-form");
          for (let i = 0; i < count; i++) {
            const data = new FormData(form);
            data.delete("uuid");  // each record its own id, as a fresh form gives
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


def tap_in_view(page, selector: str) -> None:
    """A tap on something already on the screen: no scrolling is needed to reach it."""
    target = page.locator(selector).first
    target.wait_for(state="visible")
    assert target.evaluate(IN_VIEW), f"{selector} is not on the screen"
    target.tap()


def first_of_the_shift(page) -> None:
    """The volunteer's first entry (a visitor typed in, 王五): the direction tapped and their own
    name typed, once."""
    page.locator("#direction label", has_text="进").tap()
    page.locator("#person_type label", has_text="访客").tap()
    page.locator("#name").fill("王五")
    if page.locator("#phone").count():
        page.locator("#phone").fill("13912345678")
    page.locator("#temperature").fill("36.5")
    page.locator("#volunteer").fill("李四")
    page.locator("button.save").tap()
    page.locator("#gate-saved", has_text="王五").wait_for()


def confirmation_in_view(page, name: str) -> str:
    """The confirmation of the entry of `name`, which must be on the screen; its text."""
    saved = page.locator(f"#gate-saved:has-text('{name}')")
    saved.wait_for()
    assert saved.evaluate(IN_VIEW), "the confirmation is off the screen"
    return saved.inner_text()


def queue_refused(page) -> None:
    """Put in the outbox an entry the instance refuses (45 °C), as an older version of the app
    that did not check the rules queued it."""
    page.evaluate(
        """async () => {
          const data = new FormData(document.getElementById("entry-form"));
          data.delete("uuid");
          for (const [k, v] of Object.entries({name: "坏体温", direction: "in",
               person_type: "resident", phone: "13812345678", temperature: "45"})) data.set(k, v);
          await FieldOutbox.add(FieldOutbox.fromForm(data, "entry", []));
        }"""
    )


def fill_visitor(page, name: str, consent: bool = True) -> None:
    """The visitor's own phone, on the site's registration page: the form filled (no
    temperature), consent given unless said otherwise."""
    page.fill("#name", name)
    if page.locator("#phone").count():
        page.fill("#phone", "13700001111")
    page.check("#self-register [name=direction][value=in]")
    page.check("#self-register [name=health_code][value=green]")
    if consent:
        page.check("#self-register [name=consent]")


def register_visitor(page, name: str) -> None:
    """The visitor's form filled and sent; wait for the pass and its QR code."""
    fill_visitor(page, name)
    page.click("#self-register button[type=submit]")
    page.wait_for_selector("[data-pass-qr] svg")


class Throttle:
    """The network of a page AND of its service worker (its own CDP target: Playwright's
    set_offline reaches only the page) slowed or cut through CDP, as bench/page_weight.py does.
    Make it before the page (re)loads, so that the worker is attached when it starts."""

    def __init__(self, context, page):
        self.cdp = context.new_cdp_session(page)
        self.workers: list[str] = []
        self.conditions: dict | None = None
        self._id = 0
        self.cdp.on("Target.attachedToTarget", self._attached)
        self.cdp.send("Network.enable")
        self.cdp.send(
            "Target.setAutoAttach",
            {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": False},
        )

    def _to(self, session: str, method: str, params: dict | None = None) -> None:
        self._id += 1
        message = json.dumps({"id": self._id, "method": method, "params": params or {}})
        self.cdp.send("Target.sendMessageToTarget", {"sessionId": session, "message": message})

    def _attached(self, event: dict) -> None:
        if event["targetInfo"]["type"] != "service_worker":
            return
        session = event["sessionId"]
        self.workers.append(session)
        self._to(session, "Network.enable")
        if self.conditions:
            self._to(session, "Network.emulateNetworkConditions", self.conditions)
        self._to(session, "Runtime.runIfWaitingForDebugger")

    def set(self, latency_ms: int = 0, down: int = -1, up: int = -1, offline: bool = False):
        """Bytes per second down and up (-1: as fast as it goes), a latency, or no network."""
        self.conditions = {
            "offline": offline,
            "latency": latency_ms,
            "downloadThroughput": down,
            "uploadThroughput": up,
        }
        self.cdp.send("Network.emulateNetworkConditions", self.conditions)
        for session in self.workers:
            self._to(session, "Network.emulateNetworkConditions", self.conditions)


def add_site(server, name: str) -> str:
    """A new site of 金坛区 added by the CLI: its code ("" if the CLI said nothing)."""
    out = server.cli(
        "site", "add", "--name", name, "--district", "金坛区", "--contact", "王主任"
    ).stdout
    return server.query("SELECT code FROM sites WHERE name = ?", (name,))[0][0] if out else ""


def one_entry_waiting(server, context, page, site: str, person: str) -> tuple[str, str]:
    """A new site and its enrolled phone, offline, with one entry (person) kept on it: the
    site's code and id."""
    code = add_site(server, site)
    site_id = server.query("SELECT id FROM sites WHERE code = ?", (code,))[0][0]
    enrol_cookie(server, context, site_id)
    page.goto(f"{server.url}/s/{code}")
    ready(page)
    context.set_offline(True)
    save(page, person)
    wait_waiting(page, 1)
    return code, site_id


def worker_versions(context, page) -> tuple:
    """A DevTools session on the page and its service worker versions by id, kept up to date
    from the session's events (for a test to stop a version as an idle phone's browser would)."""
    cdp = context.new_cdp_session(page)
    versions: dict[str, dict] = {}
    cdp.on(
        "ServiceWorker.workerVersionUpdated",
        lambda event: versions.update({v["versionId"]: v for v in event["versions"]}),
    )
    cdp.send("ServiceWorker.enable")
    return cdp, versions


# Saves count entries named prefix0000, prefix0001… through the gate form, one after the other.
SAVE_MANY = """async ([count, prefix]) => {
  const form = document.getElementById("entry-form");
  for (let i = 0; i < count; i++) {
    const saved = new Promise((resolve) =>
      document.addEventListener("outbox-saved", resolve, { once: true }));
    form.querySelector("[name=direction][value=in]").checked = true;
    form.querySelector("[name=person_type][value=resident]").checked = true;
    form.querySelector("[name=name]").value = prefix + String(i).padStart(4, "0");
    form.querySelector("[name=phone]").value = "13812345678";
    form.querySelector("[name=temperature]").value = "36.4";
    form.querySelector("button.save").click();
    await saved;
  }
}"""

# The page's service worker registration, caches and the served sw.js's VERSION, for a message.
WORKER_STATE = """async () => {
  const reg = await navigator.serviceWorker.getRegistration();
  const url = (w) => w && (w.scriptURL.split('?')[0] + ' ' + w.state);
  const sw = await fetch('/sw.js', {cache: 'no-store'}).then(async (r) => r.status + ' ' +
    ((await r.text()).match(/const VERSION = "([^"]*)"/) || [])[1]).catch(e => String(e));
  return {caches: await caches.keys(), installing: url(reg.installing), waiting: url(reg.waiting),
          active: url(reg.active), controller: !!navigator.serviceWorker.controller, sw};
}"""


class HeldSaves:
    """The gate form's saves held on their way to the instance (the page's and its service
    worker's requests alike), as one bar of signal holds them, until the test lets each go on
    (answer: the instance stores it and answers) or cuts it (cut: the connection breaks, and
    the phone keeps the entry in its outbox). Other requests go through."""

    PATTERN = "**/s/*/entries"
    METHOD = "POST"

    def __init__(self, context):
        self.context = context
        self.held: list = []
        context.route(self.PATTERN, self._hold)

    def _hold(self, route) -> None:
        if route.request.method == self.METHOD:
            self.held.append(route)
        else:
            route.continue_()

    def wait(self, page, count: int = 1) -> None:
        """Wait until `count` requests are held (Playwright runs the route handlers only while
        the test is in one of its calls: a short wait_for_timeout, polled)."""
        wait_until(
            lambda: page.wait_for_timeout(20) or len(self.held) >= count,
            30,
            f"{count} request(s) held on their way",
        )

    def answer(self) -> None:
        self.held.pop(0).continue_()

    def cut(self) -> None:
        self.held.pop(0).abort("internetdisconnected")

    def stop(self) -> None:
        """Let the saves that follow through."""
        self.context.unroute(self.PATTERN, self._hold)


class HeldLookups(HeldSaves):
    """The lookups of a visitor's registration (a pass scanned) held on their way, as HeldSaves
    holds saves: answer() lets the instance answer one."""

    PATTERN = "**/s/*/registrations/*"
    METHOD = "GET"


# Loads the pass scanner's scripts (scanner.js, passes.js), as the first tap on "scan" does, for
# a test to call FieldPasses.scanned(text) as the camera would.
LOAD_SCANNER = """async () => {
  for (const src of document.getElementById("pass-scanner").dataset.scripts.split(" ")) {
    await new Promise((ok, fail) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = ok;
      s.onerror = fail;
      document.head.append(s);
    });
  }
}"""
