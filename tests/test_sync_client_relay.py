"""What an instance relays upstream: every record it stores goes up, whatever shares its uuid,
however large it is, and whatever the upstream loses to a restore later."""

from __future__ import annotations

import sqlite3
import uuid as uuidlib

import pytest
from instances_support import ClientTransport, central_and_office, rows, sync_up
from reports_support import entry, save

import sync
from fieldapp import records
from fieldapp.db import connect, transaction
from fieldapp.syncing import status, upstream
from sync import client as sync_client
from sync.store import iso, utcnow


@pytest.fixture
def pair(tmp_path):
    return central_and_office(tmp_path)


def test_an_entry_and_a_correction_with_one_uuid_both_go_up(pair):
    """A hand-made phone push may give an entry and a correction the same uuid: the office
    stores both (each kind is its own set), so both must reach the central."""
    central, office, token, site = pair
    e = entry(site, iso(utcnow()), name="同号")
    corr = records.new(
        "correction",
        {
            "entry_uuid": str(uuidlib.uuid4()),
            "changes": {"destination": "5-1-502"},
            "void": False,
            "reason": "房号登记错了",
            "author": "值班员",
        },
        uuid=e["uuid"],
        recorded_at=e["recorded_at"],
    )
    conn = connect(office.config["DATABASE"])
    assert save(office, conn, [e, corr]) == ["applied", "applied"]
    conn.close()

    report = sync_up(office, central, token)
    assert report.applied == 2 and report.refused == 0
    assert rows(central, "SELECT name FROM entries WHERE uuid = ?", e["uuid"]) == [("同号",)]
    assert rows(central, "SELECT reason FROM corrections WHERE uuid = ?", e["uuid"]) == [
        ("房号登记错了",)
    ]
    assert rows(office, "SELECT count(*) FROM sync_held") == [(0,)]


class Transport(ClientTransport):
    """The central's endpoints; an error answer is a SyncError, as sync.HttpTransport raises it
    (answered for a 5xx or a 400, not for a 413)."""

    def push(self, body: bytes):
        r = self.client.post(
            "/sync/v1/push", data=body, headers=self.headers, content_type="application/json"
        )
        if r.status_code != 200:
            answered = r.status_code >= 500 or r.status_code == 400
            message = (r.get_json(silent=True) or {}).get("message") or f"HTTP {r.status_code}"
            raise sync.SyncError(message, r.status_code, answered=answered)
        return r.get_json()


def push_round(office, central, token) -> sync.PushReport:
    """push_pending then retry_held, as a round of `fieldapp sync` runs them."""
    conn = connect(office.config["DATABASE"])
    try:
        with office.app_context():
            registry = office.extensions["fieldapp.records"]
            transport = Transport(central.test_client(), token)
            report = sync.push_pending(conn, registry, transport)
            sync_client.retry_held(conn, registry, transport, report.source)
            return report
    finally:
        conn.close()


def office_status(office) -> dict:
    """The office's upstream status, as `fieldapp sync --status` shows it."""
    conn = connect(office.config["DATABASE"])
    try:
        with office.test_request_context(), transaction(conn):
            office.config.update(UPSTREAM_URL="http://city.test", UPSTREAM_TOKEN="x")
            conn.execute("UPDATE sync_upstream SET url = 'http://city.test'")  # as a round does
            return status.status(conn)["upstream"]
    finally:
        conn.close()


def test_one_record_over_the_upstreams_byte_limit_is_held_and_the_queue_goes_on(pair):
    """The upstream's SYNC_MAX_BATCH_BYTES may be lower than one record: that record is set
    aside (held, shown, tried again each round) and everything recorded after it goes up."""
    central, office, token, site = pair
    now = utcnow()
    small = entry(site, iso(now), name="前")
    big = entry(site, iso(now), name="大", note="长" * 200)
    later = [entry(site, iso(now), name=f"后{i}") for i in range(4)]
    conn = connect(office.config["DATABASE"])
    assert save(office, conn, [small, big, *later]) == ["applied"] * 6
    conn.close()
    # The central's limit: below any body of the big record alone, above one of any other.
    conn = connect(office.config["DATABASE"])
    with office.app_context():
        wires = sync_client.outgoing(conn, office.extensions["fieldapp.records"], 0, 9).records
    conn.close()
    # A held record goes again without since and upto: the smallest body it can go in.
    body = {"source": "s" * 36}
    size = {w["uuid"]: len(sync_client.encode({**body, "records": [w]})) for w in wires}
    limit = size[big["uuid"]] - 50
    assert max(n for u, n in size.items() if u != big["uuid"]) + 200 < limit
    central.config["SYNC_MAX_BATCH_BYTES"] = limit

    for _round in range(2):  # every round goes through; the big one stays held
        push_round(office, central, token)
        names = {r[0] for r in rows(central, "SELECT name FROM entries")}
        assert names == {"前", "后0", "后1", "后2", "后3"}
        up = office_status(office)
        assert [(h["uuid"], h["kind"]) for h in up["held"]] == [(big["uuid"], "entry")]
        assert str(limit) in up["held"][0]["reason"] and up["waiting"] == 0
    assert rows(office, "SELECT tries FROM sync_held") == [(3,)]  # held, then tried each round

    central.config["SYNC_MAX_BATCH_BYTES"] = 1_048_576  # the upstream's limit raised: it goes
    push_round(office, central, token)
    assert rows(central, "SELECT name FROM entries WHERE uuid = ?", big["uuid"]) == [("大",)]
    assert office_status(office)["held"] == []


def copy_db(src: str, dst: str) -> None:
    """A consistent copy of a SQLite database onto another (a backup, or its restore)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


def full_round(office, central, token, monkeypatch) -> dict:
    """One `fieldapp sync` round of the office (upstream.sync_round) against the central."""
    office.config.update(UPSTREAM_URL="http://city.test", UPSTREAM_TOKEN=token)
    monkeypatch.setattr(
        sync, "HttpTransport", lambda _url, tok, **_: Transport(central.test_client(), tok)
    )
    return upstream.sync_round(office)


@pytest.mark.parametrize("backup_at", ["held", "delivered"])
def test_a_held_record_delivered_later_survives_the_upstreams_restore(
    pair, tmp_path, monkeypatch, backup_at
):
    """A record held (the cursor moved past it), delivered by a later round, then the central
    restored from a copy taken while it was held (or after its delivery): the central ends with
    it, the office shows nothing waiting or held. Either side restored: duplicates at worst."""
    central, office, token, site = pair
    now = utcnow()
    wire = [entry(site, iso(now), name=f"第{i}") for i in range(5)]
    poison = wire[2]["uuid"]
    conn = connect(office.config["DATABASE"])
    assert save(office, conn, wire) == ["applied"] * 5
    conn.close()
    central.config["TEST_FAIL_PUSH_UUIDS"] = {poison}  # a batch with it answers 500
    full_round(office, central, token, monkeypatch)
    assert [h["uuid"] for h in office_status(office)["held"]] == [poison]
    backup = str(tmp_path / "city-backup.sqlite3")
    if backup_at == "held":
        copy_db(central.config["DATABASE"], backup)  # last night's: the cursor past it already

    central.config["TEST_FAIL_PUSH_UUIDS"] = set()  # fixed: the next round delivers it
    delivering = full_round(office, central, token, monkeypatch)
    assert delivering["held"] == 0
    # It says one record went up (its repeat in order is not a second one), and where the
    # central's cursor is now: past the repeat.
    assert delivering["pushed"] == 1
    assert delivering["cursor"] == rows(office, "SELECT max(seq) FROM changes")[0][0]
    assert rows(central, "SELECT name FROM entries WHERE uuid = ?", poison) == [("第2",)]
    assert office_status(office)["waiting"] == 0  # sent again in order in the same round
    if backup_at == "delivered":
        copy_db(central.config["DATABASE"], backup)

    copy_db(backup, central.config["DATABASE"])  # the central put back to its copy
    full_round(office, central, token, monkeypatch)
    names = sorted(r[0] for r in rows(central, "SELECT name FROM entries"))
    assert names == [f"第{i}" for i in range(5)]  # each once
    up = office_status(office)
    assert up["held"] == [] and up["waiting"] == 0


def test_a_held_record_survives_the_office_restored_from_a_copy_taken_while_held(
    pair, tmp_path, monkeypatch
):
    central, office, token, site = pair
    wire = [entry(site, iso(utcnow()), name=f"第{i}") for i in range(3)]
    conn = connect(office.config["DATABASE"])
    assert save(office, conn, wire) == ["applied"] * 3
    conn.close()
    central.config["TEST_FAIL_PUSH_UUIDS"] = {wire[1]["uuid"]}
    full_round(office, central, token, monkeypatch)
    backup = str(tmp_path / "office-backup.sqlite3")
    copy_db(office.config["DATABASE"], backup)
    central.config["TEST_FAIL_PUSH_UUIDS"] = set()
    full_round(office, central, token, monkeypatch)  # delivered, logged again, sent in order

    copy_db(backup, office.config["DATABASE"])  # the office put back: it holds it again
    assert [h["uuid"] for h in office_status(office)["held"]] == [wire[1]["uuid"]]
    full_round(office, central, token, monkeypatch)
    full_round(office, central, token, monkeypatch)
    names = sorted(r[0] for r in rows(central, "SELECT name FROM entries"))
    assert names == ["第0", "第1", "第2"]  # once each: what went again were repeats
    up = office_status(office)
    assert up["held"] == [] and up["waiting"] == 0
