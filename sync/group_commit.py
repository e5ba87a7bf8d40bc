"""Group commit: the writes of concurrent threads made durable by one COMMIT, each on its own.

Eight downstreams pushing at once used to mean eight connections taking turns at the write
lock, each committing its own 500 records. A commit writes every page its records touched, and
random UUIDs touch a page of the uuid index for nearly every record, so the same index pages
went to the WAL over and over; and each connection's page cache was thrown away whenever one of
the others had written.

Here one connection does every write of the process. A thread hands its write over as a
function; whichever thread finds the write lock free becomes the leader, takes every write
queued by then, runs them one after the other in one transaction, commits once and wakes the
others (the scheme LevelDB's and PostgreSQL's group commits use). A write that raises is
undone alone and the exception is raised in its own thread; the others are still stored: the
group is rolled back and run again with each write inside its own SAVEPOINT. Savepoints are
kept for that rare case because they are not free: SQLite copies every page a write touches
for the first time inside a savepoint into the statement journal, which cost a 500-record
batch about a quarter of its write time. So a write may run twice; only the run that commits
counts, and a write must not keep anything of a run that was rolled back. A failed BEGIN or
COMMIT fails every write of that group, and none is stored. Nobody is answered before the
COMMIT that made their write durable has returned.

Several processes serving the same database (`fieldapp serve --workers 2`) take turns through
a lock file beside it: a process waiting for its turn sleeps in the kernel and is woken the
moment the other lets go. Without it they met only at SQLite's write lock, whose busy handler
polls (after 1, 2, 5, 10… ms) and keeps losing the race to the holder's next commit, so two
processes wrote no faster than one. The leader takes the queue once its process has the turn,
so what queued while the other process wrote goes into the same commit.

With checkpoint_every, the WAL is checkpointed by a thread of its own instead of inside the
COMMIT that fills it (sync.checkpoints): the writers no longer wait for a checkpoint's fsyncs.
With raise_priority, the leader is not put aside for other threads while it holds the turn
(sync.priority).
"""

from __future__ import annotations

import contextlib
import copy
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from .checkpoints import BACKSTOP_PAGES, ROWS_PER_PASS, Checkpointer
from .priority import WriterPriority

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one serving process, SQLite's lock suffices
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

# How many writes one transaction takes at most: enough to share commits among every serving
# thread, few enough that a leader does not keep writing for others for long.
MAX_GROUP = 32


class _Job(Generic[T]):
    __slots__ = ("work", "result", "error", "done")

    def __init__(self, work: Work[T]) -> None:
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """Writes to one database through one connection, concurrent ones committed together.

    connect opens that connection (lazily, on the first write). run(work) calls work(conn)
    inside a transaction and returns its value once the transaction is committed, or raises
    what work raised (nothing of that work is stored) or what failed the commit. work may be
    called again, in a new transaction, if another write of its group raised: its value is
    the one of the call that committed. lock_path,
    if given, names the lock file the processes writing that database take turns with.
    checkpoint_every, if given, takes checkpoints off the write path: a thread of their own
    runs them, at most once every that many seconds, once checkpoint_rows rows have been
    written since the last (sync.checkpoints.Checkpointer). raise_priority: the leader runs
    at real-time priority while it waits for and holds the turn, where the system allows it
    (sync.priority).
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        lock_path: str | Path | None = None,
        max_group: int = MAX_GROUP,
        checkpoint_every: float | None = None,
        checkpoint_rows: int = ROWS_PER_PASS,
        raise_priority: bool = False,
    ) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._turn = _FileLock(lock_path) if lock_path is not None and fcntl else None
        self.checkpoints = (
            Checkpointer(connect, every=checkpoint_every, rows=checkpoint_rows)
            if checkpoint_every is not None
            else None
        )
        self._priority = WriterPriority() if raise_priority else None
        self._max_group = max_group
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()  # held by the thread writing a group
        self.groups = 0  # transactions committed (or tried), for tests and figures
        self.writes = 0  # works run in them

    def run(self, work: Work[T]) -> T:
        """Run work(conn) in a transaction shared with concurrent writes; its value, committed."""
        job: _Job[T] = _Job(work)
        with self._queue_lock:
            self._queue.append(job)
        while not job.done:
            with self._leader:
                if not job.done:
                    self._lead()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    @property
    def queued(self) -> int:
        """How many works wait for a group to take them."""
        with self._queue_lock:
            return len(self._queue)

    def close(self) -> None:
        """Close the connection (a later write opens it again)."""
        with self._leader:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._turn is not None:
                self._turn.close()
        if self.checkpoints is not None:
            self.checkpoints.close()

    def _open(self) -> sqlite3.Connection:
        """The writing connection; with checkpoints of their own, its automatic checkpoint is
        only the backstop."""
        conn = self._connect()
        if self.checkpoints is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        return conn

    def _take(self) -> list[_Job[Any]]:
        """The oldest queued works, as many as a group takes, out of the queue."""
        with self._queue_lock:
            jobs = self._queue[: self._max_group]
            del self._queue[: self._max_group]
        return jobs

    def _lead(self) -> None:
        """Write the queued works (the oldest first) in one transaction; mark each done."""
        jobs: list[_Job[Any]] = []
        try:
            # The queue is taken once this process has its turn, not before: the works queued
            # while the other process wrote join this group instead of waiting for the next.
            # Raised before the turn is taken: woken when it is free, the leader runs at once.
            with (
                self._priority.raised() if self._priority else contextlib.nullcontext(),
                self._turn or contextlib.nullcontext(),
            ):
                jobs = self._take()
                if not jobs:
                    return
                self.groups += 1
                self.writes += len(jobs)
                conn = self._conn
                if conn is None:
                    conn = self._conn = self._open()
                _write_group(conn, jobs)
                if self.checkpoints is not None:
                    self.checkpoints.committed(conn)
        except Exception as exc:  # BEGIN, a savepoint or COMMIT failed: none of them is stored
            if not jobs:  # the turn itself could not be taken: the queued works fail with it
                jobs = self._take()
            for job in jobs:
                job.result = None
                if job.error is None:
                    # Each thread raises its own copy: one exception object raised in several
                    # threads at once would get their tracebacks mixed up.
                    job.error = _own_copy(exc)
        except BaseException:  # KeyboardInterrupt, SystemExit: the leader's own, not theirs
            for job in jobs:
                job.result, job.error = None, RuntimeError("the write was interrupted")
                job.done = True
            raise
        for job in jobs:
            job.done = True


def _write_group(conn: sqlite3.Connection, jobs: list[_Job[Any]]) -> None:
    """The jobs in one transaction; raise if the transaction fails. If a job raises, the
    transaction is rolled back and, when others share it, run again with each job in its own
    savepoint, so that only the failing one is undone."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for job in jobs:
            job.result = job.work(conn)
    except Exception as exc:
        _rollback(conn)
        if len(jobs) == 1:  # nothing else to keep: the job fails, the group is done
            jobs[0].result, jobs[0].error = None, exc
        else:
            _write_each_alone(conn, jobs)
        return
    except BaseException:
        _rollback(conn)
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _write_each_alone(conn: sqlite3.Connection, jobs: list[_Job[Any]]) -> None:
    """Each job in its own savepoint of one transaction; raise if the transaction fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for job in jobs:
            job.result = job.error = None
            conn.execute("SAVEPOINT group_commit_write")
            try:
                job.result = job.work(conn)
            except Exception as exc:  # this write alone is undone
                conn.execute("ROLLBACK TO group_commit_write")
                job.error = exc
            conn.execute("RELEASE group_commit_write")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not ended it already after an error."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class _FileLock:
    """An exclusive flock(2) on a file, held while one process writes; the kernel lets go of it
    when the process ends, however it ends."""

    def __init__(self, path: str | Path) -> None:
        self._path = os.fspath(path)
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _own_copy(exc: BaseException) -> BaseException:
    try:
        return copy.copy(exc)
    except Exception:  # pragma: no cover - an exception that cannot be copied
        return exc
