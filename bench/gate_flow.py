"""The gate at shift change: taps and typed values to get one person through, per flow.

    .venv/bin/python bench/gate_flow.py [--viewport 360x640] [--viewport 390x844]

Runs a real `fieldapp serve` on the demo data and Debian's Chromium (the browser tests' set-up)
as an enrolled gate phone with a touch screen, and drives each flow the way a volunteer would,
counting honestly:
- a tap is a touch on the screen: a field to focus it, a match, a choice, a button, a "more";
- a typed value is one run of the keyboard into one field (2 characters of a name, a reading);
- a scroll is a swipe needed because the next thing to tap was not on the screen.
A step is only taken when the page needs it: a direction already chosen, a field already
focused or a volunteer already filled in costs nothing. After each save the bench checks that
the confirmation naming the person is on the screen and that the next form is clean.

Flows: FLOWS below, in order: the roster search; a resident's printed pass scanned; a
visitor's pass (their own registration, on their screen) scanned. The camera is Chromium's fake
one; what it decodes is handed to the page as the scanner hands it (FieldPasses.scanned), so a
scan costs what it costs the volunteer: a tap on "scan" when the camera is not on already (after
a save by scan it comes back by itself for the next person), and the person showing their code.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "browser"))

import servers as fixtures  # noqa: E402 -- the tests' real instances and enrolment
from phone_support import IN_VIEW  # noqa: E402

VOLUNTEER = "李四"
# Residents of the demo's residential compound, and what the volunteer types to find each.
RESIDENTS = [("张建国", "张建", "36.6"), ("李秀英", "李秀", "36.4"), ("王磊", "王磊", "36.8")]

CLEAN = """() => {
  const f = document.getElementById("entry-form");
  const shown = (el) => !!el && el.getClientRects().length > 0;
  const dir = f.querySelector("[name=direction]:checked");
  return {
    temperature_empty: f.elements.temperature.value === "",
    no_errors: ![...document.querySelectorAll("#gate .error, #gate .errors")].some(shown),
    no_fever_block: !shown(f.querySelector(".fever-note"))
      && !shown(f.querySelector(".fever-action.fever")),
    direction_kept: dir ? dir.value : "",
    volunteer_kept: f.elements.volunteer ? f.elements.volunteer.value : "",
  };
}"""


class NotBuilt(Exception):
    """The page has no such flow yet."""


@dataclass
class Count:
    """What one person cost at the gate."""

    taps: int = 0
    typed: int = 0
    scrolls: int = 0
    steps: list[str] = field(default_factory=list)

    def tap(self, page, locator, what: str) -> None:
        locator.wait_for(state="visible")
        if not locator.evaluate(IN_VIEW):
            self.scrolls += 1
            self.steps.append("scroll")
            locator.scroll_into_view_if_needed()
        locator.tap()
        self.taps += 1
        self.steps.append(f"tap {what}")

    def type(self, page, text: str, what: str) -> None:
        page.keyboard.type(text)
        self.typed += 1
        self.steps.append(f"type {what} “{text}”")


def _focused(page, name: str) -> bool:
    return page.evaluate("(n) => document.activeElement && document.activeElement.name === n", name)


def _fill_volunteer(page, count: Count) -> None:
    """The volunteer's own name, if the form does not know it yet (first of the shift)."""
    field = page.locator("#entry-form [name=volunteer]")
    if field.count() == 0 or field.input_value():
        return
    if not field.is_visible():  # behind a "more" disclosure
        count.tap(page, page.locator("#entry-form details:has([name=volunteer]) > summary"), "more")
    count.tap(page, field, "on duty")
    count.type(page, VOLUNTEER, "on duty")


def roster_search(page, person: tuple[str, str, str], offline: Callable[[], None]) -> Count:
    """A known resident: search the roster, tap the match, type the temperature, save."""
    name, typed, temperature = person
    count = Count()
    count.tap(page, page.locator("#roster-q"), "search")
    count.type(page, typed, "2 characters")
    count.tap(page, page.locator("a.person", has_text=name), "match")
    _temperature_and_save(page, count, temperature, offline)
    return count


def _scan(page, count: Count, text: str, name: str) -> None:
    """The volunteer points the phone at a code: tap "scan" unless the camera is on already
    (it comes back by itself after a save by scan), then the camera decodes text."""
    if page.locator("[data-scan-start]").count() == 0:
        raise NotBuilt
    running = "() => !!self.FieldPasses && FieldPasses.scanner.running()"
    if not page.evaluate(running):
        count.tap(page, page.locator("[data-scan-start]"), "scan")
        page.wait_for_function(running)
    page.evaluate("(t) => FieldPasses.scanned(t)", text)
    count.steps.append("shows the code")
    page.locator("[data-known-name]", has_text=name).wait_for()


def _temperature_and_save(page, count: Count, temperature: str, offline) -> None:
    if page.locator("#entry-form [name=direction]:checked").count() == 0:
        count.tap(page, page.locator("#entry-form label:has([name=direction][value=in])"), "进")
    if not _focused(page, "temperature"):
        count.tap(page, page.locator("#entry-form [name=temperature]"), "temperature")
    count.type(page, temperature, "temperature")
    _fill_volunteer(page, count)
    offline()  # the network may go between choosing and saving
    count.tap(page, page.locator("#entry-form button.save"), "save")


def pass_scan(page, person: tuple[str, str, str], offline: Callable[[], None]) -> Count:
    """A resident shows their printed pass: scan, type the temperature, save."""
    name, _typed, temperature = person
    count = Count()
    server = page.context.bench_server  # type: ignore[attr-defined]
    token = server.query("SELECT pass_token FROM roster WHERE name = ?", (name,))[0][0]
    _scan(page, count, "fieldapp:pass:" + token, name)
    _temperature_and_save(page, count, temperature, offline)
    return count


def visitor_pass(page, person: tuple[str, str, str], offline: Callable[[], None]) -> Count:
    """A visitor registered on their own phone (not counted: their taps, not the volunteer's)
    shows their pass: scan, type the temperature, save."""
    name, health_code, temperature = person
    server = page.context.bench_server  # type: ignore[attr-defined]
    site_id, code = page.context.bench_site  # type: ignore[attr-defined]
    own = page.context.browser.new_context(locale="zh-CN")
    try:
        form = own.new_page()
        form.goto(f"{server.url}/s/{code}/register")
        form.fill("#name", name)
        if form.locator("#phone").count():
            form.fill("#phone", "13700001111")
        form.check("#self-register [name=direction][value=in]")
        form.check(f"#self-register [name=health_code][value={health_code}]")
        form.check("#self-register [name=consent]")
        form.click("#self-register button[type=submit]")
        form.wait_for_selector("[data-pass-qr] svg")
    finally:
        own.close()
    uuid = server.query(
        "SELECT uuid FROM registrations WHERE name = ? ORDER BY id DESC LIMIT 1", (name,)
    )[0][0]
    count = Count()
    _scan(page, count, f"fieldapp:visit:{site_id}:{uuid}", name)
    _temperature_and_save(page, count, temperature, offline)
    return count


VISITORS = [("赵小明", "green", "36.5"), ("钱多多", "green", "36.7"), ("孙悟空", "green", "36.9")]

# name -> (flow, who goes through), or None for a flow not built yet. A flow takes (page, person,
# go_offline) and returns its Count; it raises NotBuilt when the page it finds lacks the flow.
FLOWS: dict[str, tuple[Callable[..., Count], list] | None] = {
    "roster search": (roster_search, RESIDENTS),
    "pass scan": (pass_scan, RESIDENTS),
    "visitor pass": (visitor_pass, VISITORS),
}


def run_flow(context, server, code: str, flow, people, offline_save: bool) -> list[str]:
    """Each person through the flow on one page; a line per person."""
    page = context.new_page()
    lines = []
    try:
        page.goto(f"{server.url}/s/{code}")
        page.wait_for_selector("#entry-form")
        if offline_save:
            fixtures.wait_until(
                lambda: page.evaluate(
                    "async () => !!navigator.serviceWorker.controller &&"
                    " !!(await caches.match(location.pathname, {ignoreVary: true}))"
                ),
                30,
                "the service worker keeps the gate page",
            )
        for i, person in enumerate(people):
            name = person[0]
            count = flow(page, person, lambda: context.set_offline(True) if offline_save else None)
            confirmation = page.locator(f"#gate [role=status]:has-text('{name}')")
            try:
                confirmation.wait_for(timeout=10000)
                seen = "in view" if confirmation.evaluate(IN_VIEW) else "OFF SCREEN"
            except Exception:  # noqa: BLE001 -- Playwright's timeout: nothing named the person
                seen = "NONE naming the person"
            page.wait_for_selector("#entry-form:not([aria-busy])")
            clean = page.evaluate(CLEAN)
            problems = [
                k for k in ("temperature_empty", "no_errors", "no_fever_block") if not clean[k]
            ]
            who = "first of the shift" if i == 0 else "next"
            lines.append(
                f"  {who:18} {count.taps} taps + {count.typed} typed values"
                f" + {count.scrolls} scrolls; confirmation {seen};"
                f" next form: {'clean' if not problems else 'NOT clean: ' + ', '.join(problems)},"
                f" direction {clean['direction_kept'] or 'not set'},"
                f" volunteer {clean['volunteer_kept'] or 'not kept'}"
            )
            lines.append("    " + " → ".join(count.steps))
            if offline_save:
                context.set_offline(False)
    finally:
        page.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--viewport", action="append", help="WIDTHxHEIGHT (default: 360x640 and 390x844)"
    )
    args = parser.parse_args()
    viewports = [
        tuple(int(x) for x in v.split("x")) for v in args.viewport or ["360x640", "390x844"]
    ]

    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    server = fixtures.make_server(folder / "instance")
    server.start()
    try:
        site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=fixtures.CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-background-networking",
                    # A camera that starts (its frames are a test pattern; see _scan).
                    "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                ],
            )
            for width, height in viewports:
                for offline_save in (False, True):
                    how = "saved offline" if offline_save else "online"
                    print(f"{width}×{height}, {how}:")
                    for name, hook in FLOWS.items():
                        if hook is None:
                            print(f" {name}:\n  not built yet")
                            continue
                        flow, people = hook
                        context = browser.new_context(
                            viewport={"width": width, "height": height},
                            locale="zh-CN",
                            has_touch=True,
                        )
                        context.bench_server = server
                        context.bench_site = (site["id"], site["code"])
                        try:
                            fixtures.enrol_cookie(server, context, site["id"], f"测{width}{how}")
                            lines = run_flow(
                                context, server, site["code"], flow, people, offline_save
                            )
                        except NotBuilt:
                            lines = ["  not built yet"]
                        finally:
                            context.close()
                        print(f" {name}:")
                        for line in lines:
                            print(line)
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
