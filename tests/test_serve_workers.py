"""`fieldapp serve --workers 2`: two serving processes on one port, one database, taking turns.

Real processes on 127.0.0.1. Downstreams push as `fieldapp sync` does (sync.HttpTransport, a
connection per batch), so the kernel spreads their batches over both workers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from browser.conftest import make_server
from sync_helpers import add_instance, entry, start, stop

from sync import HttpTransport
from sync.priority import real_time_allowed

# What `fieldapp serve --workers N` says when its writers may not run at real-time priority.
PRIORITY_NOTE = "提示：写入线程以普通优先级运行"


def workers_of(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def has_written(pid: int) -> bool:
    """Whether a worker has taken its turn at writing (it opens the lock file the first time)."""
    fds = Path(f"/proc/{pid}/fd")
    return any(os.readlink(fd).endswith("-writer.lock") for fd in fds.iterdir())


@pytest.fixture
def top(tmp_path):
    server = make_server(tmp_path / "top")
    server.serve_args = ("--workers", "2", "--threads", "2")
    yield server
    stop(server)


def test_two_workers_store_every_push_once(top):
    offices = [f"office-{i}" for i in range(6)]
    tokens = {name: add_instance(top, name) for name in offices}
    ids = {r["name"]: r["id"] for r in top.query("SELECT id, name FROM peers")}
    site = top.query("SELECT id FROM sites ORDER BY name")[0][0]
    start(top)
    workers = workers_of(top.proc.pid)
    assert len(workers) == 2

    wire = {name: [dict(entry(site, i), seq=i + 1) for i in range(240)] for name in offices}
    failures: list[str] = []

    def office(name: str) -> None:
        transport = HttpTransport(top.url, tokens[name])
        records = wire[name]
        # office-0 sends everything twice, as after answers lost on the way back.
        rounds = 2 if name == "office-0" else 1
        for _ in range(rounds):
            for start_at in range(0, len(records), 30):
                chunk = records[start_at : start_at + 30]
                body = {"source": ids[name], "since": start_at, "records": chunk}
                answer = transport.push(json.dumps(body).encode())
                statuses = {r["status"] for r in answer["results"]}
                if not statuses <= {"applied", "duplicate"}:
                    failures.append(f"{name}: {statuses}")

    threads = [threading.Thread(target=office, args=(name,)) for name in offices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []

    expected = {r["uuid"] for records in wire.values() for r in records}
    stored = [r[0] for r in top.query("SELECT uuid FROM entries")]
    assert len(stored) == len(expected) == 1440 and set(stored) == expected
    log = [r[0] for r in top.query("SELECT uuid FROM changes WHERE kind = 'entry'")]
    assert sorted(log) == sorted(stored)
    cursors = {r["source"]: r["seq"] for r in top.query("SELECT source, seq FROM sync_cursors")}
    assert cursors == {ids[name]: 240 for name in offices}
    counted = {r["name"]: r["records_in"] for r in top.query("SELECT name, records_in FROM peers")}
    assert {name: counted[name] for name in offices} == {name: 240 for name in offices}
    assert all(has_written(pid) for pid in workers), "one worker took every batch"

    said = stderr_after_stop(top)  # SIGTERM to the service: both workers go with it
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()
    assert (PRIORITY_NOTE in said) != real_time_allowed(), said


def stderr_after_stop(server) -> str:
    """Stop a served instance; what it wrote to stderr."""
    server.proc.terminate()
    server.proc.wait(timeout=15)
    said = server.proc.stderr.read().decode()
    stop(server)
    return said


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="takes root and setpriv to serve without the right to real-time priority",
)
def test_without_the_right_to_real_time_priority_it_says_so_and_stores_as_before(top):
    token = add_instance(top, "office")
    source = top.query("SELECT id FROM peers WHERE name = 'office'")[0][0]
    site = top.query("SELECT id FROM sites ORDER BY name")[0][0]
    # CAP_SYS_NICE dropped, and root's RLIMIT_RTPRIO is 0: the real-time class is refused.
    top.prefix = ("setpriv", "--inh-caps", "-sys_nice", "--bounding-set", "-sys_nice")
    top.env = dict(top.env, LANG="zh_CN.UTF-8")
    start(top)
    records = [dict(entry(site, i), seq=i + 1) for i in range(50)]
    answer = HttpTransport(top.url, token).push(
        json.dumps({"source": source, "since": 0, "records": records}).encode()
    )
    assert {r["status"] for r in answer["results"]} == {"applied"}
    assert top.query("SELECT count(*) FROM entries")[0][0] == 50
    assert PRIORITY_NOTE in stderr_after_stop(top)


def test_a_worker_that_dies_ends_the_service(top):
    start(top)
    first, second = workers_of(top.proc.pid)
    os.kill(first, signal.SIGKILL)
    assert top.proc.wait(timeout=15) != 0
    deadline = time.monotonic() + 5
    while Path(f"/proc/{second}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{second}").exists()


def test_a_serving_process_collects_cycles_seldom_and_leaves_the_app_out():
    """What `fieldapp serve` does to the collector before serving (see cli._tune_gc)."""
    import gc

    from fieldapp import cli

    before = gc.get_threshold()
    try:
        cli._tune_gc()
        assert gc.get_threshold() == (cli.GC_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 1000  # the modules and the app, out of every collection
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_serving_process_hands_the_gil_over_within_a_millisecond():
    """What `fieldapp serve` does to thread switching before serving (see cli._tune_switching):
    the thread writing for everyone waits at most 1 ms for the GIL, not Python's 5 ms."""
    import sys

    from fieldapp import cli

    before = sys.getswitchinterval()
    try:
        cli._tune_switching()
        assert sys.getswitchinterval() == cli.SWITCH_INTERVAL == 0.001
    finally:
        sys.setswitchinterval(before)
