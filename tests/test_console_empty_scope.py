"""A coordinator whose scope holds no site any more (the upstream moved the district's only site
to another district, as configuration flowing down can): every console page answers, empty,
on both engines (SQL's `IN ()` is SQLite's alone)."""

from __future__ import annotations

import pytest
from console_support import login, make_site, make_user

from fieldapp.db import transaction


@pytest.mark.parametrize(
    "path",
    [
        "/console/",
        "/console/log",
        "/console/log?fever=1",
        "/console/cases",
        "/console/rollcall",
        "/console/screening",
        "/console/screening/followups",
        "/console/screening/followups?status=closed",
    ],
)
def test_a_coordinator_whose_district_has_no_site_left_sees_empty_pages(app, db, path):
    site = make_site(app, "阳光花园小区", "溧阳市")
    make_user(app, "new", "coordinator", districts=["溧阳市"])
    with transaction(db):  # what a configuration pull does when the city moves the site
        db.execute("UPDATE sites SET district = ? WHERE id = ?", ("金坛区", site["id"]))
    client = app.test_client()
    login(client, "new")
    r = client.get(path)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    assert "阳光花园小区" not in r.get_data(as_text=True)
