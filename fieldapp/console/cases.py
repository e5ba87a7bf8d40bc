"""Fever follow-up. A case exists for every entry with a fever (rules.FEVER_AT; derived: no
record opens it); each step taken is an append-only `case_action` record that syncs upstream.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import sync
from fieldapp import db, records, rules
from fieldapp.console import corrections
from fieldapp.gate import counts
from sync.store import canonical_uuid, iso

ACTIONS = {
    "acknowledge": _l("Acknowledged"),
    "remeasure": _l("Re-measured"),
    "clinic": _l("Sent to clinic"),
    "home_isolation": _l("Home isolation (temperature checked twice a day)"),
    "check": _l("Temperature check"),
    "report": _l("Reported to the health authority"),
    "close": _l("Closed"),
    "reopen": _l("Reopened"),
}
# Actions that carry a temperature reading.
WITH_TEMPERATURE = ("remeasure", "check")
OUTCOMES = {
    "normal": _l("Temperature back to normal"),
    "clinic_cleared": _l("Seen at a clinic, cleared"),
    "isolation_done": _l("Home isolation completed"),
    "hospital": _l("Admitted to hospital"),
    "other": _l("Other"),
}
# A case still open after this long is highlighted on the lists and the dashboard.
OVERDUE = timedelta(hours=24)
COLUMNS = ("entry_uuid", "action", "temperature", "outcome", "note", "author")
CHUNK = 500  # entry uuids looked up per statement
TEMPERATURE = rules.BY_NAME["temperature"]


def validate(conn: sqlite3.Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Check a case action from any source and return its normalised wire form."""
    entry_uuid = canonical_uuid(data.get("entry_uuid"), "entry_uuid")
    step = check_step(
        data, ACTIONS, OUTCOMES, WITH_TEMPERATURE, _l("Choose the outcome to close the case.")
    )
    return {"entry_uuid": entry_uuid, **step}


def is_case(entry: Mapping[str, Any]) -> bool:
    """Whether an entry, as corrected (corrections.current), is a fever case: a fever, not void."""
    return not entry["void"] and rules.is_fever(float(entry["temperature"]))


def check_step(
    data: Mapping[str, Any],
    actions: Mapping[str, Any],
    outcomes: Mapping[str, Any],
    with_temperature: tuple[str, ...],
    close_message: Any,
) -> dict[str, Any]:
    """The fields of a follow-up step, a fever case's or a screening follow-up's (which follows a
    person like a case): what was done (one of actions), the reading where the action takes one,
    the outcome (one of outcomes) when it closes, a note and who recorded it."""
    action = data.get("action")
    if not isinstance(action, str) or action not in actions:
        raise sync.Invalid(_("Choose what was done."))
    temperature = None
    if action in with_temperature:
        # The gate's own reading rule (one decimal, "37,5" read as 37.5, NaN refused).
        temperature = records.checked(data, [TEMPERATURE])["temperature"]
    outcome = data.get("outcome") or ""
    if action != "close":
        outcome = ""
    elif not isinstance(outcome, str) or outcome not in outcomes:
        raise sync.Invalid(str(close_message))
    texts = records.checked(data, (records.NOTE, records.AUTHOR))
    return {"action": action, "temperature": temperature, "outcome": outcome, **texts}


def record_kinds(config: Mapping[str, Any]) -> list[sync.RecordKind]:
    """The case_action kind, and the correction kind (corrections.kind) with what it does here:
    a correction may open, change or end a fever case, whose kept state is then made again,
    and it moves the dashboard's counts of its entry (gate/counts.py)."""
    moved = counts.after_corrections(config["TIMEZONE"])

    def corrected(conn: db.Connection, rows: list[dict[str, Any]]) -> None:
        moved(conn, rows)
        after_corrections(conn, rows)

    return [
        records.kind("case_action", "case_actions", validate, COLUMNS, after_write=after_actions),
        replace(corrections.kind(), after_write=corrected),
    ]


def wire(entry_uuid: str, author: str, action: str, uuid: str | None = None, **data: Any) -> dict:
    """A new case action record, made here now, ready for records.save. uuid: the form's
    (stored(): a form sent twice is one step), else a new one."""
    return records.new(
        "case_action",
        {"entry_uuid": entry_uuid, "action": action, "author": author, **data},
        uuid=uuid,
    )


def stored(conn: sqlite3.Connection, uuid: str, entry_uuid: str) -> bool:
    """Whether a step with this uuid, of this case, is stored (a form sent twice)."""
    return (
        conn.execute(
            "SELECT 1 FROM case_actions WHERE uuid = ? AND entry_uuid = ?", (uuid, entry_uuid)
        ).fetchone()
        is not None
    )


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def state(entry: Mapping[str, Any], actions: list[Mapping[str, Any]], now: datetime) -> dict:
    """A case's derived state from its entry and its actions (in recorded order)."""
    ack = next((a for a in actions if a["action"] == "acknowledge"), None)
    closing = None
    for a in actions:
        if a["action"] == "close":
            closing = a
        elif a["action"] == "reopen":
            closing = None
    opened = _parse(entry["recorded_at"])
    end = _parse(closing["recorded_at"]) if closing else now
    age = max(end - opened, timedelta(0))
    isolated = any(a["action"] == "home_isolation" for a in actions)
    return {
        "entry_uuid": entry["uuid"],
        "acknowledged_by": ack["author"] if ack else "",
        "acknowledged_at": ack["recorded_at"] if ack else "",
        "closed": closing is not None,
        "closed_at": closing["recorded_at"] if closing else "",
        "closed_by": closing["author"] if closing else "",
        "outcome": closing["outcome"] if closing else "",
        "age": age,
        "age_hours": int(age.total_seconds() // 3600),
        "overdue": closing is None and age > OVERDUE,
        "isolated": isolated,
        "last_temperature": next(
            (a["temperature"] for a in reversed(actions) if a["temperature"] is not None), None
        ),
    }


# Home isolation means the temperature is checked twice a day.
CHECKS_PER_DAY = 2


def checks_on(actions: list[Mapping[str, Any]], day_start: str, day_end: str) -> int:
    """How many temperature checks were recorded in [day_start, day_end) (UTC timestamps)."""
    return sum(
        1 for a in actions if a["action"] == "check" and day_start <= a["recorded_at"] < day_end
    )


def actions_for(conn: sqlite3.Connection, entry_uuid: str) -> list[sqlite3.Row]:
    """A case's actions in the order they were recorded."""
    return _actions_of(conn, [entry_uuid]).get(entry_uuid, [])


def _actions_of(conn: sqlite3.Connection, uuids: list[str]) -> dict[str, list[sqlite3.Row]]:
    """entry uuid -> its case actions in the order they were recorded."""
    found: dict[str, list[sqlite3.Row]] = {}
    for chunk in db.chunks(uuids, CHUNK):
        for a in conn.execute(
            "SELECT * FROM case_actions"  # noqa: S608 -- marks
            f" WHERE {db.in_list('entry_uuid', chunk)} ORDER BY recorded_at, id",
            chunk,
        ):
            found.setdefault(a["entry_uuid"], []).append(a)
    return found


# The entries that may be fever cases: at the gate (through the partial index entries_fever,
# its condition written out exactly) or corrected up to a fever.
def _fever_ids(conn: db.Connection) -> str:
    corrected = db.json_number(conn, "c.changes", "temperature")
    return (
        f"SELECT id FROM entries WHERE {rules.FEVER_SQL}"  # noqa: S608 -- constants of the code
        " UNION SELECT f.id FROM corrections c JOIN entries f ON f.uuid = c.entry_uuid"
        f" WHERE {corrected} >= {rules.FEVER_AT}"
    )


STATUSES = {
    "open": _l("Open"),
    "unacknowledged": _l("Not acknowledged"),
    "overdue": _l("Open too long"),
    "closed": _l("Closed"),
    "all": _l("All"),
}


def listing(
    conn: sqlite3.Connection,
    site_ids: list[str] | None,
    now: datetime,
    status: str = "open",
    site: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 500,
) -> list[dict]:
    """Fever cases in scope, oldest first, each the entry's current value plus its state.

    site_ids None means every site. A voided entry, or one whose temperature was corrected
    below the fever threshold, has no case; one corrected up to a fever has one.
    """
    # Two index-friendly sets instead of one OR (which would scan every entry): fevers at the
    # gate through the partial index entries_fever (its condition written out exactly), and
    # entries whose temperature was corrected up to a fever.
    sql = (
        "SELECT e.*, s.name AS site_name FROM entries e JOIN sites s ON s.id = e.site_id"  # noqa: S608 -- constant SQL
        f" WHERE e.id IN ({_fever_ids(conn)})"
    )
    params: list[Any] = []
    if site_ids is not None:
        sql += " AND " + db.in_list("e.site_id", site_ids)
        params += site_ids
    if site:
        sql += " AND e.site_id = ?"
        params.append(site)
    if since:
        sql += " AND e.recorded_at >= ?"
        params.append(since)
    if until:
        sql += " AND e.recorded_at < ?"
        params.append(until)
    sql += " ORDER BY e.recorded_at, e.id"
    rows = conn.execute(sql, params).fetchall()
    uuids = [r["uuid"] for r in rows]
    fixes = corrections.for_entries(conn, uuids)
    acts = _actions_of(conn, uuids)
    out = []
    for row in rows:
        entry = corrections.current(row, fixes.get(row["uuid"], []))
        if not is_case(entry):
            continue
        case = state(entry, acts.get(row["uuid"], []), now)
        keep = {
            "open": not case["closed"],
            "unacknowledged": not case["closed"] and not case["acknowledged_at"],
            "overdue": case["overdue"],
            "closed": case["closed"],
            "all": True,
        }.get(status, True)
        if keep:
            out.append({"entry": entry, **case})
        if len(out) >= limit:
            break
    return out


# ---- each case's state, kept (what open_count reads) ------------------------------------
# The dashboard's open cases were counted from every fever of the retention with its actions,
# a time that grows with the entries kept. Instead a row per case (table fever_cases)
# is made again whenever a record it comes from is stored: a fever entry (or any entry a
# correction already names), a correction, a case action. The purge deletes it with its
# entry. `fieldapp init` makes the rows of a database that has none yet (ensure).

MADE_SETTING = "fever_cases_made"


def refresh(
    conn: db.Connection,
    entry_uuids: Iterable[str],
    *,
    given: Mapping[str, Mapping[str, Any]] | None = None,
    waiting: bool = False,
) -> None:
    """Make the kept state of these entries' cases again from their entry, corrections and
    actions (in the write transaction that stored one of them): a row if the entry is a case
    now, none otherwise (no entry yet, voided, corrected below a fever).

    given: the entries themselves, just stored (not read again, and no row to replace).
    waiting: note the entries not stored yet in fever_cases_waiting (a correction's: when
    its entry comes, the correction may make it a case).
    """
    uuids = sorted(set(entry_uuids))
    for chunk in db.chunks(uuids, CHUNK):
        inside = db.in_list("uuid", chunk)
        if given is None:
            entries = conn.execute(
                f"SELECT uuid, recorded_at, site_id, temperature FROM entries WHERE {inside}",  # noqa: S608 -- marks
                chunk,
            ).fetchall()
        else:
            entries = [given[u] for u in chunk]
        if waiting and len(entries) < len(chunk):
            stored = {e["uuid"] for e in entries}
            conn.executemany(
                "INSERT INTO fever_cases_waiting (uuid) VALUES (?) ON CONFLICT DO NOTHING",
                [(u,) for u in chunk if u not in stored],
            )
        fixes = corrections.for_entries(conn, [e["uuid"] for e in entries])
        acts = _actions_of(conn, chunk) if entries else {}
        rows = []
        now = sync.utcnow()
        for e in entries:
            value = corrections.current(e, fixes.get(e["uuid"], []))
            if not is_case(value):
                continue
            case = state(e, acts.get(e["uuid"], []), now)  # closed and acknowledged: its rule
            closed, ack = case["closed"], bool(case["acknowledged_at"])
            rows.append((e["uuid"], e["site_id"], e["recorded_at"], int(closed), int(ack)))
        if given is None:
            conn.execute(f"DELETE FROM fever_cases WHERE {inside}", chunk)  # noqa: S608 -- marks
        if rows:
            sync.store.insert_rows(
                conn,
                "INSERT INTO fever_cases (uuid, site_id, recorded_at, closed, acknowledged)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )


def take_waiting(conn: db.Connection, rows: list[dict[str, Any]]) -> list[str]:
    """The uuids of the entries just stored (rows) that a correction stored before them names,
    no longer waited for: their case, and their count on the dashboard (gate/counts.py), come
    from their current value. Looked for only when a correction is waiting for its entry,
    which is seldom: one indexed query per batch otherwise (a look-up of a batch's uuids
    would cost every push)."""
    fixed: list[str] = []
    if conn.execute("SELECT 1 FROM fever_cases_waiting LIMIT 1").fetchone() is None:
        return fixed
    named = [r["uuid"] for r in rows]
    for chunk in db.chunks(named, CHUNK):
        fixed += [
            r[0]
            for r in conn.execute(
                f"SELECT uuid FROM fever_cases_waiting WHERE {db.in_list('uuid', chunk)}",  # noqa: S608 -- marks
                chunk,
            )
        ]
    for chunk in db.chunks(fixed, CHUNK):
        conn.execute(
            f"DELETE FROM fever_cases_waiting WHERE {db.in_list('uuid', chunk)}",  # noqa: S608 -- marks
            chunk,
        )
    return fixed


def after_entries(
    conn: db.Connection, rows: list[dict[str, Any]], waited: list[str] | None = None
) -> None:
    """The entry kind's share: the batch's fevers, and the entries a correction stored before
    them names (waited: take_waiting's, looked up here when not given): it may have made one
    a fever."""
    fevers = [r["uuid"] for r in rows if rules.is_fever(float(r["temperature"]))]
    fixed = take_waiting(conn, rows) if waited is None else list(waited)
    if fevers or fixed:
        by_uuid = {r["uuid"]: r for r in rows}
        refresh(conn, fevers + fixed, given=by_uuid)


def after_corrections(conn: db.Connection, rows: list[dict[str, Any]]) -> None:
    """Corrections' share: the cases of the entries they name (noted if not stored yet)."""
    refresh(conn, [r["entry_uuid"] for r in rows], waiting=True)


def after_actions(conn: db.Connection, rows: list[dict[str, Any]]) -> None:
    """Case actions' share: the cases of the entries they name."""
    refresh(conn, [r["entry_uuid"] for r in rows])


def after_purge(conn: db.Connection) -> None:
    """Forget entries waited for by corrections the purge has deleted (they never come)."""
    conn.execute(
        "DELETE FROM fever_cases_waiting WHERE uuid NOT IN (SELECT entry_uuid FROM corrections)"
    )


def forget(conn: db.Connection, entry_uuids: list[str]) -> None:
    """The purge's share: the cases of entries it is deleting (in the same transaction)."""
    if entry_uuids:
        conn.execute(
            f"DELETE FROM fever_cases WHERE {db.in_list('uuid', entry_uuids)}",  # noqa: S608 -- marks
            entry_uuids,
        )


def made(conn: db.Connection) -> bool:
    """Whether the kept states were made (else open_count reads the records themselves)."""
    row = conn.execute("SELECT value FROM settings WHERE name = ?", (MADE_SETTING,)).fetchone()
    return row is not None


def ensure(conn: db.Connection) -> int | None:
    """Make the kept states from the records if they were never made (`fieldapp init`);
    how many cases, or None when they were made already."""
    if made(conn):
        return None
    with db.transaction(conn):
        conn.execute("DELETE FROM fever_cases")
        conn.execute("DELETE FROM fever_cases_waiting")
        conn.execute(
            "INSERT INTO fever_cases_waiting (uuid) SELECT DISTINCT entry_uuid FROM corrections"
            " WHERE entry_uuid NOT IN (SELECT uuid FROM entries)"
        )
        uuids = [
            r[0]
            for r in conn.execute(
                f"SELECT uuid FROM entries WHERE id IN ({_fever_ids(conn)})"  # noqa: S608 -- constant
            )
        ]
        refresh(conn, uuids)
        conn.execute("INSERT INTO settings (name, value) VALUES (?, '1')", (MADE_SETTING,))
    return conn.execute("SELECT count(*) FROM fever_cases").fetchone()[0]


def open_count(conn: sqlite3.Connection, site_ids: list[str] | None, now: datetime) -> dict:
    """How many cases in scope are open, and of those how many overdue or unacknowledged:
    the same answer as counting listing(..., "open"), from the kept states."""
    if not made(conn):
        return count_open(conn, site_ids, now)
    sql = (
        "SELECT count(*), count(*) FILTER (WHERE recorded_at < ?),"
        " count(*) FILTER (WHERE acknowledged = 0) FROM fever_cases WHERE closed = 0"
    )
    params: list[Any] = [iso(now - OVERDUE)]
    if site_ids is not None:
        sql += " AND " + db.in_list("site_id", site_ids)
        params += site_ids
    n, overdue, unacknowledged = conn.execute(sql, params).fetchone()
    return {"open": n, "overdue": overdue, "unacknowledged": unacknowledged}


def count_open(conn: sqlite3.Connection, site_ids: list[str] | None, now: datetime) -> dict:
    """open_count's answer from the entries, corrections and actions themselves (before the
    states are made, and what the tests hold the kept states against).

    Each case's state comes from indexed subqueries in one statement; only corrected entries
    take the slow path.
    """
    sql = (
        "SELECT e.uuid, e.recorded_at,"  # noqa: S608 -- constant SQL
        " EXISTS (SELECT 1 FROM case_actions a WHERE a.entry_uuid = e.uuid"
        "  AND a.action = 'acknowledge') AS ack,"
        " (SELECT a.action FROM case_actions a WHERE a.entry_uuid = e.uuid"
        "  AND a.action IN ('close', 'reopen') ORDER BY a.recorded_at DESC, a.id DESC LIMIT 1)"
        "  AS last,"
        " EXISTS (SELECT 1 FROM corrections c WHERE c.entry_uuid = e.uuid) AS fixed"
        f" FROM entries e WHERE e.id IN ({_fever_ids(conn)})"
    )
    params: list[Any] = []
    if site_ids is not None:
        sql += " AND " + db.in_list("e.site_id", site_ids)
        params += site_ids
    overdue_before = iso(now - OVERDUE)
    rows = conn.execute(sql, params).fetchall()
    fixed = [row for row in rows if row["fixed"]]
    fixes = corrections.for_entries(conn, [r["uuid"] for r in fixed]) if fixed else {}
    counts = {"open": 0, "overdue": 0, "unacknowledged": 0}
    for row in rows:
        if row["fixed"]:  # corrected: a case only if still a fever and not void
            entry = conn.execute(
                "SELECT uuid, recorded_at, temperature FROM entries WHERE uuid = ?", (row["uuid"],)
            ).fetchone()
            value = corrections.current(entry, fixes.get(row["uuid"], []))
            if not is_case(value):
                continue
        if row["last"] == "close":
            continue
        counts["open"] += 1
        counts["overdue"] += row["recorded_at"] < overdue_before
        counts["unacknowledged"] += not row["ack"]
    return counts
