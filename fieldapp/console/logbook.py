"""The log of entries for the console: filters, keyset pagination, masking, current values."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from fieldapp import days, db, rules
from fieldapp.console import corrections

PAGE_SIZE = 50
COLUMNS = (
    "e.id, e.uuid, e.recorded_at, e.site_id, s.name AS site_name, e.direction, e.person_type,"
    " e.name, e.phone, e.id_masked, e.id_cipher, e.temperature, e.fever_action, e.health_code,"
    " e.travel, e.travel_where, e.plate, e.destination, e.note, e.volunteer, e.roster_id,"
    " e.registration_uuid"
)


@dataclass
class Filters:
    """What the log is narrowed to; every field optional."""

    site: str = ""
    date_from: str = ""
    date_to: str = ""
    direction: str = ""
    person_type: str = ""
    fever: bool = False
    travel: bool = False
    health_code: str = ""
    q: str = ""
    # Whether q also searches names and phones: not for viewers, who must not confirm by
    # searching what they are shown masked.
    search_personal: bool = True

    def as_args(self) -> dict[str, str]:
        """The filters as query arguments (for links and hidden fields)."""
        out = {}
        for f in fields(self):
            if f.name == "search_personal":
                continue
            value = getattr(self, f.name)
            if value:
                out[f.name] = "1" if value is True else value
        return out

    def audited(self) -> str:
        """The filters as the audit log keeps them: a text search only as "q=…", since what
        was searched for may be a name or a phone number, and the audit log outlives the
        entries' retention."""
        args = self.as_args()
        if "q" in args:
            args["q"] = "…"
        return " ".join(f"{k}={v}" for k, v in args.items())


def parse_filters(
    args: Mapping[str, str], site_ids: list[str] | None, role: str = "admin"
) -> tuple[Filters, list]:
    """Filters from query arguments, and the errors (in the user's language) of those refused.

    A site outside the scope (or unknown) and a first day after the last are kept as asked,
    with their error: they match nothing, so no list or export reads as that site's or those
    days' when it is the whole scope (every query ANDs the scope with the site). A filter that
    is not well formed (a date, a choice) is dropped, with its error."""
    f, errors = Filters(search_personal=role != "viewer"), []
    site = (args.get("site") or "").strip()
    if site:
        if site_ids is not None and site not in site_ids:
            errors.append(_("You have no access to that site."))
        f.site = site
    for key in ("date_from", "date_to"):
        value = (args.get(key) or "").strip()
        if value:
            try:  # as read: a day typed with full-width digits is kept as YYYY-MM-DD
                setattr(f, key, days.parse_day(value).isoformat())
            except ValueError as exc:
                errors.append(str(exc))
    if f.date_from and f.date_to and days.parse_day(f.date_from) > days.parse_day(f.date_to):
        errors.append(_("The start date is after the end date, so nothing matches."))
    for key, choices in (
        ("direction", rules.DIRECTIONS),
        ("person_type", rules.PERSON_TYPES),
        ("health_code", rules.HEALTH_CODES),
    ):
        value = args.get(key) or ""
        if value and value not in choices:
            errors.append(_("Unknown choice for a filter."))
        elif value:
            setattr(f, key, value)
    f.fever = args.get("fever") in ("1", "on", "true")
    f.travel = args.get("travel") in ("1", "on", "true")
    q = (args.get("q") or "").strip()
    if len(q) > 50:
        errors.append(_("The search text is longer than 50 characters."))
    else:
        f.q = q
    return f, errors


@dataclass
class Source:
    """What a filtered list of entries reads: FROM (the entries as `e`), the time column it is
    ordered by newest first (then e.id), which the keyset follows, and parts: WHERE clauses
    with their parameters, each walked in that order through an index of its own, whose
    union (disjoint) is the selection (one part but for "travel only" with an answer a
    correction turned to yes)."""

    tables: str
    at: str
    parts: list[tuple[str, list[Any]]]

    @property
    def where(self) -> str:
        """The selection as one WHERE clause (for what reads it whole: exports, counts)."""
        if len(self.parts) == 1:
            return self.parts[0][0]
        return " OR ".join(f"({w})" for w, _params in self.parts)

    @property
    def params(self) -> list[Any]:
        """The parameters of where."""
        return [p for _w, params in self.parts for p in params]


def source(conn: db.Connection, f: Filters, site_ids: list[str] | None, tz: ZoneInfo) -> Source:
    """The entries the filters select, by each entry's current value (corrections applied;
    a voided entry has not travelled and is not a fever), as the cases and the figures count
    them. The fevers are the fever cases (console/cases.py keeps a row for each entry that is
    a fever now and not void), read newest first through their own index. The other filters
    match the stored values, but for the corrected entries of the scope and dates (few): those
    are matched here, at their current value, and named by id."""
    fever = f.fever
    # The fevers are walked in the order of fever_cases_time (recorded_at): the entry's own
    # time, written as the cases' so that the range and the order use that index.
    at = "fc.recorded_at" if fever else "e.recorded_at"
    tables = "fever_cases fc CROSS JOIN entries e" if fever else "entries e"
    base, params = _base(f, site_ids, tz, at)
    if fever:
        base.insert(0, "e.uuid = fc.uuid")
    stored, stored_params = _stored_match(f)
    if not stored:
        return Source(tables, at, [(" AND ".join(base) or "1 = 1", params)])
    corrected, matching = _corrected(conn, f, site_ids, tz)
    first = [*base, *stored]
    if corrected:
        first.append(f"e.id NOT IN ({', '.join(map(str, corrected))})")
    parts = [(" AND ".join(first), [*params, *stored_params])]
    if matching:
        parts.append((" AND ".join([*base, f"e.id IN ({', '.join(map(str, matching))})"]), params))
    return Source(tables, at, parts)


def _base(
    f: Filters, site_ids: list[str] | None, tz: ZoneInfo, at: str
) -> tuple[list[str], list[Any]]:
    """The scope, site and dates as clauses on the entries e (their time: at) and parameters."""
    clauses, params = [], []
    if site_ids is not None:
        clauses.append(db.in_list("e.site_id", site_ids))
        params += site_ids
    if f.site:
        clauses.append("e.site_id = ?")
        params.append(f.site)
    if f.date_from:
        clauses.append(f"{at} >= ?")
        params.append(days.bounds(date.fromisoformat(f.date_from), tz)[0])
    if f.date_to:
        clauses.append(f"{at} < ?")
        params.append(days.bounds(date.fromisoformat(f.date_to), tz)[1])
    return clauses, params


def _stored_match(f: Filters) -> tuple[list[str], list[Any]]:
    """The filters but scope, dates and fever as clauses on the stored values of entries e."""
    clauses, params = [], []
    for key in ("direction", "person_type", "health_code"):
        if getattr(f, key):
            clauses.append(f"e.{key} = ?")
            params.append(getattr(f, key))
    if f.travel:
        clauses.append("e.travel = 1")  # as written in the partial index entries_travel
    if f.q:
        lower, upper = db.contains(f.q, "lower"), db.contains(f.q, "upper")
        if f.search_personal:
            clauses.append(
                "(lower(e.name) LIKE ? ESCAPE '\\' OR e.phone LIKE ? ESCAPE '\\'"
                " OR e.plate LIKE ? ESCAPE '\\' OR lower(e.destination) LIKE ? ESCAPE '\\')"
            )
            params += [lower, db.contains(f.q), upper, lower]
        else:
            clauses.append(
                "(e.plate LIKE ? ESCAPE '\\' OR lower(e.destination) LIKE ? ESCAPE '\\')"
            )
            params += [upper, lower]
    return clauses, params


def _matches(f: Filters, value: Mapping[str, Any]) -> bool:
    """Whether an entry's current value passes the filters _stored_match() writes in SQL."""
    for key in ("direction", "person_type", "health_code"):
        if getattr(f, key) and value[key] != getattr(f, key):
            return False
    if f.travel and not (value["travel"] and not value["void"]):
        return False
    if f.q:
        q = f.q.lower()
        found = q.upper() in value["plate"] or q in value["destination"].lower()
        if f.search_personal:
            found = found or q in value["name"].lower() or f.q in value["phone"]
        if not found:
            return False
    return True


def _corrected(
    conn: db.Connection, f: Filters, site_ids: list[str] | None, tz: ZoneInfo
) -> tuple[list[int], list[int]]:
    """The ids of the corrected entries of the scope and dates, and of those of them whose
    current value passes the filters (whole numbers from the database, written into the
    clauses)."""
    base, params = _base(f, site_ids, tz, "e.recorded_at")
    # Walked from the corrections (few; none at most instances), not from the entries of the
    # scope (a city's month), each looked up by its uuid.
    rows = conn.execute(
        "SELECT e.id, e.uuid, e.direction, e.person_type, e.health_code, e.travel, e.name,"  # noqa: S608 -- built from code
        " e.phone, e.plate, e.destination"
        " FROM (SELECT DISTINCT entry_uuid FROM corrections) c CROSS JOIN entries e"
        f" WHERE {' AND '.join(['e.uuid = c.entry_uuid', *base])}",
        params,
    ).fetchall()
    fixes = corrections.for_entries(conn, [r["uuid"] for r in rows]) if rows else {}
    corrected, matching = [], []
    for r in rows:
        corrected.append(int(r["id"]))
        if _matches(f, corrections.current(r, fixes.get(r["uuid"], []))):
            matching.append(int(r["id"]))
    return sorted(corrected), sorted(matching)


def encode_cursor(row: Mapping[str, Any]) -> str:
    """The keyset position after a row: its recorded_at and id."""
    return f"{row['recorded_at']}~{row['id']}"


def decode_cursor(value: str | None) -> tuple[str, int] | None:
    """The position from a cursor argument, or None when absent or malformed (a tampered one
    lists from the top): the id is ASCII digits (str.isdigit takes "²") that fit SQL's 64-bit
    integer."""
    if not value or "~" not in value or len(value) > 60:
        return None
    ts, _sep, rid = value.rpartition("~")
    if not (rid.isascii() and rid.isdigit()) or int(rid) >= 2**63:
        return None
    return ts, int(rid)


def page(
    conn: sqlite3.Connection,
    f: Filters,
    site_ids: list[str] | None,
    tz: ZoneInfo,
    after: tuple[str, int] | None = None,
    size: int = PAGE_SIZE,
) -> tuple[list[dict], str | None]:
    """One page of the log, newest first, with current values; and the cursor of the next page.

    Keyset pagination on (recorded_at, id): page 100 costs what page 1 costs.
    """
    src = source(conn, f, site_ids, tz)
    at = src.at
    rows = []
    for where, params in src.parts:  # each through its own index, then merged
        if after is not None:
            # The first term is a plain range the index can seek to; the second breaks ties.
            where += f" AND {at} <= ? AND ({at} < ? OR e.id < ?)"
            params = [*params, after[0], after[0], after[1]]
        rows += conn.execute(
            f"SELECT {COLUMNS} FROM {src.tables} JOIN sites s ON s.id = e.site_id"  # noqa: S608 -- built from code
            f" WHERE {where} ORDER BY {at} DESC, e.id DESC LIMIT ?",
            [*params, size + 1],
        ).fetchall()
    if len(src.parts) > 1:
        rows.sort(key=lambda r: (r["recorded_at"], r["id"]), reverse=True)
        rows = rows[: size + 1]
    more = len(rows) > size
    rows = rows[:size]
    fixes = corrections.for_entries(conn, [r["uuid"] for r in rows])
    out = [corrections.current(r, fixes.get(r["uuid"], [])) for r in rows]
    return out, (encode_cursor(rows[-1]) if more and rows else None)


# Columns of the rows iterate() yields, in order.
ITER_COLUMNS = (
    "id", "uuid", "recorded_at", "site_id", "direction", "person_type", "name", "phone",
    "id_masked", "id_cipher", "temperature", "fever_action", "health_code", "travel",
    "travel_where", "plate", "destination", "note", "volunteer",
)  # fmt: skip


def iterate(
    conn: sqlite3.Connection,
    f: Filters,
    site_ids: list[str] | None,
    tz: ZoneInfo,
    chunk: int = 5000,
) -> Iterator[list]:
    """Every matching entry in chunks (constant memory), newest first, with current values.

    For speed an entry without corrections comes as a plain tuple in ITER_COLUMNS order; a
    corrected one as the dict of corrections.current() (with `void`, `void_reason`,
    `corrected`). Site names are not joined: look them up with site_names().
    """
    src = source(conn, f, site_ids, tz)
    cols = ", ".join("e." + c for c in ITER_COLUMNS)
    sql = (
        f"SELECT {cols} FROM {src.tables}"  # noqa: S608 -- built from code
        f" WHERE {src.where} ORDER BY {src.at} DESC, e.id DESC"
    )
    check = corrections.any_exist(conn)
    for rows in db.stream(conn, sql, src.params, chunk):
        if check:
            fixes = corrections.for_entries(conn, [r[1] for r in rows])
            if fixes:
                rows = [
                    corrections.current(dict(zip(ITER_COLUMNS, r, strict=True)), fixes[r[1]])
                    if r[1] in fixes
                    else r
                    for r in rows
                ]
        yield rows


def raw_entries(conn: sqlite3.Connection, uuids: list[str]) -> dict[str, dict]:
    """uuid -> the stored entry as a dict of ITER_COLUMNS (before corrections)."""
    found: dict[str, dict] = {}
    cols = ", ".join(ITER_COLUMNS)
    for chunk in db.chunks(uuids):
        sql = f"SELECT {cols} FROM entries WHERE {db.in_list('uuid', chunk)}"  # noqa: S608 -- from code
        for row in conn.execute(sql, chunk):
            found[row["uuid"]] = dict(row)
    return found


def site_names(conn: sqlite3.Connection) -> dict[str, str]:
    """site id -> name, for rows read without the join."""
    return {r[0]: r[1] for r in conn.execute("SELECT id, name FROM sites")}


def count(conn: sqlite3.Connection, f: Filters, site_ids: list[str] | None, tz: ZoneInfo) -> int:
    """How many entries match (for the export's progress bar)."""
    src = source(conn, f, site_ids, tz)
    return conn.execute(
        f"SELECT count(*) FROM {src.tables} WHERE {src.where}",  # noqa: S608 -- built from code
        src.params,
    ).fetchone()[0]


def entry(conn: sqlite3.Connection, entry_uuid: str) -> dict | None:
    """One entry's current value with its site name, or None."""
    row = conn.execute(
        f"SELECT {COLUMNS} FROM entries e JOIN sites s ON s.id = e.site_id WHERE e.uuid = ?",  # noqa: S608
        (entry_uuid,),
    ).fetchone()
    if row is None:
        return None
    value = corrections.current(
        row, corrections.for_entries(conn, [entry_uuid]).get(entry_uuid, [])
    )
    value["original"] = dict(row)
    return value


def mask_name(name: str) -> str:
    """张** : the family name only."""
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else name


def present(entry: dict, role: str, unmasked: bool = False) -> dict:
    """What a user of that role sees of an entry: phone masked, and for viewers the name too.

    `unmasked` (a deliberate, audited action of a coordinator or admin) shows the full phone;
    the full ID number is decrypted by the view only in that case.
    """
    shown = dict(entry)
    shown.pop("id_cipher", None)
    shown.pop("original", None)
    if not unmasked or role == "viewer":
        shown["phone"] = rules.mask_phone(entry.get("phone") or "")
    if role == "viewer":
        shown["name"] = mask_name(entry.get("name") or "")
    return shown


def history(conn: sqlite3.Connection, entry_uuid: str, role: str, unmasked: bool = False) -> list:
    """The entry's corrections in the order they were recorded, each one's changes (in the
    order of corrections.FIELDS) shown as present() shows the entry: a corrected phone masked,
    and for viewers a corrected name too."""
    shown = []
    for c in corrections.for_entries(conn, [entry_uuid]).get(entry_uuid, []):
        changes = json.loads(c["changes"])
        masked = present(changes, role, unmasked)
        ordered = {k: masked[k] for k in corrections.FIELDS if k in changes}
        shown.append({**dict(c), "changes": ordered})
    return shown
