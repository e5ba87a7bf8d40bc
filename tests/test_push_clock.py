"""A phone whose clock is wrong (its date reset when the battery ran flat, no network time):
what it recorded by that clock is held with the offset, timed again by the phone and stored
once at the right time; never acknowledged as expired, never stored under the wrong day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sync_helpers import add_site, entry

from fieldapp.phones import devices
from sync import peers
from sync.store import iso

DAY = timedelta(days=1)


@pytest.fixture
def site(app):
    return add_site(app.config["DATABASE"])


@pytest.fixture
def phone(client, db):
    """An enrolled phone: its peer, with the client holding its device cookie."""
    with db:
        peer, token = peers.create(db, "device", "东门 1 号机")
    client.set_cookie(devices.COOKIE, token)
    return peer


def push(client, source, records, sent_at=None, **headers):
    body = {"source": source, "records": records}
    if sent_at is not None:
        body["sent_at"] = sent_at
    return client.post(
        "/sync/v1/push",
        data=json.dumps(body),
        headers={"Accept-Language": "zh-CN", **headers},
        content_type="application/json",
    )


def by_phone_clock(site, behind: timedelta, minutes_ago: float, **data):
    """An entry recorded `minutes_ago` by a phone whose clock is `behind` the instance's."""
    at = datetime.now(UTC) - behind - timedelta(minutes=minutes_ago)
    return dict(entry(site, **data), recorded_at=iso(at))


def phone_now(behind: timedelta) -> str:
    return iso(datetime.now(UTC) - behind)


def restamped(record, offset_ms):
    """What the phone does with a record held for its clock: timed again, its uuid kept."""
    at = datetime.fromisoformat(record["recorded_at"]) + timedelta(milliseconds=offset_ms)
    return dict(record, recorded_at=iso(at), restamped=True)


def stored(db):
    return [tuple(r) for r in db.execute("SELECT name, recorded_at FROM entries ORDER BY name")]


def test_a_phone_forty_days_slow_is_held_with_the_offset_then_stored_once_at_the_right_time(
    client, db, site, phone
):
    behind = 40 * DAY
    fever = by_phone_clock(site, behind, 3, name="王发热", temperature=38.1, fever_action="clinic")
    normal = by_phone_clock(site, behind, 2, name="李正常")
    answer = push(client, phone.id, [fever, normal], sent_at=phone_now(behind)).json
    results = answer["results"]
    assert [r["status"] for r in results] == ["held", "held"]
    assert "手机日期时间不准（慢了 40天）" in results[0]["reason"]
    offsets = [r["clock_offset_ms"] for r in results]
    assert offsets[0] == offsets[1] == answer["clock_offset_ms"]
    assert abs(offsets[0] - behind / timedelta(milliseconds=1)) < 60_000
    # Nothing of them stored, nothing kept for review, nothing counted.
    assert stored(db) == []
    assert db.execute("SELECT COUNT(*) FROM sync_rejects").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM changes").fetchone()[0] == 0

    again = [restamped(fever, offsets[0]), restamped(normal, offsets[0])]
    results = push(client, phone.id, again, sent_at=phone_now(behind)).json["results"]
    assert [r["status"] for r in results] == ["applied", "applied"]
    now = datetime.now(UTC)
    rows = stored(db)
    assert [name for name, _at in rows] == ["李正常", "王发热"]
    for _name, at in rows:  # at the instance's time of recording, give or take minutes
        assert abs(datetime.fromisoformat(at) - now) < timedelta(minutes=10)
    case = db.execute("SELECT temperature, fever_action FROM entries WHERE name = '王发热'")
    assert tuple(case.fetchone()) == (38.1, "clinic")

    # The answer was lost: the phone sends the same timed-again records again.
    results = push(client, phone.id, again, sent_at=phone_now(behind)).json["results"]
    assert [r["status"] for r in results] == ["duplicate", "duplicate"]
    assert len(stored(db)) == 2
    assert db.execute("SELECT COUNT(*) FROM sync_rejects").fetchone()[0] == 0
    assert db.execute("SELECT records_in FROM peers WHERE id = ?", (phone.id,)).fetchone()[0] == 2


def test_a_phone_two_days_slow_or_fast_is_not_stored_under_the_wrong_day(client, db, site, phone):
    for behind, word in ((2 * DAY, "慢了 2天"), (-2 * DAY, "快了 2天")):
        rec = by_phone_clock(site, behind, 1, name="慢" if behind > timedelta(0) else "快")
        results = push(client, phone.id, [rec], sent_at=phone_now(behind)).json["results"]
        assert results[0]["status"] == "held" and word in results[0]["reason"]
        assert stored(db) == [] or rec["data"]["name"] not in dict(stored(db))
        again = restamped(rec, results[0]["clock_offset_ms"])
        results = push(client, phone.id, [again], sent_at=phone_now(behind)).json["results"]
        assert results[0]["status"] == "applied"
        at = dict(stored(db))[rec["data"]["name"]]
        assert abs(datetime.fromisoformat(at) - datetime.now(UTC)) < timedelta(minutes=10)


def test_a_record_made_before_the_clock_went_wrong_is_stored_as_it_is(client, db, site, phone):
    """Recorded with a right clock, then the battery ran flat and the date was reset: that
    record was not stamped by the wrong clock (it is later than the phone's now) and is stored."""
    before = entry(site, name="早")
    late = by_phone_clock(site, 40 * DAY, 1, name="晚")
    results = push(client, phone.id, [before, late], sent_at=phone_now(40 * DAY)).json["results"]
    assert [r["status"] for r in results] == ["applied", "held"]
    assert [name for name, _at in stored(db)] == ["早"]


def test_a_right_clock_keeps_retention_a_record_really_old_expires(client, db, site, phone):
    """A phone left offline four weeks with a right clock: its old record is past the horizon
    (21 days) and expires as before; a record a few minutes old is stored."""
    old = by_phone_clock(site, timedelta(0), 28 * 24 * 60, name="旧")
    fresh = entry(site, name="新")
    answer = push(client, phone.id, [old, fresh], sent_at=phone_now(timedelta(minutes=1))).json
    assert [r["status"] for r in answer["results"]] == ["expired", "applied"]
    assert "clock_offset_ms" not in answer["results"][0]
    assert abs(answer["clock_offset_ms"] - 60_000) < 30_000
    assert [name for name, _at in stored(db)] == ["新"]


def test_a_push_without_sent_at_behaves_as_before(client, db, site, phone):
    """An older phone sends no clock: its records are judged by their recorded_at alone."""
    old = by_phone_clock(site, 40 * DAY, 1, name="旧")
    late = by_phone_clock(site, 2 * DAY, 1, name="晚")
    ahead = by_phone_clock(site, -2 * DAY, 1, name="快")
    answer = push(client, phone.id, [old, late, ahead]).json
    assert [r["status"] for r in answer["results"]] == ["expired", "applied", "held"]
    assert "clock_offset_ms" not in answer
    assert all("clock_offset_ms" not in r for r in answer["results"])
    assert [name for name, _at in stored(db)] == ["晚"]


def test_an_instance_push_is_not_judged_by_a_clock(client, db, site):
    """An instance relays what its phones recorded at many times: sent_at means nothing there."""
    with db:
        peer, token = peers.create(db, "instance", "district")
    late = dict(by_phone_clock(site, 2 * DAY, 1, name="晚"), seq=1)
    answer = push(
        client,
        peer.id,
        [late],
        sent_at=phone_now(40 * DAY),
        Authorization=f"Bearer {token}",
    ).json
    assert [r["status"] for r in answer["results"]] == ["applied"]
    assert "clock_offset_ms" not in answer and answer["cursor"] == 1
    assert dict(stored(db))["晚"] == late["recorded_at"]


def test_stored_by_the_gate_form_then_pushed_by_a_slow_clock_is_a_duplicate(
    client, db, site, phone
):
    """The gate form's save stored the entry with the instance's time (the phone's was a day
    off), while the phone also kept it: its push, held for the clock and timed again, is the
    same record, not a conflict for review."""
    rec = by_phone_clock(site, 3 * DAY, 0, name="同一")
    form_time = iso(datetime.now(UTC))
    from fieldapp import records

    with client.application.test_request_context():
        (saved,) = records.save(
            db, [dict(rec, recorded_at=form_time)], source=phone.id, device=phone.id
        )
    assert saved.status == "applied"
    held = push(client, phone.id, [rec], sent_at=phone_now(3 * DAY)).json["results"][0]
    assert held["status"] == "held"
    again = restamped(rec, held["clock_offset_ms"])
    result = push(client, phone.id, [again], sent_at=phone_now(3 * DAY)).json["results"][0]
    assert result["status"] == "duplicate"
    assert stored(db) == [("同一", form_time)]
    assert db.execute("SELECT COUNT(*) FROM sync_rejects").fetchone()[0] == 0


def test_a_sent_at_that_is_not_a_time_refuses_the_batch(client, db, site, phone):
    r = push(client, phone.id, [entry(site)], sent_at="yesterday")
    assert r.status_code == 400 and r.json["error"] == "bad_sent_at"
    assert stored(db) == []


@pytest.mark.parametrize("sent_at", ["9999-12-31T23:55:00Z", "9999-12-31T23:45:00-00:10"])
def test_a_sent_at_at_the_end_of_time_refuses_the_batch(client, db, site, phone, sent_at):
    """No clock shows it: the push is refused as a bad sent_at (it was a server error)."""
    r = push(client, phone.id, [entry(site)], sent_at=sent_at)
    assert r.status_code == 400 and r.json["error"] == "bad_sent_at"
    assert stored(db) == []
