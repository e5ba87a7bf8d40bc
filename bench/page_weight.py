"""What a phone downloads, and how soon it can register someone, at a gate with one bar.

    .venv/bin/python bench/page_weight.py [--cpu 6] [--firsts 3] [--repeats 5] [--quiet]

Runs a real `fieldapp serve` (tests/servers.py) with the demo and Debian's Chromium enrolled as
a gate phone of the demo compound (a device cookie), on "Slow 4G": 562.5 ms latency, 180,000 B/s
down, 84,375 B/s up, the page's CPU --cpu times slower. The page is throttled through its own
CDP session; the service worker is a target of its own, attached to through the page's session
(Target.setAutoAttach, messages through Target.sendMessageToTarget) and throttled before it runs.
Chromium refuses CPU throttling for workers ("only supported for pages"), so only the service
worker's network is slowed. Plain HTTP/1.1 to waitress: at most 6 connections, where a phone
behind the README's Caddy gets HTTP/2.

Bytes are what crossed the wire: Network.loadingFinished's encodedDataLength (headers and
compressed body) of every request the page and the service worker sent to the network; answers
the service worker gave the page are not counted twice. The worker's own script is fetched
before its target exists, so it is measured by a request of its own, as Chromium asks for it.

(a) First visits (each a new phone), nothing kept: the bytes of the page and what it loads, and
    of the service worker's install behind it (the app shell, its copy of the page); the times.
(b) Repeat visits (the gate page opened again in the same tab, the network still Slow 4G for
    the service worker too): the times, and the bytes that still cross the wire behind the page.

Times are measured in the page from navigation start. "Painted": the first paint, with the form
there, its save button enabled and the form not inert (typing works and saving works as a plain
POST). "Usable": our scripts have taken the form over too (rules.js loaded, gate.js's handlers
attached: FieldGate.ready; until 2026-12-06 the gate page used htmx and this waited for htmx
bound to the form) and the frame showing it has been painted. The scripts gate.js loads after
that (the status line, the outbox's sending, the roster) are not waited for. Targets: (a) <= 40 KB, usable <= 1,500 ms; (b) <= 400 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import servers as fixtures  # noqa: E402 -- the tests' real instances and enrolment

SLOW_4G = {
    "offline": False,
    "latency": 562.5,
    "downloadThroughput": 180_000,
    "uploadThroughput": 84_375,
}
FIRST_TARGET_BYTES = 40 * 1024
FIRST_TARGET_MS = 1500
REPEAT_TARGET_MS = 400

# Injected before any of the page's scripts: note when the form becomes usable.
USABLE = """(() => {
  const marks = (window.__fieldapp_bench = {});
  const operable = () => {
    const form = document.getElementById("entry-form");
    const save = form && form.querySelector("button.save");
    return !!save && !save.disabled && !form.inert && !form.closest("[inert]");
  };
  // Painted: the form on screen, typing and its save button work (a plain POST without scripts).
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.name === "first-contentful-paint" && operable()) marks.painted = e.startTime;
    }
  }).observe({ type: "paint", buffered: true });
  // Usable: and our scripts have taken it over: the phone's rules (rules.js) and gate.js's
  // handlers (it sends the form, to the instance or the service worker's outbox; it sets
  // FieldGate.ready once they are attached).
  function check() {
    if (!(operable() && window.FieldRules && window.FieldGate && FieldGate.ready)) {
      return requestAnimationFrame(check);
    }
    // The next frame is painted with the form in it.
    requestAnimationFrame(() => setTimeout(() => { marks.usable = performance.now(); }, 0));
  }
  document.addEventListener("DOMContentLoaded", () => {
    marks.dcl = performance.now();
    setTimeout(check, 0);  // after gate.js's own DOMContentLoaded handler
  }, { once: true });
})();"""

READY = """async () => {
  if (!navigator.serviceWorker.controller) return false;
  return !!(await caches.match(location.pathname, {ignoreVary: true}));
}"""


class Wire:
    """One tab's network as Chromium sees it: the page's requests and its service worker's,
    both throttled to `conditions`, with the bytes each took on the wire."""

    def __init__(self, context, page, conditions: dict, cpu: float):
        self.conditions = conditions
        self.requests: dict[tuple[str, str], dict] = {}
        self.worker_sessions: list[str] = []
        self._id = 0
        self.cdp = context.new_cdp_session(page)
        self.last_event = time.monotonic()
        for event in ("requestWillBeSent", "responseReceived", "loadingFinished", "loadingFailed"):
            self.cdp.on(f"Network.{event}", lambda p, e=event: self._network("page", e, p))
        self.cdp.on("Target.attachedToTarget", self._attached)
        self.cdp.on("Target.receivedMessageFromTarget", self._received)
        self.cdp.send("Network.enable")
        self.cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
        self.cdp.send("Network.emulateNetworkConditions", conditions)
        self.cdp.send("Emulation.setCPUThrottlingRate", {"rate": cpu})
        # The service worker (now or when it starts) waits for us: throttled before it fetches.
        self.cdp.send(
            "Target.setAutoAttach",
            {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": False},
        )

    def _to(self, session: str, method: str, params: dict | None = None) -> None:
        self._id += 1
        message = json.dumps({"id": self._id, "method": method, "params": params or {}})
        self.cdp.send("Target.sendMessageToTarget", {"sessionId": session, "message": message})

    def _attached(self, event: dict) -> None:
        session = event["sessionId"]
        if event["targetInfo"]["type"] == "service_worker":
            self.worker_sessions.append(session)
            self._to(session, "Network.enable")
            self._to(session, "Network.emulateNetworkConditions", self.conditions)
        self._to(session, "Runtime.runIfWaitingForDebugger")

    def _received(self, event: dict) -> None:
        message = json.loads(event["message"])
        method = message.get("method", "")
        if method.startswith("Network."):
            self._network(event["sessionId"], method.split(".", 1)[1], message["params"])

    def _network(self, session: str, event: str, params: dict) -> None:
        key = (session, params["requestId"])
        self.last_event = time.monotonic()
        if event == "requestWillBeSent":
            self.requests.setdefault(key, {"url": params["request"]["url"], "bytes": 0})
            self.requests[key].update(done=False, by="sw" if session != "page" else "page")
        elif key not in self.requests:
            return
        elif event == "responseReceived":
            response = params["response"]
            self.requests[key]["from_sw"] = bool(response.get("fromServiceWorker"))
            self.requests[key]["status"] = response.get("status")
            # Until it finishes: what arrived so far (a body nobody reads may never finish).
            self.requests[key]["bytes"] = response.get("encodedDataLength", 0)
            self.requests[key]["encoding"] = {
                k.lower(): v for k, v in response.get("headers", {}).items()
            }.get("content-encoding", "")
        elif event == "loadingFinished":
            self.requests[key].update(done=True, bytes=params["encodedDataLength"])
        elif event == "loadingFailed":
            self.requests[key].update(done=True, failed=params.get("errorText"))

    def wire(self) -> list[dict]:
        """The requests that went to the network (not answered by the service worker)."""
        return [r for r in self.requests.values() if not r.get("from_sw")]

    def settle(self, page, quiet: float = 2.0, seconds: float = 90) -> None:
        """Wait until the network has been quiet for `quiet` seconds: nothing waits for an
        answer, and no request has moved on. (A body nobody reads may stay unfinished.)"""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            page.wait_for_timeout(100)  # lets Playwright deliver the CDP events
            waiting = any("status" not in r and not r["done"] for r in self.requests.values())
            if not waiting and time.monotonic() - self.last_event >= quiet:
                return
        pending = [r for r in self.requests.values() if not r["done"]]
        raise SystemExit(f"the network did not settle: {pending}")


def script_bytes(url: str) -> int:
    """The service worker's own script: the browser fetches it before the worker's target
    exists, so CDP never reports it; fetched here as Chromium asks for it, headers included."""
    request = urllib.request.Request(
        url, headers={"Accept-Encoding": "gzip, deflate, br, zstd", "Service-Worker": "script"}
    )
    with urllib.request.urlopen(request) as response:
        body = response.read()  # as sent: urllib does not decode a Content-Encoding
        head = f"HTTP/1.1 {response.status} {response.reason}\r\n{response.headers}"
    return len(head.encode("latin-1")) + len(body)


def usable_ms(page, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        marks = page.evaluate("window.__fieldapp_bench || {}")
        if "usable" in marks:
            marks.setdefault("painted", marks["usable"])  # painted before the form was whole
            return marks
        page.wait_for_timeout(20)
    raise SystemExit("the form never became usable")


def show(requests: list[dict], origin: str) -> None:
    for r in sorted(requests, key=lambda r: (r["by"], r["url"])):
        path = r["url"].removeprefix(origin)
        note = r.get("failed") or f"{r.get('status', '?')} {r.get('encoding') or 'identity'}"
        print(f"    {r['by']:<4} {path:<58} {r['bytes']:>7,} B  {note}")


def kb(n: float) -> str:
    return f"{n / 1024:.1f} KB"


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values):.0f} ms ({', '.join(f'{v:.0f}' for v in values)})"


def verdict(value: float, target: float) -> str:
    return "within" if value <= target else "OVER"


def first_visit(browser, server, site, args, show_requests: bool) -> tuple[dict, int, int]:
    """One phone's first visit: (marks, the page's bytes, the service worker's bytes)."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    context.add_init_script(USABLE)
    fixtures.enrol_cookie(server, context, site["id"])
    page = context.new_page()
    wire = Wire(context, page, SLOW_4G, args.cpu)
    page.goto(f"{server.url}/s/{site['code']}", wait_until="commit")
    marks = usable_ms(page)
    assert page.locator("#entry-form").count() == 1, "not the gate form"
    deadline = time.monotonic() + 90
    while not page.evaluate(READY):  # the service worker installed and kept the page
        if time.monotonic() > deadline:
            raise SystemExit("the service worker did not keep the page")
        page.wait_for_timeout(200)
    wire.settle(page)
    # The worker's own script is fetched before its target exists: measured apart.
    requests = [r for r in wire.wire() if urlsplit(r["url"]).path != "/sw.js"]
    script = script_bytes(server.url + "/sw.js")
    if show_requests:
        show(requests, server.url)
        print(
            f"    {'sw':<4} {'/sw.js (not seen by CDP: measured by a request)':<58} {script:>7,} B"
        )
    page_bytes = sum(r["bytes"] for r in requests if r["by"] == "page")
    sw_bytes = sum(r["bytes"] for r in requests if r["by"] == "sw") + script
    context.close()
    return marks, page_bytes, sw_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=float, default=6, help="the page's CPU slow-down")
    parser.add_argument("--firsts", type=int, default=3, help="first visits (new phones)")
    parser.add_argument("--repeats", type=int, default=5, help="repeat visits to time")
    parser.add_argument("--quiet", action="store_true", help="no list of requests")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    server = fixtures.make_server(folder / "instance")
    server.start()
    try:
        site = server.query(
            "SELECT id, code FROM sites WHERE kind = 'residential' AND active = 1"
            " ORDER BY name LIMIT 1"
        )[0]
        gate = f"{server.url}/s/{site['code']}"
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=fixtures.CHROMIUM,
                args=["--no-sandbox", "--disable-background-networking"],
            )
            print(
                f"Slow 4G (562.5 ms, 180,000 B/s down, 84,375 B/s up), page CPU {args.cpu:g}x;"
                " the service worker's network throttled too (its CPU cannot be)"
            )
            print("(a) first visit of /s/<code>, an enrolled phone, nothing kept:")
            firsts = [
                first_visit(browser, server, site, args, i == 0 and not args.quiet)
                for i in range(args.firsts)
            ]
            page_bytes = statistics.median(f[1] for f in firsts)
            sw_bytes = statistics.median(f[2] for f in firsts)
            print(
                f"  over the wire: the page and what it loads {kb(page_bytes)}; the service"
                f" worker's install behind it (app shell, kept page) {kb(sw_bytes)};"
                f" together {kb(page_bytes + sw_bytes)}"
                f" (target 40 KB: the page {verdict(page_bytes, FIRST_TARGET_BYTES)},"
                f" together {verdict(page_bytes + sw_bytes, FIRST_TARGET_BYTES)})"
            )
            painted = [f[0]["painted"] for f in firsts]
            usable = [f[0]["usable"] for f in firsts]
            print(f"  form painted and operable: {ms(painted)}")
            print(
                f"  usable form (scripts ready): {ms(usable)};"
                f" target 1,500 ms: {verdict(statistics.median(usable), FIRST_TARGET_MS)}"
            )

            # Repeat visits in the tab of a first visit: its service worker stays attached, so
            # it is throttled from the first request of each visit.
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
            context.add_init_script(USABLE)
            fixtures.enrol_cookie(server, context, site["id"])
            tab = context.new_page()
            wire = Wire(context, tab, SLOW_4G, args.cpu)
            tab.goto(gate)
            while not tab.evaluate(READY):
                tab.wait_for_timeout(200)
            wire.settle(tab)
            marks, sizes = [], []
            for i in range(args.repeats):
                tab.goto(
                    server.url + "/ping"
                )  # away, staying on the origin (in the worker's scope)
                wire.settle(tab, quiet=1.0)
                wire.requests.clear()
                tab.goto(gate, wait_until="commit")
                marks.append(usable_ms(tab))
                wire.settle(tab, quiet=1.5)
                sizes.append(sum(r["bytes"] for r in wire.wire()))
                if i == 0 and not args.quiet:
                    print("(b) repeat visit; what crossed the wire (behind the page):")
                    show(wire.wire(), server.url)
            if args.quiet:
                print("(b) repeat visit:")
            usable = [m["usable"] for m in marks]
            print(f"  form painted and operable: {ms([m['painted'] for m in marks])}")
            print(
                f"  usable form (scripts ready): {ms(usable)};"
                f" target 400 ms: {verdict(statistics.median(usable), REPEAT_TARGET_MS)}"
            )
            print(f"  over the wire, behind the page: median {kb(statistics.median(sizes))}")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
