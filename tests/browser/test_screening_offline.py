"""Screening end to end, at a phone's 390×844: a campaign made at the city reaches a site phone
through the district; offline, the volunteer screens three roster people (one into home
isolation) and adds someone not on the roster, counting taps; back online the district's
coverage shows 4 screened with the breakdown, the follow-up exists and the summary paragraph
says so; the city has every answer once."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_support import add_user_cli, sign_in
from phone_support import ready, until, wait_waiting, waiting
from servers import enrol_browser, enrol_cookie, make_server
from sync_helpers import link, start, stop
from wait import wait_until

NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"
SHOTS = Path("/tmp")
pytestmark = pytest.mark.slow  # two instances as processes


@pytest.fixture
def chain(tmp_path):
    city = make_server(tmp_path / "city")  # the demo's sites and rosters
    district = make_server(tmp_path / "district", demo=False, SYNC_INTERVAL="1")
    link(district, city, "jintan-district")
    city.cli("screening", "campaign", "add", "--name", "复工人员排查", "--district", "金坛区")
    start(city)
    start(district)
    yield city, district
    stop(district)
    stop(city)


class Taps:
    """Taps on the phone, counted."""

    def __init__(self, page) -> None:
        self.page, self.count = page, 0

    def __call__(self, selector: str) -> None:
        self.page.locator(selector).first.click()
        self.count += 1

    def choose(self, name: str, value: str) -> None:
        self(f'#screen-form label:has(input[name={name}][value="{value}"])')

    def here_and_well(self, whereabouts: str, vaccine_doses: str) -> None:
        """Screen someone here and well (no contact, no NAT): five choices, then save."""
        self.choose("whereabouts", whereabouts)
        self.choose("contact", "no")
        self.choose("status", "here")
        self.choose("nat_result", "none")
        self.choose("vaccine_doses", vaccine_doses)
        self("#screen-form > button.save")


def open_person(page, name: str) -> None:
    page.locator("#people li[data-person] a", has_text=name).first.click()
    page.wait_for_selector("#screen-form:not([hidden])")


def test_a_campaign_from_the_top_is_screened_offline_and_counted_up_the_chain(chain, browser):
    city, district = chain
    district.cli("sync")  # sites, rosters and the campaign come down (the background does too)
    assert district.query("SELECT name FROM screening_campaigns")[0][0] == "复工人员排查"
    code = district.query("SELECT code FROM sites WHERE name = '阳光花园小区'")[0][0]
    add_user_cli(district, "jintan", "coordinator", "--districts", "金坛区")

    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    try:
        page = context.new_page()
        enrol = district.cli("device", "enrol", "--site", code, "--name", "东门手机").stdout
        page.goto(enrol.strip())
        page.click("form button[type=submit]")
        page.click("#open-gate")
        page.wait_for_selector("#entry-form")
        page.click(".gate-screening-link a")  # the gate page links to today's campaign
        page.wait_for_selector("#people li[data-person]")
        ready(page)  # the service worker keeps this page for offline use
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        assert "共 4 人，已排查 0 人，未排查 4 人" in page.inner_text("[data-count]")

        context.set_offline(True)
        tap = Taps(page)
        # A new answer, every question asked: five choices and save.
        open_person(page, "张建国")
        tap.count = 0
        tap.here_and_well("district", vaccine_doses="3")
        assert tap.count == 6
        page.wait_for_selector("[data-screening-flash]:has-text('已保存：张建国。本机 1 条待发送')")

        # Back from another province, into home isolation, tested today.
        open_person(page, "李秀英")
        tap.choose("whereabouts", "other_province")
        page.fill("#s-whereabouts_where", "湖北")
        tap.choose("contact", "no")
        tap.choose("status", "home_isolation")
        tap.choose("nat_result", "negative")
        tap("#screen-form [data-days-ago='0']")
        tap.choose("vaccine_doses", "2")
        page.screenshot(path=str(SHOTS / "screening_form_390.png"), full_page=True)
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        tap("#screen-form > button.save")
        page.wait_for_selector("[data-screening-flash]:has-text('已保存：李秀英')")

        open_person(page, "王磊")
        tap.here_and_well("city", vaccine_doses="3")
        page.wait_for_selector("[data-screening-flash]:has-text('已保存：王磊')")

        # The phone refuses what the instance would, beside the field, and queues nothing.
        open_person(page, "陈晓梅")
        tap("#screen-form > button.save")
        error = page.locator("#whereabouts-error")
        assert error.inner_text() == "请选择一项。"
        assert waiting(page) == 3
        page.click("#screen-form [data-back]")

        # Someone not on the roster, added on the phone.
        page.click("[data-add]")
        page.fill("#s-name", "刘新来")
        page.fill("#s-phone", "13900001111")
        page.fill("#s-unit", "临时住户")
        tap.here_and_well("district", vaccine_doses="1")
        page.wait_for_selector("[data-screening-flash]:has-text('已保存：刘新来。本机 4 条待发送')")
        assert "共 5 人，已排查 4 人，未排查 1 人，需跟进 1 人" in page.inner_text("[data-count]")

        # A re-check of an unchanged person: one tap after opening them.
        page.click("[data-filter=done]")
        open_person(page, "张建国")
        assert "上次排查" in page.inner_text("[data-last]")
        tap.count = 0
        tap("#screen-form button.same-as-last")
        assert tap.count == 1
        page.wait_for_selector("[data-screening-flash]:has-text('本机 5 条待发送')")
        page.screenshot(path=str(SHOTS / "screening_list_390.png"), full_page=True)

        # Still offline, the page comes back from the phone, with what it answered.
        page.reload()
        page.wait_for_selector("#people li[data-person]")
        until(
            page, "() => document.querySelector('[data-count]').textContent.includes('已排查 4 人')"
        )
        assert district.query("SELECT count(*) FROM screenings")[0][0] == 0

        # To the gate register and back to the screening, still offline: both pages open from
        # the phone (the gate page's button leads to the campaign's own page, which it keeps).
        page.click(f"a[href='/s/{code}']")
        page.wait_for_selector("#entry-form")
        page.click(".gate-screening-link a")
        page.wait_for_selector("#people li[data-person]")
        assert "已排查 4 人" in page.inner_text("[data-count]")

        context.set_offline(False)
        wait_waiting(page, 0, 60)
    finally:
        context.close()

    assert district.query("SELECT status, reason FROM sync_rejects") == []
    stored = district.query("SELECT count(*), count(DISTINCT person_id) FROM screenings")[0]
    assert tuple(stored) == (5, 4)
    # Up the chain: the district's background sync hands every answer to the city, once.
    wait_until(
        lambda: city.query("SELECT count(*) FROM screenings")[0][0] == 5, 60, "the city has them"
    )
    at_city = city.cli("screening", "coverage", "复工人员排查").stdout
    assert "应排查 8 人，已排查 4 人（含名单外新增 1 人），未排查 4 人" in at_city

    office = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    try:
        desk = office.new_page()
        sign_in(desk, district.url, "jintan")
        desk.goto(f"{district.url}/console/screening")
        desk.click("table.campaigns a:has-text('复工人员排查')")
        summary = desk.locator("[data-summary]").inner_text()
        assert "已排查 4 人（含名单外新增 1 人）" in summary
        assert "1 人去过外省（其中 1 人居家隔离）" in summary
        assert "目前 3 人在本场所、身体正常，1 人居家隔离" in summary
        row = desk.locator("tr[data-site]", has_text="阳光花园小区")
        cells = row.locator("td").all_inner_texts()
        assert cells[1:3] == ["4", "1"]  # screened, not yet
        total = desk.locator("tr[data-district='金坛区'] td").all_inner_texts()
        assert total[:3] == ["8", "4", "4"]
        assert desk.evaluate(NO_SIDEWAYS_SCROLL)  # the wide table scrolls inside its box
        desk.screenshot(path=str(SHOTS / "screening_coverage_390.png"), full_page=True)
        desk.click("a:has-text('隔离观察跟进')")
        follow = desk.locator("ol.followups li", has_text="李秀英")
        assert "居家隔离" in follow.inner_text()
    finally:
        office.close()


def test_the_screening_button_works_offline_on_a_phone_that_never_opened_it(server, context, page):
    """The gate page, opened with a network while a campaign runs, has the phone keep the
    campaign's page too: the button then opens it offline although it was never opened."""
    server.cli("screening", "campaign", "add", "--name", "复工人员排查", "--district", "金坛区")
    enrol_browser(server, page)
    ready(page)
    link = page.locator(".gate-screening-link a").get_attribute("href")
    until(page, "async (path) => !!(await caches.match(path, {ignoreVary: true}))", link)
    context.set_offline(True)
    page.click(".gate-screening-link a")
    page.wait_for_selector("#people li[data-person]")
    assert "未排查" in page.inner_text("[data-count]")


def test_someone_added_on_this_phone_who_joins_the_roster_is_listed_once(
    server, context, page, tmp_path
):
    """The phone adds 刘新来 and sends the answer; the central imports them into the roster
    (added.csv's path). The page opened again lists them once, on the roster, screened today
    with this phone's answer: not once more as added, from what the phone remembers."""
    server.cli("screening", "campaign", "add", "--name", "复工人员排查", "--all-sites")
    cid = server.query("SELECT id FROM screening_campaigns")[0][0]
    site = server.query("SELECT id, code FROM sites ORDER BY name LIMIT 1")[0]
    roster = server.query("SELECT count(*) FROM roster WHERE site_id = ?", (site["id"],))[0][0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}/screening/{cid}")
    page.wait_for_selector("#people li[data-person]")
    page.click("[data-add]")
    page.fill("#s-name", "刘新来")
    page.fill("#s-phone", "13900001111")
    page.fill("#s-unit", "临时住户")
    tap = Taps(page)
    tap.here_and_well("district", vaccine_doses="1")
    page.wait_for_selector("[data-screening-flash]:has-text('已保存：刘新来')")
    wait_waiting(page, 0)
    assert server.query("SELECT count(*) FROM screenings")[0][0] == 1
    joined = tmp_path / "join.csv"
    joined.write_text("name,phone,unit,person_type\n刘新来,13900001111,临时住户,resident\n")
    server.cli("roster", "import", site["code"], str(joined))

    page.reload()
    page.wait_for_selector("#people li[data-person]")
    page.click("[data-filter=all]")
    listed = page.locator("#people li[data-person]", has_text="刘新来")
    assert listed.count() == 1
    assert listed.first.get_attribute("data-state") == "done"
    assert "名单外" not in listed.first.inner_text()
    assert f"共 {roster + 1} 人，已排查 1 人" in page.inner_text("[data-count]")
