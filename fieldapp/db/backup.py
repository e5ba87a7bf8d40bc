"""Backups of an instance's SQLite file, and putting one back.

A backup is SQLite's online backup of the live file (a consistent copy while the server goes on
writing), checked, made self-contained (no WAL beside it), readable by its owner only, and put
in place under its final name only once complete, so a crash leaves no half backup that looks
whole. The ID-encryption key lives in instance/config.py, not in the database: a backup holds
ID numbers encrypted, and the key is kept apart. Backups older than the retention horizon are
deleted, so a backup never brings purged personal data back for longer than the horizon.

A restore first saves the database it replaces as a backup of its own in the instance's
backups folder (one too damaged to read is moved aside instead), so restoring the wrong backup
loses nothing; that copy is pruned with the others.

The outcome of the last backup (`fieldapp backup`, the daily one of `fieldapp serve`) is kept
in the database (backup_status), for the console's dashboard: when the last one was made and,
if the last attempt failed, when and why, stored as a code and its params (an OSError's errno),
worded for whoever reads it, in their language.

On PostgreSQL, backups are the operator's pg_dump / pg_basebackup (README): no status is shown.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask_babel import gettext as _

from fieldapp import db, instance
from fieldapp.commands import why_not_written, write_reason  # every command's failed write
from fieldapp.db import sqlite as sqlite_engine
from sync.store import iso

# fieldapp-<UTC time>.sqlite3; the second backup made in the same second is -2, and so on.
NAME = re.compile(r"^fieldapp-(\d{8}T\d{6}Z)(?:-\d+)?\.sqlite3$")
STAMP = "%Y%m%dT%H%M%SZ"


class Unsound(ValueError):  # noqa: N818 -- a refusal, as ValueError is
    """A database (a backup being made, or one to restore) SQLite cannot read, or damaged:
    problem 'unreadable' or 'damaged', with its params, so it can be worded again later."""

    def __init__(self, problem: str, path: Path, error: object) -> None:
        self.problem = problem
        self.params = {"path": str(path), "error": str(error)}
        super().__init__(_unsound_text(problem, self.params))


def _unsound_text(problem: str, params: dict[str, str]) -> str:
    if problem == "damaged":
        return _("%(path)s is damaged: %(error)s", **params)
    return _("%(path)s is not a readable database: %(error)s", **params)


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int
    pruned: list[Path]


def backup(
    database: str | Path, out: Path, *, keep_days: int, now: datetime | None = None
) -> Backup:
    """Copy database into out/fieldapp-<UTC time>.sqlite3 (-2, -3... for another backup made
    in the same second); delete backups older than keep_days."""
    now = now or datetime.now(UTC)
    out.mkdir(parents=True, exist_ok=True)
    final, part = _claim(out, now)
    try:
        source = sqlite3.connect(database)
        target = sqlite3.connect(part)
        try:
            source.backup(target)  # all pages in one step: a snapshot, however busy the source
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            _check(target, part)
        finally:
            target.close()
            source.close()
        with open(part, "rb") as f:
            os.fsync(f.fileno())
        os.replace(part, final)
        _sync_folder(out)
    except BaseException:
        part.unlink(missing_ok=True)
        # Past the horizon whether or not today's copy could be made (a full disk fails every
        # night's): they keep purged personal data, and deleting them may free the room.
        with contextlib.suppress(OSError):
            prune(out, keep_days=keep_days, now=now)
        raise
    return Backup(final, final.stat().st_size, prune(out, keep_days=keep_days, now=now))


def _claim(out: Path, now: datetime) -> tuple[Path, Path]:
    """A backup name in out no other backup has, and its partial copy, created empty (owner
    only), which holds the name: another backup made in the same second, in this process or
    another, takes the next number, and never writes over or deletes this one."""
    stamp = now.astimezone(UTC).strftime(STAMP)
    n = 0
    while True:
        n += 1
        final = out / (f"fieldapp-{stamp}.sqlite3" if n == 1 else f"fieldapp-{stamp}-{n}.sqlite3")
        part = final.with_name(final.name + ".part")
        if final.exists():
            continue
        try:  # personal data: its owner only
            fd = os.open(part, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        except FileExistsError:  # being written by another backup (or left by a crash: pruned)
            continue
        os.close(fd)
        if final.exists():  # put in place by the backup whose partial copy this name was
            part.unlink()
            continue
        return final, part


def prune(out: Path, *, keep_days: int, now: datetime | None = None) -> list[Path]:
    """Delete the backups in out made more than keep_days ago (and leftover partial copies)."""
    horizon = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    gone = []
    for path in sorted(out.iterdir()):
        made = made_at(path)
        if path.name.endswith(".sqlite3.part") and path.stat().st_mtime < horizon.timestamp():
            made = horizon - timedelta(seconds=1)
        if made is not None and made < horizon:
            path.unlink()
            gone.append(path)
    return gone


def made_at(path: Path) -> datetime | None:
    """When the backup at path was made (from its name); None for any other file."""
    match = NAME.match(path.name)
    return datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC) if match else None


def newest(out: Path) -> datetime | None:
    """When the newest backup in out was made."""
    if not out.is_dir():
        return None
    made = [m for m in (made_at(p) for p in out.iterdir()) if m is not None]
    return max(made, default=None)


@dataclass(frozen=True)
class Restored:
    saved: Backup | None  # the sound database it replaced, saved as a backup
    aside: Path | None  # the damaged database it replaced, moved aside


def restore(
    copy: Path,
    database: str | Path,
    check: Callable[[sqlite3.Connection], None] | None = None,
    now: datetime | None = None,
    *,
    save_to: Path,
    keep_days: Callable[[sqlite3.Connection], int],
) -> Restored:
    """Put a backup back in place of the (stopped) instance's database, whole or not at all.
    check(the backup's connection) may refuse it with a ValueError before anything is written;
    so is a restore while `fieldapp serve` runs on the database. The database it replaces is
    saved first as a backup in save_to (pruned at keep_days(its connection), as any backup
    made there), so a wrong backup restored loses nothing; one too damaged to be read is moved
    aside instead. Nothing is written over until that copy or move is complete."""
    if not copy.is_file():
        raise ValueError(_("No backup at %(path)s", path=copy))
    now = now or datetime.now(UTC)
    # Read-only through a URI: its path percent-encoded, or a # or ? in a name cuts it short.
    source = sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro", uri=True)
    try:
        _check(source, copy)
        if not _is_fieldapp(source):
            raise ValueError(_("%(path)s is not a fieldapp database", path=copy))
        if check is not None:
            check(source)
        try:
            # A new machine's instance folder may not be made yet (disaster recovery).
            Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with sqlite_engine.unserved(database) as alone:
                if not alone:
                    raise ValueError(
                        _(
                            "The server is running on %(path)s: stop `fieldapp serve` first,"
                            " then restore. Nothing was changed.",
                            path=database,
                        )
                    )
                _refuse_another_instance(source, Path(database), copy)
                aside = _aside_if_damaged(Path(database), now)
                saved = None
                if aside is None:
                    saved = _save_replaced(Path(database), save_to, keep_days, now)
                target = sqlite3.connect(database)
                try:
                    source.backup(target)  # replaces every page in one write transaction
                finally:
                    target.close()
                return Restored(saved, aside)
        except (OSError, sqlite3.Error) as exc:
            raise ValueError(
                _("The database cannot be written at %(path)s: %(error)s", path=database, error=exc)
            ) from None
    finally:
        source.close()


def _is_fieldapp(conn: sqlite3.Connection) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE name = 'migrations'"
    return conn.execute(query).fetchone() is not None


def _save_replaced(
    database: Path,
    folder: Path,
    keep_days: Callable[[sqlite3.Connection], int],
    now: datetime,
) -> Backup | None:
    """A (sound) database about to be replaced, saved as a backup into folder; None if there
    is none, or nothing of fieldapp's in it (an empty file). If it cannot be saved, the
    restore is refused (ValueError): nothing was changed yet."""
    if not database.exists():
        return None
    try:
        conn = sqlite3.connect(database)
        try:
            if not _is_fieldapp(conn):
                return None
            days = keep_days(conn)
        finally:
            conn.close()
        return backup(database, folder, keep_days=days, now=now)
    except (OSError, sqlite3.Error, Unsound) as exc:
        reason = str(exc) if isinstance(exc, Unsound) else why_not_written(exc)
        raise ValueError(
            _(
                "The database a restore would replace cannot be saved in %(folder)s first:"
                " %(reason)s. Nothing was changed.",
                folder=folder,
                reason=reason,
            )
        ) from None


def _instance_id(conn: sqlite3.Connection) -> str | None:
    """instance.instance_id, or None for a database `fieldapp init` has not set up."""
    try:
        return instance.instance_id(conn)
    except RuntimeError:
        return None


def _refuse_another_instance(source: sqlite3.Connection, database: Path, copy: Path) -> None:
    """Refuse (ValueError) a backup of another instance over a database that holds sites or
    records of its own: they would be lost, and this instance would sync as the other. A new,
    empty instance (a machine set up again) may take it; so may a database too damaged to
    read, which is moved aside."""
    if not database.exists():
        return
    try:
        conn = sqlite3.connect(database)
        try:
            ours = _instance_id(conn)
            holds = any(
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()  # noqa: S608 -- fixed names
                for table in ("sites", "changes")
            )
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return
    theirs = _instance_id(source)
    if holds and ours and theirs and ours != theirs:
        raise ValueError(
            _(
                "%(path)s is a backup of another instance (%(theirs)s), not of this one"
                " (%(ours)s): restoring it would replace this instance's sites and records"
                " with the other's. Nothing was changed.",
                path=copy,
                theirs=theirs,
                ours=ours,
            )
        )


def _aside_if_damaged(database: Path, now: datetime) -> Path | None:
    """Move a database SQLite cannot read whole (a damaged disk, a power cut), with its WAL,
    to <name>.damaged-<UTC time>: the backup cannot be written over it, and what it still
    holds may be read from it. Its new path; None if it is sound or not there."""
    if not database.exists():
        return None
    try:
        conn = sqlite3.connect(database)
        try:
            _check(conn, database)
            return None
        finally:
            conn.close()
    except (Unsound, sqlite3.DatabaseError):
        pass  # damaged: moved aside below
    aside = database.with_name(f"{database.name}.damaged-{now.astimezone(UTC).strftime(STAMP)}")
    # Its WAL first: left beside the new file, SQLite would replay it into the backup.
    for suffix in ("-wal", "-journal", "-shm"):
        extra = database.with_name(database.name + suffix)
        if extra.exists():
            os.replace(extra, aside.with_name(aside.name + suffix))
    os.replace(database, aside)
    _sync_folder(database.parent)
    return aside


def _check(conn: sqlite3.Connection, path: Path) -> None:
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise Unsound("unreadable", path, exc) from None
    if result != "ok":
        raise Unsound("damaged", path, result)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the last backup's outcome, for the dashboard ------------------------------------------

# SQLite's own answers that mean what an OSError's errno says (a full disk while copying).
_SQLITE_ERRNO = {sqlite3.SQLITE_FULL: errno.ENOSPC, sqlite3.SQLITE_READONLY: errno.EROFS}


def record_made(conn: db.Connection, made: Backup, now: datetime) -> None:
    """Keep that a backup was made (its time and file): the last attempt did not fail."""
    conn.execute(
        "UPDATE backup_status SET made_at = ?, made_file = ?, failed_at = NULL,"
        " failure = NULL WHERE id = 1",
        (iso(now), str(made.path)),
    )


def record_failed(conn: db.Connection, folder: Path, exc: BaseException, now: datetime) -> None:
    """Keep that a backup into folder failed, and why: an errno (an OSError, or SQLite's
    answer for a full or read-only disk), or the problem of an Unsound copy, with the system's
    own text for a cause without words of ours. Never a sentence in the server's language."""
    failure: dict[str, Any] = {"folder": str(folder), "error": str(exc)[:500]}
    if isinstance(exc, OSError):
        failure.update(errno=exc.errno, error=(exc.strerror or str(exc))[:500])
    elif isinstance(exc, sqlite3.Error):
        failure["errno"] = _SQLITE_ERRNO.get(getattr(exc, "sqlite_errorcode", None))
    elif isinstance(exc, Unsound):
        failure.update(problem=exc.problem, params={k: v[:500] for k, v in exc.params.items()})
    conn.execute(
        "UPDATE backup_status SET failed_at = ?, failure = ? WHERE id = 1",
        (iso(now), json.dumps(failure, ensure_ascii=False)),
    )


def status(conn: db.Connection, config: Any) -> dict[str, Any] | None:
    """The last backup's outcome for the dashboard: {"made_at", "made_file", "failed_at",
    "failure"} (UTC ISO 8601 times or None; failure worded in the current language, None
    unless the last attempt failed). None on PostgreSQL (backed up with its own tools), and
    where no backup is made (no BACKUP_DIR, and `fieldapp backup` never run)."""
    if db.is_postgres(config["DATABASE"]):
        return None
    row = conn.execute(
        "SELECT made_at, made_file, failed_at, failure FROM backup_status WHERE id = 1"
    ).fetchone()
    if row is None or (not config.get("BACKUP_DIR") and not (row[0] or row[2])):
        return None
    return {
        "made_at": row[0],
        "made_file": row[1],
        "failed_at": row[2],
        "failure": describe_failure(row[3]) if row[2] else None,
    }


def describe_failure(stored: str | None) -> str:
    """A failure record_failed kept, worded now, in the reader's language."""
    try:
        failure = json.loads(stored or "null")
    except ValueError:
        failure = None
    if not isinstance(failure, dict):
        return _("unknown error")
    error = str(failure.get("error") or "")
    params = failure.get("params")
    if failure.get("problem") and isinstance(params, dict):
        with contextlib.suppress(KeyError, ValueError, TypeError):
            return _unsound_text(str(failure["problem"]), {k: str(v) for k, v in params.items()})
    code = failure.get("errno")
    reason = write_reason(code if isinstance(code, int) else None) or error or _("unknown error")
    return _(
        "Cannot write %(path)s: %(reason)s", path=str(failure.get("folder") or ""), reason=reason
    )
