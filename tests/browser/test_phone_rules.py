"""The phone applies the instance's rules: the same refusal, beside the same field, in the same
words, whether the phone is online, offline, or leaves the checking to the instance."""

from __future__ import annotations

from datetime import date

import pytest
from gate_helpers import VALIDATION_TABLE, good_entry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phone_support import fill, ready, wait_waiting, waiting
from servers import enrol_cookie, make_server

# Fill the entry form with these values as a volunteer would leave it; a choice no radio offers
# is given to the first radio of its group, as a page someone tampered with would send it.
FILL = """(values) => {
  const form = document.getElementById("entry-form");
  for (const [name, value] of Object.entries(values)) {
    const radios = form.querySelectorAll(`input[type=radio][name="${name}"]`);
    if (radios.length) {
      radios.forEach((r) => { r.checked = false; });
      if (value === "") continue;
      let radio = [...radios].find((r) => r.value === value);
      if (!radio) { radio = radios[0]; radio.value = value; }
      radio.checked = true;
    } else if (form.elements[name]) {
      form.elements[name].value = value;
    }
  }
  form.querySelectorAll(".error").forEach((p) => p.remove());  // wait for this row's answer
  form.elements.temperature.dispatchEvent(new Event("input", { bubbles: true }));
}"""
ERROR_OF = """(name) => {
  const p = document.querySelector(`#entry-form [id="${name}-error"]`);
  return p ? p.textContent : null;
}"""


@pytest.fixture
def gate(server, context, page):
    site = server.query("SELECT id, code FROM sites ORDER BY name LIMIT 1")[0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/lang/en?next=/s/{site['code']}")
    page.wait_for_selector("#entry-form")
    return page


@pytest.mark.parametrize("mode", ["offline", "online", "instance", "worker"])
def test_every_row_of_the_validation_table_is_refused_alike(server, context, gate, mode):
    page = gate
    ready(page)
    if mode in ("offline", "worker"):
        context.set_offline(True)
    for changes, field, message in VALIDATION_TABLE:
        page.wait_for_selector("#entry-form:not([aria-busy])")
        # No rules on the page (its script could not check): the instance's own answer shows,
        # or offline, the service worker's, from the rules of the page it kept.
        if mode in ("instance", "worker"):
            page.evaluate(
                "() => document.getElementById('entry-form').removeAttribute('data-rules')"
            )
        values = good_entry(**changes)
        page.evaluate(FILL, values)
        page.click("#entry-form button.save")
        page.wait_for_function(ERROR_OF, arg=field)
        shown = page.evaluate(ERROR_OF, field)
        assert message in shown, (mode, changes, shown)
        # What was typed stays; nothing was saved or queued.
        assert page.input_value("#entry-form [name=name]") == values["name"], changes
    assert server.query("SELECT count(*) FROM entries")[0][0] == 0
    assert waiting(page) == 0


def test_offline_a_pasted_control_character_is_told_beside_its_field_and_nothing_kept(
    server, context, page
):
    """A name pasted from a chat with a mark that reverses the text after it, a note with a
    terminal's escape: offline, the phone says why beside each field in the volunteer's
    language and keeps nothing; with them taken out, it keeps the entry."""
    site = server.query("SELECT id, code FROM sites ORDER BY name LIMIT 1")[0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}")
    page.wait_for_selector("#entry-form")
    ready(page)
    context.set_offline(True)
    fill(page, "张三\u202e二李")
    page.fill("#entry-form [name=note]", "送货\x1b[2J")
    page.click("#entry-form button.save")
    page.wait_for_function(ERROR_OF, arg="name")
    assert page.evaluate(ERROR_OF, "name") == "须为一行，不能含制表符或不可见字符。"
    assert page.evaluate(ERROR_OF, "note") == "须为一行，不能含制表符或不可见字符。"
    assert page.input_value("#entry-form [name=name]") == "张三\u202e二李"
    assert waiting(page) == 0
    page.fill("#entry-form [name=name]", "张三")
    page.fill("#entry-form [name=note]", "送货")
    page.click("#entry-form button.save")
    wait_waiting(page, 1)
    kept = page.evaluate("async () => (await FieldOutbox.all('outbox')).map(r => r.data.name)")
    assert kept == ["张三"]
    assert server.query("SELECT count(*) FROM entries")[0][0] == 0


@pytest.mark.parametrize("rules_on_page", [True, False])
def test_offline_the_invisible_marks_a_paste_brings_are_removed_as_the_instance_removes_them(
    server, context, page, rules_on_page
):
    """A name pasted from a chat with a BOM, a zero-width space and a direction mark in it:
    offline, the phone keeps the entry without them (by the page's rules, or the service
    worker's when the page could not check), and what it keeps is what the instance stores."""
    site = server.query("SELECT id, code FROM sites ORDER BY name LIMIT 1")[0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/s/{site['code']}")
    page.wait_for_selector("#entry-form")
    ready(page)
    context.set_offline(True)
    if not rules_on_page:
        page.evaluate("() => document.getElementById('entry-form').removeAttribute('data-rules')")
    fill(page, "\ufeff张\u200b三\u200e")
    page.fill("#entry-form [name=note]", " 迟到\u2060\u061c")
    page.click("#entry-form button.save")
    wait_waiting(page, 1)
    assert page.evaluate(ERROR_OF, "name") is None
    kept = page.evaluate(
        "async () => (await FieldOutbox.all('outbox')).map(r => ({...r.data, uuid: r.uuid}))"
    )
    assert [(r["name"], r["note"]) for r in kept] == [("张三", "迟到")]
    context.set_offline(False)
    result = page.evaluate("() => FieldOutbox.send({force: true})")
    assert result["ok"], result
    wait_waiting(page, 0)
    stored = server.query("SELECT uuid, name, note FROM entries")
    assert [tuple(r) for r in stored] == [(kept[0]["uuid"], "张三", "迟到")]


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    "remarks",
    [
        "东门正常\r\n西门关闭",
        "一\n二",
        "一\r二",
        "一\r\r\n二",
        "一\t二",
        "\x1b[31m",
        "一\u202e二",
        "\r\n一\r\n",
        "一\u2028二",
        "一\u2029二\u2028",
        "一\r\u2028二",
        "一\u200b二",
        "\ufeff一",
        "\u200e\r\n一\u2060 ",
        "一\u200b\u206a",
        "一\u200d二\u200c三\u180e",
    ],
)
def test_a_textareas_line_breaks_are_kept_alike_on_the_phone(app, gate, remarks):
    """The daily report's remarks (a textarea): rules.js keeps their line breaks and refuses
    any other control character as rules.py does."""
    from fieldapp import rules
    from fieldapp.reports import daily

    data = {"reporter": "李四", "remarks": remarks}
    with app.test_request_context(headers={"Accept-Language": "en"}):
        clean, errors = rules.check(data, daily.FIELDS)
        handed = rules.for_phone(daily.FIELDS)
    phone = gate.evaluate("([r, data]) => FieldRules.check(r, data)", [handed, data])
    assert phone == {"clean": clean, "errors": errors}


texts = st.text(
    alphabet=st.sampled_from(
        list("0123456789.,+-X x\u3000\u00a0\t苏D京AZ张") + list("８３．，。＋－Ｘｘ℃°C度F")
    ),
    max_size=22,
)
# What a keyboard in full-width mode types: the same digits and signs, wide.
WIDE = str.maketrans("0123456789.,+-X", "０１２３４５６７８９．，＋－Ｘ")
# Between a number's characters: spaces, dashes, dots, and the invisible marks a paste brings.
junk = st.sampled_from(
    ["", " ", "-", "\u3000", "\u00a0", "\t", "·", "."]
    + ["\u200b", "\ufeff", "\u2060", "\u2064", "\u200e", "\u200f", "\u061c"]
)
phones = st.builds(
    lambda prefix, digits, gap, at: prefix + digits[:at] + gap + digits[at:],
    st.sampled_from(["", "+86", "86", "+86 ", "0086", "+87"]),
    st.from_regex(r"1[0-9]{10}", fullmatch=True),
    junk,
    st.integers(0, 11),
)
temperatures = st.from_regex(
    r"[ \u3000]?[0-9]{1,3}([.,][0-9]{0,3})?[ ]?", fullmatch=True
) | st.builds(
    lambda whole, sep, decimals: f"{whole}{sep}{decimals}",
    st.integers(33, 44),
    st.sampled_from([".", ","]),
    st.from_regex(r"[0-9]{0,2}", fullmatch=True),
)
# Typed wide, or with the unit after it ("36.5℃"), or with the point left out ("365").
temperatures |= st.builds(
    lambda reading, wide, unit: (reading.translate(WIDE) if wide else reading) + unit,
    st.from_regex(r"[0-9]{1,4}([.,。][0-9]{0,2})?", fullmatch=True),
    st.booleans(),
    st.sampled_from(["", "℃", "°C", " ℃", "度", "°", "C", "°F", "c", "℃℃", "度度"]),
)
phones |= st.builds(lambda phone: phone.translate(WIDE), phones)
ids = st.from_regex(r"[ ]?[0-9]{17}[0-9Xx][ ]?", fullmatch=True)
ids |= st.builds(lambda number: number.translate(WIDE), ids)
plates = st.builds(
    lambda head, letter, rest, gap: head + letter + gap + rest,
    st.sampled_from(["苏", "京", "沪", "A", "使"]),
    st.sampled_from(["D", "d", "I", "O", "A"]),
    st.from_regex(r"[A-Za-z0-9挂学]{3,7}", fullmatch=True),
    junk,
)
form_data = st.fixed_dictionaries(
    {},
    optional={
        "direction": st.sampled_from(["in", "out", "", "IN", "sideways"]),
        "person_type": st.sampled_from(["resident", "worker", "visitor", "", "boss"]),
        "name": st.text(max_size=60)
        | texts
        | st.text(st.sampled_from(["张", "𠮷", "😀", " "]), min_size=45, max_size=55)
        | st.text(
            st.sampled_from(
                list("张 \t\u200b\u200c\u200d\u200e\u2028\u2060\ufeff\u180e\u061c\u206a")
            )
        ),
        "phone": phones | texts,
        "id_number": st.sampled_from(["11010519491231002X", "11010519491231002x", ""])
        | ids
        | texts,
        "temperature": temperatures
        | texts
        | st.sampled_from(["36.5", "37,25", "37.24", "37.3", "37.35", "43", "43.05", "33.95"]),
        "fever_action": st.sampled_from(["clinic", "refused", "", "shrug"]),
        "health_code": st.sampled_from(["green", "red", "", "purple"]),
        "travel": st.sampled_from(["true", "false", "on", "", "maybe", " YES "]),
        "travel_where": st.text(max_size=110),
        "plate": plates | texts | st.sampled_from(["苏D12345", "苏d·12345", "京A12345D"]),
        "destination": st.text(max_size=55),
        "note": st.text(max_size=210)
        | st.text(st.sampled_from(list("迟 \u3000\u200b\u200f\u2064\ufeff\u202e")), max_size=210),
        "volunteer": st.text(max_size=55),
    },
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=form_data)
def test_the_phone_and_the_instance_agree_on_any_input(app, gate, data):
    """rules.js and rules.py give the same values and the same messages for any form input."""
    from fieldapp import rules

    page = gate
    with app.test_request_context(headers={"Accept-Language": "en"}):
        clean, errors = rules.check(data, rules.entry_fields(rules.OPTIONAL_FIELDS, form=True))
    phone = page.evaluate(
        """(data) => FieldRules.check(FieldRules.rulesOf(document.getElementById("entry-form")), data)""",
        data,
    )
    assert phone["errors"] == errors, data
    assert phone["clean"] == clean, data


def test_a_record_the_instance_cannot_store_is_set_aside_and_the_rest_goes(tmp_path, context, page):
    """The instance answers 500 for any batch holding one record: the phone finds that record,
    keeps it aside with what happened, and every other record arrives once."""
    server = make_server(tmp_path / "instance")
    poison = "0e0d6f1c-2b6a-4d3e-9a57-1f00d2b0c0de"
    with (server.folder / "config.py").open("a") as f:
        f.write(f"TEST_FAIL_PUSH_UUIDS = [{poison!r}]\n")
    server.start()
    try:
        site = server.query("SELECT id, code FROM sites ORDER BY name LIMIT 1")[0]
        enrol_cookie(server, context, site["id"])
        page.goto(f"{server.url}/s/{site['code']}")
        ready(page)
        context.set_offline(True)
        page.evaluate(
            """(poison) => {
              const form = document.getElementById("entry-form");
              const adds = [];
              for (let i = 0; i < 7; i++) {
                const data = new FormData(form);
                data.delete("uuid");
                for (const [k, v] of Object.entries({name: "排队" + i, direction: "in",
                     person_type: "resident", phone: "13812345678", temperature: "36.6"})) data.set(k, v);
                const record = FieldOutbox.fromForm(data, "entry", []);
                if (i === 3) record.uuid = poison;
                record.queued_at += i;  // their order in the queue
                adds.push(FieldOutbox.add(record));
              }
              return Promise.all(adds);
            }""",
            poison,
        )
        assert waiting(page) == 7
        context.set_offline(False)
        # Back online, the page sends by itself too (status.js, on `online`), and may take the
        # send lock first and leave this call nothing to count: so the outcome is asserted.
        result = page.evaluate("() => FieldOutbox.send({force: true})")
        assert result["ok"], result
        wait_waiting(page, 0)
        names = [r[0] for r in server.query("SELECT name FROM entries ORDER BY name")]
        assert names == ["排队0", "排队1", "排队2", "排队4", "排队5", "排队6"]
        held = page.evaluate(
            "async () => (await FieldOutbox.all('attention')).map(r => [r.uuid, r.status, r.reason])"
        )
        assert held == [[poison, "held", "HTTP 500"]]
        # The volunteer sees it, with what happened and what to do; an export still carries it.
        page.goto(f"{server.url}/outbox")
        item = page.locator("[data-outbox-attention] li[data-held]")
        item.wait_for()
        assert "排队3" in item.inner_text() and "HTTP 500" in item.inner_text()
        assert "办公室暂时无法保存" in item.inner_text()
        exported = page.evaluate(
            "async () => (await FieldOutbox.exportData()).records.map(r => r.uuid)"
        )
        assert exported == [poison]
    finally:
        server.stop()


# ---- the screening form: the same rules on the phone and the instance --------------------------

real_dates = st.dates(date(2020, 1, 25), date(2020, 3, 5)).map(date.isoformat)
odd_dates = st.builds(
    lambda y, m, d, gap: f"{gap}{y}-{m}-{d}{gap}",
    st.sampled_from(["2020", "2019", "1999", "2100", "20", "２０２０"]),
    st.sampled_from(["01", "02", "2", "12", "13", "00"]),
    st.sampled_from(["01", "15", "28", "29", "30", "31", "32", "1"]),
    st.sampled_from(["", "", " ", "\u3000"]),
) | st.sampled_from(["", "2020-02-15", "2020-02-14", "2020-02-16", "2020/02/15", "昨天"])
# Mostly real days (so a test date after the day of screening comes up often), some odd ones.
dates = st.one_of(real_dates, real_dates, real_dates, odd_dates)
choices = {
    "whereabouts": ["district", "city", "province", "other_province", "risk_area", "", "moon"],
    "contact": ["yes", "no", "", "maybe"],
    "status": ["here", "home_isolation", "medical_observation", "away", "left", "", "gone"],
    "nat_result": ["negative", "positive", "pending", "none", "", "NEGATIVE"],
    "vaccine_doses": ["0", "1", "2", "3", "", "4"],
    "person_type": ["resident", "worker", "visitor", "", "boss"],
}
screening_data = st.fixed_dictionaries(
    {"day": dates, "nat_date": dates, "nat_result": st.sampled_from(choices["nat_result"])},
    optional={
        "added": st.sampled_from(["true", "false", "on", "", "maybe"]),
        "name": st.text(max_size=55) | texts,
        "phone": phones | texts,
        "unit": st.text(max_size=55),
        "whereabouts_where": st.text(max_size=105),
        "screener": st.text(max_size=55),
        "note": st.text(max_size=205),
        **{n: st.sampled_from(v) for n, v in choices.items() if n != "nat_result"},
    },
)


@pytest.fixture
def screening_form(server, context, page):
    server.cli("screening", "campaign", "add", "--name", "复工人员排查", "--all-sites")
    cid = server.query("SELECT id FROM screening_campaigns")[0][0]
    site = server.query("SELECT id, code FROM sites ORDER BY name LIMIT 1")[0]
    enrol_cookie(server, context, site["id"])
    page.goto(f"{server.url}/lang/en?next=/s/{site['code']}/screening/{cid}")
    page.wait_for_selector("#people li[data-person]")
    return page


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=screening_data)
def test_the_screening_form_is_checked_alike_on_the_phone_and_the_instance(
    app, screening_form, data
):
    """rules.js with the screening page's rules, and rules.py with the campaign's fields, give
    the same values and the same messages for any answer (dates, conditional fields, people
    added on site)."""
    from fieldapp import rules
    from fieldapp.screening import questions

    with app.test_request_context(headers={"Accept-Language": "en"}):
        clean, errors = rules.check(data, questions.fields_for(questions.QUESTIONS))
    phone = screening_form.evaluate(
        """(data) => FieldRules.check(FieldRules.rulesOf(document.getElementById("screen-form")), data)""",
        data,
    )
    assert phone["errors"] == errors, data
    assert phone["clean"] == clean, data
