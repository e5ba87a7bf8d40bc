"""Counts of the entries per site and local day (and per local hour), kept as they are stored
and corrected.

The dashboard shows the day's ins, outs, fevers and travel flags per site and the entries per
hour. Counting them from the entries reads the whole day each time the page refreshes, a time
linear in the day's entries (bench/NOTES.md: the console at 10,000,000 entries). So the
entry kind's after_write moves these counts in the batch's write transaction (a batch is
summed in Python first: a few rows upserted per batch), the purge takes its entries out of them
in the transaction that deletes them, and the dashboard reads a row per site, not the day's
entries (with 24 columns of the entries per hour, so that the hour chart of any scope is a sum
over the same rows).

What a row counts is what count_day counts from the entries and their corrections (the tests
hold the kept counts against it): each entry's current value (console/corrections.py
current(): the original with its corrections applied in recorded order), a voided entry not
at all; a fever is temperature ≥ rules.FEVER_AT. So a correction's after_write moves the
counts of the entries it names, by the tally of their value after it less the tally of their
value before it; an entry stored after a correction of it (sync order is not guaranteed: the
correction's entry is then noted as waited for, console/cases.py) is counted at its current
value; the purge takes away what was counted. The day is the local day of recorded_at in the
instance's TIMEZONE; the hour is the local hour at the start of the entry's UTC hour (a zone
whose offset is not whole hours counts an hour's entries at the local hour that hour starts
in, as the dashboard always has).

The counts are derived: never synced, copied with the rest by `fieldapp db copy` and the
backups, and made again from the entries and corrections (rebuild) by `fieldapp init` when the
zone they were made in (the setting entry_counts_zone) is not the configured one: an older
database (schema/0011 removes the setting: they counted entries as recorded), or a TIMEZONE
changed. Until then the dashboard counts from the entries (ready()).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from fieldapp import days, db, rules
from fieldapp.console import corrections
from sync.store import insert_rows, iso

# The settings row that says in which zone the kept counts were made.
ZONE_SETTING = "entry_counts_zone"


@lru_cache(maxsize=4096)
def _hour_of(utc_hour: str, tz: ZoneInfo) -> int:
    """The local hour a UTC hour ('2026-12-05T16') is counted at: where it starts."""
    return days.local(utc_hour + ":00:00.000Z", tz).hour


@lru_cache(maxsize=65536)
def _day_of(utc_minute: str, tz: ZoneInfo) -> str:
    """The local day of a UTC minute ('2026-12-05T16:42'): zones differ by whole minutes."""
    return days.local(utc_minute + ":00.000Z", tz).date().isoformat()


def key(recorded_at: str, tz: ZoneInfo) -> tuple[str, int]:
    """The (local day, hour) an entry recorded at that stored timestamp is counted in."""
    return _day_of(recorded_at[:16], tz), _hour_of(recorded_at[:13], tz)


HOURS = tuple(f"h{h:02d}" for h in range(24))
COLUMNS = ("ins", "outs", "fevers", "travels", *HOURS)  # a row's counts, in this order


# (day, hour) of the UTC minutes seen lately, per zone: a batch's entries share a few minutes,
# and a dict look-up per entry is what the push can afford (two cached calls cost twice that).
_SEEN: dict[ZoneInfo, dict[str, tuple[str, int]]] = {}


def tally(rows: Iterable[Mapping[str, Any]], tz: ZoneInfo) -> dict[tuple[str, str], list[int]]:
    """Counts of entries (recorded_at, site_id, direction, temperature, travel) per
    (day, site): ins, outs, fevers, travels and the entries of each hour (COLUMNS)."""
    seen = _SEEN.setdefault(tz, {})
    if len(seen) > 100_000:
        seen.clear()
    out: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        at = r["recorded_at"]
        found = seen.get(at[:16])
        if found is None:
            found = seen[at[:16]] = key(at, tz)
        k = (found[0], r["site_id"])
        c = out.get(k)
        if c is None:
            c = out[k] = [0] * len(COLUMNS)
        c[0 if r["direction"] == "in" else 1] += 1
        c[2] += rules.is_fever(float(r["temperature"]))
        c[3] += bool(r["travel"])
        c[4 + found[1]] += 1
    return out


_ADD = (
    f"INSERT INTO entry_counts (day, site_id, {', '.join(COLUMNS)})"  # noqa: S608 -- names from code
    f" VALUES ({', '.join('?' * (2 + len(COLUMNS)))}) ON CONFLICT (day, site_id) DO UPDATE SET "
    + ", ".join(f"{c} = entry_counts.{c} + excluded.{c}" for c in COLUMNS)
)


def add(conn: db.Connection, counts: Mapping[tuple[str, str], list[int]], sign: int = 1) -> None:
    """Add (or, sign -1, take away) counts to the kept ones; a row left at zero goes."""
    if not counts:
        return
    insert_rows(conn, _ADD, [(*k, *(sign * n for n in c)) for k, c in sorted(counts.items())])
    if sign < 0 or any(n < 0 for c in counts.values() for n in c):
        for day in sorted({k[0] for k in counts}):
            conn.execute("DELETE FROM entry_counts WHERE day = ? AND ins = 0 AND outs = 0", (day,))


def difference(
    after: Mapping[tuple[str, str], list[int]], before: Mapping[tuple[str, str], list[int]]
) -> dict[tuple[str, str], list[int]]:
    """after − before, per (day, site), the keys whose counts do not change left out."""
    out = {}
    for k in sorted(set(after) | set(before)):
        zero = [0] * len(COLUMNS)
        d = [a - b for a, b in zip(after.get(k, zero), before.get(k, zero), strict=True)]
        if any(d):
            out[k] = d
    return out


def current_values(
    rows: Iterable[Mapping[str, Any]],
    fixes: Mapping[str, list[Any]],
    leave_out: frozenset[str] = frozenset(),
) -> list[Mapping[str, Any]]:
    """The rows (entries with uuid and the READ columns) at their current value, their
    corrections (fixes: corrections.for_entries) applied but those whose uuid is in leave_out;
    the entries that are void then left out: what tally() counts."""
    out: list[Mapping[str, Any]] = []
    for r in rows:
        found = fixes.get(r["uuid"])
        if not found:
            out.append(r)
            continue
        value = corrections.current(r, [c for c in found if c["uuid"] not in leave_out])
        if not value["void"]:
            out.append(value)
    return out


def after_write(
    tz_name: str,
) -> Callable[[db.Connection, list[dict[str, Any]], Collection[str]], None]:
    """The entry kind's after_write: count the entries a batch just stored. waited: those of
    them a correction stored before them names (console/cases.py take_waiting, seldom any):
    counted at their current value."""
    tz = days.zone(tz_name)

    def counted(
        conn: db.Connection, rows: list[dict[str, Any]], waited: Collection[str] = ()
    ) -> None:
        if waited:
            rows = current_values(rows, corrections.for_entries(conn, sorted(waited)))
        add(conn, tally(rows, tz))

    return counted


def after_corrections(tz_name: str) -> Callable[[db.Connection, list[dict[str, Any]]], None]:
    """The correction kind's share (with the cases', console/cases.py): the counts of the
    stored entries that the corrections just stored name move by the tally of their value
    with these corrections less the tally without them (an entry not stored yet is counted
    at its current value when it comes)."""
    tz = days.zone(tz_name)

    def moved(conn: db.Connection, rows: list[dict[str, Any]]) -> None:
        new = frozenset(r["uuid"] for r in rows)
        named = sorted({r["entry_uuid"] for r in rows})
        for chunk in db.chunks(named):
            entries = conn.execute(
                f"SELECT uuid, {READ} FROM entries WHERE {db.in_list('uuid', chunk)}",  # noqa: S608 -- names from code
                chunk,
            ).fetchall()
            if not entries:
                continue
            fixes = corrections.for_entries(conn, [e["uuid"] for e in entries])
            before = tally(current_values(entries, fixes, leave_out=new), tz)
            after = tally(current_values(entries, fixes), tz)
            add(conn, difference(after, before))

    return moved


READ = "recorded_at, site_id, direction, temperature, travel"  # what tally() reads


def _corrected_of_day(
    conn: db.Connection, start: str, end: str, scope: str = "", params: Iterable[Any] = ()
) -> list[Any]:
    """The entries recorded in [start, end) (and scope: SQL on site_id) that corrections
    name (uuid and READ)."""
    where = f"recorded_at >= ? AND recorded_at < ?{scope}"
    return corrections.corrected_entries(conn, READ, where, (start, end, *params))


def _correction_of(conn: db.Connection, rows: list[Any], tz: ZoneInfo) -> dict:
    """What corrections change in the counts of these entries (as recorded): the tally of
    their current values less the tally of the values they were recorded with."""
    if not rows:
        return {}
    fixes = corrections.for_entries(conn, [r["uuid"] for r in rows])
    return difference(tally(current_values(rows, fixes), tz), tally(rows, tz))


def forget(
    conn: db.Connection, rows: Iterable[Mapping[str, Any]], tz_name: str, horizon: str
) -> None:
    """Take entries about to be deleted (a batch of the purge: uuid and READ) out of
    the counts of the horizon's own day, the one the purge leaves partly; call it in the
    transaction that deletes them. The days wholly before it go whole (forget_days) rather
    than an entry at a time: a batch of 2,000 entries of a day spans most sites, so an upsert
    of as many rows, for days no page shows (past the retention)."""
    tz = days.zone(tz_name)
    start = days.bounds(days.local(horizon, tz).date(), tz)[0]
    counted = [r for r in rows if r["recorded_at"] >= start]
    # As they were counted: at their current value (their corrections go in this transaction
    # too, after this).
    fixes = corrections.for_entries(conn, [r["uuid"] for r in counted]) if counted else {}
    add(conn, tally(current_values(counted, fixes), tz), sign=-1)


def forget_days(conn: db.Connection, tz_name: str, horizon: str) -> None:
    """The counts of the local days wholly before the purge's horizon (once their entries
    are gone; a purge cut short leaves them to the next, with the entries)."""
    first = days.local(horizon, days.zone(tz_name)).date().isoformat()
    conn.execute("DELETE FROM entry_counts WHERE day < ?", (first,))


def ready(conn: db.Connection, tz_name: str) -> bool:
    """Whether the kept counts were made in this zone (else: count from the entries)."""
    row = conn.execute("SELECT value FROM settings WHERE name = ?", (ZONE_SETTING,)).fetchone()
    return row is not None and row[0] == days.zone(tz_name).key


def _rebuild_day(conn: db.Connection, day: date, tz: ZoneInfo) -> None:
    """Count a local day again from its entries, in SQL: each local hour's column counts the
    entries of the UTC hours that start in it (found here, by the same rule as key()); then
    the corrected entries (few) move them as their corrections do."""
    start, end = days.bounds(day, tz)
    at = datetime.fromisoformat(start.replace("Z", "+00:00")).replace(minute=0, second=0)
    utc_hours: list[list[str]] = [[] for _ in range(24)]
    while iso(at) < end:
        utc = iso(at)[:13]
        utc_hours[_hour_of(utc, tz)].append(utc)
        at += timedelta(hours=1)
    per_hour = [
        f"count(*) FILTER (WHERE substr(recorded_at, 1, 13) IN ({', '.join('?' * len(u))}))"
        if u
        else "0"  # an hour the day skips (a DST change)
        for u in utc_hours
    ]
    conn.execute("DELETE FROM entry_counts WHERE day = ?", (day.isoformat(),))
    conn.execute(
        f"INSERT INTO entry_counts (day, site_id, {', '.join(COLUMNS)})"  # noqa: S608 -- constants
        " SELECT ?, site_id, count(*) FILTER (WHERE direction = 'in'),"
        f" count(*) FILTER (WHERE direction = 'out'), count(*) FILTER (WHERE {rules.FEVER_SQL}),"
        f" sum(travel), {', '.join(per_hour)}"
        " FROM entries INDEXED BY entries_day WHERE recorded_at >= ? AND recorded_at < ?"
        " GROUP BY site_id",
        (day.isoformat(), *(u for hour in utc_hours for u in hour), start, end),
    )
    # Those counts are of the entries as recorded: the corrected ones move them.
    add(conn, _correction_of(conn, _corrected_of_day(conn, start, end), tz))


def rebuild(conn: db.Connection, tz_name: str) -> int:
    """Count every entry again in this zone (a day per write transaction, so pushes wait for
    one day at most; until the last, ready() is false and the dashboard counts the entries
    itself); the days counted."""
    tz = days.zone(tz_name)
    with db.transaction(conn):
        conn.execute("DELETE FROM settings WHERE name = ?", (ZONE_SETTING,))
        first, last = conn.execute(
            "SELECT min(recorded_at), max(recorded_at) FROM entries"
        ).fetchone()
        if first is None:
            conn.execute("DELETE FROM entry_counts")
            day_list: list[date] = []
        else:
            a = days.local(first, tz).date()
            b = days.local(last, tz).date()
            day_list = [a + timedelta(days=i) for i in range((b - a).days + 1)]
            conn.execute(
                "DELETE FROM entry_counts WHERE day < ? OR day > ?", (a.isoformat(), b.isoformat())
            )
    for day in day_list:
        with db.transaction(conn):
            _rebuild_day(conn, day, tz)
    with db.transaction(conn):
        conn.execute(
            "INSERT INTO settings (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (ZONE_SETTING, tz.key),
        )
    return len(day_list)


def ensure(conn: db.Connection, tz_name: str) -> int | None:
    """Rebuild the counts if they were not made in this zone (`fieldapp init`, a restore);
    the days counted, or None when they were ready."""
    return None if ready(conn, tz_name) else rebuild(conn, tz_name)


def blank() -> dict[str, int]:
    return {"in": 0, "out": 0, "fevers": 0, "travels": 0}


def read_day(
    conn: db.Connection, day: date, site_ids: list[str] | None
) -> tuple[dict[str, dict[str, int]], list[int]]:
    """A local day's kept counts: per site {in, out, fevers, travels}, and entries per hour."""
    scope, params = "", [day.isoformat()]
    if site_ids is not None:
        scope = " AND " + db.in_list("site_id", site_ids)
        params += site_ids
    # int(): PostgreSQL's sum of a BIGINT is a numeric (a Decimal here).
    per_site = {
        row[0]: dict(zip(("in", "out", "fevers", "travels"), map(int, row[1:]), strict=True))
        for row in conn.execute(
            f"SELECT site_id, ins, outs, fevers, travels FROM entry_counts WHERE day = ?{scope}",  # noqa: S608
            params,
        )
    }
    sums = ", ".join(f"sum({h})" for h in HOURS)
    found = conn.execute(
        f"SELECT {sums} FROM entry_counts WHERE day = ?{scope}",  # noqa: S608 -- names from code
        params,
    ).fetchone()
    hours = [int(n or 0) for n in found]
    return per_site, hours


def count_day(
    conn: db.Connection, day: date, tz_name: str, site_ids: list[str] | None
) -> tuple[dict[str, dict[str, int]], list[int]]:
    """The same figures as read_day, counted from the entries of the day and their
    corrections (before the counts are ready, and what the tests hold the kept counts
    against)."""
    tz = days.zone(tz_name)
    start, end = days.bounds(day, tz)
    scope, params = "", [start, end]
    if site_ids is not None:
        scope = " AND " + db.in_list("site_id", site_ids)
        params += site_ids
    # Two passes over the covering index entries_day, named because the planner otherwise
    # prefers entries_site_time and reads the table (5x slower at 50,000 entries a day).
    per_site: dict[str, dict[str, int]] = {}
    hours = [0] * 24
    where = " FROM entries INDEXED BY entries_day WHERE recorded_at >= ? AND recorded_at < ?"
    sql = (
        "SELECT site_id, direction, count(*) AS n,"
        f" count(*) FILTER (WHERE {rules.FEVER_SQL}) AS fevers, sum(travel) AS travels"
    )
    for row in conn.execute(sql + where + scope + " GROUP BY 1, 2", params):
        s = per_site.setdefault(row["site_id"], blank())
        s[row["direction"]] += row["n"]
        s["fevers"] += row["fevers"]
        s["travels"] += int(row["travels"])
    sql = "SELECT substr(recorded_at, 1, 13) AS hour, count(*) AS n"
    for row in conn.execute(sql + where + scope + " GROUP BY 1", params):
        hours[_hour_of(row["hour"], tz)] += row["n"]
    # Counted as recorded so far: the corrected entries (few) move the counts.
    fixed = _corrected_of_day(conn, start, end, scope, params[2:])
    for (_day, site_id), d in _correction_of(conn, fixed, tz).items():
        s = per_site.setdefault(site_id, blank())
        for name, n in zip(("in", "out", "fevers", "travels"), d, strict=False):
            s[name] += n
        for h in range(24):
            hours[h] += d[4 + h]
        if not s["in"] + s["out"]:  # every entry of the site voided: no row, as kept
            del per_site[site_id]
    return per_site, hours


def figures(
    conn: db.Connection, day: date, tz_name: str, site_ids: list[str] | None
) -> tuple[dict[str, dict[str, int]], list[int]]:
    """A local day's figures per site and per hour: kept, or counted when not ready."""
    if ready(conn, tz_name):
        return read_day(conn, day, site_ids)
    return count_day(conn, day, tz_name, site_ids)
