"""sync.checkpoints: the WAL reaches the database file from a thread of its own, and the writer
only copies what a pass missed, so that the WAL starts over under a steady stream of commits.

What a checkpoint has copied is read from a copy of the database file alone, without its WAL.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time

import pytest
from gate_helpers import make_site
from test_group_commit import insert, opener
from test_retention import ago, entry, save

from sync import GroupCommit


@pytest.fixture
def path(tmp_path):
    """A WAL database with the table t the group-commit tests write to."""
    db = tmp_path / "c.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, parent INTEGER)")
    conn.close()
    return db


def on_disk(database, tmp_path, sql="SELECT n FROM t ORDER BY n", params=()) -> list:
    """What sql finds in the database file itself, without its WAL: what checkpoints have
    copied there (by default the rows of t)."""
    copy = tmp_path / "file-only.sqlite3"
    shutil.copyfile(database, copy)
    conn = sqlite3.connect(copy)
    try:
        return [r[0] for r in conn.execute(sql, params)]
    finally:
        conn.close()
        for leftover in tmp_path.glob("file-only.sqlite3*"):
            leftover.unlink()


def eventually(probe, expected, seconds: float = 10.0):
    """probe() once it equals expected, or its last value after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            got = probe()
        except sqlite3.DatabaseError:  # copied while a pass was writing the file: look again
            got = None
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sync-checkpoints"]


def test_commits_reach_the_database_file_without_the_writer_checkpointing(path, tmp_path):
    """Twenty small commits are far below SQLite's own checkpoint (1,000 pages): only the
    background thread can have copied them into the file."""
    group = GroupCommit(opener(path), checkpoint_every=0.01, checkpoint_rows=1)
    for n in range(20):
        group.run(insert(n))
    assert eventually(lambda: on_disk(path, tmp_path), list(range(20))) == list(range(20))
    assert group.checkpoints.passes >= 1
    assert len(checkpoint_threads()) == 1
    group.close()
    assert checkpoint_threads() == []
    group.run(insert(20))  # a write after close() starts the thread again
    assert len(checkpoint_threads()) == 1
    group.close()


def test_the_writer_copies_what_a_pass_missed_so_the_wal_starts_over(path, tmp_path):
    # One pass, then none for a minute.
    group = GroupCommit(opener(path), checkpoint_every=60, checkpoint_rows=1)
    group.run(insert(0))
    assert eventually(lambda: group.checkpoints.passes, 1) == 1
    assert on_disk(path, tmp_path) == [0]
    # The pass is over; this commit lands after it, and its writer copies it before answering.
    group.run(insert(1))
    assert group.checkpoints.catch_ups == 1
    assert on_disk(path, tmp_path) == [0, 1]
    # The WAL was all copied when the next write began: it wrote from the WAL's start again.
    group.run(insert(2))
    conn = sqlite3.connect(path)  # opened before the group's close, which would end the WAL
    try:
        _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        conn.close()
        group.close()
    assert frames == 1  # insert(2)'s page alone, not the three commits' pages


def test_the_writer_connection_leaves_checkpoints_to_the_thread(path):
    group = GroupCommit(opener(path), checkpoint_every=1)
    seen: list[int] = []
    group.run(lambda conn: seen.append(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]))
    group.close()
    plain = GroupCommit(opener(path))
    plain.run(lambda conn: seen.append(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]))
    plain.close()
    assert seen == [50_000, 1000]  # the backstop; SQLite's default without the thread


def test_a_pass_waits_for_enough_rows_written_since_the_last(path, tmp_path):
    """A quiet gate's few entries stay in the WAL, as SQLite would keep them: no pass, with its
    fsyncs, after every commit."""
    group = GroupCommit(opener(path), checkpoint_every=0.01, checkpoint_rows=30)
    for n in range(29):
        group.run(insert(n))
    time.sleep(0.1)
    assert group.checkpoints.passes == 0 and checkpoint_threads() == []
    assert on_disk(path, tmp_path) == []
    group.run(insert(29))  # the 30th row
    assert eventually(lambda: on_disk(path, tmp_path), list(range(30))) == list(range(30))
    group.close()
    # A new writer connection counts its rows from 0 again: the same 30 rows make a pass due.
    for n in range(30, 60):
        group.run(insert(n))
    assert eventually(lambda: on_disk(path, tmp_path), list(range(60))) == list(range(60))
    group.close()


def test_a_big_batch_saved_by_the_app_reaches_the_database_file(app, db, tmp_path):
    """The app's writer: a batch of 600 entries (1,200 rows with their change log) is copied
    into the database file by the thread, not by a COMMIT."""
    site = make_site(db)
    batch = [entry(site["id"], ago(1), name=f"张{n}") for n in range(600)]
    assert set(save(app, db, batch)) == {"applied"}
    sql = "SELECT count(*) FROM entries"
    assert eventually(lambda: on_disk(app.config["DATABASE"], tmp_path, sql), [600]) == [600]
    assert app.extensions["fieldapp.writer"].checkpoints.passes >= 1
