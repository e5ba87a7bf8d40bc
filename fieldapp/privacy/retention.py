"""Retention: entries, and the records that point at them, are deleted after RETENTION_DAYS.

Every instance purges on its own (`fieldapp purge`, and once a day while `fieldapp serve` runs),
so a record is gone on every tier; sync answers `expired` to one older than the horizon that
arrives later (fieldapp.records.save), so a purge is never undone. Daily reports hold counts
only and are kept REPORT_RETENTION_DAYS. People taken off a roster are deleted RETENTION_DAYS
after, by the instance that owns the roster; the deletion flows down with the configuration
(gate/roster.py, purge_removed). connect() sets secure_delete, so deleted rows are
overwritten in the file; the WAL is checkpointed so its old pages do not keep them either.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask_babel import gettext as _

import sync
from fieldapp import audit, db, records, settings
from fieldapp.console import cases
from fieldapp.days import today as local_today
from fieldapp.db import connect, transaction
from fieldapp.gate import counts, roster
from sync.store import iso

log = logging.getLogger(__name__)

BACKGROUND_EVERY_SECONDS = 3600  # checks hourly, purges once per local day
BATCH = 2000  # entries (and what points at them) deleted per write transaction
SWEEP = 20000  # change log lines looked at per write transaction
CHECKPOINT_SECONDS = 30.0  # how long the purge waits for readers to let the WAL be emptied


def check_report_days(value: Any) -> int:
    """REPORT_RETENTION_DAYS as a whole number of days in settings.REPORT_RETENTION_RANGE."""
    low, high = settings.REPORT_RETENTION_RANGE
    try:
        days = int(str(value).strip())
    except ValueError:
        days = None
    if days is None or not low <= days <= high:
        raise ValueError(
            _(
                "Daily reports must be kept from %(min)d to %(max)d days, not %(value)s",
                min=low,
                max=high,
                value=value,
            )
        )
    return days


@dataclass(frozen=True)
class Purge:
    """What one purge deleted."""

    horizon: str
    report_horizon: str
    entries: int
    dependents: int
    reports: int
    rejects: int
    others: int = 0  # records that are not entries nor point at one (screening answers…)
    roster: int = 0  # people taken off a roster before the horizon
    lingering: bool = False  # the WAL could not be emptied: old pages may still be in the files


def dependent_tables(conn: db.Connection) -> list[str]:
    """Tables that point at entries by an entry_uuid column (corrections, case actions…)."""
    return [t for t in db.tables(conn) if "entry_uuid" in db.columns(conn, t)]


def _standalone_tables(registry: sync.Registry, dependents) -> list[str]:
    """Tables of record kinds that expire by their own time of recording: neither the
    entries, nor what points at an entry, nor what is kept longer (daily reports)."""
    return [
        k.table
        for k in registry
        if k.expires and k.table != "entries" and k.table not in dependents
    ]


def purge(
    conn: sqlite3.Connection,
    *,
    days: int,
    report_days: int,
    tz_name: str,
    registry: sync.Registry,
    now: datetime | None = None,
    trigger: str = "cli",
    others: Sequence[Callable[[db.Connection, str], int]] = (),
    owns_roster: bool = False,
) -> Purge:
    """Delete what is past the horizons and log it; return the counts. Entries go a batch at a
    time; a purge cut short is finished by the next one (it logs only when done). others purge
    the records that are not entries nor point at one (each deletes what was recorded before
    the horizon and says how many rows went). owns_roster: this instance has no upstream, so
    it deletes the people taken off a roster before the horizon (a downstream deletes them
    when its pull says so)."""
    days = settings.check_retention_days(days)
    report_days = check_report_days(report_days)
    now = now or datetime.now(UTC)
    horizon = sync.horizon_for(days, now)
    report_horizon = (local_today(tz_name, now) - timedelta(days=report_days)).isoformat()
    tables = {t: set(db.columns(conn, t)) for t in dependent_tables(conn)}
    entries = dependents = 0
    # A batch of the oldest entries at a time, each batch with what points at it, in a write
    # transaction of its own: the pushes and the console wait for one batch at the most.
    while True:
        with transaction(conn):
            batch = conn.execute(
                f"SELECT uuid, {counts.READ} FROM entries WHERE recorded_at < ?"  # noqa: S608 -- names from code
                " ORDER BY recorded_at LIMIT ?",
                (horizon, BATCH),
            ).fetchall()
            if not batch:
                break
            uuids = [row[0] for row in batch]
            marks = ",".join("?" * len(uuids))
            # The dashboard's figures lose these entries in the transaction that deletes them.
            counts.forget(conn, batch, tz_name, horizon)
            cases.forget(conn, uuids)
            for table in tables:
                dependents += conn.execute(
                    f"DELETE FROM {table} WHERE entry_uuid IN ({marks})",  # noqa: S608 -- names from the schema
                    uuids,
                ).rowcount
            entries += conn.execute(f"DELETE FROM entries WHERE uuid IN ({marks})", uuids).rowcount  # noqa: S608
    purged_others = sum(purge_other(conn, horizon) for purge_other in others)
    with transaction(conn):
        # A record that points at an entry already gone (it arrived after its entry was
        # purged, or by another path): an orphan past the horizon is certain to have lost it.
        for table, columns in tables.items():
            if "recorded_at" not in columns:
                continue
            doomed = "recorded_at < ? AND entry_uuid NOT IN (SELECT uuid FROM entries)"
            dependents += conn.execute(
                f"DELETE FROM {table} WHERE {doomed}",  # noqa: S608 -- names from the schema
                (horizon,),
            ).rowcount
        cases.after_purge(conn)
        counts.forget_days(conn, tz_name, horizon)
        # Records that stand alone and expire with the entries (visitors' registrations).
        for table in _standalone_tables(registry, tables):
            dependents += conn.execute(
                f"DELETE FROM {table} WHERE recorded_at < ?",  # noqa: S608 -- table from code
                (horizon,),
            ).rowcount
        old_reports = conn.execute(
            "DELETE FROM daily_reports WHERE day < ?", (report_horizon,)
        ).rowcount
        # Refused records keep their body for review; bodies can hold personal data too.
        rejects = conn.execute(
            "DELETE FROM sync_rejects WHERE received_at < ?", (horizon,)
        ).rowcount
        removed = roster.purge_removed(conn, horizon) if owns_roster else 0
    _sweep_changes(conn, registry)
    with transaction(conn):
        result = Purge(
            horizon,
            report_horizon,
            entries,
            dependents,
            old_reports,
            rejects,
            purged_others,
            removed,
        )
        # The log's columns are the result's own names (lingering is known only afterwards).
        counted = {k: v for k, v in asdict(result).items() if k != "lingering"}
        conn.execute(
            f"INSERT INTO purge_log (ran_at, local_day, {', '.join(counted)}, trigger)"  # noqa: S608 -- names from Purge
            f" VALUES ({', '.join('?' * (len(counted) + 3))})",
            (iso(now), local_today(tz_name, now).isoformat(), *counted.values(), trigger),
        )
        _audit(conn, result, trigger)
    # Deleted rows may still sit in SQLite's WAL until a checkpoint copies their pages back
    # (overwritten, thanks to secure_delete), in PostgreSQL's tables until a vacuum: do it now.
    purged = [
        "entries",
        *tables,
        *_standalone_tables(registry, tables),
        "daily_reports",
        "sync_rejects",
        "changes",
        "roster",
    ]
    if not db.checkpoint(conn, purged, CHECKPOINT_SECONDS):
        log.warning("purge: the WAL could not be emptied; purged rows may linger in it")
        result = replace(result, lingering=True)
    return result


def _sweep_changes(conn: db.Connection, registry: sync.Registry) -> None:
    """Drop the change log's lines whose record is gone: the log names records, and nothing
    should name what was purged. One walk along seq, a slice per write transaction, each line
    checked by its record's unique uuid; a pull meanwhile skips a line whose record is gone."""
    top = conn.execute("SELECT max(seq) FROM changes").fetchone()[0] or 0
    for start in range(0, top, SWEEP):
        with transaction(conn):
            for kind in registry:
                gone = f"NOT EXISTS (SELECT 1 FROM {kind.table} r WHERE r.uuid = changes.uuid)"  # noqa: S608 -- table from code
                conn.execute(
                    f"DELETE FROM changes WHERE seq > ? AND seq <= ? AND kind = ? AND {gone}",  # noqa: S608
                    (start, start + SWEEP, kind.name),
                )


def _audit(conn: sqlite3.Connection, result: Purge, trigger: str) -> None:
    """Write the purge to the console's audit log (fieldapp/audit.py), in the same transaction."""
    audit.write(
        conn,
        actor=f"system:{trigger}",
        action="purge",
        target=result.horizon,
        detail=json.dumps(asdict(result)),  # every field, in the order Purge declares them
    )


def purge_app(app: Flask, *, trigger: str = "cli", now: datetime | None = None) -> Purge:
    """Purge the app's database with the app's settings."""

    conn = connect(app.config["DATABASE"])
    try:
        return purge(
            conn,
            days=records.retention_days(conn, app.config),
            report_days=app.config["REPORT_RETENTION_DAYS"],
            tz_name=app.config["TIMEZONE"],
            registry=app.extensions["fieldapp.records"],
            now=now,
            trigger=trigger,
            others=app.extensions.get("fieldapp.purges", ()),
            owns_roster=not settings.is_downstream(app.config),
        )
    finally:
        conn.close()


def purged_today(conn: sqlite3.Connection, tz_name: str, now: datetime | None = None) -> bool:
    """Whether a purge already ran on this local day."""
    today = local_today(tz_name, now).isoformat()
    return (
        conn.execute("SELECT 1 FROM purge_log WHERE local_day = ? LIMIT 1", (today,)).fetchone()
        is not None
    )


def daily_job(app: Flask, now: datetime | None = None) -> Purge | None:
    """The background job: purge once per local day; None when today's purge is done."""
    with app.app_context():
        conn = connect(app.config["DATABASE"])
        try:
            done = purged_today(conn, app.config["TIMEZONE"], now)
        finally:
            conn.close()
        if done:
            return None
        result = purge_app(app, trigger="background", now=now)
        log.info("purge: %s", result)
        return result
