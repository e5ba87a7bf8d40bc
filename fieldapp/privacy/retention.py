"""Retention: entries, and the records that point at them, are deleted after RETENTION_DAYS.

Every instance purges on its own (`fieldapp purge`, and once a day while `fieldapp serve` runs),
so a record is gone on every tier; sync answers `expired` to one older than the horizon that
arrives later (fieldapp.records.save), so a purge is never undone. Daily reports hold counts
only and are kept REPORT_RETENTION_DAYS. connect() sets secure_delete, so deleted rows are
overwritten in the file; the WAL is checkpointed so its old pages do not keep them either.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask_babel import gettext as _

import sync
from fieldapp import audit, db, records, settings
from fieldapp.days import today as local_today
from fieldapp.db import connect, transaction
from sync.store import iso

log = logging.getLogger(__name__)

MIN_REPORT_DAYS = 30
BACKGROUND_EVERY_SECONDS = 3600  # checks hourly, purges once per local day


def check_report_days(value: Any) -> int:
    """REPORT_RETENTION_DAYS as a whole number of at least 30 days."""
    try:
        days = int(str(value).strip())
    except ValueError:
        days = None
    if days is None or days < MIN_REPORT_DAYS or days > 3660:
        raise ValueError(
            _(
                "Daily reports must be kept from %(min)d to 3660 days, not %(value)s",
                min=MIN_REPORT_DAYS,
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


def dependent_tables(conn: db.Connection) -> list[str]:
    """Tables that point at entries by an entry_uuid column (corrections, case actions…)."""
    return [t for t in db.tables(conn) if "entry_uuid" in db.columns(conn, t)]


def purge(
    conn: sqlite3.Connection,
    *,
    days: int,
    report_days: int,
    tz_name: str,
    registry: sync.Registry | None = None,
    now: datetime | None = None,
    trigger: str = "cli",
) -> Purge:
    """Delete what is past the horizons, in one transaction, and log it; return the counts."""
    days = settings.check_retention_days(days)
    report_days = check_report_days(report_days)
    now = now or datetime.now(UTC)
    horizon = sync.horizon_for(days, now)
    report_horizon = (local_today(tz_name, now) - timedelta(days=report_days)).isoformat()
    kind_of_table = {k.table: k.name for k in registry} if registry is not None else {}
    with transaction(conn):
        # Dependents first: rows of purged entries, and rows whose entry is already gone
        # (one that arrived after its entry was purged, or from before a crash).
        dependents = 0
        for table in dependent_tables(conn):
            columns = set(db.columns(conn, table))
            doomed = "entry_uuid IN (SELECT uuid FROM entries WHERE recorded_at < ?)"
            params: list[Any] = [horizon]
            if "recorded_at" in columns:
                # An orphan may be waiting for its entry to arrive by another path; only one
                # past the horizon itself is certain to have lost it.
                doomed += " OR (entry_uuid NOT IN (SELECT uuid FROM entries) AND recorded_at < ?)"
                params.append(horizon)
            if "uuid" in columns and table in kind_of_table:
                conn.execute(
                    f"DELETE FROM changes WHERE kind = ? AND uuid IN"  # noqa: S608 -- names from the schema
                    f" (SELECT uuid FROM {table} WHERE {doomed})",
                    (kind_of_table[table], *params),
                )
            dependents += conn.execute(
                f"DELETE FROM {table} WHERE {doomed}",  # noqa: S608 -- names from the schema
                params,
            ).rowcount
        # The change log names purged records by uuid only; drop those lines so nothing refers
        # to what is gone.
        conn.execute(
            "DELETE FROM changes WHERE kind = 'entry' AND uuid IN"
            " (SELECT uuid FROM entries WHERE recorded_at < ?)",
            (horizon,),
        )
        entries = conn.execute("DELETE FROM entries WHERE recorded_at < ?", (horizon,)).rowcount
        conn.execute(
            "DELETE FROM changes WHERE kind = 'daily_report' AND uuid IN"
            " (SELECT uuid FROM daily_reports WHERE day < ?)",
            (report_horizon,),
        )
        old_reports = conn.execute(
            "DELETE FROM daily_reports WHERE day < ?", (report_horizon,)
        ).rowcount
        # Refused records keep their body for review; bodies can hold personal data too.
        rejects = conn.execute(
            "DELETE FROM sync_rejects WHERE received_at < ?", (horizon,)
        ).rowcount
        result = Purge(horizon, report_horizon, entries, dependents, old_reports, rejects)
        conn.execute(
            "INSERT INTO purge_log (ran_at, local_day, horizon, report_horizon, entries,"
            " dependents, reports, rejects, trigger) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                iso(now),
                local_today(tz_name, now).isoformat(),
                horizon,
                report_horizon,
                entries,
                dependents,
                old_reports,
                rejects,
                trigger,
            ),
        )
        _audit(conn, result, trigger)
    # Deleted pages may still sit in the WAL until a checkpoint copies them back (overwritten,
    # thanks to secure_delete): do it now rather than whenever SQLite gets round to it.
    if not db.checkpoint(conn):
        log.warning("purge: the WAL could not be emptied; purged rows may linger in it")
    return result


def _audit(conn: sqlite3.Connection, result: Purge, trigger: str) -> None:
    """Write the purge to the console's audit log (fieldapp/audit.py), in the same transaction."""
    audit.write(
        conn,
        actor=f"system:{trigger}",
        action="purge",
        target=result.horizon,
        detail=json.dumps(
            {
                "horizon": result.horizon,
                "report_horizon": result.report_horizon,
                "entries": result.entries,
                "dependents": result.dependents,
                "reports": result.reports,
                "rejects": result.rejects,
            }
        ),
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
