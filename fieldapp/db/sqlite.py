"""SQLite, the embedded default: one file beside the instance, WAL, one serving process."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

# The row of an INSERT … VALUES (?, …), which executemany sends as a multi-row INSERT.
_ROW_OF_MARKS = re.compile(r"\bVALUES\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.IGNORECASE)


@lru_cache(maxsize=64)
def _multirow(sql: str, rows: int) -> str:
    """An INSERT of one row of `?` marks, as the INSERT of that many rows."""
    found = _ROW_OF_MARKS.search(sql)
    assert found is not None
    row = "(" + ",".join("?" * found.group(0).count("?")) + ")"
    return f"{sql[: found.start()]}VALUES {','.join([row] * rows)}{sql[found.end() :]}"


class Connection(sqlite3.Connection):
    """sqlite3's connection, whose executemany sends an `INSERT … VALUES (?, …)` of many rows
    as one multi-row INSERT (as many as SQLite's limit on bound values allows).

    sqlite3's own runs the statement once a row and lets go of the GIL around each run. A
    thread holding the write lock then waited to get the GIL back at every row while another
    thread was checking the next batch (up to Python's 5 ms switch interval each time), and
    the lock stood still meanwhile. One statement waits once. The cursor returned is the last
    statement's. PostgreSQL's adapter does the same within its own limit (postgres.Connection).
    """

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]], /) -> sqlite3.Cursor:
        found = _ROW_OF_MARKS.search(sql)
        if found is None or "?" in sql[: found.start()] + sql[found.end() :]:
            return super().executemany(sql, seq)
        rows = list(seq)
        width = found.group(0).count("?")
        per = max(1, self.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
        cur = self.cursor()
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            cur.execute(_multirow(sql, len(chunk)), [value for row in chunk for value in row])
        return cur


def connect(path: str | Path) -> Connection:
    """A connection with every pragma fieldapp relies on."""
    conn = sqlite3.connect(
        path,
        timeout=30,
        isolation_level=None,  # autocommit; db.transaction() says where writes begin
        check_same_thread=False,
        factory=Connection,
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes; WAL makes it safe
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA secure_delete=ON")  # purged personal data is overwritten, not left behind
    return conn


def tables(conn: sqlite3.Connection) -> list[str]:
    """The database's own tables."""
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name"
    )
    return [row[0] for row in rows]


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """A table's columns, in order."""
    return [row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]


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
