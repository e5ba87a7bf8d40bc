"""Screening: a newcomer known under more than one id (added on two phones; added on site, then
joined the roster) is one person, counted, listed and followed up once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from console_support import login, make_user
from screening_support import TZ, added, make_campaign, make_sites, save, today

from fieldapp.screening import coverage
from sync.store import iso, utcnow


@pytest.fixture
def world(app, db):
    with app.app_context():
        made = make_sites(db)
    return {"jintan": made[0], "site": made[1]}


def signed_in(app, name, role, **scope):
    make_user(app, name, role, **scope)
    client = app.test_client()
    assert login(client, name).status_code in (302, 303)
    return client


def held(db, campaign_id, site_id):
    """From the answers table the obvious way: the people added on site (one a name and phone)
    and the status of each one's latest answer."""
    latest: dict[tuple, tuple] = {}
    for name, phone, recorded_at, uuid, status in db.execute(
        "SELECT name, phone, recorded_at, uuid, status FROM screenings"
        " WHERE campaign_id = ? AND site_id = ? AND added = 1",
        (campaign_id, site_id),
    ):
        key = (name, phone.replace(" ", ""))
        if key not in latest or (recorded_at, uuid) > latest[key][:2]:
            latest[key] = (recorded_at, uuid, status)
    return {key: status for key, (_r, _u, status) in latest.items()}


@pytest.mark.parametrize("daily", [True, False], ids=["daily", "one-off"])
def test_a_newcomer_added_on_two_phones_is_one_person(app, db, world, daily):
    """Two gate volunteers, offline, each add 刘新来 with the same mobile number (each phone makes
    its own id): one person to screen, screened once by the latest answer, listed once on the
    site's page and in added.csv. Another 刘新来, with another number, is someone else."""
    campaign = make_campaign(app, db, daily=daily)
    site, cid, day = world["jintan"], campaign.id, today()
    east = added(
        cid, site["id"], "刘新来", phone="13900001111", at=iso(utcnow() - timedelta(minutes=30))
    )
    west = added(
        cid, site["id"], "刘新来", phone="139 0000 1111", at=iso(utcnow() - timedelta(minutes=20))
    )
    west["data"]["status"] = "away"  # the later answer: in force
    other = added(
        cid, site["id"], "刘新来", phone="13900002222", at=iso(utcnow() - timedelta(minutes=10))
    )
    assert {r.status for r in save(app, db, [east, west, other])} == {"applied"}
    assert db.execute("SELECT count(DISTINCT person_id) FROM screenings").fetchone()[0] == 3

    people = held(db, cid, site["id"])
    assert people == {("刘新来", "13900001111"): "away", ("刘新来", "13900002222"): "here"}
    cov = coverage.build(db, campaign, day, tz=TZ)
    line = next(r for r in cov.rows if r.site_id == site["id"])
    assert (line.roster, line.added, line.screened, line.not_yet) == (4, len(people), 2, 4)
    statuses = list(people.values())
    assert (line.counts["added"], line.counts["status:away"], line.counts["status:here"]) == (
        2,
        statuses.count("away"),
        statuses.count("here"),
    )
    with app.test_request_context():
        (cell,) = coverage.for_rollcall(db, day, [site["id"]], TZ)
    assert cell["sites"][site["id"]] == (2, 6)

    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    page = coordinator.get(f"/console/screening/{cid}/sites/{site['id']}").text
    assert page.count("刘新来") == 2  # one each: the two numbers
    listed = coordinator.get(f"/console/screening/{cid}/sites/{site['id']}/added.csv")
    lines = listed.data.decode("utf-8-sig").splitlines()
    assert sorted(lines[1:]) == [
        "刘新来,13900001111,临时工棚,worker",
        "刘新来,13900002222,临时工棚,worker",
    ]
