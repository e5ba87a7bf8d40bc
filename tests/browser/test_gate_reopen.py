"""The gate page opened again after it was closed (the tab killed, the phone died) between a
save being stored and the page saying so: the volunteer reads that the person was saved, and
registers them no second time."""

from __future__ import annotations

import re

import pytest
from phone_support import HeldSaves, names, outbox_loaded, ready, save, wait_waiting
from servers import enrol_cookie

# The page is gone before it handles the save's answer: it never says "已登记".
NEVER_SAYS = """() => addEventListener("outbox-saved", (e) => e.stopImmediatePropagation(), true)"""
RECALLED = re.compile(r"^本机 \d\d:\d\d 已登记：重开一，进，36\.5 °C。")
KEPT = "已保存在本机，联网后自动发送。"


def gate_phone(server, context, page) -> str:
    """An enrolled phone on the gate page of the residential site, its worker in control; the
    page's address."""
    site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
    enrol_cookie(server, context, site["id"])
    url = f"{server.url}/s/{site['code']}"
    page.goto(url)
    ready(page)
    outbox_loaded(page)
    return url


def reopened(context, url: str):
    """The gate page opened again in a new tab, once the list under the form is drawn."""
    page = context.new_page()
    page.goto(url)
    outbox_loaded(page)
    return page


def saved_box(page) -> str:
    box = page.locator("#gate-saved")
    box.wait_for()
    return " ".join(box.inner_text().split())


@pytest.mark.parametrize("how", ["kept", "stored"])
def test_a_save_stored_before_the_page_was_closed_is_said_when_it_opens_again(
    server, context, page, how
):
    """The volunteer taps 保存登记 and the page is gone before it says 已登记: offline, once the
    service worker kept the entry on the phone ("kept"); online, once the instance stored it
    and before its answer came back ("stored"). Opened again, the page said nothing of it:
    an empty form and no confirmation, and the volunteer, not knowing, registered the person
    again. Now it says the entry was saved from this phone, whom and when (and, if it still
    waits on the phone, that it is sent by itself), and the instance holds it once."""
    url = gate_phone(server, context, page)
    if how == "kept":
        context.set_offline(True)
        page.evaluate(NEVER_SAYS)
        save(page, "重开一")
        wait_waiting(page, 1)  # in the outbox, durably
    else:
        saves = HeldSaves(context)
        save(page, "重开一")
        saves.wait(page)
        held = saves.held.pop(0)
        answer = held.fetch()  # the instance stores it; its answer is on its way
        assert names(server) == ["重开一"]
    assert "重开一" not in page.inner_text("#gate-saved")
    page.close()
    if how == "stored":
        held.fulfill(response=answer)  # to a page that is no longer there
        saves.stop()

    page = reopened(context, url)
    page.locator("#gate-saved", has_text="重开一").wait_for()
    said = saved_box(page)
    assert RECALLED.match(said), said
    assert (KEPT in said) == (how == "kept")
    assert page.input_value("#entry-form [name=name]") == ""  # the form is for the next person

    context.set_offline(False)
    wait_waiting(page, 0)
    assert names(server) == ["重开一"]
    rows = server.query("SELECT direction, temperature FROM entries WHERE name = '重开一'")
    assert [tuple(r) for r in rows] == [("in", 36.5)]
