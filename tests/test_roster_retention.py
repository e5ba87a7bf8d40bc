"""People taken off a roster: kept with when they left, deleted by the central's purge once that is
longer ago than RETENTION_DAYS, and deleted below at the next pull; what points at them stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from console_support import login, make_user, wire_entry
from instances_support import central_and_office, make_instance, rows, sync_up
from screening_support import answer, make_campaign

import sync
from fieldapp import records
from fieldapp.db import connect, transaction
from fieldapp.gate import roster, sites
from fieldapp.phones import devices
from sync.store import iso

ZH = {"LANG": "zh_CN.UTF-8"}
PEOPLE = {
    "张老走": "13800000001",  # taken off 30 days ago: purged
    "李刚走": "13800000002",  # taken off today: kept
    "王还在": "13800000003",  # on the roster: kept
    "赵回来": "13800000004",  # taken off 30 days ago, put back: kept
}


def ago(days: float) -> str:
    return iso(datetime.now(UTC) - timedelta(days=days))


def cli(app, *args):
    result = app.test_cli_runner().invoke(args=list(args), env=ZH)
    assert result.exit_code == 0, result.output
    return result.output


def ids(app, table: str = "roster") -> dict[str, str]:
    return dict(rows(app, f"SELECT id, site_id FROM {table}"))  # noqa: S608


@pytest.fixture
def world(tmp_path):
    """A central whose site's roster has PEOPLE in their states, and an office that pulled it
    all before the purge."""
    central, office, token, site_id = central_and_office(tmp_path)
    conn = connect(central.config["DATABASE"])
    try:
        with central.app_context():
            roster.import_rows(
                conn,
                site_id,
                [
                    {"name": n, "phone": p, "unit": "1-101", "person_type": "resident"}
                    for n, p in PEOPLE.items()
                ],
            )
            code = sites.get_site(conn, site_id)["code"]
    finally:
        conn.close()
    person = dict(rows(central, "SELECT name, id FROM roster"))
    assert "2 人已移出名册" in cli(central, "roster", "deactivate", code, "张老走", "李刚走")
    out = cli(central, "roster", "deactivate", code, "赵回来")
    assert "1 人已移出名册" in out and "21 天后删除" in out
    # The departures of a month ago, as if made then.
    conn = connect(central.config["DATABASE"])
    with transaction(conn):
        conn.execute(
            "UPDATE roster SET deactivated_at = ? WHERE name IN ('张老走', '赵回来')", (ago(30),)
        )
    conn.close()
    assert "1 人已重新列入名册" in cli(central, "roster", "activate", code, "赵回来")
    sync_up(office, central, token)
    return central, office, token, site_id, code, person


def test_taking_off_and_putting_back_keeps_when_and_flows_down(world):
    central, office, _token, _site, _code, person = world
    states = "SELECT name, active, deactivated_at IS NOT NULL FROM roster ORDER BY name"
    expected = [("张老走", 0, 1), ("李刚走", 0, 1), ("王还在", 1, 0), ("赵回来", 1, 0)]
    assert sorted(rows(central, states)) == sorted(expected)
    assert sorted(rows(office, states)) == sorted(expected)  # pulled as they are
    audit = rows(central, "SELECT action FROM audit_log WHERE action LIKE 'roster_%' ORDER BY id")
    assert audit == [("roster_deactivate",), ("roster_deactivate",), ("roster_activate",)]


def test_the_central_purges_who_left_long_ago_and_the_office_drops_them(world, tmp_path):
    central, office, token, site_id, code, person = world
    gone = person["张老走"]
    # A third tier under the office, which pulled the roster before the purge.
    conn = connect(office.config["DATABASE"])
    with transaction(conn):
        _peer, below_token = sync.peers.create(conn, "instance", "below")
    conn.close()
    below = make_instance(tmp_path, "below")
    sync_up(below, office, below_token)
    assert gone in ids(below)

    out = cli(central, "purge")
    assert "已删除" in out and "移出名册的人员 1 人" in out
    assert gone not in ids(central)
    assert set(ids(central)) == {person[n] for n in ("李刚走", "王还在", "赵回来")}
    assert ids(central, "roster_removed") == {gone: site_id}
    assert rows(central, "SELECT roster FROM purge_log") == [(1,)]
    assert "张老走" not in str(rows(central, "SELECT * FROM roster"))

    # The office, and the tier below it, still have the row until they pull.
    assert gone in ids(office)
    sync_up(office, central, token)
    assert gone not in ids(office)
    assert set(ids(office)) == set(ids(central))
    assert ids(office, "roster_removed") == {gone: site_id}
    sync_up(below, office, below_token)
    assert gone not in ids(below) and set(ids(below)) == set(ids(central))

    # Pulled again (nothing new), or everything again (since 0): never back.
    sync_up(office, central, token)
    conn = connect(office.config["DATABASE"])
    with transaction(conn):
        conn.execute("UPDATE sync_upstream SET config_version = 0, config_version_id = NULL")
    conn.close()
    sync_up(office, central, token)
    assert gone not in ids(office)

    # A second purge finds nothing more: the recent departure waits for its time.
    assert "移出名册的人员 0 人" in cli(central, "purge")
    assert person["李刚走"] in ids(central)


def test_the_office_keeps_its_copy_it_does_not_own_the_roster(world):
    _central, office, _token, _site, _code, person = world
    office.config["UPSTREAM_URL"] = "http://city.test"
    assert "移出名册的人员 0 人" in cli(office, "purge")
    assert person["张老走"] in ids(office)  # until the central's purge reaches it


def test_what_pointed_at_a_purged_person_still_shows(world):
    central, office, token, site_id, code, person = world
    gone = person["张老走"]
    with central.app_context():
        conn = connect(central.config["DATABASE"])
        campaign = make_campaign(central, conn)
        conn.close()
    followed = answer(campaign.id, site_id, gone, status="home_isolation")
    entry = wire_entry(site_id, name="张老走", roster_id=gone)
    conn = connect(central.config["DATABASE"])
    with central.test_request_context():
        saved = records.save(conn, [followed, entry], source="test")
    conn.close()
    assert [r.status for r in saved] == ["applied", "applied"]
    cli(central, "purge")
    assert gone not in ids(central)

    make_user(central, "boss", "admin")
    console = central.test_client()
    assert login(console, "boss").status_code in (302, 303)
    pages = [
        f"/console/sites/{site_id}/gate",
        "/console/log",
        f"/console/entry/{entry['uuid']}",
        "/console/screening/followups",
        f"/console/screening/followups/{campaign.id}/{gone}",
        f"/console/screening/{campaign.id}",
    ]
    for url in pages:
        r = console.get(url)
        assert r.status_code == 200, url
    assert "张老走" not in console.get(f"/console/sites/{site_id}/gate").text
    assert "张老走" in console.get(f"/console/entry/{entry['uuid']}").text  # the entry's own

    # The office after its pull: the gate phone's roster and pages, and an answer about the
    # person a phone kept offline is still taken (not held for someone never coming back).
    sync_up(office, central, token)
    conn = connect(office.config["DATABASE"])
    with transaction(conn):
        _peer, device = sync.peers.create(conn, "device", "门岗1号", site_id)
    conn.close()
    phone = office.test_client()
    phone.set_cookie(devices.COOKIE, device)
    kept = phone.get(f"/s/{code}/roster.json")
    assert kept.status_code == 200
    assert {p[0] for p in kept.get_json()["people"]} == {
        person["王还在"],
        person["赵回来"],
    }
    assert phone.get(f"/s/{code}?person={gone}").status_code == 200
    assert phone.get(f"/s/{code}/screening/{campaign.id}").status_code == 200
    late = answer(campaign.id, site_id, gone)
    conn = connect(office.config["DATABASE"])
    with office.test_request_context():
        assert [r.status for r in records.save(conn, [late], source="test")] == ["applied"]
    conn.close()
    sync_up(office, central, token)
    assert rows(central, "SELECT count(*) FROM screenings WHERE uuid = ?", late["uuid"]) == [(1,)]
