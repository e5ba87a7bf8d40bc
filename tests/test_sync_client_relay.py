"""What an instance relays upstream: every record it stores goes up, whatever shares its uuid,
however large it is, and whatever the upstream loses to a restore later."""

from __future__ import annotations

import uuid as uuidlib

import pytest
from instances_support import make_instance, sync_up
from reports_support import entry, save

import sync
from fieldapp import records
from fieldapp.db import connect, transaction
from fieldapp.gate import sites
from sync.store import iso, utcnow


@pytest.fixture
def pair(tmp_path):
    """A central with one site and a site office that pulled it: (central, office, token, site)."""
    central = make_instance(tmp_path, "city")
    conn = connect(central.config["DATABASE"])
    with central.app_context():
        site = sites.add_site(conn, "阳光花园小区", "residential", district="金坛区")["id"]
        with transaction(conn):
            _peer, token = sync.peers.create(conn, "instance", "office")
    conn.close()
    office = make_instance(tmp_path, "office")
    sync_up(office, central, token)
    return central, office, token, site


def rows(app, sql: str, *params) -> list:
    conn = connect(app.config["DATABASE"])
    try:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


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
