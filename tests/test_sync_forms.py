"""sync.store's timestamps and uuids: a value already in the stored form is only checked, not
rebuilt. Whatever a sender sends, the answer is the one the general parse gives."""

from __future__ import annotations

import uuid

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sync.records import Invalid
from sync.store import _STORED_TIME, _STORED_UUID, canonical_uuid, iso, normal_time, parse_time


def outcome(fn, value):
    try:
        return fn(value)
    except Invalid as exc:
        return ("refused", exc.code)


def general_time(value):
    return iso(parse_time(value))


def general_uuid(value):
    if isinstance(value, str) and len(value) <= 40:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise Invalid("uuid must be a UUID string", "bad_uuid")


times = (
    st.from_regex(_STORED_TIME, fullmatch=True)  # most of them not real dates
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.text(max_size=30)
)


@settings(max_examples=500)
@given(times)
@example("2026-02-30T08:00:00.000Z")
@example("2026-12-04T24:00:00.000Z")
@example("2026-12-04T23:59:60.000Z")
@example("0000-01-01T00:00:00.000Z")
@example("2026-12-04T10:37:07.917Z")
@example("2026-12-04T10:37:07.917+00:00")
def test_a_stored_form_time_is_what_the_general_parse_makes_of_it(value):
    assert outcome(normal_time, value) == outcome(general_time, value)


uuids = (
    st.from_regex(_STORED_UUID, fullmatch=True)
    | st.uuids().map(str)
    | st.uuids().map(lambda u: str(u).upper())
    | st.uuids().map(lambda u: u.hex)
    | st.text(max_size=40)
)


@settings(max_examples=500)
@given(uuids)
@example("{12345678-1234-5678-1234-567812345678}")
@example("urn:uuid:12345678-1234-5678-1234-567812345678")
def test_a_stored_form_uuid_is_what_the_general_parse_makes_of_it(value):
    assert outcome(canonical_uuid, value) == outcome(general_uuid, value)
