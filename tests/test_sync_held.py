"""Records the upstream cannot store yet (a site clock ahead of the upstream's, configuration the
upstream lost in a restore) are answered `held`: the sender keeps them and sends them again, so
none is lost; the upstream's cursor does not pass them until the sender has kept them aside."""

from __future__ import annotations

from datetime import timedelta

import pytest
from instances_support import ClientTransport, central_and_office, rows, sync_up
from reports_support import entry, save

import sync
import sync.server
import sync.store
from fieldapp.db import connect
from sync import client as sync_client
from sync.store import iso, utcnow


@pytest.fixture
def pair(tmp_path):
    return central_and_office(tmp_path)


def test_a_site_clock_ahead_holds_its_entries_below_until_their_time_comes(pair, monkeypatch):
    central, office, token, site = pair
    now = utcnow()
    ahead = [entry(site, iso(now + timedelta(days=2)), name=f"快钟{i}") for i in range(3)]
    fine = [entry(site, iso(now - timedelta(minutes=i)), name=f"正常{i}") for i in range(4)]
    conn = connect(office.config["DATABASE"])
    with monkeypatch.context() as office_clock:  # the office's clock is two days fast
        office_clock.setattr(sync.store, "utcnow", lambda: now + timedelta(days=2))
        assert save(office, conn, fine[:2] + ahead + fine[2:]) == ["applied"] * 7
    conn.close()

    report = sync_up(office, central, token)
    assert report.applied == 4 and report.refused == 0
    assert {r[0] for r in rows(central, "SELECT name FROM entries")} == {
        f"正常{i}" for i in range(4)
    }
    assert rows(central, "SELECT count(*) FROM sync_rejects") == [(0,)]  # nothing refused there
    held = rows(office, "SELECT uuid, reason FROM sync_held ORDER BY seq")
    assert [h[0] for h in held] == [r["uuid"] for r in ahead]
    assert all("日期和时间" in h[1] for h in held)  # says what to check
    # The central's cursor is past them: nothing waits, the next round sends nothing again.
    assert sync_up(office, central, token).sent == 0

    # Two days on (or the office's clock set right and the time come): delivered, once.
    later = now + timedelta(days=2, minutes=10)
    monkeypatch.setattr(sync.server, "utcnow", lambda: later)  # the central's clock
    conn = connect(office.config["DATABASE"])
    try:
        with office.app_context():
            transport = ClientTransport(central.test_client(), token)
            source = transport.cursor()["source"]
            registry = office.extensions["fieldapp.records"]
            assert sync_client.retry_held(conn, registry, transport, source) == (3, 0)
    finally:
        conn.close()
    names = [r[0] for r in rows(central, "SELECT name FROM entries")]
    assert sorted(names) == sorted([f"正常{i}" for i in range(4)] + [f"快钟{i}" for i in range(3)])
    assert rows(office, "SELECT count(*) FROM sync_held") == [(0,)]


def test_a_batch_with_a_held_record_leaves_the_cursor_until_the_sender_kept_it(pair):
    """A sender that dies between the answer and keeping the record aside sends the batch again:
    the central's cursor moves only with the sender's empty push that follows."""
    central, office, token, site = pair
    now = utcnow()
    records = [
        dict(entry(site, iso(now), name="正常"), seq=1),
        dict(entry(site, iso(now + timedelta(days=2)), name="快钟"), seq=2),
    ]
    transport = ClientTransport(central.test_client(), token)
    source = transport.cursor()["source"]
    body = {"source": source, "since": 0, "upto": 2, "records": records}
    answer = transport.push(sync_client.encode(body))
    assert [r["status"] for r in answer["results"]] == ["applied", "held"]
    assert answer["cursor"] == 0 and transport.cursor()["cursor"] == 0
    # Sent again (the sender died before keeping it): a repeat and the same answer, no more.
    again = transport.push(sync_client.encode(body))
    assert [r["status"] for r in again["results"]] == ["duplicate", "held"]
    assert rows(central, "SELECT count(*) FROM entries") == [(1,)]
    moved = transport.push(sync_client.encode({**body, "records": []}))
    assert moved["cursor"] == 2


class CountingTransport(ClientTransport):
    """The central's endpoints, counting the pushes; an error answer is a SyncError, as
    sync.HttpTransport raises it."""

    def __init__(self, client, token: str) -> None:
        super().__init__(client, token)
        self.pushes = 0

    def push(self, body: bytes):
        self.pushes += 1
        r = self.client.post(
            "/sync/v1/push", data=body, headers=self.headers, content_type="application/json"
        )
        if r.status_code != 200:  # answered: as sync.HttpTransport says it (not for a 413)
            answered = r.status_code >= 500 or r.status_code == 400
            raise sync.SyncError(f"HTTP {r.status_code}", r.status_code, answered=answered)
        return r.get_json()


def held_below(pair, monkeypatch, n: int) -> list[dict]:
    """n entries the office recorded two days ahead of the central's clock, held there."""
    central, office, token, site = pair
    now = utcnow()
    ahead = [entry(site, iso(now + timedelta(days=2)), name=f"快钟{i}") for i in range(n)]
    conn = connect(office.config["DATABASE"])
    with monkeypatch.context() as office_clock:
        office_clock.setattr(sync.store, "utcnow", lambda: now + timedelta(days=2))
        assert save(office, conn, ahead) == ["applied"] * n
    conn.close()
    assert sync_up(office, central, token).applied == 0
    assert rows(office, "SELECT count(*) FROM sync_held") == [(n,)]
    # Two days on: the central can store them now.
    monkeypatch.setattr(sync.server, "utcnow", lambda: now + timedelta(days=2, minutes=10))
    return ahead


def one_record_fits(pair, n: int) -> int:
    """A body size limit that one of the office's n held records fits in, and no two."""
    central, office, token, _site = pair
    conn = connect(office.config["DATABASE"])
    with office.app_context():
        wires = sync_client.outgoing(conn, office.extensions["fieldapp.records"], 0, n).records
    conn.close()
    source = ClientTransport(central.test_client(), token).cursor()["source"]
    sizes = [len(sync_client.encode({"source": source, "records": [w]})) for w in wires]
    assert len(wires) == n and max(sizes) + 50 < min(sizes) * 2 - 100
    return max(sizes) + 50


def retry(pair, transport, **limits) -> tuple[int, int]:
    _central, office, _token, _site = pair
    conn = connect(office.config["DATABASE"])
    try:
        with office.app_context():
            registry = office.extensions["fieldapp.records"]
            source = transport.cursor()["source"]
            return sync_client.retry_held(conn, registry, transport, source, **limits)
    finally:
        conn.close()


def test_held_records_go_back_in_batches_not_one_push_each(pair, monkeypatch):
    """A restore that lost a site upstream can leave thousands held below: a round sends them
    as the push sends records, a batch at a time (on one bar of signal, a push each would
    take the round hours)."""
    central, _office, token, _site = pair
    ahead = held_below(pair, monkeypatch, 7)
    transport = CountingTransport(central.test_client(), token)
    assert retry(pair, transport, batch_size=3) == (7, 0)
    assert transport.pushes == 3
    names = {r[0] for r in rows(central, "SELECT name FROM entries")}
    assert names == {e["data"]["name"] for e in ahead}
    assert rows(pair[1], "SELECT count(*) FROM sync_held") == [(0,)]


def test_held_records_a_batch_too_big_for_the_limit_are_sent_in_smaller_ones(pair, monkeypatch):
    central, _office, token, _site = pair
    held_below(pair, monkeypatch, 5)
    transport = CountingTransport(central.test_client(), token)
    assert retry(pair, transport, max_bytes=one_record_fits(pair, 5)) == (5, 0)
    assert transport.pushes == 5  # halved down to a record a push: each fits the limit alone
    assert rows(central, "SELECT count(*) FROM entries") == [(5,)]


def test_a_held_record_the_upstream_fails_on_stays_held_and_the_others_go(pair, monkeypatch):
    central, office, token, _site = pair
    ahead = held_below(pair, monkeypatch, 6)
    poison = ahead[4]["uuid"]
    central.config["TEST_FAIL_PUSH_UUIDS"] = {poison}  # the central answers 500 for a batch with it
    transport = CountingTransport(central.test_client(), token)
    assert retry(pair, transport, batch_size=4) == (5, 1)
    # Held when first pushed, and once more now.
    assert rows(office, "SELECT uuid, tries FROM sync_held") == [(poison, 2)]
    stored = {r[0] for r in rows(central, "SELECT uuid FROM entries")}
    assert stored == {e["uuid"] for e in ahead} - {poison}
    # Once the central can take it, the next round delivers it: nothing lost, nothing twice.
    central.config["TEST_FAIL_PUSH_UUIDS"] = set()
    assert retry(pair, transport) == (1, 0)
    assert rows(central, "SELECT count(*) FROM entries") == [(6,)]


def test_held_records_over_the_upstreams_own_limit_are_sent_in_smaller_batches(pair, monkeypatch):
    """The upstream's SYNC_MAX_BATCH_BYTES may be lower than ours: its 413 halves the batch, as
    in the push, rather than failing the round (and the configuration pull after it)."""
    central, _office, token, _site = pair
    held_below(pair, monkeypatch, 4)
    central.config["SYNC_MAX_BATCH_BYTES"] = one_record_fits(pair, 4)
    transport = CountingTransport(central.test_client(), token)
    assert retry(pair, transport) == (4, 0)
    assert transport.pushes == 7  # 4 refused, 2 + 2 refused, then 1 + 1 + 1 + 1
    assert rows(central, "SELECT count(*) FROM entries") == [(4,)]
