"""A daily report's day: not after today in the instance's TIMEZONE (a zone ahead of UTC or
behind it), as a clock within the push tolerance reads it; refused on the gate's form and per
record on a push, in the user's language; a phone whose clock is wrong is held first."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from cryptography.fernet import Fernet
from reports_support import report_data

import sync
from fieldapp import create_app, days
from fieldapp.db import close_all, connect
from fieldapp.gate import sites
from fieldapp.phones import devices
from sync import peers
from sync.store import CLOCK_TOLERANCE, iso

ZONES = ["Asia/Shanghai", "America/Los_Angeles"]  # ahead of UTC, behind it (and DST)
HANS = "报告的日期 {day} 还没到（今天是 {today}）：请检查做这份报告的手机或电脑的日期。"
HANT = "報告的日期 {day} 還沒到（今天是 {today}）：請檢查做這份報告的手機或電腦的日期。"


@pytest.fixture(params=ZONES)
def zoned(request, database, tmp_path):
    """(app, zone): an instance whose TIMEZONE is the zone."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE": database,
            "SECRET_KEY": "test",
            "ID_KEY": Fernet.generate_key().decode(),
            "BASE_URL": "http://gate.test",
            "TIMEZONE": request.param,
            "WTF_CSRF_ENABLED": False,
        }
    )
    app.instance_path = str(tmp_path)
    yield app, request.param
    close_all(app)


@pytest.fixture
def db(zoned):
    conn = connect(zoned[0].config["DATABASE"])
    yield conn
    conn.close()


@pytest.fixture
def gate(zoned, db):
    """(client, site, phone id): a client enrolled as the site's gate phone."""
    app, _zone = zoned
    with app.app_context():
        site = dict(sites.add_site(db, "阳光花园小区", "residential", district="金坛区"))
    peer, token = peers.create(db, "device", "东门 1 号机", site["id"])
    client = app.test_client()
    client.set_cookie(devices.COOKIE, token)
    return client, site, peer.id


def record(site_id: str, day, at: datetime, **data) -> dict:
    """A report as a phone's outbox pushes it: the form's fields as strings."""
    fields = {k: str(v) for k, v in report_data(site_id, day, **data).items()}
    fields.update(zero="true", supersedes="", reporter="", remarks="")
    return {
        "uuid": str(uuid.uuid4()),
        "kind": "daily_report",
        "recorded_at": iso(at),
        "data": fields,
    }


def push(client, phone, records, sent_at=None, lang="zh-CN"):
    body = {"source": phone, "records": records}
    if sent_at is not None:
        body["sent_at"] = sent_at
    r = client.post(
        "/sync/v1/push",
        data=json.dumps(body),
        headers={"Accept-Language": lang},
        content_type="application/json",
    )
    assert r.status_code == 200, r.text
    return r.json


def stored_days(db) -> list[str]:
    return [r[0] for r in db.execute("SELECT day FROM daily_reports ORDER BY day")]


def test_a_pushed_report_for_tomorrow_is_refused_alone(zoned, db, gate, monkeypatch):
    """Fifteen minutes before midnight at the instance, a push of today's report and
    tomorrow's: today's is stored, tomorrow's refused (that record only) with the reason in the
    phone's language. Five minutes before midnight (a phone a few minutes fast), tomorrow's is
    taken, and the day after is still refused."""
    _app, zone = zoned
    client, site, phone = gate
    today = days.today(zone)
    midnight = datetime.combine(today + timedelta(days=1), time(0), tzinfo=days.zone(zone))
    now = midnight.astimezone(UTC) - timedelta(minutes=15)
    monkeypatch.setattr(sync, "utcnow", lambda: now)
    tomorrow = today + timedelta(days=1)
    ok, ahead = record(site["id"], today, now), record(site["id"], tomorrow, now)
    results = push(client, phone, [ok, ahead])["results"]
    assert [r["status"] for r in results] == ["applied", "rejected"]
    hans = HANS.format(day=tomorrow.isoformat(), today=today.isoformat())
    assert results[1]["reason"] == hans
    assert stored_days(db) == [today.isoformat()]
    again = push(client, phone, [record(site["id"], tomorrow, now)], lang="zh-TW")["results"]
    assert again[0]["reason"] == HANT.format(day=tomorrow.isoformat(), today=today.isoformat())

    later = midnight.astimezone(UTC) - timedelta(minutes=5)
    monkeypatch.setattr(sync, "utcnow", lambda: later)
    fast = record(site["id"], tomorrow, later)
    after = record(site["id"], tomorrow + timedelta(days=1), later)
    results = push(client, phone, [fast, after])["results"]
    assert [r["status"] for r in results] == ["applied", "rejected"]
    assert stored_days(db) == [today.isoformat(), tomorrow.isoformat()]


def test_a_phone_a_day_fast_is_held_for_its_clock_then_its_report_refused(zoned, db, gate):
    """A phone whose date ran a day ahead reports its "today" (the instance's tomorrow): held
    with the offset, as any record its clock stamped; timed again by the phone, refused as a
    report of a day to come, nothing stored."""
    _app, zone = zoned
    client, site, phone = gate
    real = datetime.now(UTC)
    tomorrow = days.today(zone, real + CLOCK_TOLERANCE) + timedelta(days=1)
    fast = record(site["id"], tomorrow, real + timedelta(days=1) - timedelta(minutes=1))
    answer = push(client, phone, [fast], sent_at=iso(real + timedelta(days=1)))
    (held,) = answer["results"]
    assert held["status"] == "held" and held["clock_offset_ms"] < 0
    assert "手机日期时间不准（快了" in held["reason"]
    at = datetime.fromisoformat(fast["recorded_at"]) + timedelta(
        milliseconds=held["clock_offset_ms"]
    )
    again = dict(fast, recorded_at=iso(at), restamped=True)
    (refused,) = push(client, phone, [again], sent_at=iso(datetime.now(UTC)))["results"]
    assert refused["status"] == "rejected" and "还没到" in refused["reason"]
    assert stored_days(db) == []


def test_the_gate_form_refuses_a_report_for_tomorrow_on_the_form(zoned, db, gate, monkeypatch):
    """The gate's form posted for tomorrow (in its fields, or in its address): the page again,
    with why in the user's language and what was typed kept; nothing stored."""
    _app, zone = zoned
    client, site, _phone = gate
    now = datetime.now(UTC)
    monkeypatch.setattr(sync, "utcnow", lambda: now)
    today = days.today(zone, now)
    tomorrow = days.today(zone, now + CLOCK_TOLERANCE) + timedelta(days=1)
    url = f"/s/{site['code']}/report"
    page = client.get(url).text
    form = re.search(r'<form[^>]*class="report-form".*?</form>', page, re.S).group(0)
    fields = dict(
        re.findall(r'<input type="hidden" (?:id="\w+" )?name="(\w+)" value="([^"]*)"', form)
    )
    assert fields["day"] == today.isoformat()
    typed = {**fields, "day": tomorrow.isoformat(), "reporter": "李四", "remarks": "明天的"}
    said = HANS.format(day=tomorrow.isoformat(), today=today.isoformat())
    r = client.post(url, data=typed)
    assert r.status_code == 422, r.text
    assert "报告未保存：" + said in r.text and "明天的" in r.text
    r = client.post(
        f"{url}?day={tomorrow.isoformat()}", data=typed, headers={"Accept-Language": "zh-TW"}
    )
    assert r.status_code == 422
    assert "報告未保存：" + HANT.format(day=tomorrow.isoformat(), today=today.isoformat()) in r.text
    assert "明天的" in r.text
    assert stored_days(db) == []
    # Today's, sent from the same form: stored.
    assert client.post(url, data={**typed, "day": today.isoformat()}).status_code == 303
    assert stored_days(db) == [today.isoformat()]
