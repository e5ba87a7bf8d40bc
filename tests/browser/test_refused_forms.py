"""A form the instance refuses shows why, where the user is looking: htmx swaps in only a 2xx
answer (its default responseHandling), so a refused form's fragment must come back as one."""

from __future__ import annotations

from phone_support import fill_visitor
from servers import enrol_cookie


def test_a_visitor_who_does_not_agree_is_told_so_and_nothing_is_saved(server, page):
    site = server.query("SELECT code FROM sites WHERE kind = 'residential'")[0]
    page.goto(f"{server.url}/s/{site['code']}/register")
    fill_visitor(page, "赵小明", consent=False)
    page.click("#self-register button[type=submit]")  # the consent box not ticked
    page.locator("#self-register .error", has_text="请阅读说明并勾选同意。").wait_for()
    assert page.input_value("#name") == "赵小明"  # what they typed is still there
    assert server.query("SELECT uuid FROM registrations") == []
    page.check("#self-register [name=consent]")
    page.click("#self-register button[type=submit]")
    page.wait_for_selector("[data-pass-qr] svg")
    assert len(server.query("SELECT uuid FROM registrations")) == 1


def test_a_daily_report_the_instance_refuses_says_why_on_the_phone(server, context, page):
    site = server.query("SELECT id, code FROM sites WHERE active = 1 ORDER BY name LIMIT 1")[0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}/report")
    page.wait_for_selector("button.report-submit")
    # A day no gate may report for (a form no page would send): the instance refuses it.
    page.evaluate("document.querySelector('#gate-report [name=day]').value = '2099-01-01'")
    page.click("button.report-submit")
    page.locator("#gate-report .flash-error", has_text="报告未保存").wait_for()
    assert server.query("SELECT count(*) FROM daily_reports")[0][0] == 0


def test_a_visitor_with_no_network_is_told_nothing_was_sent_and_keeps_the_form(
    server, context, page
):
    """The visitor's own phone has no service worker: a tap on Register with no network made
    htmx fail without a word. Now the page says so above the form, which keeps what was typed,
    and the next tap with a network registers."""
    site = server.query("SELECT code FROM sites WHERE kind = 'residential'")[0]
    page.goto(f"{server.url}/s/{site['code']}/register")
    fill_visitor(page, "钱无网")
    context.set_offline(True)
    page.click("#self-register button[type=submit]")
    shown = page.locator("[data-not-sent]")
    shown.wait_for()
    assert "网络" in shown.inner_text()
    assert page.input_value("#name") == "钱无网"
    assert server.query("SELECT uuid FROM registrations") == []
    context.set_offline(False)
    page.click("#self-register button[type=submit]")
    page.wait_for_selector("[data-pass-qr] svg")
    assert page.locator("[data-not-sent]").count() == 0
    assert len(server.query("SELECT uuid FROM registrations")) == 1


def test_a_visitor_whose_answer_was_lost_taps_again_and_is_counted_once(server, page):
    """At a self-service site the instance stored the visitor's registration and its entry, but
    the bar dropped before the answer came: the page said "not sent". Tapped again, as it says,
    the same form is the same registration: the visitor gets their pass, counted once."""
    site = server.query("SELECT code FROM sites WHERE kind = 'construction'")[0]
    server.cli("site", "self-service", site["code"], "--on")
    page.goto(f"{server.url}/s/{site['code']}/register")
    lost = []

    def drop_the_answer(route):
        if route.request.method == "POST" and not lost:
            lost.append(route.fetch())  # the instance gets it and stores it...
            route.abort("connectionreset")  # ...but the answer never reaches the phone
        else:
            route.continue_()

    page.route("**/register", drop_the_answer)
    fill_visitor(page, "孙断网")
    page.fill("#temperature", "36.6")
    page.click("#self-register button[type=submit]")
    page.locator("[data-not-sent]").wait_for()
    assert lost and lost[0].status == 200  # it was stored: the pass was on its way
    stored = server.query("SELECT uuid FROM registrations")
    assert len(stored) == 1
    page.click("#self-register button[type=submit]")  # "try again"
    page.wait_for_selector("[data-pass-qr] svg")
    assert page.locator("[data-not-sent], #self-register .flash-error").count() == 0
    assert page.locator("[data-pass-name]").inner_text() == "孙*网"
    assert server.query("SELECT uuid FROM registrations") == stored
    entries = server.query("SELECT registration_uuid FROM entries WHERE name = '孙断网'")
    assert [e[0] for e in entries] == [stored[0][0]]
