"""Three tiers as separate processes: site office → district → city, records up, config down.
The city runs on SQLite (waitress), and again on PostgreSQL served by 4 gunicorn workers."""

from __future__ import annotations

import pytest
from servers import make_server
from sync_helpers import entry, link, other_kinds, save_records, start, stop, uuids
from wait import wait_until

# Real processes (or a PostgreSQL cluster): `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tiers(request, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("tiers")
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_cluster").create_database(prefix="city")
    city = make_server(tmp_path / "city", database_url=url)  # with the demo sites and rosters
    if url:
        city.serve_args = ("--workers", "4", "--threads", "4")
    district = make_server(tmp_path / "district", demo=False, SYNC_INTERVAL="1")
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
    before_city = dict(city.query("SELECT name, records_in FROM peers"))
    before_district = dict(district.query("SELECT name, records_in FROM peers"))
    sites = {r["id"]: r["code"] for r in city.query("SELECT id, code FROM sites")}
    assert (
        sites and {r["id"]: r["code"] for r in office.query("SELECT id, code FROM sites")} == sites
    )
    roster = city.query("SELECT id, name, pass_token FROM roster ORDER BY id")
    assert roster and office.query("SELECT id, name, pass_token FROM roster ORDER BY id") == roster
    assert all(r["pass_token"] for r in roster)  # the office's phones know every card

    site_id = sorted(sites)[0]
    at_office = [entry(site_id, i) for i in range(40)]
    at_district = [entry(site_id, i, name="区里登记") for i in range(7)]
    assert set(save_records(office.folder, at_office)) == {"applied"}
    assert set(save_records(district.folder, at_district)) == {"applied"}
    others = other_kinds(office, site_id, at_office[0]["uuid"])
    assert set(save_records(office.folder, others)) == {"applied"}
    phone = "7f1c2a9e-0000-4000-8000-00000000beef"  # a gate phone that pushed to the office
    from_phone = [entry(site_id, i, name="手机登记") for i in range(3)]
    assert set(save_records(office.folder, from_phone, device=phone)) == {"applied"}
    office.cli("sync")
    district.cli("sync")
    district.cli("sync")  # relaying is once: a second round sends nothing new
    office.cli("sync")

    got = uuids(city)
    assert len(got) == len(set(got))
    assert {r["uuid"] for r in at_office + at_district} <= set(got)
    origin = dict(city.query("SELECT uuid, origin FROM entries"))
    assert {origin[r["uuid"]] for r in at_office} == {instance_id(office)}
    assert {origin[r["uuid"]] for r in at_district} == {instance_id(district)}
    device = dict(city.query("SELECT uuid, device FROM entries"))
    assert {device[r["uuid"]] for r in from_phone} == {phone}  # the phone is kept every hop
    assert {origin[r["uuid"]] for r in from_phone} == {instance_id(office)}
    for wire in others:  # every kind of record goes up the same way
        tables = {
            "daily_report": "daily_reports",
            "correction": "corrections",
            "registration": "registrations",
            "entry": "entries",
        }
        table = tables[wire["kind"]]
        rows = city.query(f"SELECT origin FROM {table} WHERE uuid = ?", (wire["uuid"],))
        assert [r[0] for r in rows] == [instance_id(office)]
    # The links go up with the entries: the city sees who was checked and from what.
    links = {
        r["uuid"]: (r["roster_id"], r["registration_uuid"])
        for r in city.query("SELECT uuid, roster_id, registration_uuid FROM entries")
    }
    registration, checked, resident = others[2:]
    assert links[checked["uuid"]] == ("", registration["uuid"])
    assert links[resident["uuid"]] == (resident["data"]["roster_id"], "")
    counts = dict(city.query("SELECT name, records_in FROM peers"))
    assert counts["district"] - before_city.get("district", 0) == 55  # each record once
    counts = dict(district.query("SELECT name, records_in FROM peers"))
    assert counts["office"] - before_district.get("office", 0) == 48

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

    # A pass reissued and self-service turned on at the city: the office's phones go by both.
    name, token = city.query("SELECT name, pass_token FROM roster WHERE site_id = ?", (site_id,))[0]
    city.cli("roster", "reissue", new, "--person", name)
    city.cli("site", "self-service", new, "--on")
    district.cli("sync")
    office.cli("sync")
    at_office = office.query(
        "SELECT pass_token FROM roster WHERE site_id = ? AND name = ?", (site_id, name)
    )
    assert at_office[0][0] not in ("", token)
    assert (
        at_office[0][0] == city.query("SELECT pass_token FROM roster WHERE name = ?", (name,))[0][0]
    )
    assert office.query("SELECT self_service FROM sites WHERE id = ?", (site_id,))[0][0] == 1
    refused = office.cli("roster", "reissue", new, "--all", check=False)
    assert refused.returncode != 0  # rosters are the city's

    status = office.cli("sync", "--status").stdout
    assert district.url in status


def test_a_serving_instance_keeps_syncing_in_the_background(tiers):
    city, district, _office = tiers
    site_id = city.query("SELECT id FROM sites ORDER BY name")[0][0]
    district.cli("sync")  # the site must be known down there first
    made = [entry(site_id, i) for i in range(5)]
    assert set(save_records(district.folder, made)) == {"applied"}
    wanted = {r["uuid"] for r in made}
    wait_until(lambda: wanted <= set(uuids(city)), what="the city has them")


def test_configuration_is_owned_upstream(tiers):
    _city, _district, office = tiers
    refused = office.cli("site", "add", "--name", "私建小区", check=False)
    assert refused.returncode != 0
    assert (
        "upstream" in refused.stdout + refused.stderr or "上级" in refused.stdout + refused.stderr
    )
    assert office.query("SELECT count(*) FROM sites WHERE name = '私建小区'")[0][0] == 0


def test_a_screening_campaign_goes_down_and_its_answers_come_up_once(tiers):
    """A campaign made at the city reaches the office; answers made there (and a follow-up
    step made at the district) reach the city once, with their origin, and count there."""
    from screening_support import added, answer, today

    from fieldapp.screening import followup

    city, district, office = tiers
    made = city.cli("screening", "campaign", "add", "--name", "三级排查", "--all-sites").stdout
    campaign_id = made.split("\t")[0]
    day = today()  # the answers' day, and the coverage's: the test may run across midnight
    district.cli("sync")
    office.cli("sync")
    assert office.query(
        "SELECT name, active FROM screening_campaigns WHERE id = ?", (campaign_id,)
    )[0] == ("三级排查", 1)
    refused = office.cli(
        "screening", "campaign", "add", "--name", "自建", "--all-sites", check=False
    )
    assert refused.returncode != 0 and "上级" in refused.stdout + refused.stderr

    site_id = office.query("SELECT id FROM sites WHERE name = '阳光花园小区'")[0][0]
    people = [
        r[0]
        for r in office.query("SELECT id FROM roster WHERE site_id = ? ORDER BY name", (site_id,))
    ]
    at_office = [
        answer(campaign_id, site_id, people[0], day),
        answer(campaign_id, site_id, people[1], day, status="home_isolation"),
        answer(campaign_id, site_id, people[2], day, whereabouts="city"),
        added(campaign_id, site_id, "刘新来", day=day),
    ]
    assert set(save_records(office.folder, at_office)) == {"applied"}
    step = followup.wire(
        {"campaign_id": campaign_id, "site_id": site_id, "person_id": people[1]},
        "区里王主任",
        "check",
        temperature=36.8,
    )
    assert save_records(district.folder, [step]) == ["applied"]
    office.cli("sync")
    district.cli("sync")
    wait_until(
        lambda: len(uuids(city, "screenings")) == 4 and len(uuids(city, "screening_actions")) == 1,
        what="the city has every answer and the step",
    )
    district.cli("sync")  # relaying is once: nothing new arrives twice
    assert sorted(uuids(city, "screenings")) == sorted(r["uuid"] for r in at_office)
    origin = dict(city.query("SELECT uuid, origin FROM screenings"))
    assert set(origin.values()) == {instance_id(office)}
    assert city.query("SELECT origin FROM screening_actions")[0][0] == instance_id(district)
    counted = city.cli("screening", "coverage", "三级排查", "--date", day.isoformat()).stdout
    assert "已排查 4 人（含名单外新增 1 人）" in counted and "1 人居家隔离" in counted

    # Ending it at the top ends it everywhere; its answers stay.
    city.cli("screening", "campaign", "end", campaign_id)
    district.cli("sync")
    office.cli("sync")
    assert (
        office.query("SELECT active FROM screening_campaigns WHERE id = ?", (campaign_id,))[0][0]
        == 0
    )
    assert len(uuids(office, "screenings")) == 4
