"""A tap on "保存登记" never loses the person nor asks for them to be typed again: after the
browser was restarted (the page's CSRF token is of a session the browser no longer has)."""

from __future__ import annotations

import pytest
from phone_support import fill, names, outbox_loaded, ready, waiting
from servers import CHROMIUM, enrol_browser


def typed_entry(server, name: str) -> list[tuple]:
    """The rows the instance holds for `name`: what the volunteer typed (phone_support.fill)."""
    rows = server.query(
        "SELECT direction, person_type, phone, temperature FROM entries WHERE name = ?", (name,)
    )
    return [tuple(r) for r in rows]


@pytest.mark.parametrize("restart", ["offline", "token-late"])
def test_the_first_save_after_a_browser_restart_is_stored_once(server, browser, tmp_path, restart):
    """The phone's browser was closed and opened again: its session cookie (which the gate
    form's CSRF token belongs to) is gone, and the service worker answers with the gate page it
    kept, token and all. Opened offline (the token could not be renewed), or online while the
    renewal is still on its way: the first save was refused as 页面已过期. Now it is saved once,
    with what was typed, and the confirmation says so."""
    profile = tmp_path / "profile"

    def launch():
        return browser.browser_type.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking"],
            viewport={"width": 390, "height": 844},
            locale="zh-CN",
        )

    phone = launch()
    try:
        page = phone.pages[0] if phone.pages else phone.new_page()
        enrol_browser(server, page)
        ready(page)
        gate = page.url
    finally:
        phone.close()

    phone = launch()  # the browser restarted: no session cookie, the device cookie kept
    try:
        assert "session" not in [c["name"] for c in phone.cookies()]
        page = phone.pages[0] if phone.pages else phone.new_page()
        renewals = []
        if restart == "offline":
            page.on("requestfailed", lambda r: "/last" in r.url and renewals.append(r.url))
            phone.set_offline(True)
        else:  # one bar of signal: the renewal of the kept page's token does not come back yet
            phone.route("**/last", lambda route: renewals.append(route))
        page.goto(gate)
        page.wait_for_selector("#entry-form")
        page.wait_for_function("() => !!navigator.serviceWorker.controller")
        outbox_loaded(page)
        for _ in range(300):  # the kept page asked for a new token, and did not get it
            if renewals:
                break
            page.wait_for_timeout(100)
        assert renewals
        phone.set_offline(False)

        fill(page, "重启后")
        page.click("#entry-form button.save")
        page.locator("#gate-saved", has_text="已登记：重启后").wait_for()
        assert page.locator("#entry-form .errors, #entry-form .error").count() == 0
        assert page.input_value("#entry-form [name=name]") == ""  # the next person's form
        assert typed_entry(server, "重启后") == [("in", "resident", "13812345678", 36.5)]
        assert waiting(page) == 0  # stored by the instance itself, not left on the phone

        # The next save goes with the renewed token at once.
        phone.unroute("**/last")
        fill(page, "重启后二")
        page.click("#entry-form button.save")
        page.locator("#gate-saved", has_text="已登记：重启后二").wait_for()
        assert names(server) == ["重启后", "重启后二"]
    finally:
        phone.close()
