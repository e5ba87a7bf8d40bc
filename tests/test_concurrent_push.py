"""Six downstreams pushing at once into one `fieldapp serve`: every record stored once.

A real process on 127.0.0.1 (waitress on SQLite; on PostgreSQL, 4 gunicorn workers).
Downstreams push as `fieldapp sync` does (sync.HttpTransport, a connection per batch), so the
serving threads and processes write at the same moments and take turns at the write lock
(SQLite's, or the advisory lock on PostgreSQL). Some records are relayed by every downstream
at once (the same uuids in batches written at the same moment): each must still be stored
once and logged once, with the change log's chain unbroken.
"""

from __future__ import annotations

import json
import threading

import pytest
from servers import make_server
from sync_helpers import add_instance, entry, start, stop

from sync import HttpTransport
from sync.store import chain_next

# Real processes (or a PostgreSQL cluster): `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def top(tmp_path, request):
    if request.param == "sqlite":
        server = make_server(tmp_path / "top")
        server.serve_args = ("--threads", "4")
    else:
        url = request.getfixturevalue("make_pg_database")()
        server = make_server(tmp_path / "top", database_url=url)
        server.serve_args = ("--workers", "4", "--threads", "4")
    yield server
    stop(server)


def test_concurrent_pushes_store_every_record_once(top):
    offices = [f"office-{i}" for i in range(6)]
    tokens = {name: add_instance(top, name) for name in offices}
    ids = {r["name"]: r["id"] for r in top.query("SELECT id, name FROM peers")}
    site = top.query("SELECT id FROM sites ORDER BY name")[0][0]
    start(top)

    # Each office's own 240 entries, and every fifth record one of 60 that all of them relay.
    shared = [entry(site, 1000 + i) for i in range(60)]
    wire = {}
    for name in offices:
        own = iter([entry(site, i) for i in range(240)])
        mixed = [shared[n // 5] if n % 5 == 4 else next(own) for n in range(300)]
        wire[name] = [dict(r, seq=n + 1) for n, r in enumerate(mixed)]
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
    assert len(stored) == len(expected) == 6 * 240 + 60 and set(stored) == expected
    log = top.query("SELECT uuid, chain FROM changes ORDER BY seq")
    assert sorted(r[0] for r in log) == sorted(stored)
    chain = ""
    for rid, link in log:  # each line's chain follows from the one before it
        chain = chain_next(chain, rid)
        assert link == chain
    cursors = {r["source"]: r["seq"] for r in top.query("SELECT source, seq FROM sync_cursors")}
    assert cursors == {ids[name]: 300 for name in offices}
    counted = {r["name"]: r["records_in"] for r in top.query("SELECT name, records_in FROM peers")}
    counted = [counted[name] for name in offices]
    assert all(count >= 240 for count in counted) and sum(counted) == 6 * 240 + 60
    assert top.query("SELECT count(*) FROM sync_rejects")[0][0] == 0
