"""Helpers for the daily report, roll-call and retention tests: a day, its local times, an entry,
storing records."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from fieldapp import days, records

TZ = "Asia/Shanghai"
# A few days ago: inside the entries' retention whenever the tests run.
DAY = days.today("Asia/Shanghai") - timedelta(days=3)


def local(day: date, hh: int, mm: int = 0) -> str:
    """A recorded_at string for a local (Shanghai) time of day (UTC+8, no DST)."""
    t = datetime(day.year, day.month, day.day, hh, mm) - timedelta(hours=8)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def entry(site_id: str, at: str, **data) -> dict:
    base = {
        "site_id": site_id,
        "direction": "in",
        "person_type": "resident",
        "name": "张三",
        "temperature": 36.5,
        "health_code": "green",
    }
    base.update(data)
    return {"uuid": str(uuid.uuid4()), "kind": "entry", "recorded_at": at, "data": base}


def save(app, db, recs, source="test") -> list[str]:
    """Store records through fieldapp.records.save, as a push would; their statuses."""
    with app.test_request_context():
        return [r.status for r in records.save(db, recs, source=source)]
