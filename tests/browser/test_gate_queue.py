"""The gate at shift change, on the cheap phones' screens (360×640) and a common one (390×844):
a known resident through in three taps and the temperature, the confirmation on the screen
after every save, online or kept offline, a clean next form that keeps the direction and the
volunteer, a double tap that saves once, "saving" while a save is on its way, and a status
line that says what the outbox holds."""

from __future__ import annotations

import time

import pytest
from phone_support import (
    IN_VIEW,
    SCREENS,
    Throttle,
    confirmation_in_view,
    first_of_the_shift,
    ready,
    tap_in_view,
    until,
    wait_waiting,
)
from servers import enrol_cookie
from wait import wait_until

CLEAN = """() => {
  const f = document.getElementById("entry-form");
  const shown = (el) => !!el && el.getClientRects().length > 0;
  return {
    temperature: f.elements.temperature.value,
    name: f.elements.name.value,
    errors: [...document.querySelectorAll("#gate .error, #gate .errors, #gate .field-error")]
      .filter(shown).map((el) => el.textContent.trim()),
    fever_note: shown(f.querySelector(".fever-note")),
    fever_action: shown(f.querySelector(".fever-action")),
    fever_chosen: !!f.querySelector("[name=fever_action]:checked"),
    direction: (f.querySelector("[name=direction]:checked") || {}).value || "",
    volunteer: f.elements.volunteer.value,
  };
}"""

# The status line's texts as status.js words them from FieldOutbox.summary(), and what it shows.
STATUS = """async () => {
  const box = document.getElementById("outbox-status");
  const s = await FieldOutbox.summary();
  const t = (key, n) => box.dataset["t" + key].replace("{n}", n);
  const flash = box.querySelector("[data-outbox-flash]");
  return {
    waiting: s.waiting,
    last_sent_ms_ago: s.lastSent ? Date.now() - s.lastSent : null,
    expected_waiting: s.waiting ? t("Waiting", s.waiting) : t("NoneWaiting"),
    shown_waiting: box.querySelector("[data-status-waiting]").textContent,
    never: box.dataset.tNeverSent,
    last_sent_prefix: box.dataset.tLastSent.split("{when}")[0],
    shown_last: box.querySelector("[data-status-last]").textContent,
    flash: flash.hidden ? "" : flash.textContent,
    saved_template: box.dataset.tSaved,
    notes: [...document.querySelectorAll("[data-outbox-note]")].filter((n) => !n.hidden).length,
  };
}"""


def clean_form(direction: str) -> dict:
    """What CLEAN reads of a fresh form: empty but for the direction and the volunteer kept."""
    return {
        "temperature": "",
        "name": "",
        "errors": [],
        "fever_note": False,
        "fever_action": False,
        "fever_chosen": False,
        "direction": direction,
        "volunteer": "李四",
    }


@pytest.fixture
def phone(server, browser, request):
    """An enrolled gate phone with a touch screen of the size asked, on the compound's gate."""
    width, height = request.param
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="zh-CN", has_touch=True
    )
    site = server.query("SELECT id, code FROM sites WHERE kind = 'residential'")[0]
    enrol_cookie(server, context, site["id"])
    page = context.new_page()
    page.goto(f"{server.url}/s/{site['code']}")
    page.wait_for_selector("#entry-form")
    yield page
    context.close()


@pytest.mark.parametrize("phone", SCREENS, indirect=True)
def test_a_known_resident_in_three_taps_and_the_temperature(server, phone):
    page = phone
    first_of_the_shift(page)
    # Then each known resident: tap the search, 2 characters, tap the match, the temperature
    # (typed straight in: the match focused it), tap save. Nothing else, no scrolling.
    for name, typed, temperature in (("张建国", "张建", "36.6"), ("李秀英", "李秀", "36.4")):
        tap_in_view(page, "#roster-q")
        page.keyboard.type(typed)
        page.locator("a.person", has_text=name).wait_for()
        tap_in_view(page, f"a.person:has-text('{name}')")
        page.keyboard.type(temperature)
        tap_in_view(page, "#entry-form button.save")
        said = confirmation_in_view(page, name)
        assert said == f"已登记：{name}，进，{temperature} °C。"
        assert page.evaluate(CLEAN) == clean_form("in")
    rows = server.query(
        "SELECT name, direction, temperature, volunteer, destination, person_type FROM entries"
        " WHERE name != '王五' ORDER BY name"
    )
    assert [tuple(r) for r in rows] == [
        ("张建国", "in", 36.6, "李四", "3-2-501", "resident"),
        ("李秀英", "in", 36.4, "李四", "3-1-202", "resident"),
    ]
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


@pytest.mark.parametrize("phone", SCREENS, indirect=True)
def test_offline_saves_show_whom_and_leave_a_clean_form(server, phone):
    page = phone
    ready(page)
    first_of_the_shift(page)
    page.locator("#direction label", has_text="出").tap()  # the volunteer moves to the out-lane
    page.context.set_offline(True)

    # A fever, first refused by the phone's rules (no action chosen), then saved on the phone.
    page.locator("#person_type label", has_text="访客").tap()
    page.locator("#name").fill("赵六")
    page.locator("#phone").fill("13712345678")
    page.locator("#temperature").fill("38.2")
    page.locator("button.save").tap()
    page.locator("#fever_action .error").wait_for()
    page.locator("#fever_action label", has_text="送发热门诊").tap()
    page.locator("button.save").tap()
    said = confirmation_in_view(page, "赵六")
    assert said.startswith("已登记：赵六，出，38.2 °C。发热：送发热门诊。")
    assert "已保存在本机" in said
    page.wait_for_selector("#entry-form:not([aria-busy])")
    assert page.evaluate(CLEAN) == clean_form("out")

    # A known resident on the same fresh form, still offline: the roster is not reachable, so
    # the volunteer types the person; direction and volunteer stay as they were.
    page.locator("#person_type label", has_text="居民").tap()
    page.locator("#name").fill("陈晓梅")
    page.locator("#phone").fill("18912345678")
    page.locator("#temperature").fill("36.7")
    page.locator("button.save").tap()
    said = confirmation_in_view(page, "陈晓梅")
    assert said.startswith("已登记：陈晓梅，出，36.7 °C。")
    wait_waiting(page, 2)

    page.context.set_offline(False)
    wait_waiting(page, 0)
    rows = server.query(
        "SELECT name, direction, temperature, fever_action, volunteer FROM entries"
        " WHERE name != '王五' ORDER BY name"
    )
    assert [tuple(r) for r in rows] == [
        ("赵六", "out", 38.2, "clinic", "李四"),
        ("陈晓梅", "out", 36.7, "", "李四"),
    ]
    # Sent: nothing on the screen still says they wait on the phone.
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-outbox-note]')].every((n) => n.hidden)"
    )
    assert "已保存在本机" not in page.inner_text("#gate-saved")


def status_matches_outbox(page) -> dict:
    """The status line's texts are those of FieldOutbox.summary() (waits while it catches up)."""
    seen: dict = {}

    def agrees() -> bool:
        seen.update(page.evaluate(STATUS))
        saved = seen["saved_template"]
        flash_ok = saved.split("{n}")[0] not in seen["flash"] or (
            seen["waiting"] > 0 and seen["flash"] == saved.replace("{n}", str(seen["waiting"]))
        )
        return seen["shown_waiting"].startswith(seen["expected_waiting"]) and flash_ok

    wait_until(agrees, 30, "the status line says what FieldOutbox.summary() says")
    return seen


@pytest.mark.parametrize("phone", SCREENS, indirect=True)
def test_the_status_line_says_what_the_outbox_holds(server, phone):
    page = phone
    ready(page)
    # Two online saves: the instance answered each, so this phone has sent, just now.
    first_of_the_shift(page)
    tap_in_view(page, "#roster-q")
    page.keyboard.type("张建")
    page.locator("a.person", has_text="张建国").tap()
    page.keyboard.type("36.6")
    page.locator("button.save").tap()
    confirmation_in_view(page, "张建国")
    until(page, "async () => (await FieldOutbox.summary()).lastSent !== null")
    s = status_matches_outbox(page)
    assert s["waiting"] == 0 and s["shown_waiting"] == "没有待发送的记录"
    assert s["shown_last"] != s["never"] and s["shown_last"].startswith(s["last_sent_prefix"])
    assert 0 <= s["last_sent_ms_ago"] < 60_000

    # Two saved offline: the flash counts them; back online they go, and no stale "waiting"
    # is left beside "nothing waiting".
    page.context.set_offline(True)
    for name in ("离线甲", "离线乙"):
        page.locator("#person_type label", has_text="访客").tap()
        page.locator("#name").fill(name)
        page.locator("#phone").fill("13912345678")
        page.locator("#temperature").fill("36.5")
        page.locator("button.save").tap()
        confirmation_in_view(page, name)
    page.wait_for_selector("[data-outbox-flash]:has-text('已保存在本机，2 条待发送')")
    s = status_matches_outbox(page)
    assert s["waiting"] == 2 and s["shown_waiting"].startswith("2 条待发送")
    page.context.set_offline(False)
    wait_waiting(page, 0)
    s = status_matches_outbox(page)
    assert s["shown_waiting"] == "没有待发送的记录"
    assert "待发送" not in s["flash"] and s["notes"] == 0
    assert s["shown_last"].startswith(s["last_sent_prefix"])
    assert server.query("SELECT count(*) FROM entries")[0][0] == 4


def type_visitor(page, name: str) -> None:
    page.locator("#person_type label", has_text="访客").tap()
    page.locator("#name").fill(name)
    page.locator("#phone").fill("13912345678")
    page.locator("#temperature").fill("36.5")


@pytest.mark.parametrize("phone", [SCREENS[0]], indirect=True)
@pytest.mark.parametrize("gap", [0.15, 0.4], ids=["150ms", "400ms"])
def test_a_double_tap_on_save_saves_once_and_the_confirmation_stays(server, phone, gap):
    page = phone
    ready(page)
    first_of_the_shift(page)
    for offline, name in ((False, "双击在线"), (True, "双击离线")):
        page.context.set_offline(offline)
        type_visitor(page, name)
        button = page.locator("#entry-form button.save").bounding_box()
        x, y = button["x"] + button["width"] / 2, button["y"] + button["height"] / 2
        # Two taps `gap` apart, the first one's answer here before the second: the second lands
        # on the fresh, empty form.
        tapped = time.monotonic()
        page.touchscreen.tap(x, y)
        page.locator("#gate-saved", has_text=name).wait_for()
        time.sleep(max(0.0, gap - (time.monotonic() - tapped)))
        page.touchscreen.tap(x, y)
        # Ignored: no field in red, the confirmation still on the screen, the form clean.
        said = confirmation_in_view(page, name)
        assert said.startswith(f"已登记：{name}，进，36.5 °C。")
        assert page.evaluate(CLEAN) == clean_form("in")
        # The next person, typed at once, is saved as usual.
        type_visitor(page, name + "后")
        page.locator("button.save").tap()
        confirmation_in_view(page, name + "后")
    page.context.set_offline(False)
    wait_waiting(page, 0)
    rows = server.query("SELECT name, COUNT(*) FROM entries WHERE name LIKE '双击%' GROUP BY name")
    assert sorted(tuple(r) for r in rows) == [
        ("双击在线", 1),
        ("双击在线后", 1),
        ("双击离线", 1),
        ("双击离线后", 1),
    ]


# The save button and the box at the top while a save is on its way.
SAVING = """() => ({
  button: document.querySelector("#entry-form button.save").textContent.trim(),
  box: document.getElementById("gate-saved").hidden
    ? "" : document.querySelector("#gate-saved [data-gate-saved-text]").textContent,
  busy: document.getElementById("entry-form").getAttribute("aria-busy"),
})"""


@pytest.mark.parametrize("phone", [SCREENS[0]], indirect=True)
def test_a_save_on_its_way_says_saving_not_the_previous_person(server, phone):
    page = phone
    ready(page)
    throttle = Throttle(page.context, page)
    page.reload()  # the service worker starts again, attached to the throttle
    page.wait_for_selector("#entry-form")
    ready(page)
    first_of_the_shift(page)  # 王五, saved: "已登记：王五…"
    throttle.set(latency_ms=1500)  # one bar: the answer takes a few seconds
    type_visitor(page, "慢网")
    page.locator("button.save").tap()
    assert page.evaluate(SAVING) == {"button": "正在保存…", "box": "正在保存…", "busy": "true"}
    said = confirmation_in_view(page, "慢网")
    assert "王五" not in said and "正在保存" not in said
    assert page.locator("#entry-form button.save").inner_text().strip() == "保存登记"
    assert page.locator("#gate-saved").evaluate(IN_VIEW)
