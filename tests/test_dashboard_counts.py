"""The dashboard's kept figures: the entries' counts per site and hour (gate/counts.py) and the
fever cases' states (console/cases.py), held against the same figures computed straight from
the records after pushes, local saves, corrections, case actions, purges and rebuilds."""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from console_support import make_site, save, save_corrected_day, wire_entry
from cryptography.fernet import Fernet
from gate_helpers import HX, enrol, submit

import sync.store
from fieldapp import create_app, days
from fieldapp.console import cases, corrections, dashboard
from fieldapp.db import backup as backups
from fieldapp.db import close_all, connect
from fieldapp.gate import counts
from fieldapp.privacy import retention

TZ = "Asia/Shanghai"


def stamp(at: datetime) -> str:
    return sync.store.iso(at)


def some_entries(rnd, site_ids, now, n, hours_back=24 * 5):
    """n entries at random sites and times over the last hours_back hours (none ahead)."""
    out = []
    for _ in range(n):
        at = now - timedelta(minutes=rnd.randrange(1, hours_back * 60))
        fever = rnd.random() < 0.2
        out.append(
            wire_entry(
                rnd.choice(site_ids),
                recorded_at=stamp(at),
                direction=rnd.choice(("in", "out")),
                temperature=38.2 if fever else 36.6,
                fever_action="clinic" if fever else "",
                travel=rnd.random() < 0.1,
                travel_where="武汉",
            )
        )
    return out


def local_days(db, tz_name):
    first, last = db.execute("SELECT min(recorded_at), max(recorded_at) FROM entries").fetchone()
    if first is None:
        return []
    a, b = days.local(first, tz_name).date(), days.local(last, tz_name).date()
    return [a + timedelta(days=i) for i in range(-1, (b - a).days + 2)]


def current_day(db, day, tz_name, scope):
    """A day's figures from each entry's current value (corrections.current, voids left out),
    one entry at a time: what count_day and the kept counts must both say."""
    start, end = days.bounds(day, tz_name)
    rows = db.execute(
        "SELECT * FROM entries WHERE recorded_at >= ? AND recorded_at < ?", (start, end)
    ).fetchall()
    fixes = corrections.for_entries(db, [r["uuid"] for r in rows])
    per_site, hours = {}, [0] * 24
    for r in rows:
        value = corrections.current(r, fixes.get(r["uuid"], []))
        if value["void"] or (scope is not None and r["site_id"] not in scope):
            continue
        s = per_site.setdefault(r["site_id"], counts.blank())
        s[value["direction"]] += 1
        s["fevers"] += value["temperature"] >= 37.3
        s["travels"] += bool(value["travel"])
        hours[counts.key(r["recorded_at"], days.zone(tz_name))[1]] += 1
    return per_site, hours


def assert_held(db, tz_name, scopes, now):
    """The kept figures are the ones counted from the records, for every day and scope."""
    assert counts.ready(db, tz_name)
    assert cases.made(db)
    for day in local_days(db, tz_name):
        for scope in scopes:
            kept_day = counts.read_day(db, day, scope)
            assert kept_day == counts.count_day(db, day, tz_name, scope), (day, scope)
            assert kept_day == current_day(db, day, tz_name, scope), (day, scope)
    for scope in scopes:
        assert cases.open_count(db, scope, now) == cases.count_open(db, scope, now), scope
    # A kept case for every entry that is a fever now and not void, and no other (the log's
    # and the exports' "fever only" reads them).
    rows = db.execute("SELECT * FROM entries").fetchall()
    fixes = corrections.for_entries(db, [r["uuid"] for r in rows])
    fevers = {
        r["uuid"] for r in rows if cases.is_case(corrections.current(r, fixes.get(r["uuid"], [])))
    }
    assert fevers == {r[0] for r in db.execute("SELECT uuid FROM fever_cases")}
    # No row left for a day, site and hour that has no entry.
    assert db.execute("SELECT count(*) FROM entry_counts WHERE ins + outs = 0").fetchone()[0] == 0


def kept(db):
    return sorted(tuple(r) for r in db.execute("SELECT * FROM entry_counts")), sorted(
        tuple(r) for r in db.execute("SELECT * FROM fever_cases")
    )


@pytest.fixture
def sites(app):
    return [make_site(app, f"小区{i}", "金坛区" if i < 2 else "溧阳市") for i in range(3)]


@pytest.mark.parametrize("per_statement", [None, 60])
def test_figures_follow_pushes_and_local_saves(app, db, client, sites, monkeypatch, per_statement):
    if per_statement:  # SQLite's multi-row INSERTs of a batch split into many statements
        monkeypatch.setattr(sync.store, "SQLITE_MAX_PARAMETERS", per_statement)
    now = datetime.now(UTC)
    ids = [s["id"] for s in sites]
    rnd = random.Random(18)
    pushed = some_entries(rnd, ids, now, 120)
    for site_id in ids:  # each site's phone pushes its entries, in batches of 20
        phone = enrol(app.test_client(), db, {"id": site_id})
        peer = db.execute("SELECT id FROM peers WHERE site_id = ?", (site_id,)).fetchone()[0]
        mine = [r for r in pushed if r["data"]["site_id"] == site_id]
        for start in [*range(0, len(mine), 20), 0]:  # the first batch again: counted once
            body = {"source": peer, "records": mine[start : start + 20]}
            r = phone.post("/sync/v1/push", json=body)
            assert r.status_code == 200, r.get_data(as_text=True)
    save(app, *some_entries(rnd, ids, now, 40))  # the console's and the gate's own path
    gate = enrol(app.test_client(), db, sites[0])
    r, _uuid = submit(gate, sites[0], headers=HX, temperature="38.5", fever_action="clinic")
    assert r.status_code == 200
    assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 161
    assert_held(db, TZ, [None, ids[:2], [ids[2]], []], now)
    # Counting everything again from the entries gives the same rows.
    before = kept(db)
    counts.rebuild(db, TZ)
    db.execute("DELETE FROM settings WHERE name = ?", (cases.MADE_SETTING,))
    cases.ensure(db)
    assert kept(db) == before


def some_corrections(rnd, recs, now, n):
    """n corrections of random entries of recs: voids, readings up and down, directions and
    travel answers changed, some entries corrected twice, recorded in the last hour."""
    out = []
    for _ in range(n):
        target = rnd.choice(recs)
        kind = rnd.randrange(5)
        if kind == 0:
            args = {"void": True}
        elif kind == 1:
            args = {"changes": {"temperature": rnd.choice((36.4, 37.3, 38.9))}}
        elif kind == 2:
            args = {"changes": {"direction": rnd.choice(("in", "out"))}}
        elif kind == 3:
            travel = rnd.random() < 0.5
            args = {"changes": {"travel": travel, "travel_where": "武汉" if travel else ""}}
        else:
            args = {"changes": {"temperature": 38.0, "direction": "out"}}
        fix = corrections.wire(target["uuid"], "王医生", "更正", **args)
        fix["recorded_at"] = stamp(now - timedelta(seconds=rnd.randrange(1, 3600)))
        out.append(fix)
    return out


def test_figures_follow_corrections_and_voids_in_any_order(app, db, sites):
    """Corrections stored before their entries and after, in and out of recorded order, in
    batches of their own and with the entries: the kept counts are those of the entries'
    current values, and a rebuild gives the same."""
    now = datetime.now(UTC)
    ids = [s["id"] for s in sites]
    rnd = random.Random(42)
    recs = some_entries(rnd, ids, now, 150)
    fixes = some_corrections(rnd, recs, now, 80)
    first = {r["uuid"] for r in recs[:40]}
    ahead = [f for f in fixes if f["data"]["entry_uuid"] in first]
    rest = [f for f in fixes if f not in ahead]
    save(app, *ahead)  # corrections of entries not stored yet
    save(app, *rest[:10], *recs[:60])  # a batch stores its corrections before its entries
    save(app, *recs[60:])
    save(app, *rest[10:])
    assert db.execute("SELECT count(*) FROM fever_cases_waiting").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 80
    assert_held(db, TZ, [None, ids[:2], [ids[2]]], now)
    before = kept(db)
    counts.rebuild(db, TZ)
    db.execute("DELETE FROM settings WHERE name = ?", (cases.MADE_SETTING,))
    cases.ensure(db)
    assert kept(db) == before


def test_a_day_of_corrections_reads_on_the_dashboard_as_the_fever_cases_do(app, db, sites):
    """Voided entries, fevers corrected in and out, travel answers corrected and a correction
    that came before its entry: the dashboard's figures are the current values', its fevers
    the day's fever cases."""
    site = sites[0]["id"]
    tz = days.zone(TZ)
    day = days.today(TZ) - timedelta(days=2)
    start = days.bounds(day, TZ)[0]

    def at(hour):
        return stamp(datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(hours=hour))

    expected = save_corrected_day(app, site, at)
    evening = datetime.fromisoformat(at(20).replace("Z", "+00:00"))
    with app.test_request_context():
        figures = dashboard.today(db, [site], tz, evening)
    line = next(s for s in figures["sites"] if s["id"] == site)
    assert (line["in"], line["out"], line["fevers"], line["travels"]) == (7, 0, 3, 1)
    assert line["inside"] == 7
    assert figures["hours"] == [expected["hours"].get(h, 0) for h in range(24)]
    fever_cases = cases.listing(db, [site], evening, "all", since=start, until=at(24))
    assert sorted(c["entry"]["name"] for c in fever_cases) == sorted(expected["fever_names"])
    assert len(fever_cases) == line["fevers"]
    assert_held(db, TZ, [None, [site]], evening)
    before = kept(db)
    counts.rebuild(db, TZ)
    assert kept(db) == before


def test_cases_follow_corrections_and_actions_in_any_order(app, db, sites):
    now = datetime.now(UTC)
    site = sites[0]["id"]
    hot = [
        wire_entry(
            site,
            name=f"热{i}",
            temperature=38.4,
            fever_action="clinic",
            recorded_at=stamp(now - timedelta(hours=30 - i)),
        )
        for i in range(6)
    ]
    cool = wire_entry(site, name="凉", temperature=36.5)
    late = wire_entry(
        site, name="后到", temperature=36.6, recorded_at=stamp(now - timedelta(hours=2))
    )
    other = wire_entry(sites[2]["id"], name="别处", temperature=39.0, fever_action="clinic")
    # A correction and an action that arrive before the entry they name.
    save(
        app,
        corrections.wire(late["uuid"], "王医生", "重测", changes={"temperature": 38.0}),
        cases.wire(late["uuid"], "王医生", "acknowledge"),
    )
    save(app, *hot, cool, other)
    assert_held(db, TZ, [None, [site]], now)
    u = [h["uuid"] for h in hot]
    close = cases.wire(u[3], "王医生", "close", outcome="normal")
    reopen = cases.wire(u[3], "王医生", "reopen")
    reopen["recorded_at"] = stamp(now - timedelta(minutes=1))  # recorded after the close,
    close["recorded_at"] = stamp(now - timedelta(minutes=5))
    save(app, reopen)  # ... but stored before it: the case stays open
    save(
        app,
        cases.wire(u[0], "王医生", "acknowledge"),
        cases.wire(u[1], "王医生", "close", outcome="normal"),
        corrections.wire(u[2], "王医生", "录错", changes={"temperature": 36.8}),
        corrections.wire(u[4], "王医生", "重复", void=True),
        corrections.wire(cool["uuid"], "王医生", "录错", changes={"temperature": 37.9}),
        close,
    )
    save(app, late)
    # A correction stored before its entry in the same batch (a batch stores kinds in the
    # order they first appear in it).
    same = wire_entry(site, name="同批", temperature=36.7)
    save(app, corrections.wire(same["uuid"], "王医生", "重测", changes={"temperature": 38.6}), same)
    assert db.execute("SELECT count(*) FROM fever_cases_waiting").fetchone()[0] == 0
    assert_held(db, TZ, [None, [site], [sites[2]["id"]]], now)
    got = cases.open_count(db, None, now)
    # open: u0 (acknowledged), u3 (reopened), u5, cool, late and same (corrected up), other;
    # overdue: the hot ones, 25-30 hours old; acknowledged: u0 and late.
    assert got == {"open": 7, "overdue": 3, "unacknowledged": 5}
    assert got["open"] == len(cases.listing(db, None, now, "open"))
    # Made again from the records: the same rows.
    before = kept(db)
    db.execute("DELETE FROM settings WHERE name = ?", (cases.MADE_SETTING,))
    assert cases.open_count(db, None, now) == got  # counted from the records meanwhile
    cases.ensure(db)
    assert kept(db) == before


def test_a_purge_takes_its_entries_out_of_the_figures(app, db, sites):
    now = datetime.now(UTC)
    ids = [s["id"] for s in sites]
    rnd = random.Random(5)
    recs = some_entries(rnd, ids, now, 200, hours_back=24 * 12)
    save(app, *recs)
    # Corrected and voided entries on every day, the horizon's too: what went is what counted.
    save(app, *some_corrections(rnd, recs, now, 120))
    fevers = [r["uuid"] for r in recs if r["data"]["temperature"] > 38]
    save(app, *(cases.wire(f, "王医生", "acknowledge") for f in fevers[:5]))
    # A correction whose entry never comes: waited for until the purge takes it.
    lost = wire_entry(ids[0], recorded_at=stamp(now - timedelta(days=10)))
    gone = corrections.wire(lost["uuid"], "王医生", "作废", void=True)
    gone["recorded_at"] = lost["recorded_at"]
    save(app, gone)
    assert db.execute("SELECT count(*) FROM fever_cases_waiting").fetchone()[0] == 1
    assert_held(db, TZ, [None, ids[:1]], now)
    app.config["RETENTION_DAYS"] = 7
    with app.app_context():
        done = retention.purge_app(app, now=now)
    assert done.entries > 0
    horizon = sync.horizon_for(7, now)
    assert db.execute("SELECT min(recorded_at) FROM entries").fetchone()[0] >= horizon
    assert_held(db, TZ, [None, ids[:1]], now)
    assert db.execute("SELECT count(*) FROM fever_cases_waiting").fetchone()[0] == 0
    # Days wholly before the horizon have no counts left; the cases of purged entries went.
    first_day = days.local(horizon, TZ).date().isoformat()
    assert (
        db.execute("SELECT count(*) FROM entry_counts WHERE day < ?", (first_day,)).fetchone()[0]
        == 0
    )
    assert (
        db.execute(
            "SELECT count(*) FROM fever_cases WHERE uuid NOT IN (SELECT uuid FROM entries)"
        ).fetchone()[0]
        == 0
    )


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kathmandu", "America/St_Johns"])
def test_another_zone_is_counted_again_and_kept_in_it(database, tmp_path, monkeypatch, zone):
    """A changed TIMEZONE: `fieldapp init` counts every entry again in the new zone (zones of
    a DST change, of +5:45 and of -3:30), and the entries stored then are counted in it."""
    # Days around the autumn DST changes of 2026 (Europe on 25 October, North America on
    # 1 November), for a clock at 3 November.
    fixed = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(sync.store, "utcnow", lambda: fixed)
    key = Fernet.generate_key().decode()
    base = {"TESTING": True, "DATABASE": database, "SECRET_KEY": "t", "ID_KEY": key}
    before = create_app(base)
    site_ids = [make_site(before, f"小区{i}")["id"] for i in range(2)]
    rnd = random.Random(zone)
    first = some_entries(rnd, site_ids, fixed, 150, hours_back=24 * 12)
    save(before, *first)
    close_all(before)
    after = create_app({**base, "TIMEZONE": zone})
    after.instance_path = str(tmp_path)
    db = connect(database)
    try:
        assert counts.ready(db, TZ) and not counts.ready(db, zone)
        # Not ready in this zone: the dashboard counts from the entries meanwhile.
        day = days.local(stamp(fixed), zone).date()
        assert counts.figures(db, day, zone, None) == counts.count_day(db, day, zone, None)
        result = after.test_cli_runner().invoke(args=["init"])
        assert result.exit_code == 0, result.output
        assert "天" in result.output  # the days it counted
        save(after, *some_entries(rnd, site_ids, fixed, 150, hours_back=24 * 12))
        assert_held(db, zone, [None, site_ids[:1]], fixed)
        rows = kept(db)
        counts.rebuild(db, zone)  # the SQL rebuild and the per-batch counts agree
        assert kept(db) == rows
        assert after.test_cli_runner().invoke(args=["init"]).exit_code == 0
        assert kept(db) == rows  # ready: init leaves them
    finally:
        db.close()
        close_all(after)


def test_the_page_shows_what_the_records_say(app, db, sites):
    """The dashboard's figures from the kept rows are those counted from the records."""
    now = datetime.now(UTC)
    ids = [s["id"] for s in sites]
    recs = some_entries(random.Random(3), ids, now, 80, hours_back=20)
    save(app, *recs)
    tz = days.zone(TZ)
    with app.test_request_context():
        for scope in (None, ids[:2]):
            kept_figures = dashboard.today(db, scope, tz, now)
            db.execute(
                "DELETE FROM settings WHERE name IN (?, ?)",
                (counts.ZONE_SETTING, cases.MADE_SETTING),
            )
            counted = dashboard.today(db, scope, tz, now)
            counts.ensure(db, TZ)
            cases.ensure(db)
            assert json.dumps(kept_figures, default=str) == json.dumps(counted, default=str)


@pytest.mark.sqlite_only
def test_a_restored_backup_has_figures_that_match_its_records(app, db, sites, runner, tmp_path):
    """A backup holds its figures with its records; one from before they were kept (none in
    it) gets them made by the restore."""
    now = datetime.now(UTC)
    ids = [s["id"] for s in sites]
    rnd = random.Random(9)
    save(app, *some_entries(rnd, ids, now, 60))
    made = backups.backup(app.config["DATABASE"], tmp_path / "b", keep_days=21)
    save(app, *some_entries(rnd, ids, now, 60))
    assert runner.invoke(args=["restore", str(made.path)]).exit_code == 0
    assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 60
    assert_held(db, TZ, [None, ids[:1]], now)
    # As if made before the figures were kept: the restore makes them.
    old = sqlite3.connect(made.path)
    with old:
        old.execute("DELETE FROM entry_counts")
        old.execute("DELETE FROM fever_cases")
        old.execute(
            "DELETE FROM settings WHERE name IN (?, ?)", (counts.ZONE_SETTING, cases.MADE_SETTING)
        )
    old.close()
    assert runner.invoke(args=["restore", str(made.path)]).exit_code == 0
    assert_held(db, TZ, [None, ids[:1]], now)
    assert db.execute("SELECT sum(ins + outs) FROM entry_counts").fetchone()[0] == 60


def test_an_upgrade_counts_the_corrections_made_before_it(app, db, sites, runner):
    """Counts kept by an older version (as recorded) are made again by `fieldapp init`."""
    site = sites[0]["id"]
    day = days.today(TZ) - timedelta(days=2)
    start = days.bounds(day, TZ)[0]

    def at(hour):
        return stamp(datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(hours=hour))

    save_corrected_day(app, site, at)
    right = kept(db)
    # As the older version left them: the entries' recorded values, this migration not applied.
    db.execute("DELETE FROM migrations WHERE name LIKE '%0011_current_values.sql'")
    db.execute("UPDATE entry_counts SET fevers = fevers + 2, outs = outs + 1")
    assert kept(db) != right
    result = runner.invoke(args=["init"])
    assert result.exit_code == 0, result.output
    assert "0011_current_values.sql" in result.output
    assert kept(db) == right
