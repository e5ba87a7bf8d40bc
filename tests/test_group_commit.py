"""sync.GroupCommit: concurrent writes share a commit, and each is still all or nothing.

The writes are held at a gate (an Event) inside the first one, so the others are sure to be
queued behind it: what is grouped is decided by the test, not by the scheduler.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from sync import GroupCommit


@pytest.fixture
def path(tmp_path):
    db = tmp_path / "g.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE t (n INTEGER PRIMARY KEY,"
        " parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    conn.close()
    return db


def opener(path):
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    return connect


def stored(path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT n FROM t ORDER BY n")]
    finally:
        conn.close()


def insert(n: int, parent: int | None = None):
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (n, parent) VALUES (?, ?)", (n, parent))
        return n * 10

    return work


def failing(n: int):
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
        raise ValueError(f"write {n} refuses")

    return work


def run_held(group: GroupCommit, first, others) -> dict[int, object]:
    """Run `first` in one thread and hold it inside its write until every one of `others` (run
    each in its own thread) is queued behind it; what each thread got back or raised."""
    gate = threading.Event()
    outcome: dict[int, object] = {}

    def held(conn):
        gate.wait(10)
        return first(conn)

    def call(i, work):
        try:
            outcome[i] = group.run(work)
        except Exception as exc:
            outcome[i] = exc

    threads = [threading.Thread(target=call, args=(0, held))]
    threads[0].start()
    while group.groups == 0:  # the first write has begun: the others will queue behind it
        time.sleep(0.001)
    for i, work in enumerate(others, start=1):
        threads.append(threading.Thread(target=call, args=(i, work)))
        threads[-1].start()
    while group.queued < len(others):
        time.sleep(0.001)
    gate.set()
    for thread in threads:
        thread.join(10)
    return outcome


def test_queued_writes_share_one_commit_and_each_gets_its_own_answer(path):
    group = GroupCommit(opener(path))
    outcome = run_held(group, insert(0), [insert(n) for n in range(1, 8)])
    assert outcome == {n: n * 10 for n in range(8)}
    assert stored(path) == list(range(8))
    assert (group.groups, group.writes) == (2, 8)  # the first alone, then the seven together
    group.close()


def test_a_write_that_fails_is_undone_alone(path):
    group = GroupCommit(opener(path))
    outcome = run_held(group, insert(0), [insert(1), failing(2), insert(3)])
    assert isinstance(outcome[2], ValueError) and "write 2 refuses" in str(outcome[2])
    assert [outcome[i] for i in (0, 1, 3)] == [0, 10, 30]
    assert stored(path) == [0, 1, 3]  # the row write 2 made before failing is gone
    group.close()


def traced(path, statements: list[str]):
    """An opener whose connections note every statement they run."""

    def connect() -> sqlite3.Connection:
        conn = opener(path)()
        conn.set_trace_callback(statements.append)
        return conn

    return connect


def test_a_group_that_succeeds_runs_without_savepoints(path):
    """Savepoints copy every page a write touches into the statement journal: a group whose
    writes all succeed is one plain transaction."""
    statements: list[str] = []
    group = GroupCommit(traced(path, statements))
    outcome = run_held(group, insert(0), [insert(n) for n in range(1, 5)])
    assert outcome == {n: n * 10 for n in range(5)}
    assert stored(path) == list(range(5))
    assert statements.count("COMMIT") == 2
    assert not [s for s in statements if "SAVEPOINT" in s]
    group.close()


def test_a_failing_write_has_the_group_run_again_each_in_a_savepoint(path):
    """The first run of the group is rolled back whole; in the second, each write has its own
    savepoint, and what a write answers is what its committed run returned."""
    statements: list[str] = []
    group = GroupCommit(traced(path, statements))
    runs: list[int] = []

    def counted(conn: sqlite3.Connection) -> int:
        runs.append(1)
        conn.execute("INSERT INTO t (n) VALUES (1)")  # would fail the second time if kept
        return len(runs)

    outcome = run_held(group, insert(0), [counted, failing(2), insert(3)])
    assert outcome[1] == 2  # the value of the second run, the one that committed
    assert isinstance(outcome[2], ValueError) and outcome[3] == 30
    assert stored(path) == [0, 1, 3]
    assert statements.count("ROLLBACK") == 1
    assert statements.count("ROLLBACK TO group_commit_write") == 1
    assert statements.count("SAVEPOINT group_commit_write") == 3
    group.close()


def test_a_single_write_that_fails_is_not_run_again(path):
    group = GroupCommit(opener(path))
    runs: list[int] = []

    def work(conn: sqlite3.Connection) -> None:
        runs.append(1)
        failing(5)(conn)

    with pytest.raises(ValueError, match="write 5 refuses"):
        group.run(work)
    assert runs == [1] and stored(path) == []
    assert group.run(insert(6)) == 60  # the connection is not left in a transaction
    group.close()


def test_a_commit_that_fails_stores_none_of_its_group(path):
    group = GroupCommit(opener(path))
    # Write 2 breaks a deferred foreign key: nothing notices until COMMIT, which then fails
    # for the whole group (1, 2 and 3); the first write had its own commit already.
    outcome = run_held(group, insert(0), [insert(1), insert(2, parent=99), insert(3)])
    assert outcome[0] == 0
    for i in (1, 2, 3):
        assert isinstance(outcome[i], sqlite3.IntegrityError), outcome[i]
    assert outcome[1] is not outcome[3]  # each thread raises its own copy
    assert stored(path) == [0]
    # The connection is not left inside the failed transaction: the next write goes through.
    assert group.run(insert(4)) == 40
    assert stored(path) == [0, 4]
    group.close()


def test_an_answer_means_committed(path):
    group = GroupCommit(opener(path))
    reader = sqlite3.connect(path)
    for n in range(20):
        group.run(insert(n))
        # Another connection sees each write the moment run() returns.
        assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == n + 1
    reader.close()
    group.close()


def test_processes_take_turns_through_the_lock_file(path, tmp_path):
    """Two groups over one file (as two serving processes would be) with the lock file: many
    writes at once from both, every one stored, none waiting out SQLite's busy timeout."""
    lock = tmp_path / "g.sqlite3-writer.lock"
    groups = [GroupCommit(opener(path), lock_path=lock) for _ in range(2)]
    errors: list[BaseException] = []

    def writer(g: GroupCommit, start: int) -> None:
        try:
            for n in range(start, start + 100):
                g.run(insert(n))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(groups[i % 2], i * 1000)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert stored(path) == sorted(n for i in range(6) for n in range(i * 1000, i * 1000 + 100))
    assert lock.exists()
    for g in groups:
        g.close()


def test_writes_queued_while_the_other_process_writes_go_in_one_group(path, tmp_path):
    """While another process has the turn, every write queued here waits, and all of them are
    then committed together: the first one in does not go alone and leave the rest for a
    second commit."""
    import fcntl

    lock = tmp_path / "g.sqlite3-writer.lock"
    group = GroupCommit(opener(path), lock_path=lock)
    other = open(lock, "w")  # noqa: SIM115 -- held across the threads below
    fcntl.flock(other, fcntl.LOCK_EX)  # the other process is writing
    threads = [threading.Thread(target=group.run, args=(insert(n),)) for n in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while group.queued < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert group.queued == 4
    fcntl.flock(other, fcntl.LOCK_UN)  # its turn is over
    for thread in threads:
        thread.join(10)
    other.close()
    assert stored(path) == [0, 1, 2, 3]
    assert (group.groups, group.writes) == (1, 4)
    group.close()


def test_a_turn_that_cannot_be_taken_fails_the_writes_instead_of_hanging(path, tmp_path):
    group = GroupCommit(opener(path), lock_path=tmp_path / "gone" / "writer.lock")
    outcome: list[BaseException] = []

    def write() -> None:
        try:
            group.run(insert(1))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert [type(exc) for exc in outcome] == [FileNotFoundError]
    assert stored(path) == []
    group.close()
