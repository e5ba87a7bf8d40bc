"""Six downstreams pushing at once into one `fieldapp serve`: every record stored once.

A real process on 127.0.0.1. Downstreams push as `fieldapp sync` does (sync.HttpTransport, a
connection per batch), so the serving threads write at the same moments and take turns at
SQLite's write lock.
"""

from __future__ import annotations

import json
import threading

import pytest
from servers import make_server
from sync_helpers import add_instance, entry, start, stop

from sync import HttpTransport

# Real processes (or a PostgreSQL cluster): `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture
def top(tmp_path):
    server = make_server(tmp_path / "top")
    server.serve_args = ("--threads", "4")
    yield server
    stop(server)


def test_concurrent_pushes_store_every_record_once(top):
    offices = [f"office-{i}" for i in range(6)]
    tokens = {name: add_instance(top, name) for name in offices}
    ids = {r["name"]: r["id"] for r in top.query("SELECT id, name FROM peers")}
    site = top.query("SELECT id FROM sites ORDER BY name")[0][0]
    start(top)

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
