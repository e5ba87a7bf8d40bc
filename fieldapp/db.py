"""The one place a SQLite connection is made, plus the migrations runner."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from flask import Flask, current_app, g

# Packages whose schema/ folder holds numbered migrations, applied in this order.
# sync/ keeps its own tables (change log, cursors) beside fieldapp's domain tables.
MIGRATION_PACKAGES = ("fieldapp", "sync")


def connect(path: str | Path) -> sqlite3.Connection:
    """Open a connection with every pragma fieldapp relies on; the only connect() there is."""
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
    return conn


def checkpoint(conn: sqlite3.Connection, seconds: float = 30.0) -> bool:
    """Copy the whole WAL into the database file and empty it, so that rows deleted (and
    overwritten, secure_delete) leave no old copy behind; False if readers kept it busy."""
    deadline = time.monotonic() + seconds
    while True:
        busy, _frames, _copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


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


def close_db(_exc: BaseException | None = None) -> None:
    """End the request's use of its connection: nothing it left uncommitted survives."""
    db = g.pop("db", None)
    if db is not None and db.in_transaction:
        db.execute("ROLLBACK")


def init_app(app: Flask) -> None:
    """Keep one connection per serving thread, end each request's use of it."""
    app.extensions["fieldapp.db"] = threading.local()
    app.teardown_appcontext(close_db)
