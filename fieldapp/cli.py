"""The `fieldapp` command: a thin click layer over the domain modules."""

from __future__ import annotations

import importlib
import threading

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from . import background, create_app, db


@click.command("serve")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
def serve_command(host: str, port: int, threads: int) -> None:
    """Serve the app with waitress (a production WSGI server) and run background jobs."""
    import waitress

    app = current_app._get_current_object()
    stop = threading.Event()
    background.start(app, stop)
    click.echo(f"fieldapp serving on http://{host}:{port}/", err=True)
    try:
        waitress.serve(app, host=host, port=port, threads=threads, ident="fieldapp")
    finally:
        stop.set()


# Each module here has a list `commands` of click commands (or groups) to attach.
COMMAND_MODULES: tuple[str, ...] = (
    "fieldapp.demo",
    "fieldapp.sites",
    "fieldapp.roster",
    "fieldapp.accounts",
    "fieldapp.exports",
    "fieldapp.reports",
    "fieldapp.posters",
    "fieldapp.retention",
    "fieldapp.devices",
    "fieldapp.outbox_import",
    "fieldapp.syncing",
)


def init_app(app: Flask) -> None:
    """Attach the commands every instance has, then each domain module's own."""
    app.cli.add_command(db.init_command)
    app.cli.add_command(serve_command)
    for name in COMMAND_MODULES:
        for command in importlib.import_module(name).commands:
            app.cli.add_command(command)


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def main() -> None:
    """fieldapp: gate registration that works offline and syncs up the chain."""


if __name__ == "__main__":
    main()
