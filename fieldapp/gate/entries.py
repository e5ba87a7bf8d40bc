"""Gate entries: the record kind, its validation for the sync path, and its queries."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

import sync
from fieldapp import records, rules
from fieldapp.console import cases, corrections
from fieldapp.gate import counts
from fieldapp.privacy.ids import IdVault

# The entries table's columns after the common ones: the wire fields of rules.FIELDS, an ID
# number sealed into three (privacy.ids).
COLUMNS = ("site_id",) + tuple(
    column
    for f in rules.FIELDS
    for column in (("id_masked", "id_hash", "id_cipher") if f.name == "id_number" else (f.name,))
)

# The links an entry may carry (rules.FIELDS). Left out of the wire form when empty, so that an
# entry without them has the content hash it had before they existed: a record stored then and
# sent again now is a duplicate, not a conflict.
LINKS = ("roster_id", "registration_uuid")


def validate(conn: sqlite3.Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Check an entry from any source and return its normalised wire form (rules.FIELDS)."""
    site_id = records.site_of(conn, data)
    clean = records.checked(data)
    for link in LINKS:
        if not clean[link]:
            del clean[link]
    return {"site_id": site_id, **clean}


def record_kinds(config: Mapping[str, Any]) -> list[sync.RecordKind]:
    """The entry kind, bound to this instance's ID key."""
    key = config.get("ID_KEY")
    # Before `fieldapp init` writes the key the app must still start (to run init itself).
    holder: list[IdVault] = []

    def vault_() -> IdVault:
        if not holder:
            holder.append(IdVault(key))
        return holder[0]

    def to_row(data: Mapping[str, Any]) -> dict[str, Any]:
        id_number = data["id_number"]
        if id_number or not key:  # without a key, refuse as the vault does
            masked, digest, cipher = vault_().seal(id_number)
        else:  # most entries carry none: no need to build the vault (and load cryptography)
            masked, digest, cipher = "", "", ""
        row = dict(data)  # the store picks COLUMNS out of it; id_number itself is never one
        for link in LINKS:
            row.setdefault(link, "")
        row["id_masked"], row["id_hash"], row["id_cipher"] = masked, digest, cipher
        row["travel"] = int(data["travel"])
        row["self_registered"] = int(data["self_registered"])
        return row

    def from_row(row: sqlite3.Row) -> dict[str, Any]:
        data = {k: row[k] for k in COLUMNS if k not in ("id_masked", "id_hash", "id_cipher")}
        data["id_number"] = vault_().open(row["id_cipher"])
        data["travel"] = bool(row["travel"])
        data["self_registered"] = bool(row["self_registered"])
        for link in LINKS:
            if not data[link]:
                del data[link]
        return data

    # The dashboard's counts move with every batch stored (gate/counts.py), and a fever's
    # case gets its kept state (console/cases.py); both take an entry a correction stored
    # before it names at its current value.
    counted = counts.after_write(config["TIMEZONE"])

    def after_write(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
        waited = cases.take_waiting(conn, rows)
        counted(conn, rows, waited)
        cases.after_entries(conn, rows, waited)

    return [
        sync.RecordKind(
            "entry",
            "entries",
            validate,
            to_row,
            from_row,
            COLUMNS,
            after_write=after_write,
            after_write_reads=("uuid", *counts.READ.split(", ")),
            from_phones=True,
        )
    ]


def exists(conn: sqlite3.Connection, record_uuid: str) -> bool:
    """Whether an entry with that UUID is stored here already."""
    return (
        conn.execute("SELECT 1 FROM entries WHERE uuid = ?", (record_uuid,)).fetchone() is not None
    )


def last_at_site(
    conn: sqlite3.Connection, site_id: str, limit: int = 10
) -> list[Mapping[str, Any]]:
    """The latest entries at a site, newest first (ID numbers only in their masked form), as
    they are now: a wrong tap the console corrected shows corrected, one it voided not at all
    (the gate would otherwise show a fever that was a typo, or someone who never passed)."""
    rows = conn.execute(
        "SELECT uuid, recorded_at, received_at, direction, person_type, name, phone, id_masked,"
        " temperature, fever_action, health_code, travel, travel_where, plate, destination"
        " FROM entries WHERE site_id = ? ORDER BY recorded_at DESC, id DESC LIMIT ?",
        (site_id, limit),
    ).fetchall()
    fixes = corrections.for_entries(conn, [r["uuid"] for r in rows]) if rows else {}
    return counts.current_values(rows, fixes) if fixes else rows
