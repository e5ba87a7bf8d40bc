"""Helpers for the console tests: sites, accounts and entries made through the real paths."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from fieldapp import records
from fieldapp.console import accounts
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
