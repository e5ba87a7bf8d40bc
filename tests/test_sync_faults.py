"""Real instances in their own processes on 127.0.0.1: links drop, servers die, backups return.

Each test: a central (`top`, with the demo sites), and a site office (`bottom`) whose records
go up with `fieldapp sync`; the central on SQLite served by waitress, and again on PostgreSQL
served by 4 gunicorn workers. What must hold every time: the top ends up with exactly the
records the bottom holds, none twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest
from proxy import Proxy
from servers import FIELDAPP, ROOT, Server, free_port, make_server
from sync_helpers import entry, kill, link, restore, save_records, snapshot, start, stop, uuids
from wait import wait_until

from fieldapp.db import connect

# Real processes (or a PostgreSQL cluster): `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def linked(request, tmp_path_factory):
    """A central with the demo sites and a site office linked to it and synced once; each test
    works on a copy (setting instances up is most of the time these tests take). With
    "postgresql", the central's database is a PostgreSQL database, copied per test."""
    base = tmp_path_factory.mktemp("linked")
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").create_database(prefix="linked")
    top = make_server(base / "top", database_url=url)
    bottom = make_server(base / "bottom", demo=False)
    link(bottom, top, "site-office")
    start(top)
    bottom.cli("sync")  # pulls the sites
    stop(top)
    return base, url


def copy_of(folder, **settings: str) -> Server:
    """A served-instance handle over a copy of folder, on a port of its own."""
    port = free_port()
    env = dict(
        os.environ, FIELDAPP_INSTANCE=str(folder), FIELDAPP_BASE_URL=f"http://127.0.0.1:{port}"
    )
    env.update({f"FIELDAPP_{k}": v for k, v in settings.items()})
    env.pop("FLASK_APP", None)
    return Server(folder, port, env)


@pytest.fixture
def top(tmp_path, linked, request):
    base, url = linked
    shutil.copytree(base / "top", tmp_path / "top")
    if url is None:
        server = copy_of(tmp_path / "top")
    else:  # a copy of the linked central's database, served by 4 gunicorn workers
        make = request.getfixturevalue("make_pg_database")
        server = copy_of(tmp_path / "top", DATABASE_URL=make(template=url.rsplit("/", 1)[1]))
        server.serve_args = ("--workers", "4", "--threads", "4")
    start(server)
    yield server
    stop(server)


@pytest.fixture
def bottom(tmp_path, linked, top):
    base, _url = linked
    shutil.copytree(base / "bottom", tmp_path / "bottom")
    return copy_of(tmp_path / "bottom", SYNC_BATCH_SIZE="200", UPSTREAM_URL=top.url)


def make(bottom, n: int) -> set[str]:
    """n new entries at the bottom's first site; their uuids."""
    site_id = bottom.query("SELECT id FROM sites ORDER BY name")[0][0]
    wire = [entry(site_id, i) for i in range(n)]
    assert set(save_records(bottom.folder, wire)) == {"applied"}
    return {r["uuid"] for r in wire}


def assert_exactly(top, expected: set[str]) -> None:
    got = uuids(top)
    assert len(got) == len(set(got)), "a record is stored twice"
    assert set(got) == expected
    changes = [r[0] for r in top.query("SELECT uuid FROM changes WHERE kind = 'entry'")]
    assert sorted(changes) == sorted(got), "the change log counts a record twice"


def sync_started(office) -> subprocess.Popen:
    """`fieldapp sync` of the office, started in a process of its own; its output piped, as
    text, for communicate()."""
    return subprocess.Popen(
        FIELDAPP + ["sync"],
        env=office.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_upstream_killed_mid_batch_then_sync_again(top, bottom):
    made = make(bottom, 3000)
    proc = sync_started(bottom)
    wait_until(lambda: top.query("SELECT 1 FROM entries LIMIT 1"), what="a first batch stored")
    kill(top)  # while the next batches are on their way
    _out, err = proc.communicate(timeout=60)
    held = set(uuids(top))
    assert 0 < len(held) < len(made) or proc.returncode == 0
    if proc.returncode:
        assert "Sync" in err or "同步" in err
    start(top)
    bottom.cli("sync")
    assert_exactly(top, made)


class DropFirstPushAnswer(Proxy):
    """A proxy that forwards everything but loses the answer to the first push."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.dropped = 0

    def answer(self, path: str, body: bytes | None, began: float) -> bool:
        if path.startswith("/sync/v1/push") and self.dropped == 0:
            self.dropped += 1  # committed upstream; the answer is lost
            return False
        return True


def test_answer_lost_after_commit_is_resent_and_counted_once(top, bottom):
    made = make(bottom, 450)
    proxy = DropFirstPushAnswer(top.url)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        env = dict(bottom.env, FIELDAPP_UPSTREAM_URL=proxy.url)
        first = subprocess.run(
            FIELDAPP + ["sync"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert first.returncode != 0 and proxy.dropped == 1
        assert len(uuids(top)) == 200  # the first batch was committed, its answer lost
        again = subprocess.run(
            FIELDAPP + ["sync"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert again.returncode == 0, again.stderr
    finally:
        proxy.shutdown()
        proxy.server_close()  # its listening socket, else closed by whichever test collects it
    assert_exactly(top, made)
    peer = top.query("SELECT records_in FROM peers WHERE name = 'site-office'")[0]
    assert peer["records_in"] == 450


def test_upstream_restored_from_older_copy_gets_what_it_lost(top, bottom, tmp_path):
    made = make(bottom, 300)
    bottom.cli("sync")
    backup = snapshot(top, tmp_path / "top-backups")
    made |= make(bottom, 250)
    bottom.cli("sync")
    assert_exactly(top, made)
    stop(top)
    restore(top, backup)
    start(top)
    assert len(uuids(top)) == 300
    bottom.cli("sync")
    assert_exactly(top, made)


def test_downstream_restored_from_older_copy_duplicates_nothing(top, bottom, tmp_path):
    early = make(bottom, 300)
    backup = snapshot(bottom, tmp_path / "bottom-backups")
    lost_here = make(bottom, 200)
    bottom.cli("sync")
    restore(bottom, backup)
    # The restored office reuses seq 301..500 for records the top has never seen.
    later = make(bottom, 250)
    bottom.cli("sync")
    assert_exactly(top, early | lost_here | later)


def test_two_pushers_of_one_source_at_once(top, bottom):
    made = make(bottom, 2000)
    procs = [sync_started(bottom) for _ in range(2)]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err and "busy" not in err.lower()
    assert_exactly(top, made)


def test_a_record_the_top_cannot_store_yet_is_held_below_and_delivered_once_it_can(top, bottom):
    """A record naming a site the top does not know (made by hand below, or lost at the top in a
    restore from an older backup) is not lost: the top answers it `held`, the bottom keeps it
    aside while the rest goes on, and delivers it in a later round once the top knows the site."""
    site_id = bottom.query("SELECT id FROM sites ORDER BY name")[0][0]
    bottom_only = "5d0f8a1c-0000-4000-8000-000000000001"
    site = (
        "INSERT INTO sites (id, name, kind, code, version, created_at)"
        " VALUES (?, '野站点', 'other', 'localcode123', 0, '2026-01-01T00:00:00.000Z')"
    )
    conn = __import__("sqlite3").connect(bottom.database)
    conn.execute(site, (bottom_only,))
    conn.commit()
    conn.close()
    good = [entry(site_id, i) for i in range(10)]
    stray = entry(bottom_only, 99)
    save_records(bottom.folder, good[:5] + [stray] + good[5:])
    out = bottom.cli("sync")
    assert set(uuids(top)) == {r["uuid"] for r in good}
    assert top.query("SELECT count(*) FROM sync_rejects")[0][0] == 0  # nothing refused up there
    held = bottom.query("SELECT uuid, reason FROM sync_held")
    assert [r["uuid"] for r in held] == [stray["uuid"]]
    assert held[0]["reason"] == "记录所属的场所在本实例中不存在。"
    assert "暂缓" in out.stderr or "held" in out.stderr
    # The top learns the site (here by hand): the next round delivers the record, once.
    conn = connect(top.target)  # either engine
    conn.execute(site, (bottom_only,))
    conn.close()
    bottom.cli("sync")
    assert set(uuids(top)) == {r["uuid"] for r in good} | {stray["uuid"]}
    assert bottom.query("SELECT count(*) FROM sync_held")[0][0] == 0
    status = bottom.cli("sync", "--status").stdout
    assert ": 0" in status or "：0" in status, status


def test_watch_keeps_syncing_and_survives_the_upstream_going_away(top, bottom):
    first = make(bottom, 30)
    proc = subprocess.Popen(
        FIELDAPP + ["sync", "--watch"],
        env=dict(bottom.env, FIELDAPP_SYNC_INTERVAL="1"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: first <= set(uuids(top)))
        stop(top)  # the link drops: --watch reports it and backs off, it does not exit
        second = make(bottom, 20)
        wait_until(lambda: _failed_once(bottom))
        assert proc.poll() is None
        start(top)
        wait_until(lambda: second <= set(uuids(top)))
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
        print(err)  # shown by pytest if the test fails: what --watch said it was doing
    assert_exactly(top, first | second)


def _failed_once(server) -> bool:
    rows = server.query("SELECT last_error FROM sync_upstream")
    return bool(rows and rows[0][0])
