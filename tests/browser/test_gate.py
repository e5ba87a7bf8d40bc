"""The gate page in a real Chromium at a phone's viewport, against a real `fieldapp serve`."""

from __future__ import annotations

from phone_support import fill, names, ready, save, until, wait_waiting
from servers import enrol_browser, enrol_cookie


def test_register_a_resident_from_the_roster_and_a_visitor_with_a_fever(server, context, page):
    site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}")
    assert page.locator("h1").inner_text() == "阳光花园小区"

    # A resident from the roster: two characters, tap the match, then direction and temperature.
    page.fill("#roster-q", "张建")
    page.locator("a.person", has_text="张建国").click()
    assert page.input_value("#name") == "张建国"
    assert page.input_value("#phone") == "13812345678"
    assert page.input_value("#destination") == "3-2-501"
    page.locator("label", has_text="进").first.click()
    page.fill("#temperature", "36.6")
    # An impatient triple tap at shift change still makes one record.
    page.evaluate(
        "() => { const b = document.querySelector('button.save'); b.click(); b.click(); b.click(); }"
    )
    page.locator(".flash", has_text="已登记：张建国").wait_for()
    assert page.input_value("#name") == ""  # a fresh form

    # A visitor with a fever: red as it is typed, and no saving before the action is chosen.
    page.locator("#person_type label", has_text="访客").click()
    page.fill("#name", "王五")
    page.fill("#phone", "13912345678")
    page.locator("#direction label", has_text="进").click()
    page.fill("#temperature", "38.1")
    assert "fever" in page.get_attribute(".field.temperature", "class")
    assert page.locator(".fever-note").is_visible()
    assert page.locator("#fever_action").is_visible()
    page.click("button.save")
    page.locator(".error", has_text="38.1 °C 属于发热").wait_for()
    assert server.query("SELECT count(*) FROM entries WHERE name = '王五'")[0][0] == 0
    page.locator("#fever_action label", has_text="送发热门诊").click()
    page.click("button.save")
    page.locator(".flash", has_text="已登记：王五").wait_for()

    last = page.locator(".last-entries").inner_text()
    assert "张建国" in last and "王五" in last and "38.1 °C" in last
    assert "139****5678" in last and "13912345678" not in last
    rows = {
        r["name"]: r
        for r in server.query(
            "SELECT name, person_type, direction, temperature, fever_action, phone, site_id,"
            " recorded_at FROM entries"
        )
    }
    assert set(rows) == {"张建国", "王五"}
    assert server.query("SELECT count(*) FROM entries")[0][0] == 2
    assert (rows["张建国"]["person_type"], rows["张建国"]["temperature"]) == ("resident", 36.6)
    assert (rows["王五"]["person_type"], rows["王五"]["fever_action"]) == ("visitor", "clinic")
    assert rows["王五"]["site_id"] == site["id"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The narrowest phones the design names, in the longest language, with errors shown.
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{server.url}/lang/en?next=/s/{site['code']}")  # remembered, for the POST too
    page.click("button.save")
    page.locator("#name-error", has_text="Fill this in.").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_the_search_asks_the_instance_while_the_roster_is_not_on_the_phone(server, context, page):
    site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
    enrol_cookie(server, context, site["id"])
    context.route("**/roster.json*", lambda route: route.abort())  # it never arrives
    page.goto(f"{server.url}/s/{site['code']}")
    page.wait_for_function("() => !!window.FieldRoster")
    page.fill("#roster-q", "张建")
    page.locator("a.person", has_text="张建国").click()
    assert page.input_value("#name") == "张建国"
    assert page.evaluate("FieldRoster.ready()") is False  # the instance answered


def test_the_gate_form_works_without_javascript(server, browser):
    site = server.query("SELECT id, code FROM sites WHERE kind = 'construction'")[0]
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="zh-CN", java_script_enabled=False
    )
    try:
        enrol_cookie(server, context, site["id"])
        page = context.new_page()
        page.goto(f"{server.url}/s/{site['code']}")
        # Roster search without JS: a plain GET, then the match is a link that fills the form.
        page.fill("#roster-q", "钢筋")
        page.click(".search-row button")
        page.locator("a.person", has_text="赵志强").click()
        assert page.input_value("#name") == "赵志强"
        page.check("#direction-0")
        page.fill("#temperature", "37.6")
        page.click("button.save")  # a fever without an action: refused, typed values kept
        page.locator(".error", has_text="37.6 °C 属于发热").wait_for()
        assert page.input_value("#name") == "赵志强"
        page.check("#fever_action-2")  # re-measured
        page.click("button.save")
        page.locator(".flash", has_text="已登记：赵志强").wait_for()
        assert page.url == f"{server.url}/s/{site['code']}?saved=1"  # POST, redirect, GET
        row = server.query("SELECT person_type, fever_action, temperature FROM entries")
        assert [tuple(r) for r in row] == [("worker", "remeasured", 37.6)]
    finally:
        context.close()


def test_a_phone_number_and_a_plate_typed_with_spaces_are_not_cut_short(server, context, page):
    """The inputs let through as many characters as the rules take (rules.MAX_LEN): the spaces,
    dashes and dots a volunteer types in a number or a plate are stripped, not cut off."""
    site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}")
    page.locator("#person_type label", has_text="访客").click()
    page.fill("#name", "钱七")
    page.locator("#phone").press_sequentially("+86 138-0013-8000")  # keys, as maxlength sees them
    page.locator("#plate").press_sequentially("苏 A · D12345")
    page.locator("#direction label", has_text="进").click()
    page.fill("#temperature", "36.5")
    page.click("button.save")
    page.locator(".flash", has_text="已登记：钱七").wait_for()
    (row,) = server.query("SELECT phone, plate FROM entries WHERE name = '钱七'")
    assert tuple(row) == ("13800138000", "苏AD12345")


def test_a_reading_typed_with_its_unit_and_a_wide_number_are_read(server, context, page):
    """A keyboard in full-width mode, a unit typed after the reading: the phone reads them as
    the instance does; a reading without its point gets a guess, not "enter a number"."""
    site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}")
    page.locator("#person_type label", has_text="访客").click()
    page.fill("#name", "孙全角")
    page.locator("#phone").press_sequentially("１３８１２３４５６７８")
    page.locator("#direction label", has_text="进").click()
    page.locator("#temperature").press_sequentially("365")
    page.click("button.save")
    page.locator("#temperature-error", has_text="是不是 36.5？").wait_for()
    page.fill("#temperature", "")
    page.locator("#temperature").press_sequentially("37.25 ℃")  # keys, as maxlength sees them
    assert page.input_value("#temperature") == "37.25 ℃"
    page.fill("#temperature", "")
    page.locator("#temperature").press_sequentially("３６．５℃")
    page.click("button.save")
    page.locator(".flash", has_text="已登记：孙全角").wait_for()
    (row,) = server.query("SELECT phone, temperature FROM entries WHERE name = '孙全角'")
    assert tuple(row) == ("13812345678", 36.5)


def test_an_entry_typed_while_the_poster_code_changed_is_saved(server, enrolled_page):
    """The coordinator rotates the poster's code while the volunteer types: the save still
    stores the entry (it names its site), and the next one goes to the new code."""
    page = enrolled_page
    ready(page)
    code = page.url.rsplit("/s/", 1)[1]
    server.cli("site", "rotate-code", code)
    save(page, "王改码")
    page.locator("#gate-saved", has_text="王改码").wait_for()
    save(page, "李新码")
    page.locator("#gate-saved", has_text="李新码").wait_for()
    assert sorted(names(server)) == ["李新码", "王改码"]
    assert page.evaluate("async () => (await FieldOutbox.summary()).waiting") == 0


def test_an_error_answer_keeps_what_was_typed_and_says_so(server, enrolled_page):
    """An answer that is an error page (here a gate address no site has) saves nothing: the form
    keeps the typed entry and says so, rather than leaving for the error page."""
    page = enrolled_page
    ready(page)
    gate = page.url
    page.evaluate(
        "() => { document.getElementById('entry-form').action = '/s/no-such-code/entries'; }"
    )
    save(page, "赵未存")
    shown = page.locator("#entry-form [data-not-saved]")
    shown.wait_for()
    assert "未保存" in shown.inner_text() and "404" in shown.inner_text()
    assert page.url == gate
    assert page.input_value("#entry-form [name=name]") == "赵未存"
    assert names(server) == []
    assert page.evaluate("async () => (await FieldOutbox.summary()).waiting") == 0


PORTAL = "<!doctype html><html><body><h1>免费 WiFi：请先登录</h1><form><input name=phone></form></body></html>"


def test_a_captive_portals_page_answering_a_save_keeps_the_entry_on_the_phone(server, browser):
    """A station's or a hotel's Wi-Fi that answers every address with its login page (200):
    the save never reached the instance, so the phone keeps the entry to send later, and
    says so, rather than "not saved"."""
    portal = {"on": False}

    def answer(route):
        request = route.request
        if portal["on"] and request.method == "POST":  # the save, and the outbox's push
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=PORTAL)
        else:
            route.continue_()

    # Routed before the page and its service worker exist: the worker's requests too.
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    context.route("**/*", answer)
    try:
        page = context.new_page()
        enrol_browser(server, page)
        ready(page)
        portal["on"] = True
        save(page, "孙门户")
        page.locator("#gate-saved", has_text="孙门户").wait_for()
        assert "已保存在本机" in page.locator("#gate-saved").inner_text()
        wait_waiting(page, 1)
        # The send the save started has met the portal too and backed off: the portal does
        # not go away between its push and the empty push that tells a record the instance
        # cannot take from an instance out of reach (as a volunteer's login to it could).
        until(page, "async () => ((await FieldOutbox.getMeta('send_state')) || {}).failures > 0")
        assert names(server) == []
        portal["on"] = False
        page.evaluate("async () => { await FieldOutbox.send(); }")
        wait_waiting(page, 0)
        assert names(server) == ["孙门户"]
    finally:
        context.close()


def test_a_save_sent_without_the_pages_script_is_the_instances_once(server, context, enrolled_page):
    """The form sent by the browser itself (the page's script failed), the service worker in
    control: the instance's redirect after its save is followed, not taken for a captive
    portal's page, and the phone keeps no copy to send again. The page it leads to says
    "已登记" as it does with no worker: the worker answered with the page it kept, and kept the
    instance's page with the confirmation (fetched behind it) for the next offline visit."""
    page = enrolled_page
    ready(page)
    fill(page, "周无脚本")
    with page.expect_navigation():
        page.evaluate("() => document.getElementById('entry-form').submit()")
    assert "saved=outbox" not in page.url
    page.locator(".flash", has_text="已登记：周无脚本").wait_for()
    assert names(server) == ["周无脚本"]
    wait_waiting(page, 0)
    # The page kept for offline use is the plain form, with nobody's confirmation in it.
    context.set_offline(True)
    page.goto(page.url.split("?")[0])
    page.wait_for_selector("#entry-form")
    assert page.evaluate("() => !!navigator.serviceWorker.controller")
    assert page.locator(".flash", has_text="周无脚本").count() == 0


def test_two_phones_at_one_gate_see_each_others_entries(server, browser):
    """Two volunteers at one gate at shift change: the other phone's entry shows in this
    phone's last entries when the volunteer comes back to the page (and every two minutes
    while it is on the screen), not only after this phone's own next save."""
    site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
    phones = []
    try:
        for _ in range(2):
            context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
            enrol_cookie(server, context, site["id"])
            page = context.new_page()
            page.goto(f"{server.url}/s/{site['code']}")
            phones.append((context, page))
        first, second = phones[0][1], phones[1][1]
        first.locator("#direction label", has_text="进").click()
        first.locator("#person_type label", has_text="访客").click()
        save(first, "钱一号")
        first.locator(".flash", has_text="已登记：钱一号").wait_for()
        assert second.locator(".last-entries li", has_text="钱一号").count() == 0
        # The second volunteer looks at another app, then back at the gate page.
        second.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
        second.locator(".last-entries li", has_text="钱一号").wait_for()
    finally:
        for context, _page in phones:
            context.close()
