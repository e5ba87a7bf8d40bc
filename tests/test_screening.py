"""Screening: campaigns as configuration, the `screening` record kind, coverage and its counts
against the records, the summary paragraph, the purge."""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from screening_support import (
    EN,
    TZ,
    added,
    answer,
    joins_the_roster,
    local,
    make_campaign,
    make_sites,
    save,
    today,
)

import sync
from fieldapp import days
from fieldapp.db import connect, migrate
from fieldapp.privacy import retention
from fieldapp.screening import campaigns, coverage, followup, questions, tallies
from fieldapp.syncing import configuration
from sync import config as sync_config
from sync.store import iso


@pytest.fixture
def world(app, db):
    with app.app_context():
        made = make_sites(db)
    return {"jintan": made[0], "site": made[1], "liyang": made[2]}


@pytest.fixture
def campaign(app, db, world):
    return make_campaign(app, db)


# ---- campaigns ------------------------------------------------------------------------------


def test_a_campaign_is_configuration_that_flows_down(app, db, world, tmp_path):
    ctx = app.app_context()
    ctx.push()
    before = sync_config.current_version(db)
    made = make_campaign(app, db, asked="status,whereabouts", end=today() + timedelta(days=7))
    assert sync_config.current_version(db) == before + 1
    assert made.questions == ("whereabouts", "status")  # the form's order, whatever was typed
    assert made.covers(world["jintan"]) and not made.covers(world["liyang"])
    pulled = configuration.export_config(db, before)
    assert [c["id"] for c in pulled["screening_campaigns"]] == [made.id]
    assert configuration.export_config(db, before + 1)["screening_campaigns"] == []

    # A downstream applies the pull: the same campaign, under its own version.
    down = connect(tmp_path / "down.sqlite3")
    try:
        migrate(down)
        configuration.apply_config(down, configuration.export_config(db, 0))
        there = campaigns.get(down, made.id)
        assert there == made
        with pytest.raises(campaigns.CampaignError, match="上级"):
            campaigns.add(
                down,
                {"UPSTREAM_URL": "https://city.test"},
                "区里自己的",
                start=today(),
                all_sites=True,
            )
    finally:
        down.close()
        ctx.pop()
    audit = db.execute("SELECT detail FROM audit_log WHERE action = 'screening_campaign'")
    assert [r[0] for r in audit] == ["add 复工人员排查"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"districts": []}, "Say which sites the campaign covers"),
        ({"districts": ["火星区"]}, "No site is in the district 火星区."),
        ({"sites": ["no-such-code"], "districts": []}, "No site has the code no-such-code."),
        ({"end": today() - timedelta(days=30)}, "A campaign cannot end before it starts."),
        ({"start": "2020-02-30"}, "Start: the date must look like 2020-02-15"),
        ({"questions": "whereabouts,horoscope"}, "Questions must be some of"),
        ({"questions": ""}, "Questions must be some of"),
        ({"name": " "}, "A campaign's name is 1 to 100 characters."),
    ],
)
def test_a_campaign_is_checked_whole_before_anything_is_written(app, db, world, options, message):
    before = sync_config.current_version(db)
    options = dict(options)  # the parameters are shared by both engines' runs
    if "questions" in options:
        options["asked"] = options.pop("questions")
    with app.test_request_context(headers=EN), pytest.raises(campaigns.CampaignError) as err:
        campaigns.add(
            db,
            app.config,
            options.pop("name", "复工人员排查"),
            **{"start": today() - timedelta(days=7), "districts": ["金坛区"], **options},
        )
    assert message in str(err.value)
    assert db.execute("SELECT count(*) FROM screening_campaigns").fetchone()[0] == 0
    assert sync_config.current_version(db) == before


def test_ending_a_campaign_keeps_its_answers_and_flows_down(app, db, world, campaign):
    assert save(app, db, [answer(campaign.id, world["jintan"]["id"], world["jintan"]["people"][0])])
    version = sync_config.current_version(db)
    with app.app_context():
        assert campaigns.end(db, app.config, campaign) is True
        assert campaigns.end(db, app.config, campaign) is False
    assert sync_config.current_version(db) == version + 1
    assert not campaigns.get(db, campaign.id).runs_on(today())
    assert db.execute("SELECT count(*) FROM screenings").fetchone()[0] == 1


# ---- the record kind ------------------------------------------------------------------------


def test_an_answer_is_stored_once_and_a_repeat_is_harmless(app, db, world, campaign):
    site = world["jintan"]
    rec = answer(campaign.id, site["id"], site["people"][0], status="home_isolation")
    assert [r.status for r in save(app, db, [rec])] == ["applied"]
    assert [r.status for r in save(app, db, [rec])] == ["duplicate"]
    row = db.execute("SELECT * FROM screenings").fetchone()
    assert (row["status"], row["added"], row["name"], row["day"]) == (
        "home_isolation",
        0,
        "",  # a roster person is not named again in the answer
        today().isoformat(),
    )
    assert db.execute("SELECT kind FROM changes WHERE uuid = ?", (rec["uuid"],)).fetchone()[0] == (
        "screening"
    )


def test_an_answer_for_tomorrow_in_the_instances_zone_is_refused(
    app, db, world, campaign, monkeypatch
):
    """Fifteen minutes before midnight in Shanghai (16:00 UTC, whose date is still today's), an
    answer for tomorrow is refused, that record only; five minutes before (a phone a few
    minutes fast), it is taken. The check read the UTC date plus a day, so Shanghai took
    tomorrow's answers from 08:00 on."""
    site = world["jintan"]
    first = today()
    midnight = datetime.combine(first + timedelta(days=1), datetime.min.time(), days.zone(TZ))
    tomorrow = first + timedelta(days=1)
    now = midnight.astimezone(UTC) - timedelta(minutes=15)
    monkeypatch.setattr(sync, "utcnow", lambda: now)
    ok = answer(campaign.id, site["id"], site["people"][0], day=first, at=iso(now))
    ahead = answer(campaign.id, site["id"], site["people"][1], day=tomorrow, at=iso(now))
    results = save(app, db, [ok, ahead])
    assert [r.status for r in results] == ["applied", "rejected"]
    assert "has not come yet" in results[1].reason
    assert [r[0] for r in db.execute("SELECT day FROM screenings")] == [first.isoformat()]
    later = midnight.astimezone(UTC) - timedelta(minutes=5)
    monkeypatch.setattr(sync, "utcnow", lambda: later)
    fast = answer(campaign.id, site["id"], site["people"][1], day=tomorrow, at=iso(later))
    assert [r.status for r in save(app, db, [fast])] == ["applied"]
    days_stored = sorted(r[0] for r in db.execute("SELECT day FROM screenings"))
    assert days_stored == [first.isoformat(), tomorrow.isoformat()]


def _new_person() -> str:
    return str(uuid.uuid4())


# What this instance has not received yet (held: the sender keeps it), not what is wrong.
NOT_YET = {
    "names a screening campaign this instance does not know",
    "The record names a site this instance does not know.",
    "The answer is about someone not on this site's roster.",
}


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"campaign_id": "nope"}, "names a screening campaign this instance does not know"),
        ({"campaign_id": None}, "The answer names no screening campaign."),
        ({"site_id": "nope"}, "The record names a site this instance does not know."),
        ({"person_id": "someone"}, "The answer does not name the person it is about."),
        ({"person_id": _new_person()}, "The answer is about someone not on this site's roster."),
        ({"day": "2020-02-30"}, "Day of screening: Enter a date like 2020-02-15."),
        ({"day": (today() + timedelta(days=3)).isoformat()}, "has not come yet"),
        ({"whereabouts": ""}, "Where in the last 14 days?: Choose one of the answers."),
        ({"whereabouts": "mars"}, "Choose one of the answers."),
        ({"whereabouts": "risk_area"}, "Which province or risk area?: Fill this in."),
        ({"contact": "maybe"}, "Choose yes or no."),
        ({"status": ""}, "Now: Choose one of the answers."),
        ({"nat_result": "negative"}, "Test date: Fill this in."),
        (
            {
                "day": today().isoformat(),
                "nat_result": "negative",
                "nat_date": (today() + timedelta(days=1)).isoformat(),
            },
            "Test date: Cannot be after the day of screening.",
        ),
        ({"nat_result": "pending", "nat_date": "15/02/2020"}, "Enter a date like 2020-02-15."),
        ({"vaccine_doses": "4"}, "Choose one of the answers."),
        ({"added": True, "name": ""}, "Name: Fill this in."),
        ({"added": True, "name": "新人", "phone": "123"}, "Must be 11 digits starting with 1"),
        ({"added": True, "name": "新人", "person_type": "alien"}, "Choose one of the answers."),
        ({"added": "perhaps"}, "Choose yes or no."),
        # A roster person's id as someone added: counted twice among the people to screen.
        (
            {"added": True, "name": "冒名", "phone": "13900002222", "person_type": "worker"},
            "adds someone not on the roster under the id of someone on it",
        ),
        ({"note": "x" * 201}, "Note: At most 200 characters."),
    ],
)
def test_invalid_answers_are_refused_with_a_reason_and_kept_for_review(
    app, db, world, campaign, change, reason
):
    site = world["jintan"]
    rec = answer(campaign.id, site["id"], site["people"][0])
    rec["data"].update(change)
    (result,) = save(app, db, [rec])
    assert reason in result.reason
    assert db.execute("SELECT count(*) FROM screenings").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM screening_tallies").fetchone()[0] == 0
    if reason in NOT_YET:  # what this instance has not received yet: the sender keeps it
        assert result.status == "held"
        assert db.execute("SELECT count(*) FROM sync_rejects").fetchone()[0] == 0
    else:
        assert result.status == "rejected"
        assert db.execute("SELECT reason FROM sync_rejects").fetchone()[0] == result.reason


def test_a_campaign_collects_only_what_it_asks(app, db, world):
    campaign = make_campaign(app, db, asked="whereabouts,status")
    site = world["jintan"]
    rec = answer(
        campaign.id,
        site["id"],
        site["people"][0],
        contact="yes",
        nat_result="positive",
        nat_date=today().isoformat(),
        vaccine_doses="0",
    )
    assert [r.status for r in save(app, db, [rec])] == ["applied"]
    row = db.execute("SELECT * FROM screenings").fetchone()
    assert (row["contact"], row["nat_result"], row["nat_date"], row["vaccine_doses"]) == (
        "",
        "",
        "",
        "",
    )
    # And a campaign that asks nothing of tests does not need their answers.
    rec = answer(campaign.id, site["id"], site["people"][1], nat_result="", vaccine_doses="")
    assert [r.status for r in save(app, db, [rec])] == ["applied"]


def test_someone_not_on_the_roster_is_added_by_the_answer_itself(app, db, world, campaign):
    site = world["site"]
    rec = added(campaign.id, site["id"], "刘新来", phone="139 0000 1111")
    assert [r.status for r in save(app, db, [rec])] == ["applied"]
    row = db.execute("SELECT added, name, phone, person_type FROM screenings").fetchone()
    assert tuple(row) == (1, "刘新来", "13900001111", "worker")
    # Not a roster row: the roster is configuration, owned upstream.
    assert db.execute("SELECT count(*) FROM roster WHERE name = '刘新来'").fetchone()[0] == 0
    cov = coverage.build(db, campaign, today(), tz=TZ)
    line = next(r for r in cov.rows if r.site_id == site["id"])
    assert (line.roster, line.added, line.to_screen, line.screened, line.not_yet) == (3, 1, 4, 1, 3)


# ---- coverage -------------------------------------------------------------------------------


def test_coverage_counts_each_person_once_by_their_latest_answer(app, db, world, campaign):
    a, b = world["jintan"], world["site"]
    yesterday = today() - timedelta(days=1)
    recs = [
        # 张建国: isolated in the morning, back at work by the afternoon: counted once, as here.
        answer(campaign.id, a["id"], a["people"][0], at=local(today(), 8), status="home_isolation"),
        answer(campaign.id, a["id"], a["people"][0], at=local(today(), 15)),
        answer(
            campaign.id,
            a["id"],
            a["people"][1],
            whereabouts="other_province",
            whereabouts_where="湖北",
            status="home_isolation",
            contact="yes",
        ),
        answer(
            campaign.id,
            a["id"],
            a["people"][2],
            whereabouts="city",
            nat_result="negative",
            nat_date=yesterday.isoformat(),
        ),
        # Yesterday's answer does not count today (a daily campaign).
        answer(campaign.id, a["id"], a["people"][3], day=yesterday),
        answer(
            campaign.id,
            b["id"],
            b["people"][0],
            whereabouts="risk_area",
            whereabouts_where="武汉",
            status="away",
        ),
        added(campaign.id, b["id"], "新来的"),
        # Another district's site is not covered by this campaign.
        answer(campaign.id, world["liyang"]["id"], world["liyang"]["people"][0]),
    ]
    assert {r.status for r in save(app, db, recs)} == {"applied"}
    cov = coverage.build(db, campaign, today(), tz=TZ)
    assert [r.name for r in cov.rows] == ["人民医院扩建工地", "阳光花园小区"]
    by_site = {r.site_id: r for r in cov.rows}
    sa, sb = by_site[a["id"]], by_site[b["id"]]
    assert (sa.to_screen, sa.screened, sa.not_yet) == (4, 3, 1)
    assert (sb.to_screen, sb.screened, sb.not_yet) == (4, 2, 2)
    assert sa.counts["status:here"] == 2 and sa.counts["status:home_isolation"] == 1
    assert sa.counts["whereabouts/status:other_province:home_isolation"] == 1
    assert sa.counts["contact:yes"] == 1 and sa.counts["nat_result:negative"] == 1
    t = cov.total
    assert (t.sites, t.to_screen, t.screened, t.not_yet, t.counts["added"]) == (2, 8, 5, 3, 1)
    assert [(d.name, d.screened) for d in cov.districts] == [("金坛区", 5)]
    # Yesterday, only 陈晓梅 was screened.
    assert coverage.build(db, campaign, yesterday, tz=TZ).total.screened == 1
    # A district's coverage, and a scope of one site.
    assert coverage.build(db, campaign, today(), tz=TZ, district="溧阳市").rows == []
    one = coverage.build(db, campaign, today(), tz=TZ, site_ids=[b["id"]])
    assert [r.site_id for r in one.rows] == [b["id"]] and one.total.screened == 2

    with app.test_request_context(headers=EN):
        text = coverage.summary(cov)
    assert text.startswith(
        f"{today().isoformat()}, 金坛区, “复工人员排查”: 8 people to screen, 5 screened"
        " (1 of them added on site), 3 not yet."
    )
    assert "1 went to another province (of whom 1 isolating at home)" in text
    assert "1 went to a risk area (of whom 1 told not to come back yet)" in text
    assert "1 met people from risk areas (of whom 1 isolating at home)" in text
    assert "now 3 here and well, 1 isolating at home, 1 told not to come back yet" in text
    with app.test_request_context():  # zh-Hans, the default
        zh = coverage.summary(cov)
    assert "应排查 8 人，已排查 5 人（含名单外新增 1 人），未排查 3 人" in zh
    assert "1 人去过外省（其中 1 人居家隔离）" in zh


def test_a_one_off_campaign_counts_everyone_once_since_its_start(app, db, world):
    campaign = make_campaign(app, db, daily=False)
    a = world["jintan"]
    recs = [
        answer(campaign.id, a["id"], a["people"][0], day=today() - timedelta(days=3)),
        answer(
            campaign.id, a["id"], a["people"][0], day=today() - timedelta(days=1), status="left"
        ),
        answer(campaign.id, a["id"], a["people"][1], day=today() - timedelta(days=2)),
    ]
    assert {r.status for r in save(app, db, recs)} == {"applied"}
    cov = coverage.build(db, campaign, today(), tz=TZ)
    line = next(r for r in cov.rows if r.site_id == a["id"])
    assert (line.screened, line.not_yet, line.counts["status:left"]) == (2, 2, 1)
    before = coverage.build(db, campaign, today() - timedelta(days=2), tz=TZ)
    assert next(r for r in before.rows if r.site_id == a["id"]).screened == 2


def line_of(cov, site_id):
    """(roster, added, to screen, screened, not yet) of a site's line."""
    line = next(r for r in cov.rows if r.site_id == site_id)
    return (line.roster, line.added, line.to_screen, line.screened, line.not_yet)


@pytest.mark.parametrize("daily", [True, False], ids=["daily", "one-off"])
def test_someone_added_on_site_who_joins_the_roster_is_one_person(
    app, db, world, monkeypatch, daily
):
    """docs/screening.md's path: 刘新来 is added on the phone, screened, then joins the roster by
    `fieldapp roster import` (a new roster row, the same name and phone). From then on they
    are one person to screen, and their answers under either id count once; the days before
    the import keep the figures they had."""
    campaign = make_campaign(app, db, daily=daily)
    site = world["jintan"]  # a roster of 4
    d3, d2, d1 = (today() - timedelta(days=n) for n in (3, 2, 1))
    first = added(
        campaign.id, site["id"], "刘新来", phone="139 0000 1111", day=d3, status="home_isolation"
    )
    newcomer = first["data"]["person_id"]
    assert {r.status for r in save(app, db, [first])} == {"applied"}
    before = coverage.build(db, campaign, d3, tz=TZ)
    assert line_of(before, site["id"]) == (4, 1, 5, 1, 4)

    # Imported into the roster (the console's added.csv), as if at 10:00 on d2.
    monkeypatch.setattr(
        "fieldapp.gate.roster.utcnow", lambda: datetime.fromisoformat(local(d2, 10))
    )
    made = joins_the_roster(app, db, site["id"])
    assert made.added == 1
    joined = db.execute(
        "SELECT id FROM roster WHERE site_id = ? AND name = '刘新来'", (site["id"],)
    ).fetchone()[0]
    # The day before the import is as it was, to the last count.
    again = coverage.build(db, campaign, d3, tz=TZ)
    assert line_of(again, site["id"]) == line_of(before, site["id"])
    assert again.total.counts == before.total.counts
    # From the import on, one person to screen: on the roster (a one-off campaign has their
    # answer as added already).
    joined_day = (5, 0, 5, 0, 5) if daily else (5, 0, 5, 1, 4)
    assert line_of(coverage.build(db, campaign, d2, tz=TZ), site["id"]) == joined_day

    recs = [
        # d2: the phone has not got the new roster yet: screened under the added id, then,
        # after the sync, again under the roster id (the answer in force).
        answer(
            campaign.id,
            site["id"],
            newcomer,
            day=d2,
            at=local(d2, 9),
            added=True,
            name="刘新来",
            phone="13900001111",
            unit="临时工棚",
            person_type="worker",
            status="home_isolation",
        ),
        answer(campaign.id, site["id"], joined, day=d2, at=local(d2, 15)),
        answer(campaign.id, site["id"], joined, day=d1, at=local(d1, 9)),
        answer(campaign.id, site["id"], site["people"][0], day=d1, at=local(d1, 9)),
    ]
    assert {r.status for r in save(app, db, recs)} == {"applied"}
    ids = [r[0] for r in db.execute("SELECT id FROM sites")]
    want = {
        d3: (4, 1, 5, 1, 4),
        d2: (5, 0, 5, 1, 4),
        d1: (5, 0, 5, 2, 3),
        today(): (5, 0, 5, 0, 5) if daily else (5, 0, 5, 2, 3),
    }
    for day, figures in want.items():
        cov = coverage.build(db, campaign, day, tz=TZ)
        assert line_of(cov, site["id"]) == figures, day
        assert_adds_up(cov)
        assert_summary_says(app, cov)
        # The roll-call's cell says the same.
        with app.test_request_context():
            (cell,) = coverage.for_rollcall(db, day, ids, TZ)
        assert cell["sites"][site["id"]] == (figures[3], figures[2]), day
        assert cell["total"] == (cov.total.screened, cov.total.to_screen), day
    # d2: 刘新来 once, by the answer in force (here, under the roster id), not isolating.
    counts = next(
        r for r in coverage.build(db, campaign, d2, tz=TZ).rows if r.site_id == site["id"]
    ).counts
    assert (counts["people"], counts["status:here"], counts["status:home_isolation"]) == (1, 1, 0)
    assert counts["added"] == 0


def test_exports_carry_the_summary_and_every_line(app, db, world, campaign):
    import openpyxl

    site = world["jintan"]
    assert save(app, db, [answer(campaign.id, site["id"], site["people"][0], status="left")])
    with app.test_request_context():
        cov = coverage.build(db, campaign, today(), tz=TZ)
        raw = coverage.to_csv(cov)
        book = openpyxl.load_workbook(io.BytesIO(coverage.to_xlsx(cov)))
        text = coverage.format_text(cov)
    assert raw.startswith("\ufeff".encode())
    lines = raw.decode("utf-8-sig").splitlines()
    assert "已排查 1 人" in lines[0]
    assert lines[1].startswith("区,场所,应排查,")
    assert len(lines) == 2 + len(cov.rows) + len(cov.districts) + 1
    sheet = book.active
    assert "已排查 1 人" in sheet.cell(2, 1).value
    assert [c.value for c in sheet[3]][:4] == ["区", "场所", "应排查", "名单内"]
    assert "阳光花园小区" in text and "已排查 1 人" in text


# ---- the counts kept with the answers, against the records ----------------------------------


def direct(recs: list[dict], sites: dict, campaign, day) -> dict:
    """Coverage of a day computed from the wire records alone, the obvious way."""
    first, last = campaign.window(day)
    latest: dict[tuple, dict] = {}
    added_people: dict[str, set] = {}
    for r in recs:
        d = r["data"]
        if d["added"] and d["day"] <= day.isoformat():
            added_people.setdefault(d["site_id"], set()).add(d["person_id"])
        if not first.isoformat() <= d["day"] <= last.isoformat():
            continue
        key = (d["site_id"], d["person_id"])
        if key not in latest or (r["recorded_at"], r["uuid"]) > (
            latest[key]["recorded_at"],
            latest[key]["uuid"],
        ):
            latest[key] = r
    out = {}
    for site_id, site in sites.items():
        mine = [r["data"] for (s, _p), r in latest.items() if s == site_id]
        out[site_id] = {
            "to_screen": len(site["people"]) + len(added_people.get(site_id, ())),
            "screened": len(mine),
            **{
                f"{col}:{v}": sum(1 for d in mine if d[col] == v)
                for col, _q, labels in questions.BREAKDOWN
                for v in labels
            },
            "iso_far": sum(
                1 for d in mine if d["whereabouts"] == "other_province" and d["status"] == "away"
            ),
        }
    return out


def assert_adds_up(cov) -> None:
    """The table adds up: screened and not yet make the people to screen, each question's
    answers make the screened, a district is the sum of its sites and the scope of its
    districts."""
    lines = [*cov.rows, *cov.districts, cov.total]
    for line in lines:
        assert line.screened + line.not_yet == line.to_screen, line.name
        for col, _q, labels in questions.BREAKDOWN:
            assert sum(line.counts[f"{col}:{v}"] for v in labels) == line.screened, (line, col)
        assert (
            line.counts["whereabouts/status:other_province:away"]
            <= line.counts["whereabouts:other_province"]
        )
    for group in cov.districts:
        assert {r.district for r in group.rows} == {group.name}
        for attr in ("sites", "roster", "added", "to_screen", "screened", "not_yet"):
            assert getattr(group, attr) == sum(getattr(r, attr) for r in group.rows), attr
    for attr in ("sites", "roster", "added", "to_screen", "screened", "not_yet"):
        assert getattr(cov.total, attr) == sum(getattr(d, attr) for d in cov.districts), attr
    assert sorted(r.site_id for r in cov.rows) == sorted(
        r.site_id for d in cov.districts for r in d.rows
    )
    table = coverage.table(cov)
    assert len(table) == len(cov.rows) + len(cov.districts) + 1


def assert_summary_says(app, cov) -> None:
    """The summary paragraph carries the scope's numbers, nothing else."""
    t, c = cov.total, cov.total.counts
    with app.test_request_context(headers=EN):
        text = coverage.summary(cov)
    assert f": {t.to_screen} people to screen, {t.screened} screened" in text
    assert f", {t.not_yet} not yet." in text
    said = {
        "district": "stayed in the district",
        "city": "went elsewhere in the city",
        "province": "went elsewhere in the province",
        "other_province": "went to another province",
        "risk_area": "went to a risk area",
    }
    for value, words in said.items():
        n = c[f"whereabouts:{value}"]
        assert (f"{n} {words}" in text) == bool(n), (value, text)
    if t.screened:
        assert f"Of the {t.screened} screened:" in text
        met = c["contact:yes"]
        assert (f"{met} met people from risk areas" if met else "nobody met") in text


PEOPLE = st.tuples(
    st.integers(min_value=0, max_value=2),  # which site (two districts)
    st.integers(min_value=0, max_value=4),  # which person (4: someone added on site)
    st.integers(min_value=-2, max_value=0),  # day, from today
    st.integers(min_value=0, max_value=23 * 60),  # minute of the day it was recorded
    st.sampled_from(list(questions.WHEREABOUTS)),
    st.sampled_from(list(questions.CONTACT)),
    st.sampled_from(list(questions.STATUSES)),
    st.sampled_from(list(questions.NAT_RESULTS)),
    st.sampled_from(list(questions.DOSES)),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    people=st.lists(PEOPLE, max_size=30),
    batches=st.integers(min_value=1, max_value=4),
    daily=st.booleans(),
    shuffle=st.randoms(use_true_random=False),
)
def test_coverage_always_equals_the_counts_made_from_the_records(
    app, db, world, people, batches, daily, shuffle
):
    """Whatever answers arrive, in whatever batches and order, the coverage (kept counts for
    a daily campaign) is what the records say."""
    for table in ("screenings", "screening_tallies", "screening_campaigns", "changes"):
        db.execute(f"DELETE FROM {table}")
    campaign = make_campaign(
        app, db, daily=daily, start=today() - timedelta(days=2), districts=[], all_sites=True
    )
    sites = {w["id"]: w for w in (world["jintan"], world["site"], world["liyang"])}
    order = list(sites)
    newcomers = {s: str(uuid.uuid4()) for s in sites}
    recs = []
    for site_n, person_n, day_off, minute, w, c, s, n, v in people:
        site_id = order[site_n]
        day = today() + timedelta(days=day_off)
        at = (
            datetime(day.year, day.month, day.day, tzinfo=UTC)
            - timedelta(hours=8)
            + timedelta(minutes=minute)
        ).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        extra = {"nat_date": day.isoformat()} if n != "none" else {}
        where = {"whereabouts_where": "外地"} if w in ("other_province", "risk_area") else {}
        if person_n == 4:
            rec = answer(
                campaign.id,
                site_id,
                newcomers[site_id],
                day,
                at,
                added=True,
                name="新来的",
                person_type="worker",
            )
        else:
            people_here = sites[site_id]["people"]
            rec = answer(campaign.id, site_id, people_here[person_n % len(people_here)], day, at)
        rec["data"].update(
            whereabouts=w, contact=c, status=s, nat_result=n, vaccine_doses=v, **extra, **where
        )
        recs.append(rec)
    shuffle.shuffle(recs)
    size = max(1, -(-len(recs) // batches))
    for start in range(0, len(recs), size):
        assert {r.status for r in save(app, db, recs[start : start + size])} == {"applied"}
    for day_off in (-2, -1, 0):
        day = today() + timedelta(days=day_off)
        cov = coverage.build(db, campaign, day, tz=TZ)
        want = direct(recs, sites, campaign, day)
        got = {
            r.site_id: {
                "to_screen": r.to_screen,
                "screened": r.screened,
                **{
                    f"{col}:{v}": r.counts[f"{col}:{v}"]
                    for col, _q, labels in questions.BREAKDOWN
                    for v in labels
                },
                "iso_far": r.counts["whereabouts/status:other_province:away"],
            }
            for r in cov.rows
        }
        assert got == want, day
        assert cov.total.screened == sum(w["screened"] for w in want.values())
        assert_adds_up(cov)
        assert_summary_says(app, cov)
        # A district's own coverage is its part of the city's.
        for group in cov.districts:
            alone = coverage.build(db, campaign, day, tz=TZ, district=group.name)
            assert [(r.site_id, r.to_screen, r.counts) for r in alone.rows] == [
                (r.site_id, r.to_screen, r.counts) for r in group.rows
            ]
            assert (alone.total.to_screen, alone.total.counts) == (group.to_screen, group.counts)
    # Counting again from the answers (what a purge does) changes nothing.
    read = "SELECT campaign_id, day, site_id, counts FROM screening_tallies"
    kept = {(c, d, s, json.dumps(json.loads(n))) for c, d, s, n in db.execute(read)}
    for (day,) in db.execute("SELECT DISTINCT day FROM screenings").fetchall():
        tallies.rebuild(db, campaign.id, day)
    assert {(c, d, s, json.dumps(json.loads(n))) for c, d, s, n in db.execute(read)} == kept


# ---- retention ------------------------------------------------------------------------------


def test_answers_and_follow_up_steps_are_purged_with_the_retention(app, db, world, campaign):
    site = world["jintan"]
    now = datetime.now(UTC)
    old_day = (now - timedelta(days=15)).date()
    old_at = (now - timedelta(days=15)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    recent = answer(campaign.id, site["id"], site["people"][1], status="home_isolation")
    old = answer(campaign.id, site["id"], site["people"][0], day=old_day, at=old_at)
    step = followup.wire(
        {"campaign_id": campaign.id, "site_id": site["id"], "person_id": site["people"][0]},
        "王主任",
        "note",
        note="电话随访",
    )
    step["recorded_at"] = old_at
    assert [r.status for r in save(app, db, [recent, old, step])] == ["applied"] * 3
    assert db.execute("SELECT count(*) FROM screening_tallies").fetchone()[0] == 2
    app.config["RETENTION_DAYS"] = 7
    with app.app_context():
        done = retention.purge_app(app)
    assert done.others == 2
    assert [r[0] for r in db.execute("SELECT uuid FROM screenings")] == [recent["uuid"]]
    assert db.execute("SELECT count(*) FROM screening_actions").fetchone()[0] == 0
    # The old day's counts went with its answers; today's are as they were.
    assert [r[0] for r in db.execute("SELECT day FROM screening_tallies")] == [today().isoformat()]
    gone = db.execute(
        "SELECT count(*) FROM changes WHERE uuid IN (?, ?)", (old["uuid"], step["uuid"])
    ).fetchone()[0]
    assert gone == 0
    assert db.execute("SELECT others FROM purge_log").fetchone()[0] == 2
    assert (
        '"others": 2'
        in db.execute("SELECT detail FROM audit_log WHERE action = 'purge'").fetchone()[0]
    )
    # A late arrival older than the horizon is acknowledged and dropped: the purge holds.
    again = answer(campaign.id, site["id"], site["people"][2], day=old_day, at=old_at)
    assert [r.status for r in save(app, db, [again])] == ["expired"]
    assert Counter(r[0] for r in db.execute("SELECT day FROM screenings")) == {
        today().isoformat(): 1
    }


def test_a_purge_cut_short_never_leaves_counts_of_answers_that_are_gone(
    app, db, world, campaign, monkeypatch
):
    """A power cut while the purge counts a day again, after its answers were deleted: the
    answers and their counts stay or go together, and the next purge takes both."""
    site = world["jintan"]
    now = datetime.now(UTC)
    old_day = (now - timedelta(days=15)).date()
    old_at = (now - timedelta(days=15)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    old = answer(campaign.id, site["id"], site["people"][0], day=old_day, at=old_at)
    assert [r.status for r in save(app, db, [old])] == ["applied"]
    assert coverage.build(db, campaign, old_day, tz=TZ).total.screened == 1
    app.config["RETENTION_DAYS"] = 7

    def power_cut(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(tallies, "rebuild", power_cut)
    with app.app_context(), pytest.raises(RuntimeError):
        retention.purge_app(app)
    monkeypatch.undo()
    # Cut short: the answer and its count are both still there, as before the purge.
    assert [r[0] for r in db.execute("SELECT uuid FROM screenings")] == [old["uuid"]]
    assert coverage.build(db, campaign, old_day, tz=TZ).total.screened == 1
    with app.app_context():
        assert retention.purge_app(app).others == 1
    assert db.execute("SELECT count(*) FROM screenings").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM screening_tallies").fetchone()[0] == 0
    assert coverage.build(db, campaign, old_day, tz=TZ).total.screened == 0


def test_coverage_of_a_district_the_campaign_does_not_screen_is_refused_not_zero(
    app, db, world, campaign, runner, monkeypatch
):
    """`screening coverage --district` with a typo, or a district the campaign does not cover,
    says so and fails, rather than print a table of 0 to screen (all done, it would read)."""
    monkeypatch.setenv("FIELDAPP_LANG", "zh_CN.UTF-8")
    for district in ("金坛", "溧阳市"):
        result = runner.invoke(args=["screening", "coverage", campaign.id, "--district", district])
        assert result.exit_code == 1, result.output
        assert f"“{campaign.name}”在 {today().isoformat()} 不排查 {district} 的任何场所" in (
            result.output
        )
        assert "应排查 0 人" not in result.output
    result = runner.invoke(args=["screening", "coverage", campaign.id, "--district", "金坛区"])
    assert result.exit_code == 0 and "应排查 7 人" in result.output
