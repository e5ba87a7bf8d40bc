"""Helpers for the screening tests: a campaign over the demo-like sites, answers as wire records."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from fieldapp import days, records
from fieldapp.db import transaction
from fieldapp.gate import roster, sites
from fieldapp.screening import campaigns
from sync.store import iso, utcnow

TZ = "Asia/Shanghai"
EN = {"Accept-Language": "en"}
# A good answer to every question: the defaults of answer().
GOOD = {
    "whereabouts": "district",
    "whereabouts_where": "",
    "contact": "no",
    "status": "here",
    "nat_result": "none",
    "nat_date": "",
    "vaccine_doses": "3",
}


def today() -> date:
    """The instance's today, asked when used: a run can cross midnight in Shanghai."""
    return days.today(TZ)


def local(day: date, hh: int, mm: int = 0) -> str:
    """A recorded_at for a local (Shanghai, UTC+8) time of a day."""
    t = datetime(day.year, day.month, day.day, hh, mm) - timedelta(hours=8)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def answered_at(day: date) -> str:
    """When an answer of that day was given: 09:00 of an earlier day; today, an hour ago (its
    midnight if that is later). Whatever the hour the tests run at, it is never still to come
    (a follow-up's steps, recorded now, come after it) and never 12 hours old (overdue)."""
    if day != today():
        return local(day, 9)
    now = utcnow()
    return min(max(local(day, 0), iso(now - timedelta(hours=1))), iso(now - timedelta(seconds=1)))


def make_sites(db) -> list[dict]:
    """Two sites in 金坛区 with rosters of 4 and 3, one in 溧阳市 with 2."""
    made = []
    for name, district, people in (
        ("阳光花园小区", "金坛区", ["张建国", "李秀英", "王磊", "陈晓梅"]),
        ("人民医院扩建工地", "金坛区", ["赵志强", "孙海波", "周德才"]),
        ("溧阳花苑", "溧阳市", ["吴敏", "郑强"]),
    ):
        kind = "construction" if "工地" in name else "residential"
        site = dict(sites.add_site(db, name, kind, district=district))
        rows = [
            {
                "name": n,
                "phone": f"1381234{i:04d}",
                "unit": f"{i + 1}-1-101",
                "person_type": "resident",
            }
            for i, n in enumerate(people)
        ]
        roster.import_rows(db, site["id"], rows)
        # The site and its roster since before any campaign of the tests (a week ago, most of
        # them): a past day's coverage counts the sites open and the roster of that day.
        since = iso(utcnow() - timedelta(days=30))
        with transaction(db):
            db.execute("UPDATE roster SET created_at = ? WHERE site_id = ?", (since, site["id"]))
            db.execute("UPDATE sites SET created_at = ? WHERE id = ?", (since, site["id"]))
        site["people"] = [
            r["id"]
            for r in db.execute(
                "SELECT id FROM roster WHERE site_id = ? ORDER BY name", (site["id"],)
            )
        ]
        made.append(site)
    return made


def make_campaign(app, db, **kw) -> campaigns.Campaign:
    """A daily campaign over 金坛区 (or as given) that started a week ago."""
    options = {
        "start": today() - timedelta(days=7),
        "districts": ["金坛区"],
    }
    options.update(kw)
    name = options.pop("name", "复工人员排查")
    with app.app_context():
        return campaigns.add(db, app.config, name, **options)


def answer(
    campaign_id: str,
    site_id: str,
    person_id: str,
    day: date | None = None,
    at: str | None = None,
    **data,
) -> dict:
    """A valid screening wire record, of today unless said (override answers with keywords)."""
    day = day or today()
    body = {
        "campaign_id": campaign_id,
        "site_id": site_id,
        "person_id": person_id,
        "day": day.isoformat(),
        "added": False,
        **GOOD,
        "screener": "值班员",
        "note": "",
    }
    body.update(data)
    return {
        "uuid": str(uuid.uuid4()),
        "kind": "screening",
        "recorded_at": at or answered_at(day),
        "data": body,
    }


def added(campaign_id: str, site_id: str, name: str = "新来的", **kw) -> dict:
    """An answer about someone not on the roster."""
    return answer(
        campaign_id,
        site_id,
        str(uuid.uuid4()),
        added=True,
        name=name,
        phone=kw.pop("phone", "13900001111"),
        unit=kw.pop("unit", "临时工棚"),
        person_type=kw.pop("person_type", "worker"),
        **kw,
    )


def joins_the_roster(app, db, site_id: str, name: str = "刘新来") -> list:
    """Someone added on site joins the roster as `fieldapp roster import` of added.csv does
    (the defaults of added()); the import's result."""
    row = {"name": name, "phone": "13900001111", "unit": "临时工棚", "person_type": "worker"}
    with app.app_context():
        return roster.import_rows(db, site_id, [row])


def save(app, db, recs, **headers) -> list:
    """Store records as a phone's push would; their results."""
    with app.test_request_context(headers=headers or EN):
        return records.save(db, recs, source="test")
