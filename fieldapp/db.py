"""The one place a SQLite connection is made, plus the migrations runner."""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import click
from flask import Flask, current_app, g
from flask.cli import with_appcontext

import sync

# Packages whose schema/ folder holds numbered migrations, applied in this order.
# sync/ keeps its own tables (change log, cursors) beside fieldapp's domain tables.
MIGRATION_PACKAGES = ("fieldapp", "sync")
# Seconds between the writer's background checkpoints while records come in (sync.checkpoints).
CHECKPOINT_EVERY = 0.5


def connect(path: str | Path, *, writer: bool = False) -> sqlite3.Connection:
    """Open a connection with every pragma fieldapp relies on; the only connect() there is.

    writer: the connection the app's records are written through (see writer() below) keeps
    a page cache large enough for the hot index pages of a busy ingest, 64 MiB at most, and
    its statement journals in memory: one that outgrew 64 KiB went to a temporary file, and
    a batch's write rewrote a few megabytes there.
    """
    conn = sqlite3.connect(
        path,
        timeout=30,
        isolation_level=None,  # autocommit; transaction() below says where writes begin
        check_same_thread=False,
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes; WAL makes it safe
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA secure_delete=ON")  # purged personal data is overwritten, not left behind
    # Checkpoint when the WAL passes 40 MB, not 4 MB: a page rewritten by many commits is
    # copied into the database once per checkpoint, and a busy ingest rewrites the same
    # uuid-index pages at every commit. The file is cut back to 64 MB after a checkpoint.
    # (The app's writer leaves checkpoints to a thread of their own: sync.checkpoints.)
    conn.execute("PRAGMA wal_autocheckpoint=10000")
    conn.execute("PRAGMA journal_size_limit=67108864")
    if writer:
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
    """Run a block in one write transaction: all of it commits, or none of it."""
    if conn.in_transaction:  # nested use joins the outer transaction
        yield conn
        return
    conn.execute(f"BEGIN {mode}")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrations() -> list[tuple[str, str]]:
    """All migrations as (name, sql), ordered by package then number."""
    found: list[tuple[str, str]] = []
    for package in MIGRATION_PACKAGES:
        folder = resources.files(package) / "schema"
        if not folder.is_dir():
            continue
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.endswith(".sql"):
                found.append((f"{package}/{item.name}", item.read_text(encoding="utf-8")))
    return found


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded; each one commits together with its record."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations ("
        " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')))"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    applied = []
    for name, sql in _migrations():
        if name in done:
            continue
        with transaction(conn):
            # executescript would COMMIT on its own; run statement by statement instead.
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO migrations (name) VALUES (?)", (name,))
        applied.append(name)
    return applied


def _split_sql(sql: str) -> list[str]:
    """Split a migration into complete statements (triggers keep their inner semicolons)."""
    statements, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


def get_db() -> sqlite3.Connection:
    """The request's connection: the serving thread's own, opened once and kept.

    Opening a connection per request ran the pragmas again and started with an empty page
    cache, so every sync batch read its index pages afresh; a thread keeps its connection (and
    its cache and prepared statements) for the app's life instead.
    """
    if "db" not in g:
        local = current_app.extensions["fieldapp.db"]
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect(current_app.config["DATABASE"])
        g.db = conn
    return g.db


def writer() -> sync.GroupCommit:
    """The app's writer: records of concurrent requests committed together, one connection.

    Records are written only through it (fieldapp.records.save), so its page cache stays warm;
    the serving threads' own connections read.
    """
    return current_app.extensions["fieldapp.writer"]


def close_db(_exc: BaseException | None = None) -> None:
    """End the request's use of its connection: nothing it left uncommitted survives."""
    db = g.pop("db", None)
    if db is not None and db.in_transaction:
        db.execute("ROLLBACK")


def init_app(app: Flask) -> None:
    """Keep one connection per serving thread, end each request's use of it; one writer."""
    app.extensions["fieldapp.db"] = threading.local()
    database = app.config["DATABASE"]
    group = sync.GroupCommit(
        lambda: connect(database, writer=True),
        lock_path=f"{database}-writer.lock",
        checkpoint_every=CHECKPOINT_EVERY,
        raise_priority=True,
    )
    app.extensions["fieldapp.writer"] = group
    weakref.finalize(app, group.close)
    app.teardown_appcontext(close_db)


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or migrate the database and the instance keys; safe to run twice."""
    from . import instance

    instance.ensure_keys(current_app)
    conn = connect(current_app.config["DATABASE"])
    try:
        applied = migrate(conn)
        instance.ensure_identity(conn)
    finally:
        conn.close()
    where = current_app.config["DATABASE"]
    if applied:
        click.echo(f"Database {where}: applied {', '.join(applied)}")
    else:
        click.echo(f"Database {where}: up to date")
