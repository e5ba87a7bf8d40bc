"""Three tiers as separate processes: site office → district → city, records up, config down."""

from __future__ import annotations

import pytest
from browser.conftest import make_server
from sync_helpers import entry, link, save_records, start, stop, uuids


@pytest.fixture
def tiers(tmp_path):
    city = make_server(tmp_path / "city")  # the central, with the demo sites and rosters
    district = make_server(tmp_path / "district", demo=False)
    office = make_server(tmp_path / "office", demo=False)
    link(district, city, "district")
    link(office, district, "office")
    start(city)
    start(district)  # serves the office, and syncs up in the background too
    yield city, district, office
    stop(district)
    stop(city)


def instance_id(server) -> str:
    return server.query("SELECT value FROM settings WHERE name = 'instance_id'")[0][0]


def test_records_reach_the_top_once_with_origin_and_config_reaches_the_bottom(tiers):
    city, district, office = tiers
    district.cli("sync")
    office.cli("sync")
    sites = {r["id"]: r["code"] for r in city.query("SELECT id, code FROM sites")}
    assert (
        sites and {r["id"]: r["code"] for r in office.query("SELECT id, code FROM sites")} == sites
    )
    roster = city.query("SELECT id, name FROM roster ORDER BY id")
    assert roster and office.query("SELECT id, name FROM roster ORDER BY id") == roster

    site_id = sorted(sites)[0]
    at_office = [entry(site_id, i) for i in range(40)]
    at_district = [entry(site_id, i, name="区里登记") for i in range(7)]
    assert set(save_records(office.folder, at_office)) == {"applied"}
    assert set(save_records(district.folder, at_district)) == {"applied"}
    office.cli("sync")
    district.cli("sync")
    district.cli("sync")  # relaying is once: a second round sends nothing new
    office.cli("sync")

    got = uuids(city)
    assert len(got) == len(set(got)) == 47
    origin = dict(city.query("SELECT uuid, origin FROM entries"))
    assert {origin[r["uuid"]] for r in at_office} == {instance_id(office)}
    assert {origin[r["uuid"]] for r in at_district} == {instance_id(district)}
    counts = dict(city.query("SELECT name, records_in FROM peers"))
    assert counts == {"district": 47}
    assert dict(district.query("SELECT name, records_in FROM peers")) == {"office": 40}

    # A code rotated at the city is rotated at the office, the old one still resolves there.
    old = sites[site_id]
    city.cli("site", "rotate-code", old)
    new = city.query("SELECT code FROM sites WHERE id = ?", (site_id,))[0][0]
    assert new != old
    district.cli("sync")
    office.cli("sync")
    assert office.query("SELECT code FROM sites WHERE id = ?", (site_id,))[0][0] == new
    assert (
        office.query("SELECT site_id FROM site_old_codes WHERE code = ?", (old,))[0][0] == site_id
    )

    status = office.cli("sync", "--status").stdout
    assert district.url in status


def test_configuration_is_owned_upstream(tiers):
    _city, _district, office = tiers
    refused = office.cli("site", "add", "私建小区", check=False)
    assert refused.returncode != 0
    assert office.query("SELECT count(*) FROM sites")[0][0] == 0
