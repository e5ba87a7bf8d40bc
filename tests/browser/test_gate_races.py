"""The gate form while a save is on its way (one bar of signal: seconds): what the volunteer
does meanwhile (a roster match tapped, a pass scanned, a search typed) is what the form shows
once the save is answered, and what the next save stores; the save under way stores what the
form held when "保存登记" was tapped."""

from __future__ import annotations

import pytest
from phone_support import (
    LOAD_SCANNER,
    HeldLookups,
    HeldSaves,
    fill,
    outbox_loaded,
    ready,
    register_visitor,
    until,
    wait_waiting,
)
from servers import enrol_cookie

FORM = "#entry-form"


def gate_phone(server, context, page) -> dict:
    """An enrolled phone of the residential site on its gate page: its service worker in
    control, its outbox and the site's roster on the phone."""
    site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}")
    ready(page)
    outbox_loaded(page)
    until(page, "async () => !!self.FieldRoster && (await FieldRoster.loaded, FieldRoster.ready())")
    return site


def stored(server) -> dict:
    """The entries the instance holds, by name: their links and temperature."""
    rows = server.query("SELECT name, roster_id, registration_uuid, temperature FROM entries")
    return {r["name"]: (r["roster_id"], r["registration_uuid"], r["temperature"]) for r in rows}


def form_shows(page, name: str) -> None:
    page.wait_for_function(
        "(name) => document.querySelector('#entry-form [name=name]').value === name", arg=name
    )


@pytest.mark.parametrize("outcome", ["answered", "kept"])
@pytest.mark.parametrize("how", ["match", "card", "visitor"])
def test_a_person_picked_while_a_save_is_on_its_way_is_the_next_entry(
    server, browser, context, page, how, outcome
):
    """The volunteer taps 保存登记 for one person and, while the save is on its way, taps the
    next one's roster match or scans their pass. The save's answer (the instance's fresh form,
    or the outbox's reset when the connection broke) wiped the pick: the form came back empty or,
    from the outbox's reset, with a name and no link, and the entry saved next was not linked to
    the roster person or the visitor's registration. Now the save stores the person it was
    tapped for, the form then shows the one picked, linked, and the next save stores that."""
    site = gate_phone(server, context, page)
    person, link = "张建国", ""
    if how == "visitor":
        visitor = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
        try:
            own = visitor.new_page()
            own.goto(f"{server.url}/s/{site['code']}/register")
            register_visitor(own, "赵小明")
        finally:
            visitor.close()
        person = "赵小明"
        link = server.query("SELECT uuid FROM registrations")[0][0]
        scan = f"fieldapp:visit:{site['id']}:{link}"
    else:
        row = server.query("SELECT id, pass_token FROM roster WHERE name = ?", (person,))[0]
        link, scan = row["id"], f"fieldapp:pass:{row['pass_token']}"
    if how != "match":
        page.evaluate(LOAD_SCANNER)

    saves = HeldSaves(context)
    fill(page, "先来的")
    page.click(f"{FORM} button.save")
    saves.wait(page)
    assert page.get_attribute(FORM, "aria-busy") == "true"  # 正在保存…
    if how == "match":
        page.fill("#roster-q", "张建")
        page.locator("a.person", has_text=person).click()
    else:
        page.evaluate("(text) => FieldPasses.scanned(text)", scan)
    # Until the save is answered the form is the person it sends.
    assert page.input_value(f"{FORM} [name=name]") == "先来的"

    saves.answer() if outcome == "answered" else saves.cut()
    page.locator("#gate-saved", has_text="先来的").wait_for()
    form_shows(page, person)
    assert page.locator("[data-known] [data-known-name]").inner_text() == person
    field = "registration_uuid" if how == "visitor" else "roster_id"
    assert page.input_value(f"{FORM} [name={field}]") == link

    saves.stop()
    page.check(f"{FORM} [name=direction][value=in]")
    page.fill(f"{FORM} [name=temperature]", "36.6")
    page.click(f"{FORM} button.save")
    page.locator("#gate-saved", has_text=person).wait_for()
    wait_waiting(page, 0)  # "kept": the first one, sent from the outbox
    expected = (link, "", 36.6) if how != "visitor" else ("", link, 36.6)
    assert stored(server) == {"先来的": ("", "", 36.5), person: expected}


def test_a_search_typed_while_a_save_is_on_its_way_stays(server, context, page):
    """While the save is on its way the volunteer types the next person's name into the roster
    search (outside the form, which takes no typing then). The instance's answer replaced it with
    an empty search: what was typed was gone, the matches too. Now the search and its matches
    stay, and the match tapped is the next entry, linked."""
    gate_phone(server, context, page)
    saves = HeldSaves(context)
    fill(page, "先来的")
    page.click(f"{FORM} button.save")
    saves.wait(page)
    page.fill("#roster-q", "张建")
    page.locator("a.person", has_text="张建国").wait_for()

    saves.answer()
    page.locator("#gate-saved", has_text="先来的").wait_for()
    assert page.input_value("#roster-q") == "张建"
    assert page.evaluate("() => document.activeElement.id") == "roster-q"  # typing goes on
    page.locator("a.person", has_text="张建国").click()
    form_shows(page, "张建国")

    saves.stop()
    page.check(f"{FORM} [name=direction][value=in]")
    page.fill(f"{FORM} [name=temperature]", "36.6")
    page.click(f"{FORM} button.save")
    page.locator("#gate-saved", has_text="张建国").wait_for()
    (person,) = server.query("SELECT id FROM roster WHERE name = '张建国'")[0]
    assert stored(server) == {"先来的": ("", "", 36.5), "张建国": (person, "", 36.6)}


def visitor_pass(browser, server, site, name: str) -> tuple[str, str]:
    """A visitor registered on their own phone: the text of their pass's QR code, and the uuid
    of their registration."""
    visitor = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    try:
        own = visitor.new_page()
        own.goto(f"{server.url}/s/{site['code']}/register")
        register_visitor(own, name)
    finally:
        visitor.close()
    (link,) = server.query("SELECT uuid FROM registrations WHERE name = ?", (name,))[0]
    return f"fieldapp:visit:{site['id']}:{link}", link


@pytest.mark.parametrize("then", ["match", "card"])
def test_a_visitors_pass_looked_up_slowly_does_not_replace_a_person_picked_after_it(
    server, browser, context, page, then
):
    """The volunteer scans a visitor's pass; their registration is asked of the instance, and
    on one bar of signal the answer is slow. Meanwhile the volunteer taps another person's
    roster match (or scans their card): the form shows that person. The lookup's answer then
    came and put the visitor over them, and the entry saved next was the visitor's. Now the
    latest choice stays: the late answer is dropped, and the entry saved is the person picked."""
    site = gate_phone(server, context, page)
    scan, _link = visitor_pass(browser, server, site, "赵小明")
    (person,) = server.query("SELECT id, pass_token FROM roster WHERE name = '张建国'")
    page.evaluate(LOAD_SCANNER)

    lookups = HeldLookups(context)
    page.evaluate("(text) => { self.lookup = FieldPasses.scanned(text); }", scan)
    lookups.wait(page)
    if then == "match":
        page.fill("#roster-q", "张建")
        page.locator("a.person", has_text="张建国").click()
    else:
        page.evaluate("(text) => FieldPasses.scanned(text)", f"fieldapp:pass:{person[1]}")
    form_shows(page, "张建国")

    lookups.answer()  # the visitor's registration comes at last
    page.evaluate("() => self.lookup")  # and the scan is done with it
    lookups.stop()
    assert page.input_value(f"{FORM} [name=name]") == "张建国"
    assert page.input_value(f"{FORM} [name=roster_id]") == person[0]
    assert page.input_value(f"{FORM} [name=registration_uuid]") == ""
    assert page.locator("[data-known] [data-known-name]").inner_text() == "张建国"

    page.check(f"{FORM} [name=direction][value=in]")
    page.fill(f"{FORM} [name=temperature]", "36.6")
    page.click(f"{FORM} button.save")
    page.locator("#gate-saved", has_text="张建国").wait_for()
    assert stored(server) == {"张建国": (person[0], "", 36.6)}


@pytest.mark.parametrize(
    "answer",
    [
        {
            "content_type": "text/html",
            "body": "<html><body>欢迎使用免费 Wi-Fi，请登录</body></html>",
        },
        {"content_type": "application/json", "body": '{"status": "ok"}'},
    ],
    ids=["portal", "stranger"],
)
def test_a_lookup_answered_by_someone_else_keeps_the_link_to_the_registration(
    server, browser, context, page, answer
):
    """At a station's or a hotel's Wi-Fi a captive portal answers the lookup of a scanned
    visitor's pass in the instance's place (200, its login page). The phone took that for the
    registration: the form lost its link to it and said nothing, and the visitor, checked at the
    gate, was listed in the console as never checked. Now an answer that is not the visitor's
    registration is no answer: the link stays, and the volunteer is told to type the name."""
    site = gate_phone(server, context, page)
    scan, link = visitor_pass(browser, server, site, "赵小明")
    page.evaluate(LOAD_SCANNER)
    context.route("**/s/*/registrations/*", lambda route: route.fulfill(status=200, **answer))
    assert page.evaluate("(text) => FieldPasses.scanned(text)", scan) is True
    assert page.input_value(f"{FORM} [name=registration_uuid]") == link
    assert page.locator("#entry-form [name=person_type][value=visitor]").is_checked()
    assert "读不到访客的登记内容" in page.inner_text("#pass-scanner [data-scan-note]")
    context.unroute("**/s/*/registrations/*")

    page.fill(f"{FORM} [name=name]", "赵小明")
    page.fill(f"{FORM} [name=phone]", "13912345678")
    page.check(f"{FORM} [name=direction][value=in]")
    page.check(f"{FORM} [name=health_code][value=green]")
    page.fill(f"{FORM} [name=temperature]", "36.6")
    page.click(f"{FORM} button.save")
    page.locator("#gate-saved", has_text="赵小明").wait_for()
    assert stored(server) == {"赵小明": ("", link, 36.6)}


@pytest.mark.parametrize("typed", ["name", "phone"])
def test_a_name_typed_while_a_visitors_pass_is_looked_up_is_kept(
    server, browser, context, page, typed
):
    """The volunteer scans a visitor's pass and, the lookup being slow on one bar, types who
    this is by hand (the name, or the phone first). The lookup's answer then came and put the
    registration's name and phone over what was typed, and the entry saved was not the one
    the volunteer typed. Now what is typed by hand is the latest choice, as a match tapped is:
    the late answer fills nothing, and the entry saved is as typed."""
    site = gate_phone(server, context, page)
    scan, _link = visitor_pass(browser, server, site, "赵小明")
    page.evaluate(LOAD_SCANNER)

    lookups = HeldLookups(context)
    page.evaluate("(text) => { self.lookup = FieldPasses.scanned(text); }", scan)
    lookups.wait(page)
    page.fill(f"{FORM} [name={typed}]", "王手写" if typed == "name" else "13900002222")

    lookups.answer()  # the visitor's registration comes at last
    page.evaluate("() => self.lookup")
    lookups.stop()
    assert page.input_value(f"{FORM} [name=name]") == ("王手写" if typed == "name" else "")
    assert page.input_value(f"{FORM} [name=phone]") == ("" if typed == "name" else "13900002222")
    assert page.input_value(f"{FORM} [name=registration_uuid]") == ""
    assert page.locator("[data-known]").is_hidden()

    page.check(f"{FORM} [name=direction][value=in]")
    page.check(f"{FORM} [name=person_type][value=visitor]")
    page.fill(f"{FORM} [name=name]", "王手写")
    page.fill(f"{FORM} [name=phone]", "13900002222")
    page.fill(f"{FORM} [name=temperature]", "36.6")
    page.click(f"{FORM} button.save")
    page.locator("#gate-saved", has_text="王手写").wait_for()
    rows = server.query("SELECT name, phone, person_type, registration_uuid FROM entries")
    assert [tuple(r) for r in rows] == [("王手写", "13900002222", "visitor", "")]


def test_a_temperature_typed_while_a_visitors_pass_is_looked_up_is_no_choice(
    server, browser, context, page
):
    """The temperature typed while the visitor's registration is asked for says nothing of who
    this is: the answer still fills the form (linked to the registration) around it."""
    site = gate_phone(server, context, page)
    scan, link = visitor_pass(browser, server, site, "赵小明")
    page.evaluate(LOAD_SCANNER)

    lookups = HeldLookups(context)
    page.evaluate("(text) => { self.lookup = FieldPasses.scanned(text); }", scan)
    lookups.wait(page)
    page.fill(f"{FORM} [name=temperature]", "36.6")
    lookups.answer()
    form_shows(page, "赵小明")
    lookups.stop()
    assert page.input_value(f"{FORM} [name=temperature]") == "36.6"

    page.check(f"{FORM} [name=direction][value=in]")
    page.click(f"{FORM} button.save")
    page.locator("#gate-saved", has_text="赵小明").wait_for()
    assert stored(server) == {"赵小明": ("", link, 36.6)}


def test_a_pass_scanned_after_the_site_closed_says_the_site_is_closed(
    server, browser, context, page
):
    """The gate page stays open on the phone while the coordinator closes the site; a visitor
    who registered before shows their pass. The scanner said '这不是通行证二维码' (the lookup got
    the poster's page); it now says the site is closed, and fills nothing."""
    site = gate_phone(server, context, page)
    scan, _link = visitor_pass(browser, server, site, "赵小明")
    (name,) = server.query("SELECT name FROM sites WHERE id = ?", (site["id"],))[0]
    page.evaluate(LOAD_SCANNER)
    server.cli("site", "deactivate", site["code"])
    assert page.evaluate("(text) => FieldPasses.scanned(text)", scan) is False
    note = page.inner_text("#pass-scanner [data-scan-note]")
    assert note == f"{name}已停用：其访客凭证均已失效。"
    assert page.input_value(f"{FORM} [name=registration_uuid]") == ""
    assert page.input_value(f"{FORM} [name=name]") == ""
    assert server.query("SELECT count(*) FROM entries")[0][0] == 0
