"""The database's commands: `fieldapp backup`, `fieldapp restore`, `fieldapp db copy`; and the
daily backup `fieldapp serve` makes when BACKUP_DIR is set."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

from fieldapp import db, records
from fieldapp.commands import cannot_write, ensure_ready, localised, opened
from fieldapp.console import cases
from fieldapp.days import today as local_today
from fieldapp.db import backup as backups
from fieldapp.db import copy as copying
from fieldapp.db import sqlite as sqlite_engine
from fieldapp.gate import counts
from fieldapp.i18n import argument, option
from fieldapp.i18n import lazy_cli_gettext as _l
from fieldapp.privacy import ids

log = logging.getLogger(__name__)

BACKGROUND_EVERY_SECONDS = 3600  # checks hourly, backs up once per local day


def _sqlite_only(what: str) -> None:
    if db.is_postgres(current_app.config["DATABASE"]):
        raise click.UsageError(
            _(
                "%(what)s is for an instance on SQLite; a PostgreSQL database is backed up with"
                " pg_dump or pg_basebackup (README)",
                what=what,
            )
        )


def _keep_days(app: Flask) -> int:
    conn = db.connect(app.config["DATABASE"])
    try:
        return records.retention_days(conn, app.config)
    finally:
        conn.close()


def _backup(app: Flask, out: Path, now: datetime | None = None) -> backups.Backup:
    """A backup into out, its outcome kept for the dashboard (made, or why it failed); what
    backups.backup raises is raised again."""
    now = now or datetime.now(UTC)
    try:
        made = backups.backup(app.config["DATABASE"], out, keep_days=_keep_days(app), now=now)
    except Exception as exc:
        failed = exc  # `exc` is unbound once the except ends; the lambda runs before that
        _keep_outcome(app, lambda conn: backups.record_failed(conn, out, failed, now))
        raise
    _keep_outcome(app, lambda conn: backups.record_made(conn, made, now))
    return made


def _backup_folder(app: Flask) -> Path:
    """Where the instance's backups are: BACKUP_DIR, else a folder in the instance's own
    (for the database a restore replaces when no BACKUP_DIR is set)."""
    folder = app.config.get("BACKUP_DIR")
    return Path(folder) if folder else Path(app.instance_path) / "backups"


def _keep_outcome(app: Flask, write: Callable[[db.Connection], None]) -> None:
    """Store a backup's outcome. A database that cannot take it (its own disk full too, a
    migration not applied yet) leaves it to the log: the backup's own error is what is said."""
    try:
        conn = db.connect(app.config["DATABASE"])
        try:
            with db.transaction(conn):
                write(conn)
        finally:
            conn.close()
    except db.Error:
        log.warning("backup: its outcome could not be stored", exc_info=True)


@click.command(
    "backup", help=_l("Copy the SQLite database, consistently, while the server may be running.")
)
@with_appcontext
@option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help=_l("Folder for the backup (default: BACKUP_DIR)."),
)
@localised
def backup_command(out: Path | None) -> None:
    _sqlite_only("fieldapp backup")
    out = out or (
        Path(current_app.config["BACKUP_DIR"]) if current_app.config["BACKUP_DIR"] else None
    )
    if out is None:
        raise click.UsageError(_("Say where the backup goes: --out FOLDER, or set BACKUP_DIR"))
    ensure_ready()
    app = current_app._get_current_object()
    try:
        made = _backup(app, out)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:  # the folder, or the disk full while copying
        raise cannot_write(out, exc) from None
    click.echo(_("Backup written: %(path)s (%(size)d bytes)", path=made.path, size=made.size))
    for path in made.pruned:
        click.echo(_("Deleted a backup older than the retention horizon: %(path)s", path=path))
    click.echo(
        _(
            "The keys are not in the backup: keep a copy of %(config)s somewhere else, apart"
            " from the backups.",
            config=Path(app.instance_path) / "config.py",
        )
    )


@click.command(
    "restore",
    help=_l("Put a backup back in place of this instance's database (stop the server first)."),
)
@with_appcontext
@argument(
    "copy",
    type=click.Path(dir_okay=False, path_type=Path),
    help=_l("The backup file to put back (made by `fieldapp backup`)."),
)
@localised
def restore_command(copy: Path) -> None:
    _sqlite_only("fieldapp restore")
    config = current_app.config
    try:
        done = backups.restore(
            copy,
            config["DATABASE"],
            # Sealed with another key, its ID numbers could never be shown, exported or synced.
            check=lambda conn: ids.check_key(conn, config.get("ID_KEY"), copy),
            # The database it replaces is a backup like any other: a wrong backup restored
            # loses nothing, and the copy goes past the horizon with the others.
            save_to=_backup_folder(current_app._get_current_object()),
            keep_days=lambda conn: records.retention_days(conn, config),
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    with opened(migrating=True) as conn:
        applied = db.migrate(conn)  # a backup from before an upgrade
        counts.ensure(conn, current_app.config["TIMEZONE"])  # made before them, or elsewhere
        cases.ensure(conn)
    click.echo(_("Restored %(path)s.", path=copy))
    if done.saved is not None:
        click.echo(
            _(
                "The database it replaced was saved as %(path)s (`fieldapp restore %(path)s`"
                " puts it back); it is deleted past the retention horizon, as any backup.",
                path=done.saved.path,
            )
        )
        for path in done.saved.pruned:
            click.echo(_("Deleted a backup older than the retention horizon: %(path)s", path=path))
    if done.aside is not None:
        click.echo(
            _(
                "The damaged database was moved to %(path)s: what it still holds may be read"
                " from it. It holds personal data: delete it when done.",
                path=done.aside,
            )
        )
    if applied:
        click.echo(_("Migrations applied: %(names)s", names=", ".join(applied)))


@click.group("db", help=_l("Move the database."))
def db_group() -> None:
    pass


@db_group.command(
    "copy",
    help=_l("Copy this SQLite instance, whole, into an empty PostgreSQL database and verify it."),
)
@with_appcontext
@option("--to", "url", required=True, help=_l("postgresql://user@host/db, empty"))
@localised
def copy_command(url: str) -> None:
    _here = current_app.config["DATABASE"]
    if db.is_postgres(_here):
        raise click.UsageError(_("This instance is already on PostgreSQL"))
    if not db.is_postgres(url):
        raise click.UsageError(
            _("--to must be a PostgreSQL URL (postgresql://…), not %(url)s", url=url)
        )
    # What a server stores after the copy's snapshot would not be in the copy: refused while
    # it runs, and a server started meanwhile waits for the copy.
    with sqlite_engine.unserved(_here) as alone:
        if not alone:
            raise click.ClickException(
                _(
                    "The server is running on %(path)s: stop `fieldapp serve` first, then copy"
                    " (what it stores meanwhile would not be in the copy). Nothing was copied.",
                    path=_here,
                )
            )
        try:
            target = db.connect(url)
        except db.Error as exc:
            raise click.ClickException(
                _("Cannot open %(url)s: %(error)s", url=url, error=exc)
            ) from None
        with opened() as source:
            try:
                copying.check_target(target)
                db.migrate(target)
                counts = copying.copy(source, target)  # verified, or refused and not committed
            finally:
                target.close()
    for table, n in sorted(counts.items()):
        click.echo(f"{table}: {n}")
    click.echo(
        _(
            "Copied and verified. Set DATABASE_URL=%(url)s in instance/config.py and start the"
            " server; the SQLite file stays as it was.",
            url=url,
        )
    )


def daily_job(app: Flask, now: datetime | None = None) -> Path | None:
    """The background job: a backup into BACKUP_DIR once per local day; its path, or None.
    Without BACKUP_DIR, the backups a restore left in the instance's folder are deleted past
    the retention horizon all the same."""
    folder = app.config.get("BACKUP_DIR")
    if db.is_postgres(app.config["DATABASE"]):
        return None
    now = now or datetime.now(UTC)
    if not folder:
        spare = _backup_folder(app)
        if spare.is_dir():
            for path in backups.prune(spare, keep_days=_keep_days(app), now=now):
                log.info("backup: deleted %s, past the retention horizon", path)
        return None
    tz = app.config["TIMEZONE"]
    last = backups.newest(Path(folder))
    if last is not None and local_today(tz, last) == local_today(tz, now):
        return None
    with app.app_context():
        made = _backup(app, Path(folder), now)
    log.info("backup: %s (%d bytes), deleted %d old", made.path, made.size, len(made.pruned))
    return made.path


commands = [backup_command, restore_command, db_group]
