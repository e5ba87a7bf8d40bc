"""Helpers for the console tests: sites, accounts and entries made through the real paths."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from fieldapp import days, records
from fieldapp.console import accounts, corrections
from fieldapp.db import connect
from fieldapp.gate import sites

PASSWORD = "correct horse battery"


def add_user_cli(server, name, role, *scope, password=PASSWORD):
    """`fieldapp user add` on a running instance as an operator types it, the password on stdin."""
    server.cli(
        "user", "add", name, "--role", role, *scope, "--password-stdin", input=password + "\n"
    )


def sign_in(page, url, name, password=PASSWORD):
    """Sign in to the console of the instance at url in a browser page: the console sends a
    stranger to its sign-in page, and the account to the dashboard."""
    page.goto(f"{url}/console/")
    assert "/console/login" in page.url
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{url}/console/")


def make_site(app, name="阳光花园小区", district="金坛区", kind="residential"):
    """A site through sites.add_site (the gate's own function)."""
    conn = connect(app.config["DATABASE"])
    try:
        with app.app_context():
            return dict(sites.add_site(conn, name, kind, district=district))
    finally:
        conn.close()


def make_user(app, name, role, sites=None, districts=None, password=PASSWORD):
    """An account through accounts.create_user (what `fieldapp user add` calls)."""
    conn = connect(app.config["DATABASE"])
    try:
        with app.app_context():
            return accounts.create_user(conn, name, role, password, sites, districts)
    finally:
        conn.close()


def wire_entry(site_id, **data):
    """An entry record as a phone or the gate form sends it."""
    recorded_at = data.pop("recorded_at", None) or datetime.now(UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    body = {
        "site_id": site_id,
        "direction": "in",
        "person_type": "resident",
        "name": "张建国",
        "phone": "13812345678",
        "id_number": "",
        "temperature": 36.5,
        "fever_action": "",
        "health_code": "green",
        "travel": False,
        "travel_where": "",
        "plate": "",
        "destination": "3-2-501",
        "note": "",
        "volunteer": "",
        "self_registered": False,
    }
    body.update(data)
    return {"uuid": str(uuid.uuid4()), "kind": "entry", "recorded_at": recorded_at, "data": body}


def save(app, *wire):
    """Store wire records through fieldapp.records.save; assert each is applied."""
    conn = connect(app.config["DATABASE"])
    try:
        with app.test_request_context():
            results = records.save(conn, list(wire), source="test")
    finally:
        conn.close()
    assert [r.status for r in results] == ["applied"] * len(wire), results
    return [w["uuid"] for w in wire]


def csrf(client, path):
    """The CSRF token of a form on that page."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, html[:500]
    return match.group(1)


def login(client, name, password=PASSWORD):
    """Sign in through the login form, CSRF included."""
    token = csrf(client, "/console/login")
    return client.post(
        "/console/login", data={"csrf_token": token, "name": name, "password": password}
    )


def corrected_day(site_id, at):
    """A day's entries at a site that corrections change in every way the figures see, with
    what their current values give: (the records in three batches, expected).

    at(hour) is the recorded_at of an entry at that local hour. The batches are stored in
    this order: a correction that arrives before its entry (sync order is not guaranteed),
    the entries, then the other corrections, two of them in the opposite of their recorded
    order."""
    now = datetime.now(UTC)

    def at_ago(minutes):
        return (now - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def fix(entry, reason, minutes_ago=0, **kw):
        rec = corrections.wire(entry["uuid"], "王协调", reason, **kw)
        rec["recorded_at"] = at_ago(minutes_ago)
        return rec

    plain = wire_entry(site_id, name="平常", recorded_at=at(8))
    dup = wire_entry(
        site_id, name="作废发烧", temperature=38.5, fever_action="clinic", recorded_at=at(9)
    )
    went = wire_entry(
        site_id,
        name="作废出门",
        direction="out",
        travel=True,
        travel_where="武汉",
        recorded_at=at(10),
    )
    up = wire_entry(site_id, name="改成发烧", temperature=36.5, recorded_at=at(11))
    down = wire_entry(
        site_id, name="改成不烧", temperature=37.5, fever_action="clinic", recorded_at=at(12)
    )
    no_trip = wire_entry(
        site_id, name="改去旅行", travel=True, travel_where="武汉", recorded_at=at(13)
    )
    trip = wire_entry(site_id, name="补报行程", recorded_at=at(14))
    late = wire_entry(site_id, name="后到发烧", temperature=36.6, recorded_at=at(15))
    hot = wire_entry(
        site_id,
        name="真发烧",
        person_type="visitor",
        temperature=39.0,
        fever_action="refused",
        recorded_at=at(16),
    )
    early = fix(late, "重测", 30, changes={"temperature": 38.2})
    then = [
        fix(dup, "重复登记", 20, void=True),
        fix(went, "重复登记", 19, void=True),
        fix(up, "重测", 5, changes={"temperature": 38.0}),  # stored before the one recorded
        fix(up, "重测", 6, changes={"temperature": 37.0}),  # before it: 38.0 is current
        fix(down, "录错", 18, changes={"temperature": 36.8}),
        fix(no_trip, "问清楚了", 17, changes={"travel": False, "travel_where": ""}),
        fix(trip, "补报", 16, changes={"travel": True, "travel_where": "武汉"}),
    ]
    entries = [plain, dup, went, up, down, no_trip, trip, late, hot]
    expected = {
        "in": 7,
        "out": 0,
        "in_resident": 6,
        "in_visitor": 1,
        "fevers": 3,
        "fever_refused": 1,  # what was done at the gate: the fevers raised later have none
        "fever_clinic": 0,
        "travel": 1,
        "hours": {8: 1, 11: 1, 12: 1, 13: 1, 14: 1, 15: 1, 16: 1},
        "fever_names": ["真发烧", "后到发烧", "改成发烧"],  # newest first, as the log lists
        "travel_names": ["补报行程"],
        "names": ["真发烧", "后到发烧", "补报行程", "改去旅行", "改成不烧", "改成发烧", "作废出门"]
        + ["作废发烧", "平常"],
    }
    return [[early], entries, then], expected


def hours_of(day, tz: str = "Asia/Shanghai"):
    """at(hour): the UTC time of recording so many hours after a local day began."""
    first = datetime.fromisoformat(days.bounds(day, tz)[0].replace("Z", "+00:00"))

    def at(hour):
        return (first + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    return at


def save_corrected_day(app, site_id, at):
    """corrected_day's batches stored in their order here; what the figures should say."""
    batches, expected = corrected_day(site_id, at)
    for batch in batches:
        save(app, *batch)
    return expected
