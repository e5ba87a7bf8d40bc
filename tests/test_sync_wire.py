"""sync.wire: the decoder's loop reads JSON as json.loads does, and keeps deep bodies readable;
the content hash is the JSON text its definition names (docs/sync-protocol.md)."""

from __future__ import annotations

import hashlib
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from sync import content_hash, wire

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(codec="utf-16")),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@settings(max_examples=300)
@given(values, st.booleans(), st.sampled_from([None, 1, "\t"]))
def test_the_loop_reads_what_json_loads_reads(value, ascii_only, indent):
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    assert same(wire._decode_capped(text, 100), json.loads(text))


@settings(max_examples=300)
@given(st.text(alphabet='[]{}:,"0123456789.eE-+ tfnaluxrs\\', max_size=30))
def test_the_loop_refuses_what_json_loads_refuses(text):
    try:
        expected = json.loads(text)
    except ValueError:
        expected = ValueError
    try:
        got = wire._decode_capped(text, 100)
    except ValueError:
        got = ValueError
    if expected is ValueError or got is ValueError:
        assert got is expected, text
    else:
        assert same(got, expected) or (isinstance(got, float) and math.isnan(got))


def test_a_body_too_deep_for_json_loads_keeps_its_shallow_records():
    deep = "[" * 100_000 + "]" * 100_000
    text = '{"records": [{"uuid": "a", "data": {"name": DEEP}}, {"uuid": "b"}]}'.replace(
        "DEEP", deep
    )
    body = wire.decode(text.encode())
    assert body["records"][1] == {"uuid": "b"}
    assert wire.problem(body["records"][0]) == "deep"
    assert wire.problem(body["records"][1]) is None


def test_problems_name_what_no_database_can_store():
    assert wire.problem({"a": "\ud800"}) == "text"
    assert wire.problem({"\udfff": 1}) == "text"
    assert wire.problem({"a": [2**63]}) == "number"
    assert wire.problem({"a": -(2**63)}) is None
    assert wire.problem({"a": math.nan}) == "number"

    def nested(levels):  # a record of that many containers, one inside the other
        value: object = 1
        for _ in range(levels - 1):
            value = [value]
        return {"a": value}

    assert wire.problem(nested(wire.MAX_DEPTH)) is None
    assert wire.problem(nested(wire.MAX_DEPTH + 1)) == "deep"
    assert wire.problem({"a": {"b": [1, "x", None, True, 1.5]}}) is None


def test_a_refused_record_is_always_shown_somehow():
    assert "\\ud800" in wire.dump_for_review({"note": "\ud800"})
    assert wire.dump_for_review({"name": "张三"}) == '{"name": "张三"}'
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    assert wire.dump_for_review(deep)


RID, AT = "0067743e-7de1-436b-90fe-e4f12b1c2d3d", "2026-12-07T10:00:00.123Z"


@settings(max_examples=300)
@given(st.dictionaries(st.text(), values, max_size=6), st.none() | st.text(max_size=64))
def test_the_content_hash_is_the_json_its_definition_names(data, device):
    text = json.dumps(
        ["entry", RID, AT, device, data],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    assert content_hash("entry", RID, AT, device, data) == digest


def test_the_content_hash_of_a_record_is_the_one_every_version_made():
    data = {
        "name": "王伟",
        "temperature": 36.5,
        "travel": False,
        "note": 'a"b\\c\u2028',
        "n": 1e-05,
    }
    assert content_hash("entry", RID, AT, None, data) == "f42bed39f5c8de749e8664bf2cf9a39c"
