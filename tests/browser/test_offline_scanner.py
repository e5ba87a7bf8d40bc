"""The in-app scanner: a fake camera shows another site's poster; the app opens that gate."""

from __future__ import annotations

import io

import pytest
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


def test_scanning_another_sites_poster_opens_its_gate(server, camera_browser):
    browser, other = camera_browser
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    try:
        page = context.new_page()
        enrol_browser(server, page, "扫码手机")
        page.click("#outbox-status a[href='/scan']")
        page.click("[data-scan-start]")
        page.wait_for_url(f"**/s/{other}", timeout=20000)
        page.wait_for_selector("#entry-form")  # the volunteer's gate page of the other site
        name = server.query("SELECT name FROM sites WHERE code = ?", (other,))[0][0]
        assert page.inner_text("h1") == name
    finally:
        context.close()


def test_typing_the_site_code_is_the_fallback(server, enrolled_page):
    page = enrolled_page
    other = server.query("SELECT code FROM sites WHERE active = 1 ORDER BY name DESC LIMIT 1")[0][0]
    page.goto(server.url + "/scan")
    page.fill("#code", other)
    page.click("form[action='/go'] button")
    page.wait_for_url(f"**/s/{other}")
    page.wait_for_selector("#entry-form")
