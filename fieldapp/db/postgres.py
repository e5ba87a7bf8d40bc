"""PostgreSQL, for a central that outgrows one SQLite file: what differs from SQLite, here.

A connection (psycopg 3, autocommit; transactions begin explicitly, as on SQLite) takes the
calls the domain makes of sqlite3: execute(sql, params) with `?` parameters, executemany,
in_transaction, rows read by column name or by index. A statement is translated once:

- `?` becomes `%s` (and a literal `%` doubles), parameters bound on the client (psycopg's
  ClientCursor), so a parameter's type never has to be inferred by the server;
- `BEGIN IMMEDIATE`, SQLite's "begin, and take the write lock now", becomes `BEGIN` and a
  transaction-wide advisory lock that every such transaction takes: writers of one database
  take turns, across processes and hosts, as they do on SQLite (the change log's chain and a
  batch's "is this uuid stored?" need them to);
- `INDEXED BY <index>`, SQLite's planner hint, goes;
- Python booleans are bound as 1 and 0: flags are integer columns on both engines.

DDL (the migrations) is translated by translate_ddl: integer keys become identities, INTEGER
BIGINT, REAL DOUBLE PRECISION, TEXT sorts by code point (COLLATE "C", as SQLite's BINARY), and
NOCASE is an ICU collation that compares case-insensitively.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from sync.store import ROW_OF_MARKS

IntegrityError = psycopg.IntegrityError
Error = psycopg.Error
OperationalError = psycopg.OperationalError  # the server cannot be reached, or went away


class Row(tuple):
    """A row as sqlite3.Row gives it: by index, by column name, and keys()."""

    __slots__ = ()
    _index: dict[str, int] = {}
    _names: tuple[str, ...] = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._names)


@lru_cache(maxsize=512)
def row_class(names: tuple[str, ...]) -> type[Row]:
    """The Row type of a result with these columns."""
    return type(
        "Row",
        (Row,),
        {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}, "_names": names},
    )


def _rows(cursor: Any) -> Any:
    """psycopg's row factory: Row objects named after the cursor's columns."""
    if cursor.description is None:
        return tuple
    return row_class(tuple(d.name for d in cursor.description))


_QUOTED_OR_MARK = re.compile(r"'(?:[^']|'')*'|\?")


@lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """A statement written for SQLite, as PostgreSQL reads it (see the module's docstring)."""
    sql = sql.replace("%", "%%")
    sql = _QUOTED_OR_MARK.sub(lambda m: "%s" if m.group(0) == "?" else m.group(0), sql)
    sql = re.sub(r"\bINDEXED BY \w+\s*", "", sql)
    return re.sub(r"^\s*BEGIN (DEFERRED|EXCLUSIVE)\b", "BEGIN", sql)


# How many parameters PostgreSQL binds in one statement (executemany's multi-row INSERTs).
MAX_PARAMETERS = 65535
# An INSERT that only adds its rows (no ON CONFLICT, no RETURNING): the same as COPY's.
_PLAIN_INSERT = re.compile(
    r"\s*INSERT INTO (?P<table>\w+) \((?P<columns>\w+(?:\s*,\s*\w+)*)\)"
    r"\s*VALUES\s*\(\s*\?(?:\s*,\s*\?)*\s*\)\s*",
    re.IGNORECASE,
)


@lru_cache(maxsize=64)
def _multirow(sql: str, rows: int) -> str:
    """An INSERT of one row of `?` marks, as the INSERT of that many rows ($n parameters)."""
    found = ROW_OF_MARKS.search(sql)
    assert found is not None
    width = found.group(0).count("?")
    values = ",".join(
        "(" + ",".join(f"${row * width + k}" for k in range(1, width + 1)) + ")"
        for row in range(rows)
    )
    return f"{sql[: found.start()]}VALUES {values}{sql[found.end() :]}"


# Names of server-side cursors (stream), unique within a connection.
_STREAMS = itertools.count(1)

# The advisory lock a write transaction takes (an arbitrary number, the same everywhere).
WRITE_LOCK = 7_130_417


def _params(params: Sequence[Any] | None) -> tuple[Any, ...]:
    return tuple(int(v) if v is True or v is False else v for v in params or ())


class Cursor:
    """A cursor as the domain uses sqlite3's: fetchone, fetchall, fetchmany, iteration."""

    def __init__(self, raw: psycopg.Cursor, rowcount: int | None = None) -> None:
        self._raw = raw
        self._rowcount = rowcount  # several statements' (executemany), else the raw cursor's

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement."""
        if sql.strip() == "BEGIN IMMEDIATE":
            self._raw.execute("BEGIN")
            self._raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            return self
        self._raw.execute(translate(sql), _params(params))
        return self

    @property
    def row_factory(self) -> Any:
        """None: plain tuples (a little cheaper), as sqlite3's cursor.row_factory = None."""
        return self._raw.row_factory

    @row_factory.setter
    def row_factory(self, value: Any) -> None:
        self._raw.row_factory = tuple_row if value is None else value

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed."""
        return self._raw.rowcount if self._rowcount is None else self._rowcount

    @property
    def description(self) -> Any:
        """The columns of the last result (name first, as sqlite3's)."""
        return self._raw.description

    def fetchone(self) -> Any:
        """The next row, or None."""
        return self._raw.fetchone() if self._raw.description is not None else None

    def fetchall(self) -> list[Any]:
        """The rows not read yet."""
        return self._raw.fetchall() if self._raw.description is not None else []

    def fetchmany(self, size: int) -> list[Any]:
        """Up to size more rows."""
        return self._raw.fetchmany(size)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def close(self) -> None:
        """Free the cursor."""
        self._raw.close()


class Connection:
    """A PostgreSQL connection that takes the calls the domain makes of a sqlite3 one."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection) -> None:
        self._raw = raw

    def cursor(self) -> Cursor:
        """A new cursor."""
        return Cursor(self._raw.cursor())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement; its cursor."""
        return self.cursor().execute(sql, params)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> Cursor:
        """Run one statement for each set of parameters. An `INSERT … VALUES (?, …)` goes as
        one multi-row INSERT (up to PostgreSQL's 65,535 parameters a statement), bound on the
        server: one statement to run instead of one a row, and the text, which psycopg would
        parse in Python at every call, made once per number of rows. Its rowcount is the rows
        all of them changed."""
        rows = [_params(p) for p in seq]
        plain = _PLAIN_INSERT.fullmatch(sql)
        if plain is not None:  # rows in, nothing else: COPY, which the server need not plan
            cur = psycopg.Cursor(self._raw)
            with cur.copy(f"COPY {plain['table']} ({plain['columns']}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return Cursor(cur, rowcount=len(rows))
        found = ROW_OF_MARKS.search(sql)
        if found is None or "?" in sql[: found.start()] + sql[found.end() :]:
            cur = psycopg.Cursor(self._raw)
            cur.executemany(translate(sql), rows)
            return Cursor(cur)
        cur = psycopg.RawCursor(self._raw)
        per = MAX_PARAMETERS // found.group(0).count("?")
        changed = 0
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            cur.execute(_multirow(sql, len(chunk)), [value for row in chunk for value in row])
            changed += cur.rowcount
        return Cursor(cur, rowcount=changed)

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 5000) -> Iterator[list]:
        """A query's rows (tuples) in lists of up to size, from a server-side cursor: a
        client-side one receives every row before the first is read (an export of ten million
        entries would be held whole). In the caller's transaction, or in one of its own that
        ends with the last row (or when the caller stops reading)."""
        own = not self.in_transaction
        name = f"stream_{next(_STREAMS)}"
        raw = self._raw.cursor(row_factory=tuple_row)
        if own:
            raw.execute("BEGIN")
        try:
            raw.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {translate(sql)}", _params(params))
            while part := raw.execute(f"FETCH FORWARD {int(size)} FROM {name}").fetchall():
                yield part
            raw.execute(f"CLOSE {name}")
        finally:
            if own and not self.closed and self.in_transaction:
                raw.execute("COMMIT")  # it only read (after an error, PostgreSQL rolls back)
            raw.close()

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        return self._raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def closed(self) -> bool:
        """Whether the connection can no longer be used (closed, or the server went away)."""
        return self._raw.closed or self._raw.broken

    def close(self) -> None:
        """Close it."""
        self._raw.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        # As sqlite3's: commit what is open, or roll it back after an error.
        if self.in_transaction:
            self.execute("ROLLBACK" if kind is not None else "COMMIT")


@contextmanager
def session_lock(conn: Connection, name: str) -> Iterator[bool]:
    """Try to hold the advisory lock named so for this session; whether it was free."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    mine = conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0]
    try:
        yield bool(mine)
    finally:
        if mine:
            conn.execute("SELECT pg_advisory_unlock(?)", (key,))


def connect(url: str) -> Connection:
    """A connection to the database at url, in autocommit, rows by name and by index."""
    raw = psycopg.connect(
        url, autocommit=True, cursor_factory=psycopg.ClientCursor, row_factory=_rows
    )
    return Connection(raw)


def prepare(conn: Connection) -> None:
    """What the translated migrations need before the first: a case-insensitive collation."""
    conn.execute(
        "CREATE COLLATION IF NOT EXISTS nocase"
        " (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
    )


def tables(conn: Connection) -> list[str]:
    """The database's own tables (of the schema in use)."""
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
    )
    return [row[0] for row in rows]


def columns(conn: Connection, table: str) -> list[str]:
    """A table's columns, in order."""
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
        (table,),
    )
    return [row[0] for row in rows]


def translate_ddl(statement: str) -> str:
    """A migration's statement, written for SQLite, as PostgreSQL creates the same thing."""
    lines = []
    for line in statement.splitlines():
        code = line.split("--", 1)[0]
        code = re.sub(
            r"\bINTEGER PRIMARY KEY( AUTOINCREMENT)?\b",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            code,
        )
        code = re.sub(r"\bINTEGER\b", "BIGINT", code)
        code = re.sub(r"\bREAL\b", "DOUBLE PRECISION", code)
        if "COLLATE NOCASE" in code:
            code = code.replace("COLLATE NOCASE", "COLLATE nocase")
        else:
            code = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', code)
        lines.append(code)
    out = "\n".join(lines)
    # A refused record's body can be long: btree keys cannot, so its uniqueness goes by hash.
    out = out.replace(
        "UNIQUE (uuid, status, body)",
        "body_hash TEXT GENERATED ALWAYS AS (md5(body)) STORED, UNIQUE (uuid, status, body_hash)",
    )
    return out
