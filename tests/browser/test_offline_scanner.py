"""The in-app scanner: a fake camera shows another site's poster; the app opens that gate, with
a network or without one (the gate page the phone kept), as typing the code does."""

from __future__ import annotations

import io

import pytest
from phone_support import ready
from servers import enrol_browser

CHROMIUM = "/usr/bin/chromium"  # as the shared `browser` fixture, which has no fake camera


def poster_video(url: str, path) -> None:
    """A few MJPEG frames of the poster's QR code, as Chromium's fake camera plays them."""
    import qrcode
    from PIL import Image

    code = qrcode.make(url, box_size=8, border=4).get_image().convert("RGB")
    frame = Image.new("RGB", (640, 480), "white")
    side = min(440, code.size[0])
    frame.paste(code.resize((side, side)), ((640 - side) // 2, (480 - side) // 2))
    out = io.BytesIO()
    for _ in range(10):
        frame.save(out, "JPEG", quality=90)
    path.write_bytes(out.getvalue())


@pytest.fixture
def camera_browser(tmp_path, server, browser):
    """A second Chromium of the same Playwright, whose camera shows another site's poster."""
    other = server.query("SELECT code FROM sites WHERE active = 1 ORDER BY name DESC LIMIT 1")[0][0]
    video = tmp_path / "poster.mjpeg"
    poster_video(f"{server.url}/s/{other}", video)
    camera = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    yield camera, other
    camera.close()


def sites_by_name(server) -> list[tuple[str, str]]:
    """(code, name) of the open sites, by name: the phone is enrolled at the first."""
    return server.query("SELECT code, name FROM sites WHERE active = 1 ORDER BY name")


def keep_gate_then_go_offline(page, context, server, code: str) -> None:
    """Open a gate once with a network (the phone keeps its page), then the scanner; then the
    network goes."""
    page.goto(f"{server.url}/s/{code}")
    page.wait_for_selector("#entry-form")
    ready(page)
    page.goto(server.url + "/scan")
    page.wait_for_selector("[data-scan-start]")
    context.set_offline(True)


@pytest.mark.parametrize("offline", [False, True], ids=["online", "offline"])
def test_scanning_another_sites_poster_opens_its_gate(server, camera_browser, offline):
    """With a network the instance's gate page; without one, the copy the phone kept."""
    browser, other = camera_browser
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    try:
        page = context.new_page()
        enrol_browser(server, page, "扫码手机")
        if offline:
            keep_gate_then_go_offline(page, context, server, other)
        else:
            page.click("#outbox-status a[href='/scan']")
        page.click("[data-scan-start]")
        page.wait_for_url(f"**/s/{other}", timeout=20000)
        page.wait_for_selector("#entry-form")  # the volunteer's gate page of the other site
        name = server.query("SELECT name FROM sites WHERE code = ?", (other,))[0][0]
        assert page.inner_text("h1") == name
    finally:
        context.close()


@pytest.mark.parametrize("typed", ["{code}", " {code} ", "https://central.example/s/{code}"])
def test_offline_typing_a_kept_gates_code_or_poster_address_opens_it(
    server, context, enrolled_page, typed
):
    page = enrolled_page
    code, name = sites_by_name(server)[-1]
    keep_gate_then_go_offline(page, context, server, code)
    page.fill("#code", typed.format(code=code))
    page.click("form[action='/go'] button")
    page.wait_for_url(f"**/s/{code}")
    page.wait_for_selector("#entry-form")
    assert page.inner_text("h1") == name


def test_offline_a_gate_the_phone_never_opened_says_so(server, context, enrolled_page):
    page = enrolled_page
    ready(page)  # the phone's own gate is kept, the other site's never opened
    never = sites_by_name(server)[-1][0]
    page.goto(server.url + "/scan")
    page.wait_for_selector("[data-scan-start]")
    context.set_offline(True)
    page.fill("#code", never)
    page.click("form[action='/go'] button")
    page.wait_for_url("**/scan?missing=*")
    shown = page.locator("[data-scan-error]")
    shown.wait_for()
    assert never in shown.inner_text()
    assert "网络" in shown.inner_text()  # it opens once there is a network
    # A poster's address opened offline (by the phone's camera app) lands there as well.
    page.goto(f"{server.url}/s/{never}")
    page.wait_for_url("**/scan?missing=*")
    assert never in page.locator("[data-scan-error]").inner_text()
    # The address is anyone's to make: only a code is shown.
    page.goto(f"{server.url}/scan?missing=%E6%89%AB%E7%A0%81%E4%B8%AD%E5%A5%96")
    page.wait_for_selector("[data-scan-start]")
    assert page.locator("[data-scan-error]").is_hidden()


def test_typing_the_site_code_is_the_fallback(server, enrolled_page):
    page = enrolled_page
    other = server.query("SELECT code FROM sites WHERE active = 1 ORDER BY name DESC LIMIT 1")[0][0]
    page.goto(server.url + "/scan")
    page.fill("#code", other)
    page.click("form[action='/go'] button")
    page.wait_for_url(f"**/s/{other}")
    page.wait_for_selector("#entry-form")
