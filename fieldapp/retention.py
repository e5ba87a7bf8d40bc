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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import sync
from sync.checkpoints import checkpoint_all
from sync.store import iso

from . import audit, reports, rules
from .db import connect, transaction
from .i18n import cli_locale

log = logging.getLogger(__name__)

MIN_DAYS, MAX_DAYS = 7, 60
MIN_REPORT_DAYS = 30
BACKGROUND_EVERY_SECONDS = 3600  # checks hourly, purges once per local day


def check_days(value: Any) -> int:
    """RETENTION_DAYS as a whole number from 7 to 60; ValueError with a clear message otherwise."""
    try:
        days = int(str(value).strip())
    except ValueError:
        days = None
    if days is None or not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(
            _(
                "Retention must be a whole number of days from %(min)d to %(max)d, not %(value)s",
                min=MIN_DAYS,
                max=MAX_DAYS,
                value=value,
            )
        )
    return days


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


def configured_days(conn: sqlite3.Connection, config: dict[str, Any]) -> int:
    """The retention in force: the value pulled from upstream if any, else RETENTION_DAYS."""
    row = conn.execute("SELECT value FROM settings WHERE name = 'retention_days'").fetchone()
    return check_days(row[0] if row else config["RETENTION_DAYS"])


@dataclass(frozen=True)
class Purge:
    """What one purge deleted."""

    horizon: str
    report_horizon: str
    entries: int
    dependents: int
    reports: int
    rejects: int


def dependent_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables that point at entries by an entry_uuid column (corrections, case actions…)."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]
    found = []
    for name in names:
        columns = {c[1] for c in conn.execute("SELECT * FROM pragma_table_info(?)", (name,))}
        if "entry_uuid" in columns:
            found.append(name)
    return found


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
    days = check_days(days)
    report_days = check_report_days(report_days)
    now = now or datetime.now(UTC)
    horizon = sync.horizon_for(days, now)
    report_horizon = (reports.local_today(tz_name, now) - timedelta(days=report_days)).isoformat()
    kind_of_table = {k.table: k.name for k in registry} if registry is not None else {}
    with transaction(conn):
        # Dependents first: rows of purged entries, and rows whose entry is already gone
        # (one that arrived after its entry was purged, or from before a crash).
        dependents = 0
        for table in dependent_tables(conn):
            columns = {c[1] for c in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}
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
                reports.local_today(tz_name, now).isoformat(),
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
    # thanks to secure_delete); do it now rather than whenever SQLite gets round to it, and
    # wait for a checkpoint already running (the writer's own) rather than skip it.
    if not checkpoint_all(conn):
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
    from . import records

    conn = connect(app.config["DATABASE"])
    try:
        return purge(
            conn,
            days=configured_days(conn, app.config),
            report_days=app.config["REPORT_RETENTION_DAYS"],
            tz_name=app.config["TIMEZONE"],
            registry=app.extensions.get("fieldapp.records") or records.build_registry(app.config),
            now=now,
            trigger=trigger,
        )
    finally:
        conn.close()


def purged_today(conn: sqlite3.Connection, tz_name: str, now: datetime | None = None) -> bool:
    """Whether a purge already ran on this local day."""
    today = reports.local_today(tz_name, now).isoformat()
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


def init_app(app: Flask) -> None:
    """Ask `fieldapp serve` to run the daily purge."""
    from . import background

    background.register(app, "purge", daily_job, BACKGROUND_EVERY_SECONDS)


def retention_notice_days() -> int:
    """Days entries are kept, for the privacy notice on forms."""
    from .db import get_db

    try:
        return configured_days(get_db(), current_app.config)
    except (ValueError, sqlite3.Error):
        return int(current_app.config["RETENTION_DAYS"])


# ---- minimum collection ------------------------------------------------------------------------

OPTIONAL_FIELD_LABELS = {
    "id_number": _l("ID number"),
    "phone": _l("Phone"),
    "plate": _l("Vehicle plate"),
    "destination": _l("Destination (building / unit)"),
}


def set_optional_fields(
    conn: sqlite3.Connection,
    config: Mapping[str, Any],
    site_ref: str,
    value: str,
    *,
    actor: str = "cli",
) -> sqlite3.Row:
    """Choose the optional gate-form fields of a site (by id or code); a configuration change."""
    from sync import config as sync_config

    from . import sites

    try:
        sites.refuse_if_downstream(config)
        site = sites.find(conn, site_ref)
        fields = sites.clean_optional_fields(value)
    except sites.SiteError as exc:
        raise ValueError(str(exc)) from None
    with transaction(conn):
        version = sync_config.next_version(conn)
        conn.execute(
            "UPDATE sites SET optional_fields = ?, version = ? WHERE id = ?",
            (fields, version, site["id"]),
        )
        audit.write(
            conn, actor, "site_change", target=site["id"], detail=f"optional_fields={fields}"
        )
    return conn.execute("SELECT * FROM sites WHERE id = ?", (site["id"],)).fetchone()


# ---- command line ------------------------------------------------------------------------------


@click.command("purge")
@with_appcontext
def purge_command() -> None:
    """Delete entries (and what points at them) past RETENTION_DAYS, reports past theirs."""
    with force_locale(cli_locale()):
        try:
            result = purge_app(current_app._get_current_object(), trigger="cli")
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(
            _(
                "Purged %(entries)d entries recorded before %(horizon)s, %(dependents)d records "
                "that pointed at them, %(reports)d daily reports before %(day)s, %(rejects)d "
                "refused sync records.",
                entries=result.entries,
                horizon=result.horizon,
                dependents=result.dependents,
                reports=result.reports,
                day=result.report_horizon,
                rejects=result.rejects,
            )
        )


@click.command("fields")
@click.argument("code")
@click.option(
    "--set",
    "chosen",
    required=True,
    help="Comma-separated optional fields the gate asks for: id_number,phone,plate,destination"
    " (an empty string for none)",
)
@with_appcontext
def site_fields_command(code: str, chosen: str) -> None:
    """Choose which optional fields a site's gate form asks for (minimum collection)."""
    conn = connect(current_app.config["DATABASE"])
    try:
        with force_locale(cli_locale()):
            try:
                site = set_optional_fields(conn, current_app.config, code, chosen)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    click.echo(f"{site['code']}\t{site['name']}\t{site['optional_fields'] or '-'}")


def _attach_to_site_group() -> None:
    """`fieldapp site fields CODE --set …` lives in the gate's `site` group."""
    from .sites import site_group

    if "fields" not in site_group.commands:
        site_group.add_command(site_fields_command)


_attach_to_site_group()
commands = [purge_command]


# ---- refused records ---------------------------------------------------------------------------


def _masked(body: str) -> str | None:
    """The body with a full ID number replaced by its masked form, or None if it has none."""
    try:
        record = json.loads(body)
    except ValueError:
        return None
    data = record.get("data") if isinstance(record, dict) else None
    value = data.get("id_number") if isinstance(data, dict) else None
    if not isinstance(value, str) or len(value.strip()) <= 10 or "*" in value:
        return None
    data["id_number"] = rules.mask_id(value.strip())
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def redact_rejects(conn: sqlite3.Connection, results: list[sync.Result]) -> None:
    """Mask full ID numbers in the bodies sync kept of refused records of this batch.

    Runs inside apply_batch's transaction (records.save passes it as `inside`), so a refused
    record's ID number never reaches the file in clear; the reviewer sees the masked form.
    """
    uuids = sorted({r.uuid for r in results if r.status in ("rejected", "conflict")})
    for start in range(0, len(uuids), 500):
        chunk = uuids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT id, uuid, status, body FROM sync_rejects WHERE uuid IN ({marks})",  # noqa: S608 -- only marks
            chunk,
        ).fetchall()
        for row_id, uuid, status, body in rows:
            masked = _masked(body)
            if masked is None:
                continue
            twin = conn.execute(
                "SELECT 1 FROM sync_rejects WHERE uuid = ? AND status = ? AND body = ?",
                (uuid, status, masked),
            ).fetchone()
            if twin is not None:  # the same refusal seen before: keep the one masked row
                conn.execute("DELETE FROM sync_rejects WHERE id = ?", (row_id,))
            else:
                conn.execute("UPDATE sync_rejects SET body = ? WHERE id = ?", (masked, row_id))
