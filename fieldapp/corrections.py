"""Corrections and voids of entries: append-only records pointing at the entry they concern.

The entry itself never changes; its current value is the original with every correction
applied in the order they were recorded. A void marks the entry as a mistake (with a reason).
"""

from __future__ import annotations

import json
import sqlite3
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import sync
from sync.store import canonical_uuid, iso

from . import rules

# Fields a coordinator may correct, with their labels (ID numbers are sealed: not correctable).
FIELDS = {
    "direction": _l("Direction"),
    "person_type": _l("Person type"),
    "name": _l("Name"),
    "phone": _l("Phone"),
    "temperature": _l("Temperature"),
    "health_code": _l("Health code"),
    "travel": _l("Travel to a risk area"),
    "travel_where": _l("Where"),
    "plate": _l("Vehicle plate"),
    "destination": _l("Unit / destination"),
    "note": _l("Note"),
}
TEXT_LIMITS = {"name": 50, "travel_where": 100, "destination": 50, "note": 200}
COLUMNS = ("entry_uuid", "changes", "void", "reason", "author")


def _text(value: Any, label: str, limit: int) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise sync.Invalid(_("%(field)s must be text", field=label))
    value = value.strip()
    if len(value) > limit:
        raise sync.Invalid(_("%(field)s is longer than %(n)d characters", field=label, n=limit))
    return value


def clean_change(name: str, value: Any) -> Any:
    """A corrected field's value, normalised like the gate does, or raise sync.Invalid."""
    label = str(FIELDS.get(name, name))
    if name == "direction" and value not in rules.DIRECTIONS:
        raise sync.Invalid(_("%(field)s is not a valid choice", field=label))
    if name == "person_type" and value not in rules.PERSON_TYPES:
        raise sync.Invalid(_("%(field)s is not a valid choice", field=label))
    if name == "health_code" and value not in rules.HEALTH_CODES:
        raise sync.Invalid(_("%(field)s is not a valid choice", field=label))
    if name in ("direction", "person_type", "health_code"):
        return value
    if name == "temperature":
        try:
            temperature = round(float(value), 1)
        except (TypeError, ValueError):
            raise sync.Invalid(_("temperature must be a number")) from None
        if isinstance(value, bool) or not rules.TEMP_MIN <= temperature <= rules.TEMP_MAX:
            raise sync.Invalid(_("temperature must be between 34.0 and 43.0 °C"))
        return temperature
    if name == "travel":
        if not isinstance(value, bool):
            raise sync.Invalid(_("travel must be true or false"))
        return value
    if name == "name":
        text = _text(value, label, 50)
        if not text:
            raise sync.Invalid(_("%(field)s is required", field=label))
        return text
    if name == "phone":
        phone = rules.normalise_phone(_text(value, label, 40))
        if phone and not rules.valid_mobile(phone):
            raise sync.Invalid(_("phone must be an 11-digit mobile number"))
        return phone
    if name == "plate":
        plate = rules.normalise_plate(_text(value, label, 40))
        if plate and not rules.valid_plate(plate):
            raise sync.Invalid(_("vehicle plate is not a valid plate number"))
        return plate
    if name in TEXT_LIMITS:
        return _text(value, label, TEXT_LIMITS[name])
    raise sync.Invalid(_("%(field)s cannot be corrected", field=name))


def validate(conn: sqlite3.Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Check a correction from any source and return its normalised wire form."""
    # The entry may not be here yet (records of one batch are checked before any is stored),
    # so only the form of its uuid is checked.
    entry_uuid = canonical_uuid(data.get("entry_uuid"))
    changes = data.get("changes") or {}
    if not isinstance(changes, Mapping):
        raise sync.Invalid(_("changes must be an object"))
    clean = {str(k): clean_change(str(k), v) for k, v in changes.items()}
    void = data.get("void", False)
    if not isinstance(void, bool):
        raise sync.Invalid(_("void must be true or false"))
    if not clean and not void:
        raise sync.Invalid(_("Nothing was changed."))
    reason = _text(data.get("reason"), str(_l("Reason")), 200)
    if not reason:
        raise sync.Invalid(_("Say why the entry is corrected or voided."))
    author = _text(data.get("author"), "author", 40)
    if not author:
        raise sync.Invalid(_("%(field)s is required", field="author"))
    return {
        "entry_uuid": entry_uuid,
        "changes": clean,
        "void": void,
        "reason": reason,
        "author": author,
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


def record_kinds(config: Mapping[str, Any]) -> list[sync.RecordKind]:
    """The correction kind."""
    return [
        sync.RecordKind(
            name="correction",
            table="corrections",
            validate=validate,
            to_row=_to_row,
            from_row=_from_row,
            columns=COLUMNS,
        )
    ]


def wire(entry_uuid: str, author: str, reason: str, changes=None, void: bool = False) -> dict:
    """A new correction record, made here now, ready for records.save."""
    return {
        "uuid": str(uuidlib.uuid4()),
        "kind": "correction",
        "recorded_at": iso(sync.utcnow()),
        "data": {
            "entry_uuid": entry_uuid,
            "changes": dict(changes or {}),
            "void": void,
            "reason": reason,
            "author": author,
        },
    }


def for_entries(conn: sqlite3.Connection, uuids: Iterable[str]) -> dict[str, list[sqlite3.Row]]:
    """entry uuid -> its corrections in the order they were recorded."""
    uuids = list(uuids)
    found: dict[str, list[sqlite3.Row]] = {}
    for start in range(0, len(uuids), 900):
        chunk = uuids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT * FROM corrections WHERE entry_uuid IN ({marks}) ORDER BY recorded_at, id",  # noqa: S608 -- only marks
            chunk,
        ):
            found.setdefault(row["entry_uuid"], []).append(row)
    return found


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
