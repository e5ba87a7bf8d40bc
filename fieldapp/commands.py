"""The commands every instance has (init, serve) and what each area's commands share: the
database opened in the user's language, and a refusal shown as a message, not a traceback."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale

from fieldapp import db, instance, jobs
from fieldapp.i18n import cli_locale


@contextmanager
def opened() -> Iterator[sqlite3.Connection]:
    """The instance's database for a command, in the command-line user's language. A domain
    refusal raised inside (a ValueError, worded for the user) ends the command with its
    message; the connection is closed either way."""
    conn = db.connect(current_app.config["DATABASE"])
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


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or migrate the database and the instance keys; safe to run twice."""
    instance.ensure_keys(current_app)
    with opened() as conn:
        applied = db.migrate(conn)
        instance.ensure_identity(conn)
    where = current_app.config["DATABASE"]
    if applied:
        click.echo(f"Database {where}: applied {', '.join(applied)}")
    else:
        click.echo(f"Database {where}: up to date")


@click.command("serve")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve the app with waitress (a production WSGI server) and run background jobs."""
    import waitress  # only the serving process needs it

    app = current_app._get_current_object()
    stop = threading.Event()
    jobs.start(app, stop)
    try:
        click.echo(f"fieldapp serving on http://{host}:{port}/", err=True)
        waitress.serve(app, host=host, port=port, threads=threads, ident="fieldapp")
    finally:
        stop.set()


commands = [init_command, serve_command]
