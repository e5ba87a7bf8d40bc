"""Field rules, and entries.validate() taking a browser form's strings and JSON alike."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldapp import records, rules
from fieldapp.console import corrections
from fieldapp.gate import entries
from fieldapp.reports import daily
from fieldapp.screening import questions
from sync import Invalid, content_hash


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("11010519491231002X", True),
        ("320482199001011230", True),
        ("320482199001011231", False),  # wrong check digit
        ("11010519491231002", False),
        ("1101051949123100XX", False),
        ("", False),
    ],
)
def test_resident_id_check_digit(value, ok):
    assert rules.valid_resident_id(value) is ok


def test_masks():
    assert rules.mask_id("11010519491231002X") == "110105********002X"
    assert rules.mask_phone("13812345678") == "138****5678"


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("13812345678", True),
        ("+86 138-1234-5678", True),
        ("12812345678", False),
        ("1381234567", False),
    ],
)
def test_mobile(raw, ok):
    assert rules.valid_mobile(rules.normalise_phone(raw)) is ok


@pytest.mark.parametrize(
    ("typed", "reading"),
    [
        ("３６.５", 36.5),
        ("３６．５", 36.5),  # a keyboard in full-width mode, or a paste from a chat
        ("36。5", 36.5),  # a Chinese keyboard's point
        ("36.5℃", 36.5),
        ("36.5°C", 36.5),
        ("36.5 ℃", 36.5),
        ("36.5度", 36.5),
        ("36.5°", 36.5),
        ("３７，２５ 度", 37.3),
        ("\u3000３８．１℃\u3000", 38.1),
    ],
)
def test_a_reading_typed_full_width_or_with_its_unit_is_read(typed, reading):
    assert rules.parse_temperature(typed) == reading
    clean, errors = rules.check({"temperature": typed}, [rules.BY_NAME["temperature"]])
    assert errors == {} and clean["temperature"] == reading
    # The input lets it be typed whole.
    assert len(typed.strip(rules.SPACES)) <= rules.MAX_LEN["temperature"]


@pytest.mark.parametrize("typed", ["36.5°F", "36.5℃℃", "℃", "36度5", "三十六度五", "36.5.1"])
def test_what_is_not_a_reading_in_celsius_stays_refused(typed):
    assert rules.parse_temperature(typed) is None


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("365", "请带小数点填写：是不是 36.5？"),
        ("３７２℃", "请带小数点填写：是不是 37.2？"),
        ("985", "请填数字，例如 36.5。"),  # 98.5 is no reading: no guess
        ("3655", "请填数字，例如 36.5。"),
        ("45℃", "45 °C 不可能"),  # the reading, without the unit it was typed with
    ],
)
def test_a_reading_without_its_point_gets_a_guess(app, typed, shown):
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        _clean, errors = rules.check({"temperature": typed}, [rules.BY_NAME["temperature"]])
    assert shown in errors["temperature"]


@pytest.mark.parametrize(
    ("typed", "phone"),
    [
        ("１３８１２３４５６７８", "13812345678"),
        ("＋８６ １３８－１２３４－５６７８", "13812345678"),
        ("138\u30001234\u30005678", "13812345678"),
    ],
)
def test_a_mobile_number_typed_full_width_is_read(typed, phone):
    clean, errors = rules.check({"phone": typed}, [rules.BY_NAME["phone"]])
    assert errors == {} and clean["phone"] == phone


def test_an_id_number_and_a_plate_typed_full_width_are_read():
    fields = [rules.BY_NAME["id_number"], rules.BY_NAME["plate"]]
    clean, errors = rules.check(
        {"id_number": "１１０１０５１９４９１２３１００２ｘ", "plate": "苏Ｄ１２３４５"}, fields
    )
    assert errors == {}
    assert (clean["id_number"], clean["plate"]) == ("11010519491231002X", "苏D12345")


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("苏D12345", True),
        ("苏d·12345", True),
        ("京AD12345", True),
        ("ABC123", False),
        ("苏I12345", False),
    ],
)
def test_plate(raw, ok):
    clean, errors = rules.check({"plate": raw}, [rules.BY_NAME["plate"]])
    assert ("plate" not in errors) is ok
    if ok:
        assert clean["plate"] == rules.normalise_plate(raw)


@pytest.fixture
def conn_with_site(db):
    from gate_helpers import make_site

    return db, make_site(db)["id"]


def test_form_strings_and_json_normalise_to_the_same_record(app, conn_with_site):
    conn, site_id = conn_with_site
    typed = {
        "site_id": site_id, "direction": "in", "person_type": "visitor", "name": "王五",
        "phone": "13912345678", "id_number": "", "temperature": 37.8, "fever_action": "clinic",
        "health_code": "green", "travel": True, "travel_where": "武汉", "plate": "",
        "destination": "", "note": "", "volunteer": "", "self_registered": False,
    }  # fmt: skip
    form = {**typed, "temperature": "37.80", "travel": "true", "self_registered": ""}
    with app.test_request_context():
        a, b = entries.validate(conn, typed), entries.validate(conn, form)
        assert a == b
        assert b["temperature"] == 37.8 and b["travel"] is True and b["self_registered"] is False
        for text, value in [
            ("on", True),
            ("1", True),
            ("yes", True),
            ("0", False),
            ("false", False),
        ]:
            assert entries.validate(conn, {**form, "travel": text})["travel"] is value
        with pytest.raises(Invalid):
            entries.validate(conn, {**form, "travel": "perhaps"})
        with pytest.raises(Invalid):
            entries.validate(conn, {**form, "temperature": "nan"})
        with pytest.raises(Invalid):
            entries.validate(conn, {**form, "temperature": ""})
    args = ("entry", "0b6f2d4e-6f0a-4c71-9d38-5f0c8a3b7e21", "2026-11-23T08:30:00.000Z", None)
    assert content_hash(*args, a) == content_hash(*args, b)


@given(whole=st.integers(min_value=30, max_value=45), hundredths=st.integers(0, 99))
def test_a_reading_sent_as_a_number_rounds_as_the_same_reading_typed(whole, hundredths):
    """37.25 is a fever typed or sent as a JSON number: round() made the number 37.2."""
    text = f"{whole}.{hundredths:02d}"
    assert rules.parse_temperature(float(text)) == rules.parse_temperature(text)


def test_a_number_no_reading_could_be_is_out_of_range_not_a_crash():
    for value in (10**400, -(10**400), 1e300):
        assert not rules.temperature_in_range(rules.parse_temperature(value))
    assert rules.parse_temperature(float("nan")) is None


EVERY_FIELD = (
    *rules.FIELDS,
    *daily.FIELDS,
    *questions.fields_for(questions.QUESTIONS),
    records.AUTHOR,
    records.NOTE,
    corrections.REASON,
)


def named(label: str) -> str:
    """What of a field's label a message would repeat: "Temperature (°C)" is "temperature",
    "去过哪里？" is "去过哪里"."""
    return re.sub(r"[(（][^)）]*[)）]|[?？:：]", "", label).strip().casefold()


@pytest.mark.parametrize("lang", ["en", "zh-CN", "zh-TW"])
def test_the_rules_words_leave_the_fields_name_to_where_they_are_shown(app, lang):
    """A rule's message is shown beside its field, under its label, or after its name in a
    sync reason or a flash (first_problem: "姓名：…"): neither the rules' words nor a field's
    own (its messages, the fever's) name the field again ("姓名：请填写姓名。")."""
    with app.test_request_context(headers={"Accept-Language": lang}):
        for f in EVERY_FIELD:
            for problem in rules.for_phone([f])["fields"][0]["messages"]:
                said = rules.message(f, problem, t="36.5")
                assert named(str(f.label)) not in said.casefold(), (f.name, problem, said)
                shown = rules.first_problem({f.name: said}, [f])
                assert shown.count(str(f.label)) == 1, shown
