"""Every tap target is 44 px or more, on a 360×640 phone: the gate page, the outbox page, the
console's dashboard and a site's passes, the visitor's form and pass, each with what makes their small links appear (an entry needing attention,
site and fever links, a phone's row)."""

from __future__ import annotations

from console_support import add_user_cli, sign_in
from phone_support import queue_refused, register_visitor, save, until
from servers import enrol_browser

# Links, buttons, disclosures and the chips of radio and check boxes that are on the page.
SMALL = """() => [...document.querySelectorAll(
    "a[href], button, summary, label:has(> input[type=radio]), label:has(> input[type=checkbox])")]
  .filter((el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden")
  .map((el) => {
    const r = el.getBoundingClientRect();
    return [el.tagName, el.textContent.trim().slice(0, 40), Math.round(r.width), Math.round(r.height)];
  })
  .filter(([, , width, height]) => width < 44 || height < 44)"""


def test_links_and_buttons_are_44_px_on_a_360_px_phone(server, page):
    page.set_viewport_size({"width": 360, "height": 640})
    code = enrol_browser(server, page)
    gate = f"{server.url}/s/{code}"
    save(page, "王五", "38.2")  # a fever: the dashboard links to it
    page.wait_for_selector("#gate-saved:has-text('王五')")
    # An entry the office refuses (45 °C, from an older app), so "1 entry needs attention" shows.
    queue_refused(page)
    page.click("[data-send-now]")
    until(page, "async () => (await FieldOutbox.summary()).attention === 1")
    for path in (gate, server.url + "/outbox"):
        page.goto(path)
        page.wait_for_selector("[data-status-attention]:not([hidden])")
        assert page.evaluate(SMALL) == [], path

    add_user_cli(server, "admin", "admin")
    sign_in(page, server.url, "admin")
    page.wait_for_selector("table.sites a.fever")  # the site and fever links are there
    page.wait_for_selector("td:has-text('测试手机')")  # and the phone's row
    assert page.evaluate(SMALL) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    # The site's passes: print, reissue, self-service.
    site_id = server.query("SELECT id FROM sites WHERE code = ?", (code,))[0][0]
    page.goto(f"{server.url}/console/sites/{site_id}/gate")
    page.wait_for_selector("form[action$='/passes/reissue']")
    assert page.evaluate(SMALL) == []


def test_the_visitor_pass_has_44_px_targets_on_a_360_px_phone(server, browser):
    code = server.query("SELECT code FROM sites WHERE active = 1 ORDER BY name LIMIT 1")[0][0]
    context = browser.new_context(viewport={"width": 360, "height": 640}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(f"{server.url}/s/{code}/register")
        assert page.evaluate(SMALL) == []
        register_visitor(page, "赵小明")
        assert page.evaluate(SMALL) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    finally:
        context.close()
