"""An entry the instance cannot store yet (answered "held") stays on the phone, in "needs
attention", and is sent again by itself: it is still an entry of its day that waits."""

from __future__ import annotations

import json

from phone_support import (
    attention,
    names,
    one_entry_waiting,
    outbox_loaded,
    ready,
    save,
    until,
    wait_waiting,
)


def held_once(context) -> list[str]:
    """The instance answers the phone's next push "held" for each record in it (as it does for
    a record naming what it has not received yet); the pushes after it go through."""
    seen: list[str] = []

    def answer(route):
        if seen:
            route.continue_()
            return
        records = json.loads(route.request.post_data)["records"]
        seen.extend(r["uuid"] for r in records)
        results = [{"uuid": r["uuid"], "status": "held", "reason": "not yet"} for r in records]
        route.fulfill(
            status=200,
            content_type="application/json",
            body=json.dumps({"results": results, "cursor": None}),
        )

    context.route("**/sync/v1/push", answer)
    return seen


def one_entry_held(server, context, page, site: str, person: str) -> tuple[str, str]:
    """A new site and its enrolled phone with one entry (person) saved offline, which the
    instance answered "held" once the phone was online: the site's code and id."""
    code, site_id = one_entry_waiting(server, context, page, site, person)
    seen = held_once(context)
    context.set_offline(False)
    until(page, "async () => (await FieldOutbox.summary()).attention === 1", seconds=30)
    assert len(seen) == 1 and names(server) == []
    return code, site_id


def test_a_held_entry_is_sent_again_by_itself_when_nothing_else_waits(server, context, page):
    one_entry_held(server, context, page, "暂存小区", "暂存一")
    page.wait_for_selector("[data-status-attention]:not([hidden])")
    # Later (the phone's time for sending held entries again has come), nothing else saved
    # meanwhile and nobody taps anything: the entry goes by itself.
    outbox_loaded(page)
    page.evaluate("async () => FieldOutbox.setMeta('held_retry', 0)")
    until(page, "async () => (await FieldOutbox.summary()).attention === 0", seconds=60)
    wait_waiting(page, 0)
    assert names(server) == ["暂存一"]
    page.wait_for_selector("[data-status-attention][hidden]", state="attached")


def test_no_zero_report_while_an_entry_of_today_is_held_on_the_phone(server, context, page):
    """A held entry is not in the instance's counts either: the report page counts it among
    those on the phone, and the zero report (nobody came) cannot go."""
    code, _site_id = one_entry_held(server, context, page, "暂存零报", "暂存二")
    page.goto(f"{server.url}/s/{code}/report")
    note = page.locator("[data-report-waiting]")
    note.wait_for()
    assert "有 1 条" in note.inner_text()
    assert page.locator("button.report-submit").is_disabled()  # it says 提交零报告
    assert server.query("SELECT count(*) FROM daily_reports")[0][0] == 0


def test_a_held_entry_is_listed_among_the_gates_entries_not_sent(server, context, page):
    """The gate page lists this phone's entries still on it first, marked 未发送: a held one was
    left out (the instance does not list it either), as if it had never been made."""
    code, _site_id = one_entry_held(server, context, page, "暂存列表", "暂存三")
    page.goto(f"{server.url}/s/{code}")
    page.locator(".last-entries li.entry-unsent", has_text="暂存三").wait_for()
    assert "未发送" in page.locator(".last-entries li.entry", has_text="暂存三").inner_text()
    assert names(server) == []


# An entry of a site this instance does not know yet (its set-up has not come down from the
# city instance): the instance answers the push "held" for it (records.site_of, NotYet).
QUEUE_ELSEWHERE = """async () => {
  const data = new FormData(document.getElementById("entry-form"));
  data.delete("uuid");
  for (const [k, v] of Object.entries({name: "外地未到", direction: "in", person_type: "resident",
       phone: "13812345678", temperature: "36.6", site_id: crypto.randomUUID()})) data.set(k, v);
  await FieldOutbox.add(FieldOutbox.fromForm(data, "entry", []));
}"""


def test_an_entry_the_instance_holds_is_counted_as_waiting_on_the_phone(
    server, context, enrolled_page
):
    """The instance answered "held" for an entry: it stays on the phone, listed under "needs
    attention", and is sent again by itself. The status line said "没有待发送的记录", the next
    save offline "1 条待发送" and the outbox page "待发送 (0)": a volunteer could wipe the phone,
    or go home, thinking everything had gone. Every entry still on the phone is counted now."""
    page = enrolled_page
    ready(page)
    outbox_loaded(page)
    context.set_offline(True)
    page.evaluate(QUEUE_ELSEWHERE)
    wait_waiting(page, 1)
    context.set_offline(False)  # the page sends by itself once online
    until(page, "async () => (await FieldOutbox.summary()).attention === 1", seconds=30)
    assert attention(page) == [("外地未到", "记录所属的场所在本实例中不存在。")]
    assert names(server) == []
    line = page.locator("[data-status-waiting]")
    line.filter(has_text="1 条待发送").wait_for()

    context.set_offline(True)
    save(page, "离线二")
    page.locator("[data-outbox-flash]", has_text="已保存在本机，2 条待发送").wait_for()
    line.filter(has_text="2 条待发送").wait_for()

    page.goto(f"{server.url}/outbox")  # the app shell's, offline
    view = page.locator("#outbox-view")
    view.locator("[data-outbox-waiting] li", has_text="离线二").wait_for()
    assert view.locator("[data-outbox-count]").inner_text() == "2"
    assert "1 条在下方“需要处理”中" in view.locator("[data-outbox-waiting]").inner_text()
    assert view.locator("[data-outbox-attention] li[data-held]", has_text="外地未到").count() == 1
    assert names(server) == []
