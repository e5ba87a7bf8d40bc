"""Configuration pulled down by version: an upstream restored from an older copy takes its
version numbers again for new changes; each version's id lets the downstream tell its V+1 from
the new one and take everything again, while ordinary rounds still pull only what changed."""

from __future__ import annotations

import sqlite3

import pytest
from instances_support import central_and_office, rows, sync_up

from fieldapp.db import connect
from fieldapp.gate import sites


@pytest.fixture
def pair(tmp_path):
    return central_and_office(tmp_path)


def add_site(app, name: str) -> str:
    conn = connect(app.config["DATABASE"])
    try:
        with app.app_context():
            return sites.add_site(conn, name, "residential", district="金坛区")["id"]
    finally:
        conn.close()


def copy_database(source: str, target: str) -> None:
    """A SQLite database copied onto another file: a backup taken, or one put back."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def office_sites(office) -> dict[str, int]:
    """The office's sites by name, with the office's own version each was last written under."""
    return dict(rows(office, "SELECT name, version FROM sites"))


def test_a_site_added_after_the_upstreams_restore_reaches_the_office(pair, tmp_path):
    central, office, token, _site = pair
    live, backup = central.config["DATABASE"], str(tmp_path / "city-last-night.sqlite3")
    copy_database(live, backup)
    version = rows(central, "SELECT version FROM config_version")
    add_site(central, "恢复前小区")  # version V+1, pulled by the office
    sync_up(office, central, token)
    assert "恢复前小区" in office_sites(office)

    copy_database(backup, live)  # the city restored from last night's copy: back at V
    assert rows(central, "SELECT version FROM config_version") == version
    after = add_site(central, "恢复后新建小区")  # takes version V+1 again
    sync_up(office, central, token)
    sync_up(office, central, token)
    assert rows(office, "SELECT name FROM sites WHERE id = ?", after) == [("恢复后新建小区",)]
    add_site(central, "再后来的小区")  # V+2: the office goes on from the city's new V+1
    sync_up(office, central, token)
    assert {"阳光花园小区", "恢复后新建小区", "再后来的小区"} <= set(office_sites(office))


def test_ordinary_rounds_pull_only_what_changed(pair):
    central, office, token, _site = pair
    first = office_sites(office)
    add_site(central, "二号小区")
    sync_up(office, central, token)
    sync_up(office, central, token)  # nothing changed: nothing taken
    add_site(central, "三号小区")
    sync_up(office, central, token)
    now = office_sites(office)
    # Each pull wrote only the new site, under the office's next version: nothing resent.
    assert now == {
        **first,
        "二号小区": first["阳光花园小区"] + 1,
        "三号小区": first["阳光花园小区"] + 2,
    }
