"""sync.priority: the thread holding the write turn runs at real-time priority where allowed,
and always goes back to the priority it had; where it is not allowed, writes go on as before."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading

import pytest
from test_group_commit import stored

from sync import GroupCommit
from sync.priority import PRIORITY, WriterPriority, real_time_allowed

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setscheduler"), reason="scheduling policies are Linux's"
)


def policy() -> int:
    """The calling thread's scheduling class (without the reset-on-fork flag)."""
    return os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK


@pytest.fixture
def path(tmp_path):
    return tmp_path / "p.sqlite3"


@pytest.fixture
def group(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    conn.close()
    group = GroupCommit(
        lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False),
        lock_path=f"{path}-writer.lock",
        raise_priority=True,
    )
    yield group
    group.close()


def policy_in_write(group: GroupCommit, n: int) -> int:
    """Insert n through the group; the scheduling policy its write ran under."""

    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
        return policy()

    return group.run(work)


def test_the_write_runs_at_real_time_priority_and_the_thread_gets_its_own_back(group, path):
    expected = os.SCHED_FIFO if real_time_allowed() else os.SCHED_OTHER
    assert policy_in_write(group, 1) == expected
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert os.sched_getparam(0).sched_priority == 0

    def failing(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (n) VALUES (2)")
        raise ValueError("refused")

    with pytest.raises(ValueError):
        group.run(failing)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # given back after a failed write too
    assert stored(path) == [1]


def test_a_thread_already_real_time_keeps_its_own_priority(group):
    if not real_time_allowed():
        pytest.skip("this process may not use the real-time class")
    seen: list[tuple[int, int]] = []

    def writer() -> None:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(PRIORITY + 1))

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t (n) VALUES (1)")
            seen.append((policy(), os.sched_getparam(0).sched_priority))

        group.run(work)
        seen.append((policy(), os.sched_getparam(0).sched_priority))

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join()
    assert seen == [(os.SCHED_RR, PRIORITY + 1)] * 2


def test_without_permission_writes_go_on_and_it_is_said_once(group, path, monkeypatch, caplog):
    multicore = WriterPriority().allowed  # read before sched_setscheduler is replaced
    asked: list[int] = []

    def refuse(*args: object) -> None:
        asked.append(1)
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    caplog.set_level(logging.INFO, logger="sync.priority")
    assert policy_in_write(group, 1) == os.SCHED_OTHER
    assert policy_in_write(group, 2) == os.SCHED_OTHER
    assert stored(path) == [1, 2]
    # Asked once, not again after the refusal (and not at all on a single core).
    assert asked == ([1] if multicore else [])
    said = [r.getMessage() for r in caplog.records if r.name == "sync.priority"]
    assert said == (
        [
            "the writing thread keeps its ordinary priority (Operation not permitted); grant"
            " CAP_SYS_NICE or RLIMIT_RTPRIO 1 to let it run at real-time priority"
        ]
        if multicore
        else []
    )


def test_on_a_single_core_nothing_is_raised():
    priority = WriterPriority(cores=1)
    assert not priority.allowed
    with priority.raised():
        assert policy() == os.SCHED_OTHER


def test_the_apps_writer_raises_its_priority(app):
    from fieldapp import db

    expected = os.SCHED_FIFO if real_time_allowed() else os.SCHED_OTHER
    with app.app_context():
        assert db.writer().run(lambda conn: policy()) == expected
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_a_thread_started_during_the_write_has_an_ordinary_priority(group):
    seen: list[int] = []

    def work(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (n) VALUES (1)")
        thread = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))
        thread.start()  # as the checkpoint thread is, by the first write
        thread.join()

    group.run(work)
    assert seen == [os.SCHED_OTHER]
