"""SQLite, the embedded default: one file beside the instance, WAL, one serving process."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection with every pragma fieldapp relies on."""
    conn = sqlite3.connect(
        path,
        timeout=30,
        isolation_level=None,  # autocommit; db.transaction() says where writes begin
        check_same_thread=False,
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes; WAL makes it safe
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA secure_delete=ON")  # purged personal data is overwritten, not left behind
    # A batch of 500 records dirties about 2,000 pages (its rows land all over the uuid and time
    # indexes): at SQLite's default of 1,000, every batch's COMMIT also copied the WAL back into
    # the file and synced both. At 10,000 pages (a WAL of up to 40 MB) a page the next batches
    # touch again is copied once for several. Still SQLite's own checkpoint, in the COMMIT.
    conn.execute("PRAGMA wal_autocheckpoint=10000")
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
