"""Checkpoints off the write path: the WAL copied into the database by a thread of its own.

SQLite checkpoints on its own inside the COMMIT that takes the WAL past its limit: that writer
copies every page the WAL holds into the database file and waits for two fsyncs, all the while
holding the write lock that every serving process is waiting for. During a 100,000-record push
(bench/sync_ingest.py) that was 6–10 checkpoints of 50–80 ms each: about half of the writers'
time in COMMIT, an eighth of the time they held the lock.

Here a thread with its own connection runs PASSIVE checkpoints, which copy beside the writers
and make nobody wait: a pass is due once ROWS_PER_PASS rows have been written since the last
one (a few hundred gate entries; a fraction of a second of a busy ingest), and runs at most
once every `every` seconds. Under a steady stream of commits a passive checkpoint never copies
the whole WAL (commits land while it runs), and SQLite starts the WAL file over only after a
checkpoint has copied all of it; so after each pass the next writer, still holding the write
lock, copies what was committed during the pass (`committed`): a group or two of pages instead
of thousands. The writer's own automatic checkpoint stays on as a backstop (BACKSTOP_PAGES)
for when this thread falls behind.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

# The writer's automatic checkpoint once checkpoints are taken off its path: far above what a
# busy second of ingest writes (≈ 20,000 pages), so it only runs if the thread falls behind.
BACKSTOP_PAGES = 50_000
# Rows written (inserted, updated, deleted) since the last pass before another is due: a quiet
# gate's entries stay in the WAL as SQLite would keep them, instead of a pass, and its fsyncs,
# after every one.
ROWS_PER_PASS = 1000


class Checkpointer:
    """Background PASSIVE checkpoints of one database: one pass once `rows` rows have been
    written since the last, at most one every `every` seconds.

    connect opens the thread's own connection (lazily). The writer calls committed(conn) after
    each commit, still holding the write lock; close() stops the thread (a later commit starts
    it again).
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        every: float,
        rows: int = ROWS_PER_PASS,
    ) -> None:
        self._connect = connect
        self._every = every
        self._rows = rows
        self._written_at_pass = 0  # the writer connection's total_changes when a pass was asked
        self._due = threading.Event()  # enough rows written since the last pass
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._catch_up = False  # a pass has run since the writer last caught up
        self.passes = 0  # background passes run, for tests and figures
        self.catch_ups = 0  # passes run by the writer after one of those

    def committed(self, conn: sqlite3.Connection) -> None:
        """After a commit on conn, the write lock still held: copy what the last background
        pass could not (so that the next writer starts the WAL over), and ask for a pass once
        enough rows have been written since the last.

        Never raises: the commit is done, and a checkpoint that cannot run now is left to the
        next pass, or to the writer's own automatic checkpoint."""
        if self._catch_up:
            self._catch_up = False
            self.catch_ups += 1
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass
        written = conn.total_changes
        if written < self._written_at_pass:  # a new connection: its count starts again
            self._written_at_pass = 0
        if written - self._written_at_pass < self._rows:
            return
        self._written_at_pass = written
        if self._thread is None:
            try:
                self._start()
            except RuntimeError:  # no thread to be had (interpreter shutting down)
                return
        self._due.set()

    def close(self) -> None:
        """Stop the thread, waiting for a pass it is running, and close its connection."""
        with self._start_lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._stop.set()
            self._due.set()
        thread.join(timeout=60)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="sync-checkpoints", daemon=True
            )
            self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._due.wait()
                if stop.is_set():
                    return
                self._due.clear()
                try:
                    if conn is None:
                        conn = self._connect()
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy (another process's pass) or gone: the next pass tries again
                else:
                    self.passes += 1
                    self._catch_up = True
                if stop.wait(self._every):
                    return
        finally:
            if conn is not None:
                conn.close()


def checkpoint_all(conn: sqlite3.Connection, *, seconds: float = 30.0) -> bool:
    """Copy the whole WAL into the database file and empty it (wal_checkpoint(TRUNCATE)).

    SQLite answers busy at once, without waiting, while another checkpoint runs (a writer's
    background pass, another process's): try again until it has finished. False if the WAL
    could not be emptied within `seconds` (readers kept reading old pages all that time).
    """
    deadline = time.monotonic() + seconds
    while True:
        busy, _frames, _copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
