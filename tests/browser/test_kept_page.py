"""A gate page the phone has kept answers a repeat visit at once, whatever the network does,
and is refreshed behind it (static/sw.js gatePage); its last entries follow (static/js/last.js),
and offline say how old they are. It follows its site to a new code."""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from datetime import datetime
from zoneinfo import ZoneInfo

from phone_support import LOAD_SCANNER, names, no_duplicates, ready, save, until, wait_waiting
from sync_helpers import entry

from fieldapp.phones import devices
from sync import peers

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the instance's TIMEZONE (its default)

KEPT = """async (path) => {
  const kept = await (await caches.open("fieldapp-pages")).match(path);
  return kept ? await kept.text() : "";
}"""
KEPT_HAS = """async ([path, text]) => {
  const kept = await (await caches.open("fieldapp-pages")).match(path);
  return !!kept && (await kept.text()).includes(text);
}"""


def routed(page, seen: list) -> None:
    """Wait until a route handler has seen a request (Playwright hands routes over only while
    it waits for something)."""
    for _ in range(300):
        if seen:
            return
        page.wait_for_timeout(100)
    raise AssertionError("the request never came")


def another_phone_registers(server, site_id: str, name: str) -> None:
    """Another gate phone of the site pushes an entry to the instance."""
    conn = sqlite3.connect(server.database, isolation_level=None)
    try:
        peer, token = peers.create(conn, "device", "另一台手机", site_id)
    finally:
        conn.close()
    body = json.dumps({"source": peer.id, "records": [entry(site_id, name=name)]}).encode()
    request = urllib.request.Request(
        server.url + "/sync/v1/push",
        data=body,
        headers={"Content-Type": "application/json", "Cookie": f"{devices.COOKIE}={token}"},
    )
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["results"][0]["status"] == "applied"


def test_a_repeat_visit_is_answered_from_the_kept_page_then_refreshed(
    server, context, enrolled_page
):
    page = enrolled_page
    ready(page)
    site_id, code = server.query("SELECT id, code FROM sites WHERE active = 1 ORDER BY name")[0]
    path = f"/s/{code}"
    kept_uuid = re.search(r'name="uuid"[^>]*value="([^"]+)"', page.evaluate(KEPT, path))[1]
    another_phone_registers(server, site_id, "后来的人")

    # The network holds back the gate page (one bar of signal): nothing answers it for now.
    held = []
    context.route(f"**{path}", lambda route: held.append(route))
    page.goto(server.url + path)  # returns once loaded: the network's answer is still held
    page.wait_for_selector("#entry-form")
    routed(page, held)  # the service worker asks the network behind the kept page
    page.wait_for_timeout(200)
    assert len(held) == 1
    assert "后来的人" not in page.evaluate(KEPT, path)  # what is shown was kept before
    # A kept page never reuses its record id.
    assert page.input_value("#entry-form [name=uuid]") not in ("", kept_uuid)
    # Its last entries follow by htmx, as they are now.
    page.wait_for_selector(".last-entries:has-text('后来的人')")

    held[0].continue_()  # the network answers at last: the kept page is refreshed
    until(page, KEPT_HAS, [path, "后来的人"])

    # A 5xx from the network never replaces the kept page, and the phone still gets it.
    context.unroute(f"**{path}")
    failed = []

    def fail(route):
        failed.append(route.request.url)
        route.fulfill(status=503, body="down")

    context.route(f"**{path}", fail)
    page.goto(server.url + path)
    page.wait_for_selector("#entry-form")
    routed(page, failed)  # the refresh was asked for, and failed
    assert "后来的人" in page.evaluate(KEPT, path)
    assert 'id="entry-form"' in page.evaluate(KEPT, path)


def test_the_first_visit_with_nothing_kept_waits_for_the_network(server, context, page):
    site_id, code = server.query("SELECT id, code FROM sites WHERE active = 1 ORDER BY name")[0]
    from servers import enrol_cookie

    enrol_cookie(server, context, site_id)
    page.goto(server.url + "/ping")  # install the service worker from another page first
    page.goto(f"{server.url}/outbox")
    until(page, "async () => !!navigator.serviceWorker.controller", seconds=20)
    assert page.evaluate(KEPT, f"/s/{code}") == ""
    page.goto(f"{server.url}/s/{code}")
    page.wait_for_selector("#entry-form")
    ready(page)  # the network's page, kept for next time


def test_a_search_the_phone_cannot_answer_asks_the_instance_and_is_not_kept(server, enrolled_page):
    """A search sent to the instance (the phone has no roster of this site, or no script ran):
    the answer is the instance's results, not the kept page; and the kept page stays the plain
    one, so the next visit does not open on that search and the person it found."""
    page = enrolled_page
    # The phone's own site (a phone of another site is not shown its people: test_gate_access).
    code = server.query("SELECT code FROM sites WHERE kind = 'construction'")[0][0]
    path = f"/s/{code}"
    page.goto(server.url + path)
    ready(page)
    page.goto(f"{server.url}{path}?q=赵志")
    page.locator("a.person", has_text="赵志强").wait_for()
    assert page.input_value("#roster-q") == "赵志"
    assert page.evaluate(KEPT_HAS, [path, "entry-form"])
    assert not page.evaluate(KEPT_HAS, [path, 'value="赵志"'])


def test_offline_the_title_and_language_links_lead_back_to_the_kept_gate(
    server, context, enrolled_page
):
    """Links every page has, tapped with no network: the title (the instance's home page) and
    another language. Neither can be had offline; both come back to the gate page the phone
    kept, not to the browser's 'no internet' page."""
    page = enrolled_page
    ready(page)
    gate = page.url
    context.set_offline(True)
    page.click("a.brand")
    page.wait_for_url(gate)
    page.wait_for_selector("#entry-form")
    page.click("nav.langs a[lang='zh-Hant']")
    page.wait_for_url(gate)
    page.wait_for_selector("#entry-form")
    # A next= a browser reads as another site ("/\\host") goes to the app's start instead.
    page.goto(f"{server.url}/lang/en?next=/%5Cevil.example/x")
    page.wait_for_url(gate)


def test_offline_a_page_that_needs_the_network_opens_the_outbox_which_says_so(
    server, context, enrolled_page
):
    """The daily report (its counts are the instance's) and the console cannot be had offline:
    the outbox opens instead, says that page needs the network, shows what waits, and leads
    back to the page once there is one; not the browser's 'no internet' page."""
    page = enrolled_page
    ready(page)
    code = page.url.rstrip("/").rsplit("/", 1)[1]
    context.set_offline(True)
    report = f"/s/{code}/report?day=2026-01-01"
    page.goto(server.url + report)
    page.wait_for_url("**/outbox?offline=*")
    note = page.locator("[data-offline-page]")
    note.wait_for(state="visible")
    assert "刚才的页面需要网络" in note.inner_text()
    assert page.get_attribute("[data-offline-again]", "href") == report
    page.wait_for_selector("[data-outbox-waiting] li")
    # Another site's address in offline= is no link of this instance's: no note, no link.
    page.goto(f"{server.url}/outbox?offline=//evil.example/x")
    page.wait_for_selector("[data-outbox-waiting] li")
    assert note.is_hidden()
    page.goto(f"{server.url}/console/")
    page.wait_for_url("**/outbox?offline=%2Fconsole%2F")
    note.wait_for(state="visible")
    context.set_offline(False)
    page.click("[data-offline-again]")
    page.wait_for_url("**/console/**")


SHELL_HAS = "async (path) => !!(await caches.match(path))"
DROP_FROM_SHELL = """async (path) => {
  for (const name of await caches.keys()) {
    if (name.startsWith("fieldapp-shell-")) await (await caches.open(name)).delete(path);
  }
}"""


def test_a_page_of_the_app_the_install_missed_is_fetched_by_a_later_visit(
    server, context, enrolled_page
):
    """On one bar of signal the worker's install could not fetch some of the app's own pages
    (here the scanner): the next page opened with a network fetches what is missing, so the
    scanner opens offline."""
    page = enrolled_page
    ready(page)
    page.evaluate(DROP_FROM_SHELL, "/scan")  # what a fetch that failed at install leaves
    assert not page.evaluate(SHELL_HAS, "/scan")
    page.reload()
    until(page, SHELL_HAS, "/scan", seconds=20)
    context.set_offline(True)
    page.goto(server.url + "/scan")
    page.wait_for_selector("[data-scan-start]")


def rotate(server, code: str) -> str:
    """The coordinator gives the site a new code (`fieldapp site rotate-code`); the new code."""
    return server.cli("site", "rotate-code", code).stdout.split("\t")[0]


def test_a_phone_keeps_its_gate_page_across_a_change_of_the_sites_code(
    server, context, enrolled_page
):
    """The site's code changes while this phone is enrolled there. Opened again online, its gate
    page moves to the new code's and is kept; offline, both the old address (the browser's tab,
    its history) and the app's start open the form; an entry saved there is sent once, to the
    site."""
    page = enrolled_page
    ready(page)
    site_id, old = server.query("SELECT id, code FROM sites WHERE active = 1 ORDER BY name")[0]
    new = rotate(server, old)

    page.reload()  # the volunteer opens the gate again, from the old code's page
    page.wait_for_url(f"**/s/{new}")
    page.wait_for_selector("#entry-form")
    ready(page)
    until(page, KEPT_HAS, [f"/s/{old}", 'id="entry-form"'])  # the old address still leads here

    context.set_offline(True)
    for path in (f"/s/{old}", "/start"):
        page.goto(server.url + path)
        page.wait_for_url(f"**/s/{new}")
        page.wait_for_selector("#entry-form")
    save(page, "换码以后")
    page.wait_for_selector("[data-outbox-flash]:has-text('1 条待发送')")

    context.set_offline(False)
    wait_waiting(page, 0)
    rows = server.query("SELECT site_id FROM entries WHERE name = '换码以后'")
    assert [r[0] for r in rows] == [site_id]
    no_duplicates(server)
    # A visitor's phone that scans the old poster is still told it is out of date.
    visitor = context.browser.new_context(locale="zh-CN")
    poster = visitor.new_page()
    poster.goto(f"{server.url}/s/{old}")
    assert poster.inner_text("h1") == "此二维码已过期"
    visitor.close()


def test_a_phone_offline_when_the_code_changes_sends_what_it_kept_and_moves_once_online(
    server, context, enrolled_page
):
    """The code changes while the phone is offline: its kept page still takes entries, to the
    site; back online the page moves to the new code's, and nothing waiting is lost or sent
    twice."""
    page = enrolled_page
    ready(page)
    site_id, old = server.query("SELECT id, code FROM sites WHERE active = 1 ORDER BY name")[0]
    context.set_offline(True)
    save(page, "换码之前")
    page.wait_for_selector("[data-outbox-flash]:has-text('1 条待发送')")
    new = rotate(server, old)
    page.reload()  # offline: the page kept under the old code
    page.wait_for_selector("#entry-form")
    save(page, "换码之时")
    page.wait_for_selector("[data-outbox-flash]:has-text('2 条待发送')")

    context.set_offline(False)
    page.wait_for_url(f"**/s/{new}")
    page.wait_for_selector("#entry-form")
    wait_waiting(page, 0)
    rows = server.query("SELECT name, site_id FROM entries ORDER BY name")
    assert [tuple(r) for r in rows] == [("换码之前", site_id), ("换码之时", site_id)]
    no_duplicates(server)


def test_offline_the_kept_list_says_how_old_it_is_and_shows_what_waits_on_the_phone(
    server, context, enrolled_page
):
    """The gate page opened offline is the copy the phone kept: its last entries are as they
    were then. The list says so, with the time it was made, and the entries waiting on this
    phone come first, marked as not sent; once they are sent, the list is the instance's."""
    page = enrolled_page
    ready(page)
    site_id = server.query("SELECT id FROM sites WHERE active = 1 ORDER BY name")[0][0]
    another_phone_registers(server, site_id, "别处登记")

    context.set_offline(True)
    page.reload()
    note = page.locator(".last-entries [data-last-offline]")
    note.wait_for(state="visible")
    as_of = page.get_attribute(".last-entries", "data-as-of")  # when the kept page was made
    made = datetime.fromisoformat(as_of.replace("Z", "+00:00")).astimezone(SHANGHAI)
    # As the list writes its times: the time alone today, the date too on another day.
    when = (
        f"{made:%H:%M}" if made.date() == datetime.now(SHANGHAI).date() else f"{made:%m-%d %H:%M}"
    )
    assert note.inner_text() == f"离线：截至 {when}"
    assert "别处登记" not in page.inner_text(".last-entries")
    save(page, "还在手机上")
    page.wait_for_selector("[data-outbox-flash]:has-text('1 条待发送')")
    first = page.locator(".last-entries li.entry").first
    first.wait_for()
    assert "未发送" in first.inner_text() and "还在手机上" in first.inner_text()
    assert page.locator(".last-entries [data-last-none]").is_hidden()  # not "nobody yet"
    assert names(server) == ["别处登记"]

    context.set_offline(False)
    wait_waiting(page, 0)
    page.wait_for_selector(".last-entries li.entry:not(.entry-unsent):has-text('还在手机上')")
    last = page.inner_text(".last-entries")
    assert "未发送" not in last and "别处登记" in last
    assert note.is_hidden()
    assert server.query("SELECT count(*), site_id FROM entries WHERE name = '还在手机上'")[0] == (
        1,
        site_id,
    )


AS_KEPT_BEFORE_LAST_JS = """async (path) => {
  const cache = await caches.open("fieldapp-pages");
  const kept = await cache.match(path);
  const html = (await kept.text()).replace(/ [^ "]*\\/js\\/last\\.[0-9a-f]{12}\\.js/, "");
  await cache.put(path, new Response(html, { headers: kept.headers }));
  return html.includes("js/last.");
}"""


def test_a_page_kept_before_its_list_had_a_script_of_its_own_still_shows_it_as_it_is_now(
    server, enrolled_page
):
    """A gate page kept by the version before names no last.js among its later scripts: its
    last entries still follow as they are now."""
    page = enrolled_page
    ready(page)
    site_id, code = server.query("SELECT id, code FROM sites WHERE active = 1 ORDER BY name")[0]
    assert page.evaluate(AS_KEPT_BEFORE_LAST_JS, f"/s/{code}") is False
    another_phone_registers(server, site_id, "后来的人")
    page.reload()
    page.wait_for_selector(".last-entries:has-text('后来的人')")


KEPT_ROSTER = """async (siteId) => {
  const db = await new Promise((ok, fail) => {
    const r = indexedDB.open("fieldapp-roster");
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
  const kept = await new Promise((ok, fail) => {
    const r = db.transaction("rosters").objectStore("rosters").get(siteId);
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
  db.close();
  return kept ? kept.people.map((p) => p.name) : [];
}"""

IN_KEPT_ROSTER = f"([siteId, name]) => ({KEPT_ROSTER})(siteId).then((n) => n.includes(name))"


def test_a_page_kept_under_an_old_code_keeps_the_roster_current_on_the_phone(
    server, context, enrolled_page, tmp_path
):
    """The site's code changes and a newcomer gets a card. The volunteer is still on the gate
    page kept under the old code (its list of last entries cannot say where the site went, here
    the network drops it): the card scanned there is found, because the roster asked for under
    the old code is the new code's, and the phone keeps it."""
    page = enrolled_page
    ready(page)
    until(page, "async () => !!self.FieldRoster && (await FieldRoster.loaded, FieldRoster.ready())")
    site_id, old = server.query("SELECT id, code FROM sites WHERE active = 1 ORDER BY name")[0]
    assert "新来的人" not in page.evaluate(KEPT_ROSTER, site_id)
    new = rotate(server, old)
    people = tmp_path / "people.csv"
    people.write_text("name,phone,unit\n新来的人,13700001111,2号楼\n", encoding="utf-8")
    server.cli("roster", "import", new, str(people))
    (token,) = server.query("SELECT pass_token FROM roster WHERE name = '新来的人'")[0]

    # The page stays the one kept under the old code: its list of last entries (which would
    # move it to the new code) never comes back.
    context.route("**/last", lambda route: route.abort())
    page.reload()
    page.wait_for_selector("#entry-form")
    assert page.url == f"{server.url}/s/{old}"
    assert f'data-roster-url="/s/{old}/roster.json"' in page.content()
    page.evaluate(LOAD_SCANNER)
    page.evaluate("(text) => FieldPasses.scanned(text)", f"fieldapp:pass:{token}")
    page.wait_for_function(
        "() => document.querySelector('#entry-form [name=name]').value === '新来的人'"
    )
    assert page.locator("[data-scan-note]").is_hidden()  # no "this pass is not valid here"
    until(page, IN_KEPT_ROSTER, [site_id, "新来的人"])  # kept on the phone, for offline
    assert page.url == f"{server.url}/s/{old}"
