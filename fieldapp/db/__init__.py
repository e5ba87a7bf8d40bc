"""The one place a database connection is made: SQLite, a file (the default at every tier), or
PostgreSQL, a postgresql:// URL (DATABASE_URL, for a central that outgrows one machine).

The domain's SQL is written once, with `?` parameters, in the subset both engines read alike;
what differs (connection set-up, DDL types, a few spellings) is kept in one module per engine:
db/sqlite.py and db/postgres.py. Migrations are the numbered schema/*.sql files of fieldapp/
and sync/, applied in one transaction each with their record; on PostgreSQL each statement is
translated first (postgres.translate_ddl).
"""

from __future__ import annotations

import sqlite3
import string
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, current_app, g

from fieldapp.db import postgres
from fieldapp.db import sqlite as sqlite_engine
from sync.store import iso, utcnow

# Packages whose schema/ folder holds numbered migrations, applied in this order.
# sync/ keeps its own tables (change log, cursors) beside fieldapp's domain tables.
MIGRATION_PACKAGES = ("fieldapp", "sync")

# What a connection of either engine raises for a broken constraint, and for anything.
IntegrityError = (sqlite3.IntegrityError, postgres.IntegrityError)
Error = (sqlite3.Error, postgres.Error)

# A connection of either engine: sqlite3.Connection, or postgres.Connection, which takes the
# same calls (execute, executemany, in_transaction, rows by name and by index).
Connection = Any


def is_postgres(target: str | Path) -> bool:
    """Whether a DATABASE setting names a PostgreSQL database rather than a SQLite file."""
    return str(target).startswith(("postgresql://", "postgres://"))


def shown(target: str | Path) -> str:
    """A database setting as it may be printed: a URL's password left out."""
    parts = urlsplit(str(target))
    if not is_postgres(target) or parts.password is None:
        return str(target)
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def connect(target: str | Path) -> Connection:
    """Open a connection to the instance's database (a file path or a postgresql:// URL) with
    everything fieldapp relies on set; the only connect() there is."""
    if is_postgres(target):
        return postgres.connect(str(target))
    return sqlite_engine.connect(target)


def dialect(conn: Connection) -> str:
    """'postgresql' or 'sqlite': for the few places whose SQL must differ (see columns())."""
    return getattr(conn, "dialect", "sqlite")


def tables(conn: Connection) -> list[str]:
    """The database's own tables, by name."""
    if dialect(conn) == "postgresql":
        return postgres.tables(conn)
    return sqlite_engine.tables(conn)


def columns(conn: Connection, table: str) -> list[str]:
    """A table's columns, in order (names only ever come from here or from code)."""
    if dialect(conn) == "postgresql":
        return postgres.columns(conn, table)
    return sqlite_engine.columns(conn, table)


@contextmanager
def turn(target: str | Path, name: str) -> Iterator[bool]:
    """Whether this process may run the named job now: on PostgreSQL only one session at a
    time holds its advisory lock (others get False at once, and a process that dies lets go);
    SQLite is served by one process, whose jobs take turns by themselves."""
    if not is_postgres(target):
        yield True
        return
    conn = connect(target)
    try:
        with postgres.session_lock(conn, name) as mine:
            yield mine
    finally:
        conn.close()


def in_list(column: str, values: list[Any]) -> str:
    """SQL for `column IN (?, ...)` over values (bound after it); false for none, since
    PostgreSQL has no `IN ()` (a scope with no site in it, for example)."""
    return f"{column} IN ({','.join('?' * len(values))})" if values else "1 = 0"


# A LIKE pattern's case is folded here, as SQLite's lower() and upper() fold it (ASCII letters
# alone), not by `lower(?)` in SQL: on PostgreSQL a parameter folds by the database's locale (a
# C.UTF-8 or en_US.UTF-8 database lowers É), a column by its own COLLATE "C" (ASCII).
_TO_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_TO_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


def contains(text: str, case: str = "") -> str:
    """A pattern for `LIKE ? ESCAPE '\\'` that matches text anywhere in a value (its % and _
    mean themselves); case "lower" or "upper" folds its ASCII letters, to match `lower(column)`
    or an upper-case column the same way on both engines."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if case == "lower":
        escaped = escaped.translate(_TO_LOWER)
    elif case == "upper":
        escaped = escaped.translate(_TO_UPPER)
    return f"%{escaped}%"


def chunks(values: Sequence[Any], size: int = 900) -> Iterator[Sequence[Any]]:
    """values in slices of at most size, for IN lists within every engine's bound-variable
    limit (SQLite's is 32,766 since 3.32, 999 before)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def json_number(conn: Connection, column: str, key: str) -> str:
    """SQL for the number under key of a JSON object stored as text (names from code only)."""
    if dialect(conn) == "postgresql":
        return f"({column}::jsonb ->> '{key}')::float8"
    return f"json_extract({column}, '$.{key}')"


def checkpoint(conn: Connection, tables: list[str], seconds: float = 30.0) -> bool:
    """Make rows just deleted from tables leave the database files: SQLite copies its WAL into
    the database and empties it (their pages overwritten, secure_delete); PostgreSQL vacuums
    the tables, so their space is reused by the next rows (what else the operator does: README)."""
    if dialect(conn) == "postgresql":
        conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
        return True
    return sqlite_engine.checkpoint(conn, seconds)


def tuples(conn: Connection, sql: str, params: Any = ()) -> list[tuple]:
    """A query's rows as plain tuples, read by position: for thousands of rows at once (a
    city's roll-call), where a row by column name costs more than reading it."""
    cur = conn.cursor()
    cur.row_factory = None
    cur.execute(sql, params)
    return cur.fetchall()


def stream(conn: Connection, sql: str, params: Any = (), size: int = 5000) -> Iterator[list]:
    """A query's rows as tuples, in lists of up to size, never all of them in memory at once
    (exports): SQLite's cursor reads them as it goes; PostgreSQL's comes from a server-side
    cursor (postgres.Connection.stream)."""
    if dialect(conn) == "postgresql":
        yield from conn.stream(sql, params, size)
        return
    cur = conn.cursor()
    cur.row_factory = None  # tuples: several times cheaper per row than sqlite3.Row
    cur.execute(sql, params)
    while part := cur.fetchmany(size):
        yield part


@contextmanager
def transaction(conn: Connection, mode: str = "IMMEDIATE") -> Iterator[Connection]:
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


def migrate(conn: Connection) -> list[str]:
    """Apply every migration not yet recorded; each one commits together with its record."""
    pg = dialect(conn) == "postgresql"
    if pg:
        postgres.prepare(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    applied = []
    for name, sql in _migrations():
        if name in done:
            continue
        with transaction(conn):
            # executescript would COMMIT on its own; run statement by statement instead.
            for statement in _split_sql(sql):
                conn.execute(postgres.translate_ddl(statement) if pg else statement)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, iso(utcnow()))
            )
        applied.append(name)
    return applied


def pending(conn: Connection) -> list[str]:
    """The migrations this database lacks (all of them for one `fieldapp init` never made)."""
    names = [name for name, _sql in _migrations()]
    if "migrations" not in tables(conn):
        return names
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    return [name for name in names if name not in done]


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


def get_db() -> Connection:
    """The request's connection: the serving thread's own, opened once and kept.

    Opening a connection per request ran the set-up again and started with an empty page
    cache; a thread keeps its connection (and its cache and prepared statements) for the app's
    life instead. A PostgreSQL connection the server has closed is opened again.
    """
    if "db" not in g:
        local = current_app.extensions["fieldapp.db"]
        conn = getattr(local, "conn", None)
        if conn is None or getattr(conn, "closed", False):
            conn = local.conn = connect(current_app.config["DATABASE"])
            current_app.extensions["fieldapp.db.open"].append(conn)
        g.db = conn
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    """End the request's use of its connection: nothing it left uncommitted survives."""
    db = g.pop("db", None)
    if db is not None and not getattr(db, "closed", False) and db.in_transaction:
        db.execute("ROLLBACK")


def close_all(app: Flask) -> None:
    """Close every serving thread's connection (the app is done with them)."""
    opened = app.extensions["fieldapp.db.open"]
    while opened:
        opened.pop().close()
    app.extensions["fieldapp.db"] = threading.local()


def init_app(app: Flask) -> None:
    """Keep one connection per serving thread, end each request's use of it."""
    app.extensions["fieldapp.db"] = threading.local()
    app.extensions["fieldapp.db.open"] = []  # every thread's, to close them at the end
    app.teardown_appcontext(close_db)
