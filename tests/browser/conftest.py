"""Real-browser fixtures: a real `fieldapp serve` process on a fresh database, Debian's Chromium.

Use `server` for a running instance (url, database path, cli() to run `fieldapp` commands
against the same instance folder) and `page` for a Chromium page at a phone's viewport.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import CHROMIUM, enrol_browser, make_server

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    """Every test in this folder drives a real browser against an instance served in its own
    process: `browser`, and `slow` as every test that starts one (`-m "not slow"` skips them)."""
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def server(tmp_path):
    s = make_server(tmp_path / "instance")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
        )
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def enrolled_page(server, page):
    """A page whose browser is an enrolled gate phone, on the gate page of the first site."""
    enrol_browser(server, page)
    return page
