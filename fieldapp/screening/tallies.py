"""Counts of a day's answers per campaign and site, kept in the transaction that stores them.

A person's answer of a day is their latest (recorded_at, then uuid: the same choice on every
instance, whatever order the answers arrived in). Counting that from half a million answers
costs a city seconds on SQLite; so when a batch stores answers (the record kind's after_write),
the counts of the days and sites it touches are moved by what changed: a person counted for the
first time, or a person whose latest answer is now another one. The counts are derived: never
synced, rebuilt from the answers when a purge takes some away (rebuild), and the tests hold
them against counts made straight from the records.

A site's counts are a JSON object: "people" (screened), "added" (of them, people not on the
roster), "<column>:<value>" for each answer counted (questions.BREAKDOWN) and, for the summary
paragraph, "whereabouts/status:<w>:<s>" and "contact/status:<c>:<s>".
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from fieldapp import db
from fieldapp.screening import questions

# What the counts are made of: the answer's columns read for them.
READ = "uuid, recorded_at, site_id, person_id, added, " + ", ".join(
    column for column, _q, _labels in questions.BREAKDOWN
)
CHUNK = 500  # people asked for at a time (well under any engine's limit of parameters)


def keys(answer: Mapping[str, Any]) -> list[str]:
    """The counts one person's answer adds to (empty columns were not asked)."""
    out = [
        f"{column}:{answer[column]}"
        for column, _q, _labels in questions.BREAKDOWN
        if answer[column]
    ]
    status = answer["status"]
    if status:
        if answer["whereabouts"]:
            out.append(f"whereabouts/status:{answer['whereabouts']}:{status}")
        if answer["contact"]:
            out.append(f"contact/status:{answer['contact']}:{status}")
    return out


def latest(answers: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The answer in force among a person's answers (latest recorded, then greatest uuid)."""
    return max(answers, key=lambda a: (a["recorded_at"], a["uuid"]), default=None)


def count(
    answers: Iterable[Mapping[str, Any]], same: Mapping[str, str] | None = None
) -> dict[str, Counter]:
    """Counts per site of answers already narrowed to a window: each person once, by the
    answer in force (rebuild, one-off campaigns, and what the tests check the tallies by).
    same: person ids that are another's (someone added on site: the roster row made for them,
    coverage.joined), counted as that one."""
    same = same or {}
    by_person: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for a in answers:
        by_person[(a["site_id"], same.get(a["person_id"], a["person_id"]))].append(a)
    out: dict[str, Counter] = defaultdict(Counter)
    for (site_id, _person), found in by_person.items():
        a = latest(found)
        counts = out[site_id]
        counts["people"] += 1
        counts["added"] += bool(a["added"])
        counts.update(keys(a))
    return dict(out)


def after_write(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Move the counts by the answers a batch just stored (in its write transaction)."""
    new = {r["uuid"] for r in rows}
    touched: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for r in rows:
        touched[(r["campaign_id"], r["day"], r["site_id"])].add(r["person_id"])
    deltas: dict[tuple[str, str, str], Counter] = {}
    for (campaign_id, day, site_id), people in touched.items():
        found: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for chunk in db.chunks(sorted(people), CHUNK):
            for a in conn.execute(
                f"SELECT {READ} FROM screenings"  # noqa: S608 -- columns from code
                " WHERE campaign_id = ? AND day = ? AND site_id = ?"
                f" AND {db.in_list('person_id', chunk)}",
                (campaign_id, day, site_id, *chunk),
            ):
                found[a["person_id"]].append(a)
        delta: Counter = Counter()
        for answers in found.values():
            after = latest(answers)
            before = latest(a for a in answers if a["uuid"] not in new)
            if before is None:
                delta["people"] += 1
                delta["added"] += bool(after["added"])
                delta.update(keys(after))
            elif before["uuid"] != after["uuid"]:
                delta.subtract(keys(before))
                delta.update(keys(after))
        deltas[(campaign_id, day, site_id)] = delta
    _add(conn, deltas)


def _add(conn: sqlite3.Connection, deltas: dict[tuple[str, str, str], Counter]) -> None:
    """Add each (campaign, day, site)'s delta to its kept counts: read together and written
    together (a relayed batch holds the answers of many sites)."""
    by_day: dict[tuple[str, str], list[str]] = defaultdict(list)
    for campaign_id, day, site_id in deltas:
        by_day[(campaign_id, day)].append(site_id)
    held: dict[tuple[str, str, str], Counter] = {}
    for (campaign_id, day), site_ids in by_day.items():
        for chunk in db.chunks(site_ids, CHUNK):
            for site_id, counts in conn.execute(
                "SELECT site_id, counts FROM screening_tallies"  # noqa: S608 -- only marks
                f" WHERE campaign_id = ? AND day = ? AND {db.in_list('site_id', chunk)}",
                (campaign_id, day, *chunk),
            ):
                held[(campaign_id, day, site_id)] = Counter(json.loads(counts))
    for key, delta in deltas.items():
        held.setdefault(key, Counter()).update(delta)
    _store(conn, [(*key, counts) for key, counts in held.items()])


def _store(conn: sqlite3.Connection, rows: list[tuple[str, str, str, Counter]]) -> None:
    conn.executemany(
        "INSERT INTO screening_tallies (campaign_id, day, site_id, counts) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (campaign_id, day, site_id) DO UPDATE SET counts = excluded.counts",
        [
            (c, d, s, json.dumps({k: v for k, v in sorted(n.items()) if v}, separators=(",", ":")))
            for c, d, s, n in rows
        ],
    )


def _kept(
    conn: sqlite3.Connection, campaign_id: str, day: date, site_ids: Iterable[str] | None
) -> list[Any]:
    """(site_id, counts as JSON) of a campaign's day, for every site or only those."""
    sql = "SELECT site_id, counts FROM screening_tallies WHERE campaign_id = ? AND day = ?"
    if site_ids is None:
        return conn.execute(sql, (campaign_id, day.isoformat())).fetchall()
    ids, rows = list(site_ids), []
    for chunk in db.chunks(ids, CHUNK):
        rows += conn.execute(
            f"{sql} AND {db.in_list('site_id', chunk)}", (campaign_id, day.isoformat(), *chunk)
        ).fetchall()
    return rows


def read(
    conn: sqlite3.Connection, campaign_id: str, day: date, site_ids: Iterable[str] | None = None
) -> dict[str, Counter]:
    """The kept counts of a campaign's day per site (only those sites, if given)."""
    return {
        site_id: Counter(json.loads(c)) for site_id, c in _kept(conn, campaign_id, day, site_ids)
    }


def people(conn: sqlite3.Connection, campaign_id: str, day: date) -> dict[str, int]:
    """People screened on a campaign's day per site, from the kept counts (the roll-call's:
    without a Counter of every answer's breakdown per site)."""
    return {
        site_id: json.loads(c).get("people", 0)
        for site_id, c in _kept(conn, campaign_id, day, None)
    }


def answers_in(
    conn: sqlite3.Connection, campaign_id: str, first: date, last: date
) -> list[sqlite3.Row]:
    """Every answer of a campaign recorded for the days first..last (what count() reads)."""
    return conn.execute(
        f"SELECT {READ} FROM screenings"  # noqa: S608 -- columns from code
        " WHERE campaign_id = ? AND day >= ? AND day <= ?",
        (campaign_id, first.isoformat(), last.isoformat()),
    ).fetchall()


def rebuild(conn: sqlite3.Connection, campaign_id: str, day: str) -> None:
    """Count a campaign's day again from its answers (after a purge took some of them)."""
    conn.execute(
        "DELETE FROM screening_tallies WHERE campaign_id = ? AND day = ?", (campaign_id, day)
    )
    when = date.fromisoformat(day)
    counted = count(answers_in(conn, campaign_id, when, when))
    _store(conn, [(campaign_id, day, site_id, counts) for site_id, counts in counted.items()])
