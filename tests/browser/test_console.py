"""The console in a real Chromium against a real `fieldapp serve`: a fever registered at the
gate is followed up to a close by a coordinator; a viewer sees masked data only."""

from __future__ import annotations

from pathlib import Path

from console_support import add_user_cli, sign_in
from servers import enrol_cookie

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "门岗 password 2020"


def register_fever_visitor(page, name: str, phone: str, temperature: str) -> None:
    """At the gate: a visitor coming in with a fever, sent to the clinic, registered."""
    page.locator("#person_type label", has_text="访客").click()
    page.fill("#name", name)
    page.fill("#phone", phone)
    page.locator("#direction label", has_text="进").click()
    page.fill("#temperature", temperature)
    page.locator("#fever_action label", has_text="送发热门诊").click()
    page.click("button.save")
    page.locator(".flash", has_text=f"已登记：{name}").wait_for()


def test_coordinator_follows_a_gate_fever_to_a_close(server, browser, context, page):
    site = server.query("SELECT id, code, district FROM sites WHERE kind = 'residential'")[0]
    add_user_cli(server, "wang", "coordinator", "--districts", site["district"], password=PASSWORD)
    add_user_cli(server, "guest", "viewer", password=PASSWORD)

    # At the gate: a visitor with 38.5 °C, sent to the clinic.
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}")
    register_fever_visitor(page, "王五", "13912345678", "38.5")

    # In the office: the coordinator signs in and sees it on today's dashboard.
    office = browser.new_context(viewport={"width": 360, "height": 800}, locale="zh-CN")
    console = office.new_page()
    console.clock.install()  # lets the test move the dashboard's 30-second poll along
    sign_in(console, server.url, "wang", PASSWORD)
    assert console.locator("#open-cases").inner_text() == "1"
    assert console.evaluate("document.documentElement.scrollWidth") <= 360

    # A second fever at the gate appears on the open dashboard by polling, without a reload.
    console.evaluate("window.notReloaded = true")
    register_fever_visitor(page, "赵六", "13712345678", "37.6")
    console.clock.fast_forward(31_000)
    console.locator("#open-cases", has_text="2").wait_for()
    assert console.evaluate("window.notReloaded") is True
    console.click("text=跟进发热人员")
    console.locator(".cases a", has_text="王五").click()
    console.wait_for_url("**/console/cases/*")
    assert "38.5 °C" in console.locator("h1").inner_text()
    assert console.evaluate("document.documentElement.scrollWidth") <= 360

    console.click("button:has-text('确认接报')")
    console.locator(".flash").wait_for()
    assert "wang" in console.locator(".facts").inner_text()
    console.check("input[name=action][value=remeasure]")
    console.fill("#a-temp", "38.2")
    console.click("button:has-text('保存措施')")
    console.locator(".actions li", has_text="38.2 °C").wait_for()
    console.check("input[name=action][value=home_isolation]")
    console.click("button:has-text('保存措施')")
    console.locator(".actions li", has_text="居家隔离").wait_for()
    console.check("input[name=action][value=report]")
    console.fill("#a-note", "已报社区卫生服务中心")
    console.click("button:has-text('保存措施')")
    console.locator(".actions li", has_text="已报社区卫生服务中心").wait_for()
    console.select_option("#a-outcome", "isolation_done")
    console.click("button:has-text('结案')")
    console.locator(".case-status", has_text="已结案").wait_for()
    assert "居家隔离期满" in console.locator(".case-status").inner_text()

    uuid = server.query("SELECT uuid FROM entries WHERE name = '王五'")[0][0]
    actions = server.query(
        "SELECT action, author FROM case_actions WHERE entry_uuid = ? ORDER BY id", (uuid,)
    )
    assert [a["action"] for a in actions] == [
        "acknowledge",
        "remeasure",
        "home_isolation",
        "report",
        "close",
    ]
    assert {a["author"] for a in actions} == {"wang"}
    console.goto(f"{server.url}/console/")
    assert console.locator("#open-cases").inner_text() == "1"  # 赵六's is still open
    office.close()

    # A viewer: the same log, masked, and nothing to unmask or act on.
    viewing = browser.new_context(viewport={"width": 360, "height": 800}, locale="zh-CN")
    viewer = viewing.new_page()
    sign_in(viewer, server.url, "guest", PASSWORD)
    viewer.goto(f"{server.url}/console/log")
    viewer.click("form.filters summary")  # the filters open: two date fields side by side
    assert viewer.evaluate("document.documentElement.scrollWidth") <= 360
    log = viewer.locator("#log").inner_text()
    assert "王*" in log and "王五" not in log
    assert "139****5678" in log and "13912345678" not in log
    viewer.locator(".entries a").first.click()
    viewer.wait_for_url("**/console/entry/*")
    assert viewer.locator("button:has-text('显示完整手机号')").count() == 0
    assert viewer.locator("text=更正此登记").count() == 0
    viewer.goto(f"{server.url}/console/audit")
    assert "403" in viewer.title() or viewer.locator("h1").inner_text() != "审计日志"
    viewing.close()


def test_a_search_in_the_log_keeps_the_name_out_of_the_url(server, browser, context, page):
    """With HTMX and without JavaScript: the list is the search's, the address bar (and so
    the history and the access log) has no name, and a reload shows the same search."""
    site = server.query("SELECT id, code, district FROM sites WHERE kind = 'residential'")[0]
    add_user_cli(server, "wang", "coordinator", "--districts", site["district"], password=PASSWORD)
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}")
    register_fever_visitor(page, "王五", "13912345678", "38.5")
    register_fever_visitor(page, "赵六", "13712345678", "37.6")

    for javascript in (True, False):
        office = browser.new_context(locale="zh-CN", java_script_enabled=javascript)
        console = office.new_page()
        sign_in(console, server.url, "wang", PASSWORD)
        console.goto(f"{server.url}/console/log")
        assert "赵六" in console.locator("#log").inner_text()
        console.click("form.filters summary")
        console.fill("#f-q", "王五")
        console.click("form.filters button[type=submit]")
        console.wait_for_url("**/console/log?s=*")
        console.locator("#log .entries", has_text="王五").wait_for()
        assert "赵六" not in console.locator("#log").inner_text()
        assert "王五" not in console.url and "%E7%8E%8B" not in console.url.upper()
        console.reload()
        log = console.locator("#log").inner_text()
        assert "王五" in log and "赵六" not in log
        office.close()
