"""The pages the app shell keeps for offline use (the outbox, the scanner) follow the language the
volunteer chooses, at once and then offline too; not the language the phone installed in."""

from __future__ import annotations

from phone_support import ready, until

SHELL_HAS = """async (path) => {
  const names = (await caches.keys()).filter((n) => n.startsWith("fieldapp-shell-"));
  for (const name of names) if (await (await caches.open(name)).match(path)) return true;
  return false;
}"""


def test_the_outbox_and_scanner_follow_the_chosen_language(server, context, enrolled_page):
    page = enrolled_page
    ready(page)
    until(page, SHELL_HAS, "/outbox")
    until(page, SHELL_HAS, "/scan")
    page.goto(f"{server.url}/outbox")
    assert page.locator("h1").inner_text() == "待发送"  # zh-Hans, as the phone installed
    page.click("nav.langs a[lang='en']")
    page.wait_for_url("**/outbox")
    assert page.locator("h1").inner_text() == "Outbox"
    assert page.get_attribute("html", "lang") == "en"
    page.goto(f"{server.url}/scan")
    assert page.locator("h1").first.inner_text() == "Scan a site code"
    context.set_offline(True)
    page.goto(f"{server.url}/outbox")
    assert page.locator("h1").inner_text() == "Outbox"
    page.goto(f"{server.url}/scan")
    assert page.locator("h1").first.inner_text() == "Scan a site code"
