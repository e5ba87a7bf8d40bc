"""Passes at the gate, on the cheap phones' screens (360×640) and a common one (390×844), with
Chromium's fake camera showing what a real one would:

- a resident's printed card (`fieldapp roster passes`, rasterised as a camera sees paper): one
  scan, the temperature, one tap; a reissued card's old code is refused and fills nothing;
- a resident without their card, from the roster this phone keeps, offline: 3 taps and the
  temperature;
- a visitor who registered on their own phone: the gate phone's camera reads the visitor's
  screen, the volunteer types 38.4, is made to choose the fever action, and the entry, its
  fever case and its link to the registration are in the database.
"""

from __future__ import annotations

import io
import subprocess

import pytest
from phone_support import (
    SCREENS,
    HeldSaves,
    confirmation_in_view,
    fill,
    first_of_the_shift,
    ready,
    register_visitor,
    tap_in_view,
    until,
)
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from servers import CHROMIUM, enrol_cookie

# The scanner's fallback decoder, kept by the service worker for offline use (gate.js warms it),
# or not needed (the browser decodes QR codes itself).
JSQR_KEPT = """async () => "BarcodeDetector" in self
  || !!(await caches.match(document.getElementById("pass-scanner").dataset.jsqr,
                           {ignoreVary: true, ignoreSearch: true}))"""

# Where the first card of a sheet lies on A4 (gate/passes.py: 2 × 5 ID-1 cards, centred), in mm.
CARD = (19.4, 13.5, 85.6, 54.0)
DPI = 150


def frames(image, path) -> None:
    """A few MJPEG frames of image on a 640×480 grey desk, as Chromium's fake camera plays them."""
    from PIL import Image

    image = image.convert("RGB")
    image.thumbnail((600, 440))
    frame = Image.new("RGB", (640, 480), (200, 200, 200))
    frame.paste(image, ((640 - image.width) // 2, (480 - image.height) // 2))
    out = io.BytesIO()
    for _ in range(10):
        frame.save(out, "JPEG", quality=90)
    path.write_bytes(out.getvalue())


def printed_card(server, code: str, name: str, folder):
    """The card of `name` as printed by the CLI and seen on paper at 150 dpi."""
    from PIL import Image

    pdf = folder / f"{name}.pdf"
    server.cli("roster", "passes", code, "--out", str(pdf), "--person", name)
    subprocess.run(
        ["pdftoppm", "-r", str(DPI), "-png", "-singlefile", str(pdf), str(folder / name)],
        check=True,
    )
    page = Image.open(folder / f"{name}.png")
    x, y, w, h = (round(v * DPI / 25.4) for v in CARD)
    return page.crop((x - 10, y - 10, x + w + 10, y + h + 10))


@pytest.fixture
def camera(browser, request):
    """camera(image, (width, height)) -> a touch-screen context of a Chromium whose camera
    shows image; closed after the test."""
    launched = []
    folder = request.getfixturevalue("tmp_path")

    def open_(image, screen):
        video = folder / f"camera{len(launched)}.mjpeg"
        frames(image, video)
        chromium = browser.browser_type.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-background-networking",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        launched.append(chromium)
        width, height = screen
        return chromium.new_context(
            viewport={"width": width, "height": height}, locale="zh-CN", has_touch=True
        )

    yield open_
    for chromium in launched:
        chromium.close()


def scanned_into_form(page, name: str) -> None:
    """Wait until the camera's scan has filled the form with name's card (jsQR reads a frame
    every 200 ms: slow on a busy machine); if it never does, fail with what the scanner said
    (a lookup that timed out, a code it refused, a camera it could not open)."""
    try:
        page.locator("[data-known-name]", has_text=name).wait_for(timeout=45000)
    except PlaywrightTimeout:
        said = page.locator("#pass-scanner").inner_text()
        scanning = page.evaluate("!!document.querySelector('#pass-scanner.is-scanning')")
        pytest.fail(f"{name} did not fill the form; camera on: {scanning}; it says: {said!r}")


def residential(server):
    return server.query("SELECT id, code, name FROM sites WHERE kind = 'residential'")[0]


def gate_phone(server, context, site):
    """The enrolled gate phone on the site's gate page, its copy of the roster loaded, after the
    shift's first entry (a visitor typed in, 王五): the direction and the volunteer are set and
    remembered, the confirmation is on the screen."""
    enrol_cookie(server, context, site["id"])
    page = context.new_page()
    page.goto(f"{server.url}/s/{site['code']}")
    page.wait_for_selector("#entry-form")
    until(page, "async () => !!self.FieldRoster && (await FieldRoster.loaded, FieldRoster.ready())")
    first_of_the_shift(page)
    confirmation_in_view(page, "王五")
    return page


@pytest.mark.parametrize("screen", SCREENS)
def test_a_resident_through_by_scanning_their_card(server, camera, tmp_path, screen):
    site = residential(server)
    card = printed_card(server, site["code"], "张建国", tmp_path)
    context = camera(card, screen)
    page = gate_phone(server, context, site)

    # No network at the gate: the roster and the scanner are on the phone. One scan, the
    # temperature (typed straight in: the scan focused it), one tap.
    ready(page)
    until(page, JSQR_KEPT)
    context.set_offline(True)
    tap_in_view(page, "[data-scan-start]")
    scanned_into_form(page, "张建国")
    assert page.evaluate("document.activeElement.name") == "temperature"
    assert page.locator("#entry-form [name=name]").input_value() == "张建国"
    page.keyboard.type("36.6")
    tap_in_view(page, "#entry-form button.save")
    said = confirmation_in_view(page, "张建国")
    assert said.startswith("已登记：张建国，进，36.6 °C。") and "已保存在本机" in said
    context.set_offline(False)
    until(page, "async () => !!self.FieldOutbox && (await FieldOutbox.summary()).waiting === 0")

    person = server.query("SELECT id FROM roster WHERE name = '张建国'")[0]["id"]
    rows = server.query(
        "SELECT name, direction, temperature, destination, person_type, volunteer, roster_id"
        " FROM entries WHERE name != '王五'"
    )
    assert [tuple(r) for r in rows] == [
        ("张建国", "in", 36.6, "3-2-501", "resident", "李四", person)
    ]
    assert page.evaluate("document.documentElement.scrollWidth") <= screen[0]

    # The card is reissued (lost, say): once the phone has the new roster, the old card is
    # refused with a reason and fills nothing.
    old = server.query("SELECT pass_token FROM roster WHERE name = '张建国'")[0][0]
    server.cli("roster", "reissue", site["code"], "--person", "张建国")
    page.goto(f"{server.url}/s/{site['code']}")  # the page kept by the service worker
    page.wait_for_selector("#entry-form")
    until(
        page,
        "async (old) => { if (!self.FieldRoster) return false; await FieldRoster.loaded;"
        " return FieldRoster.ready() && !FieldRoster.byPass(old); }",
        old,
    )
    tap_in_view(page, "[data-scan-start]")
    note = page.locator("[data-scan-note]")
    note.wait_for(state="visible", timeout=20000)
    assert note.inner_text().startswith("这张出入证在本门岗无效：已补发新证（旧证作废）")
    assert page.locator("#entry-form [name=name]").input_value() == ""
    assert page.locator("#entry-form [name=roster_id]").input_value() == ""
    assert len(server.query("SELECT id FROM entries WHERE name != '王五'")) == 1


@pytest.mark.parametrize("screen", SCREENS)
def test_a_resident_without_a_card_in_three_taps_offline(server, browser, screen):
    """No card, no network: the roster on the phone answers the search."""
    site = residential(server)
    width, height = screen
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="zh-CN", has_touch=True
    )
    try:
        page = gate_phone(server, context, site)
        ready(page)
        context.set_offline(True)
        tap_in_view(page, "#roster-q")  # 1
        page.keyboard.type("李秀")
        page.locator("a.person", has_text="李秀英").wait_for()
        tap_in_view(page, "a.person:has-text('李秀英')")  # 2
        assert page.evaluate("document.activeElement.name") == "temperature"
        page.keyboard.type("36.4")
        tap_in_view(page, "#entry-form button.save")  # 3
        said = confirmation_in_view(page, "李秀英")
        assert said.startswith("已登记：李秀英，进，36.4 °C。") and "已保存在本机" in said
        context.set_offline(False)
        person = server.query("SELECT id FROM roster WHERE name = '李秀英'")[0]["id"]
        until(page, "async () => !!self.FieldOutbox && (await FieldOutbox.summary()).waiting === 0")
        rows = server.query(
            "SELECT name, temperature, destination, roster_id FROM entries WHERE name != '王五'"
        )
        assert [tuple(r) for r in rows] == [("李秀英", 36.4, "3-1-202", person)]
    finally:
        context.close()


# Counts the camera's decodes (the scanner on, then off by itself) and, once passes.js is here,
# its starts: the page's own record of whether the camera came back.
WATCH_CAMERA = """() => {
  const root = document.getElementById("pass-scanner");
  window.decoded = 0;
  let on = false;
  new MutationObserver(() => {
    if (on && !root.classList.contains("is-scanning")) window.decoded += 1;
    on = root.classList.contains("is-scanning");
  }).observe(root, {attributes: true, attributeFilter: ["class"]});
}"""
COUNT_STARTS = """() => {
  const scanner = FieldPasses.scanner, start = scanner.start;
  window.starts = 0;
  scanner.start = (quiet) => { window.starts += 1; return start(quiet); };
}"""


def test_a_card_scanned_while_a_save_is_on_its_way_is_the_next_entry(server, camera, tmp_path):
    """One bar of signal: the save of the person before is on its way when the volunteer scans
    the next one's card. The card fills the form once the save is answered (tests/browser/
    test_gate_races.py); and the camera, which comes back after a save for the next person in
    the queue, came back over the person just scanned, hiding the temperature to type. Now it
    comes back after their save."""
    site = residential(server)
    context = camera(printed_card(server, site["code"], "张建国", tmp_path), (390, 844))
    page = gate_phone(server, context, site)
    saves = HeldSaves(context)
    fill(page, "先来的")
    page.click("#entry-form button.save")
    saves.wait(page)
    page.evaluate(WATCH_CAMERA)
    page.locator("[data-scan-start]").tap()
    page.wait_for_function("() => window.decoded >= 1")  # read, and the camera off
    page.evaluate(COUNT_STARTS)

    saves.answer()
    page.locator("#gate-saved", has_text="先来的").wait_for()
    page.locator("[data-known-name]", has_text="张建国").wait_for()
    assert page.evaluate("window.starts") == 0
    assert page.locator("#pass-scanner.is-scanning").count() == 0
    page.locator("#temperature").tap()  # on the screen, not under the camera
    page.keyboard.type("36.6")
    saves.stop()
    page.locator("#entry-form button.save").tap()
    page.locator("#gate-saved", has_text="张建国").wait_for()
    assert page.evaluate("window.starts") == 1  # for the next person in the queue
    person = server.query("SELECT id FROM roster WHERE name = '张建国'")[0]["id"]
    rows = server.query("SELECT name, temperature, roster_id FROM entries WHERE name != '王五'")
    assert sorted(tuple(r) for r in rows) == [("先来的", 36.5, ""), ("张建国", 36.6, person)]


@pytest.mark.parametrize("screen", SCREENS)
def test_a_visitor_pass_scanned_with_a_fever(server, browser, camera, screen):
    from PIL import Image

    site = residential(server)
    width, height = screen

    # The visitor, on their own phone: registers without a temperature, gets a pass.
    visitor = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    try:
        own = visitor.new_page()
        own.goto(f"{server.url}/s/{site['code']}/register")
        assert own.locator("#self-register [name=temperature]").count() == 0
        register_visitor(own, "赵小明")
        assert own.inner_text("[data-pass-name]") == "赵*明"
        clock = own.inner_text("[data-pass-clock]")
        own.wait_for_function(
            "(c) => document.querySelector('[data-pass-clock]').textContent !== c", arg=clock
        )
        screen_qr = Image.open(io.BytesIO(own.locator("[data-pass-qr]").screenshot()))
    finally:
        visitor.close()
    (registration,) = server.query("SELECT uuid, temperature FROM registrations")
    assert registration["temperature"] is None
    assert server.query("SELECT id FROM entries WHERE name = '赵小明'") == []  # not yet through

    # The gate phone's camera reads the visitor's screen; the volunteer types 38.4.
    page = gate_phone(server, camera(screen_qr, screen), site)
    tap_in_view(page, "[data-scan-start]")
    scanned_into_form(page, "赵小明")
    assert (
        page.locator("#entry-form [name=registration_uuid]").input_value() == (registration["uuid"])
    )
    assert page.locator("#entry-form [name=person_type][value=visitor]").is_checked()
    assert page.locator("#entry-form [name=health_code][value=green]").is_checked()
    page.keyboard.type("38.4")
    tap_in_view(page, "#entry-form button.save")
    # A fever: the phone asks what was done before it saves anything.
    demanded = page.locator("#fever_action .error")
    demanded.wait_for()
    assert "属于发热，请先选择一项再保存" in demanded.inner_text()
    assert server.query("SELECT id FROM entries WHERE name = '赵小明'") == []
    page.locator("#fever_action label", has_text="送发热门诊").tap()
    tap_in_view(page, "#entry-form button.save")
    said = confirmation_in_view(page, "赵小明")
    assert said.startswith("已登记：赵小明，进，38.4 °C。发热：送发热门诊。")

    (entry,) = server.query(
        "SELECT uuid, name, person_type, temperature, fever_action, health_code,"
        " registration_uuid, self_registered FROM entries WHERE name != '王五'"
    )
    assert tuple(entry)[1:] == (
        "赵小明",
        "visitor",
        38.4,
        "clinic",
        "green",
        registration["uuid"],
        0,
    )
    # The fever case is open on the console, for that entry.
    from datetime import UTC, datetime

    from fieldapp.console import cases
    from fieldapp.db import connect

    conn = connect(server.target)
    try:
        found = cases.listing(conn, None, datetime.now(UTC))
    finally:
        conn.close()
    assert [(c["entry"]["uuid"], c["closed"]) for c in found] == [(entry["uuid"], False)]
