"""An entry's free text (name, where, unit, note, on duty…) is one line: no control character
(a tab, a line break, a bell, a terminal's escape), no mark that reorders the text after it and
no line separator, refused beside its field in the volunteer's language from every source that
stores an entry: the gate form, a phone's push, an instance relaying its records, an imported
outbox file. The invisible marks a paste from a chat brings (a zero-width space, a BOM, a
direction mark) are removed from it there, as the spaces around it are trimmed. (The phone's own
refusal, before it saves: VALIDATION_TABLE in tests/browser/test_phone_rules.py; its removal of
the marks: the agreement tests there.)"""

from __future__ import annotations

import json
import re
import sys
import unicodedata

import pytest
from gate_helpers import EN, ONE_LINE, count, enrol, make_site, submit
from hypothesis import assume, given
from hypothesis import strategies as st
from sync_helpers import entry

from fieldapp import rules
from fieldapp.phones import devices
from sync import peers

FREE_TEXT = [f for f in rules.FIELDS if f.kind == "text" and not f.pattern]
# Cc (C0, DEL, C1) and the bidi embeddings, overrides and isolates.
CONTROLS = "".join(chr(c) for c in range(0x20)) + "".join(chr(c) for c in range(0x7F, 0xA0))
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Invisible marks refused: the line and paragraph separators, the rest of U+2060-U+206F but the
# word joiner and invisible operators (one unassigned, the deprecated format controls).
INVISIBLE = "\u2028\u2029\u2065" + "".join(chr(c) for c in range(0x206A, 0x2070))
# Invisible marks removed: the zero-width space, the BOM, the word joiner and the invisible
# operators, the direction marks (LRM, RLM, ALM).
REMOVED = "\u200b\ufeff\u2060\u2061\u2062\u2063\u2064\u200e\u200f\u061c"
# Marks a script needs, kept: the zero-width joiner (emoji sequences, Indic scripts), the
# non-joiner (Persian, Indic scripts) and the Mongolian vowel separator (Mongolian words).
NEEDED = "\u200d\u200c\u180e"
UNPRINTABLE = CONTROLS + BIDI + INVISIBLE
# Beside the field, under its label, ONE_LINE; after its name in a sync reason: its name once.
ONE_LINE_ZH = "姓名：须为一行，不能含制表符或不可见字符。"


def test_the_class_is_every_control_character_bidi_and_invisible_mark_and_nothing_else():
    """UNPRINTABLE, the class rules.js is handed too, is what free text may not hold: control
    characters, bidi marks and the invisible marks refused; REMOVED, the marks removed from it.
    Neither holds the ones a script needs. one_line() refuses both; clean_line() (a site's, a
    phone's name…) drops the marks and refuses the rest."""
    every = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    found = set(re.findall(rules.UNPRINTABLE, every))
    meant = {c for c in every if unicodedata.category(c) == "Cc"} | set(BIDI)
    assert found == meant | set(INVISIBLE) == set(UNPRINTABLE)
    assert set(re.findall(rules.REMOVED, every)) == set(REMOVED)
    assert not (found | set(REMOVED)) & set(NEEDED)
    assert {c for c in every if not rules.one_line(c)} == set(UNPRINTABLE + REMOVED)
    # A site's, a phone's, an instance's, a campaign's name: the marks dropped, the rest refused.
    assert {c for c in every if rules.clean_line(f"东{c}门") is None} == set(UNPRINTABLE)
    assert {rules.clean_line(f"东{c}门") for c in REMOVED} == {"东门"}
    handed = rules.for_phone(rules.FIELDS)
    assert handed["unprintable"] == rules.UNPRINTABLE and handed["removed"] == rules.REMOVED
    # Escapes, not the characters themselves: the phone's rules carry no invisible mark.
    assert rules.UNPRINTABLE.isascii() and rules.UNPRINTABLE_LINES.isascii()
    assert rules.REMOVED.isascii() and rules.LINE_SEPARATORS.isascii()


def test_a_textareas_class_lets_its_line_breaks_alone_through():
    """UNPRINTABLE_LINES (a Field's lines: a textarea's text) is UNPRINTABLE but for "\n" and
    "\r\n", as a browser sends a textarea's line breaks."""
    refused = {c for c in UNPRINTABLE if re.search(rules.UNPRINTABLE_LINES, f"一{c}二")}
    assert refused == set(UNPRINTABLE) - {"\n"}
    assert re.search(rules.UNPRINTABLE_LINES, "一\r\n二\n三") is None
    assert re.search(rules.UNPRINTABLE_LINES, "一\r\r\n二") is not None
    every = "".join(
        chr(c)
        for c in range(sys.maxunicode + 1)
        if not 0xD800 <= c <= 0xDFFF and chr(c) not in UNPRINTABLE
    )
    assert re.search(rules.UNPRINTABLE_LINES, every) is None


# ---- rules.check ------------------------------------------------------------------------------


@given(
    field=st.sampled_from(FREE_TEXT),
    before=st.text(max_size=20),
    bad=st.sampled_from(UNPRINTABLE),
    after=st.text(max_size=20),
)
def test_free_text_holding_a_control_character_bidi_or_invisible_mark_is_never_accepted(
    field, before, bad, after
):
    value = before + bad + after
    # The marks a paste brings are removed; a tab or line break at either end is trimmed.
    kept = re.sub(rules.REMOVED, "", value).strip(rules.SPACES)
    assume(any(c in UNPRINTABLE for c in kept))
    clean, errors = rules.check({"travel": "true", field.name: value}, rules.FIELDS)
    assert field.name not in clean
    if len(kept) <= field.max_len:
        assert errors[field.name] == ONE_LINE
    else:
        assert errors[field.name] == f"At most {field.max_len} characters."


@given(data=st.fixed_dictionaries({f.name: st.text(max_size=60) for f in rules.FIELDS}))
def test_no_text_rules_check_accepts_holds_a_control_character_or_bidi_mark(data):
    """Whatever any text field is sent (a phone number and a plate too: what matches their
    pattern holds none), what check() accepts is one line."""
    clean, _errors = rules.check({**data, "travel": "true"}, rules.FIELDS)
    for name, value in clean.items():
        if isinstance(value, str):
            assert rules.one_line(value), (name, value)


ordinary = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs"),
        blacklist_characters=BIDI + INVISIBLE + REMOVED,
        max_codepoint=0x2FFFF,
    ),
    min_size=1,
    max_size=50,
).filter(lambda s: s.strip(rules.SPACES))


@given(field=st.sampled_from(FREE_TEXT), value=ordinary)
def test_any_other_text_is_kept_as_typed_without_its_spaces_around(field, value):
    clean, errors = rules.check({"travel": "true", field.name: value}, rules.FIELDS)
    assert field.name not in errors
    assert clean[field.name] == value.strip(rules.SPACES)


@given(
    field=st.sampled_from(FREE_TEXT),
    parts=st.lists(ordinary | st.text(st.sampled_from(REMOVED + " \t"), min_size=1), max_size=6),
)
def test_the_invisible_marks_a_paste_brings_are_removed_wherever_they_are(field, parts):
    """A zero-width space, a BOM, a word joiner, a direction mark: removed, then the spaces
    around trimmed; what is left is kept (or refused only for its length)."""
    value = "".join(parts)
    meant = "".join(c for c in value if c not in REMOVED).strip(rules.SPACES)
    assume(meant and "\t" not in meant)
    clean, errors = rules.check({"travel": "true", field.name: value}, rules.FIELDS)
    if len(meant) <= field.max_len:
        assert field.name not in errors
        assert clean[field.name] == meant
    else:
        assert errors[field.name] == f"At most {field.max_len} characters."


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("name", "欧阳 娜娜"),
        ("name", "𠮷田　花子"),  # a character beyond the BMP, an ideographic space
        ("destination", "３号楼　２单元　５０１"),  # full width, as a Chinese keyboard types
        ("note", "送外卖（美团），门口交接！"),
        ("note", "\t迟到\r\n"),  # a tab or line break around the text is trimmed
        ("volunteer", "李四 / Li Si"),
        ("travel_where", "湖北省武汉市"),
        # The joiners and the vowel separator a script or an emoji needs: kept as typed.
        ("name", "\u0645\u06cc\u200c\u0646\u0627"),  # Persian: a non-joiner in a name
        ("note", "\U0001f469\u200d\u2695\ufe0f 护士"),  # an emoji sequence (ZWJ)
        ("name", "\u182c\u1820\u1837\u180e\u1820"),  # Mongolian: a vowel separator
    ],
)
def test_chinese_full_width_and_spaces_stay_accepted(name, value):
    clean, errors = rules.check({"travel": "true", name: value}, rules.FIELDS)
    assert name not in errors and clean[name] == value.strip(rules.SPACES)


def test_a_phone_number_or_plate_keeps_its_spaces_and_tabs_dropped():
    """What a number may carry between its digits is dropped, as before: no new refusal."""
    clean, errors = rules.check(
        {"phone": "138\t1234 5678", "plate": "苏D\t12345"},
        [rules.BY_NAME["phone"], rules.BY_NAME["plate"]],
    )
    assert errors == {} and (clean["phone"], clean["plate"]) == ("13812345678", "苏D12345")
    _clean, errors = rules.check({"plate": "苏D\u202e12345"}, [rules.BY_NAME["plate"]])
    assert errors == {"plate": "Wrong format, e.g. 苏D12345."}


# ---- the gate form ----------------------------------------------------------------------------


@pytest.fixture
def site(db):
    return make_site(db)


@pytest.fixture
def gate(client, db, site):
    return enrol(client, db, site)


@pytest.mark.parametrize("note", ["迟到\n早退", "迟到\r\n早退", "迟到\r早退"])
def test_a_line_break_in_the_note_is_refused_and_nothing_saved(gate, site, db, note):
    """The note is an input and shows on one line (the console's page, the gate's list, a cell
    of an export): a line break a script or tampered form sends in it is refused."""
    response, _ = submit(gate, site, headers=EN, note=note)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert re.search(
        r'class="error" id="note-error">Must be one line, without tabs or invisible', html
    )
    assert count(db) == 0


def test_the_form_says_it_in_the_volunteers_language(gate, site, db):
    response, _ = submit(gate, site, headers={"Accept-Language": "zh-CN"}, name="张三\x1b[2J")
    assert response.status_code == 400
    assert "须为一行，不能含制表符或不可见字符。" in response.get_data(as_text=True)
    response, _ = submit(gate, site, headers={"Accept-Language": "zh-TW"}, note="備註\u202e")
    assert "須為一行，不能含定位字元或不可見字元。" in response.get_data(as_text=True)
    assert count(db) == 0


@pytest.mark.parametrize("mark", ["\u200b", "\u200e", "\u200f", "\u061c", "\u2060", "\ufeff"])
def test_an_invisible_mark_pasted_with_a_name_is_removed_and_the_entry_saved(gate, site, db, mark):
    """A zero-width space, a direction mark or a BOM pasted with a name from a chat: the
    volunteer cannot see it, so is not asked to find it; the name is saved without it."""
    response, uid = submit(
        gate, site, headers=EN, name=f"{mark}张{mark}三 {mark}", note=f"迟到{mark}"
    )
    assert response.status_code == 303
    row = db.execute("SELECT name, note FROM entries WHERE uuid = ?", (uid,)).fetchone()
    assert tuple(row) == ("张三", "迟到")


@pytest.mark.parametrize("mark", ["\u2028", "\u2029", "\u202e", "\u2066", "\u206a"])
def test_a_line_separator_or_bidi_mark_in_a_name_is_refused_beside_it_and_nothing_saved(
    gate, site, db, mark
):
    """A line separator, a mark that reorders what follows, a deprecated format control:
    refused beside the name, as a control character is (a zero-width space beside it too)."""
    response, _ = submit(gate, site, headers=EN, name=f"张\u200b{mark}三")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert re.search(
        r'class="error" id="name-error">Must be one line, without tabs or invisible', html
    )
    assert count(db) == 0


@pytest.mark.parametrize("mark", list(REMOVED))
def test_an_invisible_mark_pasted_with_a_phone_number_or_plate_is_dropped(gate, site, db, mark):
    """A number copied from a chat carries the same marks as a name: dropped as the spaces
    between its digits are, not refused as a number in the wrong form."""
    response, uid = submit(
        gate, site, headers=EN, phone=f"{mark}138{mark}1234 5678{mark}", plate=f"苏D{mark}12345"
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    row = db.execute("SELECT phone, plate FROM entries WHERE uuid = ?", (uid,)).fetchone()
    assert tuple(row) == ("13812345678", "苏D12345")


def test_a_name_with_a_joiner_an_emoji_needs_is_saved(gate, site, db):
    response, uid = submit(gate, site, headers=EN, name="张三", note="\U0001f469\u200d\u2695\ufe0f")
    assert response.status_code == 303
    row = db.execute("SELECT note FROM entries WHERE uuid = ?", (uid,)).fetchone()
    assert row[0] == "\U0001f469\u200d\u2695\ufe0f"


def test_a_note_trimmed_of_its_line_break_is_saved(gate, site, db):
    response, uid = submit(gate, site, headers=EN, note="迟到\r\n", name="\t王五 ")
    assert response.status_code == 303
    row = db.execute("SELECT name, note FROM entries WHERE uuid = ?", (uid,)).fetchone()
    assert tuple(row) == ("王五", "迟到")


# ---- a phone's push, an instance's relayed push, an outbox file -------------------------------


def test_a_phones_push_refuses_that_record_alone_with_its_reason(client, db, site):
    peer, token = peers.create(db, "device", "东门 1 号机", site["id"])
    client.set_cookie(devices.COOKIE, token)
    batch = [
        entry(site["id"], 0),
        entry(site["id"], 1, name="张三\x1b]8;;http://x\x07"),
        entry(site["id"], 2, note="\u202e"),
        entry(site["id"], 3),
        entry(site["id"], 4, destination="3号楼\u2029501"),
        # Pasted from a chat: a zero-width space, a BOM, a direction mark; removed, and stored.
        entry(site["id"], 5, name="\ufeff张\u200b三\u200e", note=" 迟到\u2060"),
        # A number and a plate pasted the same way: their marks dropped as their spaces are.
        entry(site["id"], 6, phone="\u200e138\u200b1234\u20605678", plate="苏D\ufeff12345"),
    ]
    answer = client.post("/sync/v1/push", json={"source": peer.id, "records": batch}).get_json()
    assert [r["status"] for r in answer["results"]] == [
        "applied",
        "rejected",
        "rejected",
        "applied",
        "rejected",
        "applied",
        "applied",
    ]
    assert answer["results"][1]["reason"] == ONE_LINE_ZH
    assert answer["results"][2]["reason"] == "备注：须为一行，不能含制表符或不可见字符。"
    assert answer["results"][4]["reason"] == (
        "楼栋 / 单元 / 去向：须为一行，不能含制表符或不可见字符。"
    )
    stored = {r[0] for r in db.execute("SELECT uuid FROM entries")}
    assert stored == {batch[0]["uuid"], batch[3]["uuid"], batch[5]["uuid"], batch[6]["uuid"]}
    row = db.execute("SELECT name, note FROM entries WHERE uuid = ?", (batch[5]["uuid"],))
    assert tuple(row.fetchone()) == ("张三", "迟到")
    row = db.execute("SELECT phone, plate FROM entries WHERE uuid = ?", (batch[6]["uuid"],))
    assert tuple(row.fetchone()) == ("13812345678", "苏D12345")
    kept = {r[0] for r in db.execute("SELECT uuid FROM sync_rejects WHERE status = 'rejected'")}
    assert kept == {batch[1]["uuid"], batch[2]["uuid"], batch[4]["uuid"]}


def test_a_relayed_push_refuses_that_record_alone_with_its_reason(client, db, site):
    with db:
        peer, token = peers.create(db, "instance", "district")
    batch = [
        dict(entry(site["id"], 0), seq=1),
        dict(entry(site["id"], 1, volunteer="李四\u2066"), seq=2),
        dict(entry(site["id"], 2), seq=3),
        dict(entry(site["id"], 3, note="迟到\u2029"), seq=4),
        dict(entry(site["id"], 4, note="迟到\u200f", volunteer="\u200b李四"), seq=5),
    ]
    r = client.post(
        "/sync/v1/push",
        data=json.dumps({"source": peer.id, "records": batch}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"},
    )
    assert [x["status"] for x in r.json["results"]] == [
        "applied",
        "rejected",
        "applied",
        "rejected",
        "applied",
    ]
    assert r.json["results"][1]["reason"] == (
        "On duty: Must be one line, without tabs or invisible characters."
    )
    assert r.json["results"][3]["reason"] == (
        "Note: Must be one line, without tabs or invisible characters."
    )
    assert r.json["cursor"] == 5  # acknowledged: the relay's queue moves past them
    assert count(db) == 3
    row = db.execute("SELECT note, volunteer FROM entries WHERE uuid = ?", (batch[4]["uuid"],))
    assert tuple(row.fetchone()) == ("迟到", "李四")
    assert count(db, "SELECT count(*) FROM entries WHERE uuid = ?", (batch[1]["uuid"],)) == 0
    kept = dict(db.execute("SELECT uuid, body FROM sync_rejects").fetchall())
    assert kept.keys() == {batch[1]["uuid"], batch[3]["uuid"]}
    assert "李四\u2066" in kept[batch[1]["uuid"]]  # kept as sent


def test_an_imported_outbox_refuses_that_record_alone_with_its_reason(runner, db, site, tmp_path):
    records = [
        entry(site["id"], 0),
        entry(site["id"], 1, name="张\t三"),
        entry(site["id"], 2),
        entry(site["id"], 3, name="张\u2028三"),  # a line separator
        entry(site["id"], 4, name="\ufeff张三\u200b"),  # a BOM, a zero-width space: removed
    ]
    path = tmp_path / "outbox.json"
    doc = {"format": "fieldapp-outbox", "version": 1, "device": None, "records": records}
    path.write_text(json.dumps(doc), "utf-8")
    result = runner.invoke(args=["import-outbox", str(path)], env={"FIELDAPP_LANG": "en"})
    assert result.exit_code == 0, result.output
    assert "3 new" in result.output and "2 refused" in result.output
    for refused in (records[1], records[3]):
        assert f"{refused['uuid']}\tName: {ONE_LINE}" in result.output
        assert count(db, "SELECT count(*) FROM entries WHERE uuid = ?", (refused["uuid"],)) == 0
    assert count(db) == 3
    row = db.execute("SELECT name FROM entries WHERE uuid = ?", (records[4]["uuid"],)).fetchone()
    assert row[0] == "张三"
    assert count(db, "SELECT count(*) FROM sync_rejects") == 2


def test_a_refused_record_first_in_the_file_leaves_the_rest_imported(runner, db, site, tmp_path):
    """The one refused comes first: the rest are still imported (one transaction, per record)."""
    records = [entry(site["id"], 1, destination="\x1b[0m"), entry(site["id"], 2)]
    path = tmp_path / "outbox.json"
    path.write_text(
        json.dumps({"format": "fieldapp-outbox", "version": 1, "device": None, "records": records}),
        "utf-8",
    )
    result = runner.invoke(args=["import-outbox", str(path)], env={"FIELDAPP_LANG": "en"})
    assert f"Building / unit: {ONE_LINE}" in result.output
    assert [r[0] for r in db.execute("SELECT uuid FROM entries")] == [records[1]["uuid"]]
