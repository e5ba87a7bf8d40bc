"""A site's old code in the addresses its phone's kept gate page uses (fieldapp/gate/codes.py).

After `fieldapp site rotate-code` the gate page a phone kept still names the old code in its
roster's address (roster.js), its roster search, its visitors' passes (passes.js) and its link
to the daily report. The site's own enrolled phone is sent to the same address under the new
code and gets what that one answers; another site's phone, and a browser that is no phone, get
what they got before (a 404 saying the poster is out of date, or the report's way to it)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import pytest
from gate_helpers import EN, HX, enrol, make_site, site_with_roster

from fieldapp import days, records
from fieldapp.gate import sites
from fieldapp.reports import daily as reports

TZ = "Asia/Shanghai"
PEOPLE = [
    {"name": "张建国", "phone": "13812345678", "unit": "3-2-501", "person_type": "resident"},
    {"name": "李秀英", "phone": "13951234567", "unit": "3-1-202", "person_type": "resident"},
]


@pytest.fixture
def site(app, db):
    return site_with_roster(app, db, PEOPLE)


@pytest.fixture
def moved(app, db, site):
    """The site's codes: (old, new), the poster's code changed."""
    with app.app_context():
        return site["code"], sites.rotate_code(db, site["id"])


@pytest.fixture
def phone(app, db, site):
    """A gate phone enrolled at the site."""
    return enrol(app.test_client(), db, site)


@pytest.fixture
def others(app, db):
    """Another site's phone, and a browser that is no phone (a visitor with an old poster)."""
    other = enrol(app.test_client(), db, make_site(db, name="城东工地", kind="construction"))
    return {"other site's phone": other, "no phone": app.test_client()}


def registered(app, db, site, name: str) -> str:
    """A visitor's registration at the site today, as their phone's form stores it; its uuid."""
    data = {"site_id": site["id"], "direction": "in", "name": name, "health_code": "green"}
    record = records.new("registration", {**data, "travel": False, "temperature": None})
    with app.test_request_context():
        assert records.save(db, [record], source="test")[0].status == "applied"
    return record["uuid"]


def out_of_date(response) -> bool:
    """The 404 page an old poster's code answers."""
    return response.status_code == 404 and "This poster is out of date" in response.text


def test_the_roster_of_an_old_code_is_the_new_codes_for_the_sites_phone(
    db, site, moved, phone, others
):
    old, new = moved
    got = phone.get(f"/s/{old}/roster.json")
    assert got.status_code == 302 and got.headers["Location"] == f"/s/{new}/roster.json"
    assert "no-cache" in got.headers["Cache-Control"]
    body = phone.get(f"/s/{old}/roster.json", follow_redirects=True).get_json()
    assert body == phone.get(f"/s/{new}/roster.json").get_json()
    names = [row[body["fields"].index("name")] for row in body["people"]]
    held = [r[0] for r in db.execute("SELECT name FROM roster WHERE site_id = ?", (site["id"],))]
    assert sorted(names) == sorted(held) == sorted(p["name"] for p in PEOPLE)
    # The phone's copy named by its version (?have=) is kept: current, nothing to send.
    have = f"?have={body['version']}"
    got = phone.get(f"/s/{old}/roster.json{have}")
    assert got.headers["Location"] == f"/s/{new}/roster.json{have}"
    current = phone.get(f"/s/{old}/roster.json{have}", follow_redirects=True)
    assert current.status_code == 204 and current.data == b""
    for who, client in others.items():
        assert out_of_date(client.get(f"/s/{old}/roster.json", headers=EN)), who


def test_the_roster_search_of_an_old_code_answers_the_sites_phone(moved, phone, others):
    old, new = moved
    got = phone.get(f"/s/{old}/roster?q=张建", headers=HX)
    assert got.status_code == 302
    assert unquote(got.headers["Location"]) == f"/s/{new}/roster?q=张建"
    found = phone.get(f"/s/{old}/roster?q=张建", headers=HX, follow_redirects=True)
    assert found.status_code == 200 and "张建国" in found.text and "<html" not in found.text
    for who, client in others.items():
        assert out_of_date(client.get(f"/s/{old}/roster?q=张建", headers={**EN, **HX})), who


def test_a_visitors_pass_scanned_under_an_old_code_is_read_by_the_sites_phone(
    app, db, site, moved, phone, others
):
    old, new = moved
    registration = registered(app, db, site, "赵访客")
    got = phone.get(f"/s/{old}/registrations/{registration}")
    assert got.status_code == 302
    assert got.headers["Location"] == f"/s/{new}/registrations/{registration}"
    read = phone.get(f"/s/{old}/registrations/{registration}", follow_redirects=True)
    assert read.status_code == 200 and read.get_json()["name"] == "赵访客"
    row = db.execute("SELECT site_id FROM registrations WHERE uuid = ?", (registration,)).fetchone()
    assert row[0] == site["id"]
    for who, client in others.items():
        response = client.get(f"/s/{old}/registrations/{registration}", headers=EN)
        assert out_of_date(response) and "赵访客" not in response.text, who


def test_the_daily_report_of_an_old_code_opens_under_the_new_one_for_the_sites_phone(
    app, db, site, moved, phone, others
):
    old, new = moved
    yesterday = (days.today(TZ) - timedelta(days=1)).isoformat()
    got = phone.get(f"/s/{old}/report?day={yesterday}")
    assert got.status_code == 302 and got.headers["Location"] == f"/s/{new}/report?day={yesterday}"
    page = phone.get(f"/s/{old}/report?day={yesterday}", headers=EN, follow_redirects=True)
    assert page.status_code == 200 and site["name"] in page.text
    assert f'action="/s/{new}/report' in page.text and f"/s/{old}/" not in page.text
    # Submitted from there, the report is the site's.
    app.config["WTF_CSRF_ENABLED"] = False
    form = {"uuid": reports.new_uuid(), "day": yesterday, "zero": "true"}
    form.update({k: "0" for k in reports.COUNT_KEYS})
    assert phone.post(f"/s/{new}/report", data=form).status_code == 303
    stored = db.execute("SELECT site_id, zero FROM daily_reports").fetchall()
    assert [tuple(r) for r in stored] == [(site["id"], 1)]
    for who, client in others.items():
        # As before: to the old code's gate page, which says the poster is out of date.
        response = client.get(f"/s/{old}/report?day={yesterday}")
        assert response.status_code == 303 and response.headers["Location"] == f"/s/{old}", who
        assert out_of_date(client.get(response.headers["Location"], headers=EN)), who


def test_a_closed_site_moves_nobody(app, db, site, moved, phone):
    """The site closed after its code changed: its phone is no longer sent anywhere."""
    old, new = moved
    sites.set_active(db, site["id"], False)
    assert phone.get(f"/s/{old}/roster.json", headers=EN).status_code == 404
    assert phone.get(f"/s/{old}/roster?q=张建", headers={**EN, **HX}).status_code == 404
    assert phone.get(f"/s/{old}/report").status_code == 303
    # Its report page is there for the days it was open (today, on the roll-call), no other.
    assert phone.get(f"/s/{new}/report").status_code == 200
    yesterday = (days.today(app.config["TIMEZONE"]) - timedelta(days=1)).isoformat()
    assert phone.get(f"/s/{new}/report?day={yesterday}").status_code == 404
