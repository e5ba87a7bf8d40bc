"""Screening: a newcomer known under more than one id (added on two phones; added on site, then
joined the roster) is one person, counted, listed and followed up once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import screening_support
from console_support import csrf, login, make_user
from screening_support import TZ, added, answer, local, save, today

from fieldapp.gate import roster
from fieldapp.screening import coverage, followup
from sync.store import iso, utcnow


@pytest.fixture
def world(app, db):
    with app.app_context():
        made = screening_support.make_sites(db)
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
    campaign = screening_support.make_campaign(app, db, daily=daily)
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


def test_added_csv_keeps_a_unit_s_leading_zero_and_the_roster_import_reads_it(app, db, world):
    """A unit numbered 0302 opens in Excel as 0302, not 302 (a tab before it, as the console's
    exports do), and `fieldapp roster import` of the file reads 0302."""
    campaign = screening_support.make_campaign(app, db, daily=True)
    site = world["jintan"]
    answer_ = added(campaign.id, site["id"], "刘新来", unit="0302", at=iso(utcnow()))
    assert [r.status for r in save(app, db, [answer_])] == ["applied"]

    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    listed = coordinator.get(f"/console/screening/{campaign.id}/sites/{site['id']}/added.csv")
    lines = listed.data.decode("utf-8-sig").splitlines()
    assert lines[1:] == ["刘新来,13900001111,\t0302,worker"]
    with app.app_context():
        assert roster.parse_csv(listed.data)[0]["unit"] == "0302"


def test_a_newcomer_who_joins_the_roster_has_one_follow_up(app, db, world):
    """刘新来 is added in home isolation, checked once, then joins the roster (the docs' path:
    added.csv imported); the phone lists them under their roster id and the next answer is
    "no change". One open follow-up, under the roster id, with the answers and steps of both;
    closing it closes it, wherever it is opened from."""
    campaign = screening_support.make_campaign(app, db)
    site, cid, yesterday = world["jintan"], campaign.id, today() - timedelta(days=1)
    newcomer = added(cid, site["id"], "刘新来", day=yesterday, status="home_isolation")
    first = newcomer["data"]["person_id"]
    key = {"campaign_id": cid, "site_id": site["id"], "person_id": first}
    check = followup.wire(key, "王主任", "check", temperature=36.8)
    check["recorded_at"] = local(yesterday, 15)
    assert [r.status for r in save(app, db, [newcomer, check])] == ["applied", "applied"]
    screening_support.joins_the_roster(app, db, site["id"])
    joined = db.execute("SELECT id FROM roster WHERE name = '刘新来'").fetchone()[0]
    again = answer(cid, site["id"], joined, status="home_isolation")
    assert [r.status for r in save(app, db, [again])] == ["applied"]
    assert (
        db.execute(
            "SELECT count(DISTINCT person_id) FROM screenings WHERE status = 'home_isolation'"
        ).fetchone()[0]
        == 2
    )

    def listed(status="open"):
        return [
            (f["person_id"], f["name"], f["opened_at"], len(f["checks"]))
            for f in followup.listing(db, None, utcnow(), status)
        ]

    one = [(joined, "刘新来", newcomer["recorded_at"], 1)]
    assert listed() == one
    followup.WHOLE_AT, before = 0, followup.WHOLE_AT  # read with the joins of many sites
    try:
        assert listed() == one
    finally:
        followup.WHOLE_AT = before

    coordinator = signed_in(app, "jintan", "coordinator", districts=["金坛区"])
    page = coordinator.get("/console/screening/followups").text
    assert page.count("刘新来") == 1 and f"/followups/{cid}/{joined}" in page
    for pid in (joined, first):  # the old link (the added id) is the same follow-up
        f = followup.one(db, cid, pid, utcnow(), TZ)
        assert (f["person_id"], f["name"], f["closed"]) == (joined, "刘新来", False)
        assert [a["uuid"] for a in f["answers"]] == [newcomer["uuid"], again["uuid"]]
        assert [s["uuid"] for s in f["all_steps"]] == [check["uuid"]]
    url = f"/console/screening/followups/{cid}/{first}"
    assert "36.8" in coordinator.get(url).text
    r = coordinator.post(
        url + "/action",
        data={"csrf_token": csrf(coordinator, url), "action": "close", "outcome": "completed"},
    )
    assert r.status_code == 303
    closing = db.execute("SELECT person_id FROM screening_actions WHERE action = 'close'")
    assert [row[0] for row in closing] == [joined]
    assert listed() == []
    assert [p for p, *_ in listed("closed")] == [joined]
    page = coordinator.get("/console/screening/followups?status=closed").text
    assert len(re.findall("刘新来", page)) == 1
