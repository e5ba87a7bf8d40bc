"""Corrections and voids of entries: append-only records pointing at the entry they concern.

The entry itself never changes; its current value is the original with every correction
applied in the order they were recorded. A void marks the entry as a mistake (with a reason).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import sync
from fieldapp import db, records, rules
from sync.store import canonical_uuid

# Fields a coordinator may correct, with their labels (ID numbers are sealed: not correctable).
FIELDS = {
    "direction": _l("Direction"),
    "person_type": _l("Person type"),
    "name": _l("Name"),
    "phone": _l("Phone"),
    "temperature": _l("Temperature"),
    "fever_action": _l("Fever action"),
    "health_code": _l("Health code"),
    "travel": _l("Travel to a risk area"),
    "travel_where": _l("Where"),
    "plate": _l("Vehicle plate"),
    "destination": _l("Unit / destination"),
    "note": _l("Note"),
}
# The fields whose values are codes, with the labels shown for them (as the log shows them).
CHOICES = {
    "direction": rules.DIRECTIONS,
    "person_type": rules.PERSON_TYPES,
    "fever_action": rules.FEVER_ACTIONS,
    "health_code": rules.HEALTH_CODES,
}
COLUMNS = ("entry_uuid", "changes", "void", "reason", "author")
REASON = rules.Field("reason", "text", _l("Reason"), max_len=200)


def clean_change(name: str, value: Any) -> Any:
    """A corrected field's value, normalised by the gate's own rule, or raise sync.Invalid."""
    if name not in FIELDS:
        raise sync.Invalid(_("%(field)s cannot be corrected", field=name[:40]))
    # A correction names one field alone, so a field that applies only under a condition
    # ("where", after a yes to travel) is checked as text whatever that answer, and not required;
    # every other field keeps its own rule: a direction, person type or health code cannot be
    # emptied, from the console or from a correction another instance sends.
    gate_rule = rules.BY_NAME[name]
    rule = replace(gate_rule, only_if="", required=gate_rule.required and not gate_rule.only_if)
    clean, errors = rules.check({name: value}, [rule])
    if errors:
        raise sync.Invalid(_("%(field)s: %(message)s", field=FIELDS[name], message=errors[name]))
    return clean[name]


def problem_after(value: Mapping[str, Any], changes: Mapping[str, Any]) -> str:
    """What the gate's rules say of the entry as the changes would leave it ("" if nothing):
    a yes to travel needs where, and what was done for a fever is for a fever only, which no
    field checked alone can know. (A correction from another instance may still give where or
    the reading later: only the console's form is held to them.)"""
    after = {**value, **changes}
    temperature = after.get("temperature")
    if (
        changes.get("fever_action")
        and isinstance(temperature, int | float)
        and not rules.is_fever(temperature)
    ):
        return _(
            "%(field)s: only for a fever (%(t)s °C or more); this reading is %(reading).1f °C.",
            field=FIELDS["fever_action"],
            t=rules.FEVER_AT,
            reading=temperature,
        )
    rule = rules.BY_NAME["travel_where"]
    _clean, errors = rules.check(after, [rules.BY_NAME["travel"], rule])
    if rule.name in errors:
        return _("%(field)s: %(message)s", field=FIELDS[rule.name], message=errors[rule.name])
    return ""


def value_text(name: str, value: Any) -> str:
    """A correctable field's value as the console shows it, in the user's language: a code by
    its label, the travel answer as yes or no, a reading in °C, nothing as a dash."""
    if name in CHOICES:
        return str(CHOICES[name].get(value, value))
    if name == "travel":
        return _("Yes") if value else _("No")
    if name == "temperature" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.1f} °C"
    return "—" if value is None or value == "" else str(value)


def changes_from(
    form: Mapping[str, str], value: Mapping[str, Any], now: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The fields of a correction form that differ from the value its page was drawn with
    (value; as_drawn()), each read by the gate's own rule ("36,5" is 36.5, "138 0013 8000" is
    13800138000: no change), and from the entry's current value (now, if another correction
    came since): a field the form left as it was never undoes another coordinator's
    correction. A value the rule refuses is kept as typed, for validate() to refuse with its
    reason."""
    changes: dict[str, Any] = {}
    for name in FIELDS:
        if name not in form:  # the travel checkbox is followed by a hidden 0: sent either way
            continue
        typed: Any = form[name]
        if name == "travel":
            typed = typed in ("1", "on", "true")
        try:
            new = clean_change(name, typed)
        except sync.Invalid:
            changes[name] = typed
            continue
        if all(new != _stored(name, v.get(name)) for v in (value, now or value)):
            changes[name] = new
    return changes


def _stored(name: str, value: Any) -> Any:
    """A field's value as clean_change() gives it (the travel answer a bool, nothing as "")."""
    return bool(value) if name == "travel" else "" if value is None else value


# How many corrections a form may name as seen (an entry has a few; a tampered form more).
SEEN_MAX = 100


def as_drawn(
    conn: sqlite3.Connection, value: Mapping[str, Any], seen: str | None
) -> Mapping[str, Any]:
    """The entry's value as the correction form was drawn with it: its original (value's
    "original", logbook.entry()) with the corrections the form names as seen (their uuids,
    comma-separated); the current value when the form names none (a form without the field)."""
    if seen is None:
        return value
    named = set(seen.split(",")[:SEEN_MAX])
    found = for_entries(conn, [value["uuid"]]).get(value["uuid"], [])
    return current(value["original"], [c for c in found if c["uuid"] in named])


def stored(conn: sqlite3.Connection, uuid: Any, entry_uuid: str) -> bool:
    """Whether a correction with this uuid, of this entry, is stored (a form sent twice)."""
    try:
        uuid = canonical_uuid(uuid)
    except sync.Invalid:
        return False
    return (
        conn.execute(
            "SELECT 1 FROM corrections WHERE uuid = ? AND entry_uuid = ?", (uuid, entry_uuid)
        ).fetchone()
        is not None
    )


def validate(conn: sqlite3.Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Check a correction from any source and return its normalised wire form."""
    # The entry may not be here yet (records of one batch are checked before any is stored),
    # so only the form of its uuid is checked.
    entry_uuid = canonical_uuid(data.get("entry_uuid"), "entry_uuid")
    changes = data.get("changes") or {}
    if not isinstance(changes, Mapping):
        raise sync.Invalid(_("changes must be an object"))
    if len(changes) > len(FIELDS):
        raise sync.Invalid(_("%(field)s cannot be corrected", field="?"))
    clean = {str(k): clean_change(str(k), v) for k, v in changes.items()}
    void = data.get("void", False)
    if not isinstance(void, bool):
        raise sync.Invalid(_("void must be true or false"))
    if not clean and not void:
        raise sync.Invalid(_("Nothing was changed."))
    # The reason is shown on the entry's page and in its history, written to exports: the
    # text rule keeps it to one line, without an escape a terminal obeys or an invisible mark.
    texts = records.checked(data, (REASON, records.AUTHOR))
    if not texts["reason"]:
        raise sync.Invalid(_("Say why the entry is corrected or voided."))
    return {
        "entry_uuid": entry_uuid,
        "changes": clean,
        "void": void,
        "reason": texts["reason"],
        "author": texts["author"],
    }


def _to_row(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "entry_uuid": data["entry_uuid"],
        "changes": json.dumps(data["changes"], ensure_ascii=False, sort_keys=True),
        "void": int(data["void"]),
        "reason": data["reason"],
        "author": data["author"],
    }


def _from_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "entry_uuid": row["entry_uuid"],
        "changes": json.loads(row["changes"]),
        "void": bool(row["void"]),
        "reason": row["reason"],
        "author": row["author"],
    }


def kind() -> sync.RecordKind:
    """The correction kind. What a correction does to a fever case is cases.py's, which reads
    corrections: cases.record_kinds registers this kind with that effect (after_write)."""
    return sync.RecordKind("correction", "corrections", validate, _to_row, _from_row, COLUMNS)


def wire(
    entry_uuid: str,
    author: str,
    reason: str,
    changes=None,
    void: bool = False,
    uuid: str | None = None,
) -> dict:
    """A new correction record, made here now, ready for records.save (uuid: the form's, so
    that a form sent twice is one record; a new one if it is not a UUID)."""
    try:
        uuid = canonical_uuid(uuid) if uuid else None
    except sync.Invalid:
        uuid = None
    return records.new(
        "correction",
        {
            "entry_uuid": entry_uuid,
            "changes": dict(changes or {}),
            "void": void,
            "reason": reason,
            "author": author,
        },
        uuid=uuid,
    )


def for_entries(conn: sqlite3.Connection, uuids: Iterable[str]) -> dict[str, list[sqlite3.Row]]:
    """entry uuid -> its corrections in the order they were recorded."""
    uuids = list(uuids)
    found: dict[str, list[sqlite3.Row]] = {}
    for chunk in db.chunks(uuids):
        for row in conn.execute(
            "SELECT * FROM corrections"  # noqa: S608 -- only marks
            f" WHERE {db.in_list('entry_uuid', chunk)} ORDER BY recorded_at, id",
            chunk,
        ):
            found.setdefault(row["entry_uuid"], []).append(row)
    return found


def corrected_entries(
    conn: sqlite3.Connection, columns: str, where: str, params: Iterable[Any] = ()
) -> list[Any]:
    """The entries (uuid and columns) matching where that corrections name: few, so read
    through the corrections' index (the figures recount them at their current value)."""
    return conn.execute(
        f"SELECT uuid, {columns} FROM entries"  # noqa: S608 -- names and clauses from code
        f" WHERE uuid IN (SELECT entry_uuid FROM corrections) AND {where}",
        tuple(params),
    ).fetchall()


def any_exist(conn: sqlite3.Connection) -> bool:
    """Whether any correction is stored (lets exports skip the look-ups when none is)."""
    return conn.execute("SELECT 1 FROM corrections LIMIT 1").fetchone() is not None


def current(entry: Mapping[str, Any], corrections: list[sqlite3.Row]) -> dict[str, Any]:
    """The entry's current value: the original with its corrections applied, in order.

    Adds `void` (bool), `void_reason` and `corrected` (how many corrections apply).
    """
    value = dict(entry)
    value.update(void=False, void_reason="", corrected=len(corrections))
    for c in corrections:
        value.update(json.loads(c["changes"]))
        if c["void"]:
            value["void"] = True
            value["void_reason"] = c["reason"]
    return value
