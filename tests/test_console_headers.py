"""The console's pages show names and phone numbers: neither the browser (back after sign-out)
nor a proxy keeps them."""

from __future__ import annotations

from console_support import login, make_user, save, wire_entry
from gate_helpers import make_site


def test_console_pages_with_names_are_not_stored(app, client, db):
    with app.app_context():
        site = dict(make_site(db))
    (fever,) = save(
        app, wire_entry(site["id"], name="王大锤", temperature=38.5, fever_action="clinic")
    )
    make_user(app, "admin", "admin")
    login(client, "admin")
    for path in (
        "/console/log",
        f"/console/entry/{fever}",
        f"/console/cases/{fever}",
        f"/console/sites/{site['id']}/gate",
    ):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "王大锤" in r.text or path.endswith("/gate"), path
        assert "no-store" in r.headers.get("Cache-Control", ""), path
    login_page = client.get("/console/login")
    assert "no-store" in login_page.headers["Cache-Control"]
