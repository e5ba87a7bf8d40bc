"""What a phone downloads, and how soon it can register someone, at a gate with one bar.

    .venv/bin/python bench/page_weight.py [--cpu 6] [--repeats 5]

Runs a real `fieldapp serve` (tests/servers.py) with the demo and Debian's Chromium enrolled as
a gate phone of the demo compound (a device cookie), on "Slow 4G": 562.5 ms latency, 180,000 B/s
down, 84,375 B/s up, the page's CPU --cpu times slower. The page is throttled through its own
CDP session; the service worker is a target of its own, attached to through the page's session
(Target.setAutoAttach, messages through Target.sendMessageToTarget) and throttled before it runs.
Chromium refuses CPU throttling for workers, so only the service worker's network is slowed.

Bytes are what crossed the wire: Network.loadingFinished's encodedDataLength (headers and
compressed body) of every request the page and the service worker sent to the network; answers
the service worker gave the page are not counted twice.

(a) First visit of the gate page, nothing kept: bytes until the page, the service worker's install
    (the app shell) and its kept copy of the page are done; time to a usable form.
(b) Repeat visits (a new tab, the network still Slow 4G for the service worker too): time to a
    usable form, and the bytes.

"Usable" is measured in the page from navigation start: the form is there, its save button is
enabled, the form is not inert, htmx has taken it over (the scripts ran, DOMContentLoaded) and
the frame showing it has been painted. Targets: (a) <= 40 KB and <= 1,500 ms; (b) <= 400 ms.
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
  function check() {
    const form = document.getElementById("entry-form");
    const save = form && form.querySelector("button.save");
    const ready = save && !save.disabled && !form.inert && !form.closest("[inert]")
      && window.htmx && "htmx-internal-data" in form;
    if (!ready) return requestAnimationFrame(check);
    // The next frame is painted with the form in it.
    requestAnimationFrame(() => setTimeout(() => { marks.usable = performance.now(); }, 0));
  }
  document.addEventListener("DOMContentLoaded", () => {
    marks.dcl = performance.now();
    setTimeout(check, 0);  // after htmx's own DOMContentLoaded handler
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
            return marks
        page.wait_for_timeout(20)
    raise SystemExit("the form never became usable")


def show(requests: list[dict], origin: str) -> int:
    total = 0
    for r in sorted(requests, key=lambda r: (r["by"], r["url"])):
        path = r["url"].removeprefix(origin)
        note = r.get("failed") or f"{r.get('status', '?')} {r.get('encoding') or 'identity'}"
        print(f"    {r['by']:<4} {path:<58} {r['bytes']:>7,} B  {note}")
        total += r["bytes"]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=float, default=6, help="the page's CPU slow-down")
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
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
            context.add_init_script(USABLE)
            fixtures.enrol_cookie(server, context, site["id"])

            page = context.new_page()
            wire = Wire(context, page, SLOW_4G, args.cpu)
            page.goto(gate, wait_until="commit")
            first = usable_ms(page)
            assert page.locator("#entry-form").count() == 1, "not the gate form"
            deadline = time.monotonic() + 90
            while not page.evaluate(READY):  # the service worker installed and kept the page
                if time.monotonic() > deadline:
                    raise SystemExit("the service worker did not keep the page")
                page.wait_for_timeout(200)
            wire.settle(page)
            print(
                f"Slow 4G (562.5 ms, 180,000 B/s down, 84,375 B/s up), page CPU {args.cpu:g}x;"
                " the service worker's network throttled too"
            )
            print("(a) first visit of /s/<code>, an enrolled phone, nothing kept:")
            if not args.quiet:
                show(wire.wire(), server.url)
            script = script_bytes(server.url + "/sw.js")
            if not args.quiet:
                print(
                    f"    {'sw':<4} {'/sw.js (not seen by CDP: measured by a request)':<58} {script:>7,} B"
                )
            first_bytes = sum(r["bytes"] for r in wire.wire()) + script
            sw_bytes = sum(r["bytes"] for r in wire.wire() if r["by"] == "sw") + script
            print(
                f"  over the wire: {first_bytes:,} B ({first_bytes / 1024:.1f} KB, of which the"
                f" service worker's own fetches {sw_bytes / 1024:.1f} KB) in"
                f" {len(wire.wire()) + 1} requests; target 40 KB:"
                f" {'within' if first_bytes <= FIRST_TARGET_BYTES else 'OVER'}"
            )
            print(
                f"  usable form: {first['usable']:.0f} ms (DOMContentLoaded {first['dcl']:.0f} ms);"
                f" target 1,500 ms: {'within' if first['usable'] <= FIRST_TARGET_MS else 'OVER'}"
            )
            page.close()

            times, sizes, waits = [], [], []
            for i in range(args.repeats):
                tab = context.new_page()
                wire = Wire(context, tab, SLOW_4G, args.cpu)
                started = time.monotonic()
                tab.goto(gate, wait_until="commit")
                marks = usable_ms(tab)
                times.append(marks["usable"])
                waits.append(time.monotonic() - started)
                wire.settle(tab, quiet=1.5)
                sizes.append(sum(r["bytes"] for r in wire.wire()))
                if i == 0 and not args.quiet:
                    print(
                        "(b) repeat visit, a new tab; what still crossed the wire the first time:"
                    )
                    show(wire.wire(), server.url)
                tab.close()
            median = statistics.median(times)
            print(
                f"  usable form: median {median:.0f} ms, all {', '.join(f'{t:.0f}' for t in times)}"
                f" ms ({args.repeats} repeat visits); target 400 ms:"
                f" {'within' if median <= REPEAT_TARGET_MS else 'OVER'}"
            )
            print(
                f"  over the wire per repeat visit (in the background): median"
                f" {statistics.median(sizes) / 1024:.1f} KB"
            )
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
