"""The commands every instance has (init, serve) and what each area's commands share: the
database opened in the user's language, and a refusal shown as a message, not a traceback."""

from __future__ import annotations

import errno
import functools
import os
import secrets
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import IO, Any

import click
import waitress
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _

from fieldapp import days, db, instance, jobs
from fieldapp.console import cases
from fieldapp.db import sqlite as sqlite_engine
from fieldapp.gate import counts
from fieldapp.i18n import cli_locale, language, option
from fieldapp.i18n import lazy_cli_gettext as _l


def connect_ready(target: str | Path, migrating: bool = False) -> sqlite3.Connection:
    """A connection to the instance's database, which `fieldapp init` made and brought up to
    date; else the command ends with a message in the user's language that says to run it (a
    folder that is not an instance yet, a mistyped FIELDAPP_INSTANCE, a new version's tables
    not made yet), and no empty database file is left behind. migrating: for init and restore,
    which make or update it."""
    where = db.shown(target)
    with force_locale(cli_locale()):
        missing = not db.is_postgres(target) and not Path(target).exists()
        if missing and not migrating:
            raise click.ClickException(
                _(
                    "There is no database at %(where)s: run `fieldapp init` first, or check"
                    " FIELDAPP_INSTANCE (the instance folder).",
                    where=where,
                )
            )
        try:
            conn = db.connect(target)
            lacking = [] if migrating else db.pending(conn)
        except sqlite3.Error as exc:
            raise click.ClickException(
                _("Cannot open the database %(where)s: %(reason)s", where=where, reason=exc)
            ) from None
        if lacking:
            conn.close()
            raise click.ClickException(
                _(
                    "The database %(where)s is not up to date with this version of fieldapp:"
                    " run `fieldapp init` (it keeps what is stored).",
                    where=where,
                )
            )
    return conn


def ensure_ready() -> None:
    """End the command with connect_ready's message unless the instance's database is ready."""
    connect_ready(current_app.config["DATABASE"]).close()


@contextmanager
def opened(migrating: bool = False) -> Iterator[sqlite3.Connection]:
    """The instance's database for a command, in the command-line user's language. A domain
    refusal raised inside (a ValueError, worded for the user) ends the command with its
    message; the connection is closed either way. One not made by `fieldapp init`, or not
    up to date, is said (connect_ready)."""
    conn = connect_ready(current_app.config["DATABASE"], migrating)
    try:
        with force_locale(cli_locale()):
            yield conn
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()


def localised(f: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command in the user's language (from FIELDAPP_LANG / LANG)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with force_locale(cli_locale()):
            return f(*args, **kwargs)

    return wrapper


def check_qr_file(path: Path, option: str) -> None:
    """A QR code's file is named .svg or .png (qr.image writes what its name says): any other
    name is refused before anything is made, in the user's language."""
    if path.suffix.lower() not in (".svg", ".png"):
        with force_locale(cli_locale()):
            message = _("the file name must end in .svg or .png")
        raise click.BadParameter(message, param_hint=option)


def given_day(value: str | None, option: str, default: date | None = None) -> date | None:
    """The day a date option names (YYYY-MM-DD, its digits full-width too: days.parse_day), or
    default when the option is not given at all. One given empty (`--date "$DAY"` with DAY
    unset) or unreadable is a usage error naming the option, in the operator's language: never
    today, nor no limit, by accident."""
    if value is None:
        return default
    try:
        with force_locale(cli_locale()):
            return days.parse_day(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def why_not_written(exc: OSError | sqlite3.Error) -> str:
    """Why a file could not be written, in the user's words (the system's own text for a cause
    without words of ours)."""
    code = exc.errno if isinstance(exc, OSError) else getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error):
        code = {sqlite3.SQLITE_FULL: errno.ENOSPC, sqlite3.SQLITE_READONLY: errno.EROFS}.get(code)
    return write_reason(code) or (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def write_reason(code: int | None) -> str | None:
    """Why a file could not be written, for an errno that has words of ours, else None."""
    reasons = {
        errno.ENOENT: _("the folder does not exist"),
        errno.ENOTDIR: _("a part of the path is a file, not a folder"),
        errno.EISDIR: _("it is a folder"),
        errno.EACCES: _("permission denied"),
        errno.EPERM: _("permission denied"),
        errno.ENOSPC: _("the disk is full"),
        errno.EDQUOT: _("the disk is full"),
        errno.EFBIG: _("the file is too large for the disk"),
        errno.EROFS: _("the disk is read-only"),
    }
    return reasons.get(code) if code is not None else None


def cannot_write(path: str | Path, exc: OSError | sqlite3.Error) -> click.ClickException:
    """The error that ends a command whose file could not be written: its path, and why."""
    with force_locale(cli_locale()):
        return click.ClickException(
            _("Cannot write %(path)s: %(reason)s", path=str(path), reason=why_not_written(exc))
        )


def read_input(path: str | Path) -> bytes:
    """The whole of a file a command reads (a roster CSV, an outbox export). An OSError (no
    permission, a disk or USB stick that fails, a file gone since the command started) ends
    the command with a message naming the file and the reason, in the user's language."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        with force_locale(cli_locale()):
            reasons = {
                errno.ENOENT: _("the file does not exist"),
                errno.EIO: _("the disk could not be read"),
                errno.EACCES: _("no permission to read it"),
                errno.EPERM: _("no permission to read it"),
            }
            reason = reasons.get(exc.errno) or why_not_written(exc)
            raise click.ClickException(
                _("Cannot read %(path)s: %(reason)s", path=str(path), reason=reason)
            ) from None


@contextmanager
def output_file(path: str | Path, *, private: bool = False) -> Iterator[IO[bytes]]:
    """A command's output file (a PDF, a table, a QR code, an export), written whole or not at
    all: the block writes into a temporary file beside path, which takes path's place only
    once complete and on disk; on any failure it is removed, and whatever was at path stays as
    it was. An OSError (a missing folder, a folder in the way, no permission, a full disk) ends
    the command with a message naming the file and the reason, in the user's language.

    Something recorded about the file (an audit row, an enrolment) goes after the block, or
    inside it in a transaction the block's failure rolls back. A path that is not a regular
    file (/dev/stdout, a pipe) is written to directly: it cannot be replaced.

    A private file (full ID and phone numbers) is readable by its owner only (0600, as backups
    are), whatever the umask, and so is a file it is written over; any other keeps the mode of
    the file it replaces, or the umask's."""
    target = Path(path)
    real = Path(os.path.realpath(target))  # through a link, as open() writes
    if real in _own_files():
        with force_locale(cli_locale()):
            raise click.ClickException(
                _(
                    "%(path)s is this instance's own file (its database or its keys): write to"
                    " another file.",
                    path=str(target),
                )
            )
    temp: Path | None = None
    try:
        if real.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        if real.exists() and not real.is_file():
            with open(real, "wb") as f:
                yield f
            return
        temp = real.with_name(f".{real.name}.{secrets.token_hex(4)}.part")
        # Private: never readable by others, not even for the time it takes to write it.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
        with os.fdopen(fd, "wb") as f:
            if private:
                os.chmod(f.fileno(), 0o600)  # a umask such as 0277 would leave it 0400
            elif real.exists():  # a file written again keeps who may read it
                os.chmod(f.fileno(), stat.S_IMODE(real.stat().st_mode))
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, real)
        temp = None
        _sync_folder(real.parent)
    except OSError as exc:
        raise cannot_write(target, exc) from None
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)


def _own_files() -> set[Path]:
    """The files an output file must never replace: the instance's SQLite database (and its
    journal files) and instance/config.py, which holds its keys."""
    own = [Path(current_app.instance_path) / "config.py"]
    database = current_app.config.get("DATABASE")
    if database and not db.is_postgres(database):
        own += [Path(f"{database}{end}") for end in ("", "-wal", "-shm", "-journal")]
    return {Path(os.path.realpath(p)) for p in own}


def _sync_folder(folder: Path) -> None:
    """The rename on disk too; a folder that cannot be synced (some file systems) is left."""
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def table_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--format text|csv|xlsx and --out FILE, for a command that ends in write_table."""
    f = option(
        "--out", type=click.Path(dir_okay=False), default=None, help=_l("Write to this file")
    )(f)
    return option(
        "--format",
        "fmt",
        type=click.Choice(["text", "csv", "xlsx"]),
        default="text",
        show_default=True,
        help=_l("Text or CSV is printed unless --out is given; XLSX needs --out"),
    )(f)


class ScriptChoice(click.Choice):
    """zh_Hans or zh_Hant, written as the pages write them or as BCP 47 does (zh-Hant), in
    any case: read as a page's language is (i18n.language)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        return super().convert(language(value) or value, param, ctx)


# --lang of a command that prints a PDF (posters, passes): the characters it is printed in.
pdf_lang_option = option(
    "--lang",
    type=ScriptChoice(["zh_Hans", "zh_Hant"]),
    default="zh_Hans",
    show_default=True,
    help=_l("Simplified or traditional characters"),
)


def write_table(table: Any, formats: Any, fmt: str, out: str | None) -> None:
    """Print a table (the roll-call, a campaign's coverage) as text or CSV, or write it to out.
    formats is its module: format_text, to_csv and to_xlsx. An XLSX file needs out."""
    if fmt == "xlsx" and not out:
        raise click.BadParameter(_("an XLSX file needs --out FILE"), param_hint="--out")
    if fmt == "text":
        body = formats.format_text(table).encode()
    else:
        body = formats.to_csv(table) if fmt == "csv" else formats.to_xlsx(table)
    if not out:
        click.echo(body.decode("utf-8-sig"), nl=False)
        return
    with output_file(out) as f:
        f.write(body)
    click.echo(out)


@click.command(
    "init", help=_l("Create or migrate the database and the instance keys; safe to run twice.")
)
@with_appcontext
@localised
def init_command() -> None:
    instance.ensure_keys(current_app)
    with opened(migrating=True) as conn:
        applied = db.migrate(conn)
        instance.ensure_identity(conn)
        # The dashboard's counts: made from the entries if this database has none yet, or
        # has them in another zone than TIMEZONE.
        counted = counts.ensure(conn, current_app.config["TIMEZONE"])
        cases.ensure(conn)  # the fever cases' kept states, likewise
    where = db.shown(current_app.config["DATABASE"])
    if applied:
        click.echo(
            _("Database %(where)s: applied %(names)s", where=where, names=", ".join(applied))
        )
    else:
        click.echo(_("Database %(where)s: up to date", where=where))
    if counted:
        click.echo(_("Entries counted for the dashboard: %(days)d days", days=counted))


@click.command(
    "serve",
    help=_l(
        "Serve the app and run its background jobs. It runs one waitress process, or on"
        " PostgreSQL several gunicorn processes (--workers) that may run on several hosts."
    ),
)
@with_appcontext
@option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help=_l("Address to listen on (0.0.0.0: every network of this machine)"),
)
@option(
    "--port",
    default=5000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help=_l("Port to listen on"),
)
@option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 64),
    help=_l("Requests served at once, per process"),
)
@option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help=_l("Serving processes (gunicorn): a central on PostgreSQL, one or two per CPU core."),
)
@localised
def serve_command(host: str, port: int, threads: int, workers: int) -> None:
    ensure_ready()
    app = current_app._get_current_object()
    stop = threading.Event()
    url = f"http://{host}:{port}/"
    if workers > 1:
        if not db.is_postgres(app.config["DATABASE"]):
            raise click.UsageError(
                _(
                    "Several serving processes need PostgreSQL (DATABASE_URL): an instance on"
                    " SQLite is served by one process."
                )
            )
        click.echo(_("fieldapp serving on %(url)s (%(n)d processes)", url=url, n=workers), err=True)
        _gunicorn(app, f"{host}:{port}", workers, threads, lambda _worker: jobs.start(app, stop))
        return
    # Held while this process lives: `fieldapp restore` refuses to write under it.
    database = app.config["DATABASE"]
    held = None if db.is_postgres(database) else sqlite_engine.serving(database)
    jobs.start(app, stop)
    try:
        click.echo(_("fieldapp serving on %(url)s", url=url), err=True)
        waitress.serve(app, host=host, port=port, threads=threads, ident="fieldapp")
    finally:
        stop.set()
        if held is not None:
            held.close()


def _gunicorn(
    app: Any, bind: str, workers: int, threads: int, started: Callable[[Any], Any]
) -> None:
    """Serve app with gunicorn's prefork server: each worker process starts the background
    jobs (they take turns through db.turn), a worker that dies is replaced."""
    from gunicorn.app.base import BaseApplication  # Unix only: the PostgreSQL central's server

    class Server(BaseApplication):
        def load_config(self) -> None:
            options = {
                "bind": bind,
                "workers": workers,
                "threads": threads,
                "worker_class": "gthread",
                "post_worker_init": started,
                "timeout": 120,
                "graceful_timeout": 20,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Server().run()


commands = [init_command, serve_command]
