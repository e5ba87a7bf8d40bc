"""Visitors' own registrations (from the site's poster): the record kind and its queries.

A registration is what a visitor says about themself; it is not an entry. The gate staff scan
the visitor's pass, take the temperature and save an entry that names the registration
(`registration_uuid`), judged by the fever rules of every entry. A registration no entry names
was never checked at the gate, and the console's log says so. At a self-service site the visitor
takes their own temperature and the registration comes with its entry (selfreg.save).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import date
from typing import Any

import sync
from fieldapp import days, db, records, rules

# The registration's columns after the common ones; the same keys as an entry's where shared.
COLUMNS = (
    "site_id",
    "direction",
    "name",
    "phone",
    "health_code",
    "travel",
    "travel_where",
    "destination",
    "temperature",
)
# The rules of an entry for what a visitor says (rules.FIELDS); the temperature apart.
FIELDS = tuple(rules.BY_NAME[n] for n in COLUMNS if n not in ("site_id", "temperature"))
TEMPERATURE = rules.BY_NAME["temperature"]
# An entry e that checks a registration r: at the registration's own site (an entry elsewhere
# naming it checked nothing here), and not voided in the console (a void is a correction record
# with void = 1, never undone: the entry was a mistake; a correction that keeps it keeps it).
CHECKS = (
    "e.registration_uuid = r.uuid AND e.site_id = r.site_id AND NOT EXISTS"
    " (SELECT 1 FROM corrections c WHERE c.entry_uuid = e.uuid AND c.void = 1)"
)


def validate(conn: sqlite3.Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Check a registration from any source and return its normalised wire form."""
    site_id = records.site_of(conn, data)
    clean = records.checked(data, FIELDS)
    temperature = None  # a visitor at a gate with staff gives none
    if data.get("temperature") not in (None, ""):
        temperature = records.checked(data, [TEMPERATURE])["temperature"]
    return {"site_id": site_id, **clean, "temperature": temperature}


def same(conn: sqlite3.Connection, row: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Whether a stored registration (its row) holds what data says, once checked as any
    registration is: the same details sent again, not other ones under its uuid."""
    try:
        clean = validate(conn, dict(data))
    except sync.Invalid:
        return False
    stored = {c: row[c] for c in COLUMNS}
    stored["travel"] = bool(stored["travel"])
    return stored == clean


def record_kinds(config: Mapping[str, Any]) -> list[sync.RecordKind]:
    """The registration kind."""
    return [records.kind("registration", "registrations", validate, COLUMNS, ("travel",))]


def get(conn: sqlite3.Connection, registration_uuid: str) -> sqlite3.Row | None:
    """One registration, or None."""
    return conn.execute(
        "SELECT * FROM registrations WHERE uuid = ?", (registration_uuid,)
    ).fetchone()


def checks(conn: sqlite3.Connection, registration_uuid: str) -> list[sqlite3.Row]:
    """The gate entries that checked a registration (CHECKS: at its own site, not voided),
    oldest first."""
    return conn.execute(
        "SELECT e.uuid, e.recorded_at, e.direction, e.temperature, e.self_registered"  # noqa: S608 -- built from code
        f" FROM entries e JOIN registrations r ON {CHECKS}"
        " WHERE e.registration_uuid = ? ORDER BY e.recorded_at, e.id",
        (registration_uuid,),
    ).fetchall()


def unchecked(
    conn: sqlite3.Connection,
    site_ids: list[str] | None,
    tz: str,
    *,
    site: str = "",
    date_from: str = "",
    date_to: str = "",
    match: Mapping[str, Any] | None = None,
    limit: int = 50,
) -> tuple[list[sqlite3.Row], int]:
    """Registrations no gate entry checks (CHECKS), newest first (at most limit), and how many
    in all: visitors who registered and were never checked at the gate.

    match: the log's other filters, so that what it lists under them matches them too
    (direction, health_code, person_type, travel, fever, q; search_personal: whether q
    searches names and phones, not for a viewer)."""
    match = match or {}
    if match.get("person_type") not in (None, "", "visitor"):
        return [], 0  # a visitor's own registration is a visitor's
    clauses = [
        # The partial index entries_registration only where its condition is written out:
        # without it PostgreSQL costs a seq scan of every entry (never run, as registrations
        # are few, but costly enough at 10 million to JIT-compile the statement: 300 ms).
        f"NOT EXISTS (SELECT 1 FROM entries e WHERE {CHECKS} AND e.registration_uuid != '')",  # noqa: S608 -- from code
    ]
    params: list[Any] = []
    if site_ids is not None:
        clauses.append(db.in_list("r.site_id", site_ids))
        params += site_ids
    if site:
        clauses.append("r.site_id = ?")
        params.append(site)
    if date_from:
        clauses.append("r.recorded_at >= ?")
        params.append(days.bounds(date.fromisoformat(date_from), days.zone(tz))[0])
    if date_to:
        clauses.append("r.recorded_at < ?")
        params.append(days.bounds(date.fromisoformat(date_to), days.zone(tz))[1])
    for key in ("direction", "health_code"):
        if match.get(key):
            clauses.append(f"r.{key} = ?")
            params.append(match[key])
    if match.get("travel"):
        clauses.append("r.travel = 1")
    if match.get("fever"):
        clauses.append("r.temperature >= ?")
        params.append(rules.FEVER_AT)
    if match.get("q"):
        lower = db.contains(match["q"], "lower")
        if match.get("search_personal", True):
            clauses.append(
                "(lower(r.name) LIKE ? ESCAPE '\\' OR r.phone LIKE ? ESCAPE '\\'"
                " OR lower(r.destination) LIKE ? ESCAPE '\\')"
            )
            params += [lower, db.contains(match["q"]), lower]
        else:
            clauses.append("lower(r.destination) LIKE ? ESCAPE '\\'")
            params.append(lower)
    where = " AND ".join(clauses)
    total = conn.execute(
        f"SELECT count(*) FROM registrations r WHERE {where}",  # noqa: S608 -- built from code
        params,
    ).fetchone()[0]
    cols = (
        "r.uuid, r.recorded_at, r.site_id, s.name AS site_name, r.direction, r.name, r.phone,"
        " r.health_code, r.travel, r.travel_where, r.destination, r.temperature"
    )
    sql = (
        f"SELECT {cols} FROM registrations r JOIN sites s ON s.id = r.site_id WHERE {where}"  # noqa: S608 -- built from code
        " ORDER BY r.recorded_at DESC, r.id DESC LIMIT ?"
    )
    rows = conn.execute(sql, params + [limit]).fetchall()
    return rows, total
