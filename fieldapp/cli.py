"""The `fieldapp` command: a thin click layer over the domain modules."""

from __future__ import annotations

import gc
import importlib
import signal
import socket
import subprocess
import sys
import threading

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _

from sync.priority import real_time_refused

from . import background, create_app, db, settings
from .i18n import cli_locale


@click.command("serve")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 32),
    help="Serving processes sharing the port; a busy central instance: one per CPU core.",
)
@click.option("--worker", type=int, default=None, hidden=True)  # set by --workers, not by hand
def serve_command(host: str, port: int, threads: int, workers: int, worker: int | None) -> None:
    """Serve the app with waitress (a production WSGI server) and run background jobs."""
    import waitress

    if workers > 1 and worker is None:
        _supervise(host, port, threads, workers)
        return
    app = current_app._get_current_object()
    _tune_gc()
    _tune_switching()
    stop = threading.Event()
    if not worker:  # the only process, or the first of --workers: one of each job, not N
        background.start(app, stop)
    try:
        if worker is None:
            click.echo(f"fieldapp serving on http://{host}:{port}/", err=True)
            waitress.serve(app, host=host, port=port, threads=threads, ident="fieldapp")
        else:
            sockets = [_shared_port(host, port)]
            waitress.serve(app, sockets=sockets, threads=threads, ident="fieldapp")
    finally:
        stop.set()


# Container allocations (net of frees) between two collections of the youngest generation.
GC_THRESHOLD = 50_000


def _tune_gc() -> None:
    """Collect cycles less often in a serving process than Python's defaults do.

    A 500-record push decodes to over a thousand dicts that live until its answer is sent;
    with the default threshold (700) every batch set off several collections, which moved the
    batches in flight into the older generations and so set off full ones, over the app's
    whole heap. Freezing what the app holds after start-up keeps it out of every collection;
    the higher threshold leaves batches to reference counting, which frees them when the
    answer is sent. Measured with bench/sync_ingest.py (100,000 records): the serving
    processes ran about 470 collections, 5-6 % of their CPU; now none.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


# How long a thread may keep the GIL once another asks for it (Python's default: 5 ms).
SWITCH_INTERVAL = 0.001


def _tune_switching() -> None:
    """Hand the GIL to a thread that waits for it after 1 ms instead of Python's 5 ms.

    The thread writing a group of batches lets go of the GIL at every statement SQLite runs
    (at every row, when this was measured: the rows are now one statement a batch), and a
    thread checking the next batch takes it; the writer, whom both serving processes are
    waiting for, then had it back only once that thread had run for the whole interval.
    Measured with bench/sync_ingest.py (7 paired runs): 37,900 -> 39,800 records/s (medians);
    inside the write lock, the time spent waiting for the GIL fell from 3.6-3.9 to 2.3-2.9 µs
    a record.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)


def _shared_port(host: str, port: int) -> socket.socket:
    """A listening socket other processes of this user can listen on too: the kernel spreads
    the connections among them (SO_REUSEPORT)."""
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(info[4])
    sock.listen(1024)
    return sock


def _supervise(host: str, port: int, threads: int, workers: int) -> None:
    """Start the worker processes, pass SIGTERM and Ctrl-C on to them, and stop them all if one
    of them stops: a half-served port is worse than a service manager's restart."""
    if not hasattr(socket, "SO_REUSEPORT"):
        with force_locale(cli_locale()):
            message = _("--workers above 1 needs SO_REUSEPORT (Linux, macOS, BSD).")
        raise click.UsageError(message)
    argv = [sys.executable, "-m", "fieldapp.cli", "serve", "--host", host, "--port", str(port)]
    argv += ["--threads", str(threads)]
    children = [subprocess.Popen([*argv, "--worker", str(i)]) for i in range(workers)]
    click.echo(f"fieldapp serving on http://{host}:{port}/ ({workers} workers)", err=True)
    if real_time_refused():
        with force_locale(cli_locale()):
            note = _(
                "Note: the writing thread keeps its ordinary priority; with systemd's"
                " LimitRTPRIO=1 (or CAP_SYS_NICE) it would run at real-time priority while it"
                " writes, and a busy instance would take in records faster."
            )
        click.echo(note, err=True)

    asked = threading.Event()

    def stop_all(*_args: object) -> None:
        asked.set()
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    ended = None
    try:
        while ended is None:
            ended = next((c for c in children if c.poll() is not None), None)
            asked.wait(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            child.wait()
    if not asked.is_set():  # a worker ended on its own (even cleanly): the service has ended
        raise SystemExit(ended.returncode or 1)


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


def _create_app() -> Flask:
    """The app, or a plain error in the user's language when a setting cannot be used."""
    try:
        return create_app()
    except settings.SettingError as exc:
        raise click.ClickException(exc.translated(cli_locale())) from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """fieldapp: gate registration that works offline and syncs up the chain."""


if __name__ == "__main__":
    main()
