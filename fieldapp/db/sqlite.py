"""SQLite, the embedded default: one file beside the instance, WAL, one serving process."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here, the README's "stop the server" stands
    fcntl = None  # type: ignore[assignment]


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


def _lock_file(path: str | Path) -> IO[bytes]:
    """The file beside the database that `fieldapp serve` holds while it runs."""
    return open(f"{path}.serving", "ab")  # noqa: SIM115 -- held open by the caller


def serving(path: str | Path) -> IO[bytes] | None:
    """Hold the database's serving lock for as long as the returned file stays open (the
    serving process's life; the system lets it go however the process ends)."""
    if fcntl is None:
        return None
    try:
        held = _lock_file(path)
    except OSError:  # a folder it cannot write: the database itself will say so
        return None
    fcntl.flock(held.fileno(), fcntl.LOCK_SH)
    return held


@contextmanager
def unserved(path: str | Path) -> Iterator[bool]:
    """Hold the serving lock alone for a block (a restore); yields False, holding nothing,
    if a server holds it now."""
    try:
        held = _lock_file(path) if fcntl is not None else None
    except OSError:  # a folder it cannot write: what the block writes will say so
        held = None
    if held is None:
        yield True
        return
    with held:
        try:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(held.fileno(), fcntl.LOCK_UN)
