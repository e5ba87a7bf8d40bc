"""Moving an instance from its SQLite file to PostgreSQL with `fieldapp db copy`, mid-life:
every kind of record, purged rows behind it, a downstream with records still to push and an
upstream it has half pushed to. Afterwards it syncs both ways as if nothing had happened."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, timedelta

import pytest
from servers import make_server
from sync_helpers import entry, link, other_kinds, save_records, start, stop, uuids

from fieldapp.console import cases
from fieldapp.db import connect
from fieldapp.db import copy as copying
from fieldapp.gate import sites
from sync.store import iso

pytestmark = pytest.mark.slow  # real processes and a PostgreSQL cluster
ZH = {"FIELDAPP_LANG": "zh_CN.UTF-8"}  # the operator's language (zh-Hans, the default)


def made(server, site_id: str, n: int, **data) -> set[str]:
    wire = [entry(site_id, i, **data) for i in range(n)]
    assert set(save_records(server.folder, wire)) == {"applied"}
    return {r["uuid"] for r in wire}


def test_a_district_copied_to_postgresql_goes_on_syncing_up_and_down(tmp_path, make_pg_database):
    city = make_server(tmp_path / "city")
    district = make_server(tmp_path / "district", demo=False, SYNC_BATCH_SIZE="100")
    office = make_server(tmp_path / "office", demo=False, SYNC_BATCH_SIZE="100")
    link(district, city, "district")
    link(office, district, "office")
    start(city)
    start(district)
    district.cli("sync")
    office.cli("sync")
    site_id = city.query("SELECT id FROM sites ORDER BY name")[0][0]

    # Every kind of record at the office, pushed to the district; the district relays them.
    sent = made(office, site_id, 250)
    fever = entry(site_id, 999, temperature="38.2", fever_action="clinic")
    case = cases.wire(fever["uuid"], "值班员", "remeasure", temperature="38.0")
    others = other_kinds(office, site_id, fever["uuid"])
    assert set(save_records(office.folder, [fever, case, *others])) == {"applied"}
    office.cli("sync")
    district.cli("sync")
    # Entries made at the district 10 days ago and relayed; then the city keeps 7 days, which
    # flows down, and both purge them: the district's change log has handed out seqs it no
    # longer holds, its last ones.
    ten_days_ago = iso(datetime.now(UTC) - timedelta(days=10))
    old = {r["uuid"]: dict(r, recorded_at=ten_days_ago) for r in map(entry, [site_id] * 10)}
    assert set(save_records(district.folder, list(old.values()))) == {"applied"}
    district.cli("sync")
    stop(city)
    city = dataclasses.replace(city, env={**city.env, "FIELDAPP_RETENTION_DAYS": "7"})
    start(city)
    district.cli("sync")
    stop(district)
    for server in (city, district):
        server.cli("purge")
        assert not set(uuids(server)) & set(old)
    # Mid-sync: the office holds records it has not pushed yet.
    unsent = made(office, site_id, 120)

    handed_out = district.query("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")[0][0]
    url = make_pg_database()
    district.env["FIELDAPP_LANG"] = "zh_CN.UTF-8"  # what the operator reads, in their language
    copied = district.cli("db", "copy", "--to", url, check=False)
    assert copied.returncode == 0, copied.stderr
    entries = 251 + sum(r["kind"] == "entry" for r in others)  # the 10 old ones purged
    assert f"entries: {entries}\n" in copied.stdout and "已复制并核对无误" in copied.stdout
    again = district.cli("db", "copy", "--to", url, check=False)
    assert again.returncode != 0 and "目标数据库不是空的" in again.stderr
    with open(district.folder / "config.py", "a") as f:  # what docs/postgresql.md says to do
        f.write(f"DATABASE_URL = {url!r}\n")
    os.replace(district.database, district.folder / "moved-away.sqlite3")  # no way back to it
    on_pg = dataclasses.replace(district, env={**district.env, "FIELDAPP_DATABASE_URL": url})
    assert len(uuids(on_pg)) == entries
    start(district)
    try:
        office.cli("sync")  # the office's cursor at the district goes on where it was
        fresh = made(district, site_id, 5)  # new seqs after every purged one
        district.cli("sync")
        # Configuration still flows down through the moved district.
        code = city.query("SELECT code FROM sites WHERE id = ?", (site_id,))[0][0]
        city.cli("site", "rotate-code", code)
        district.cli("sync")
        office.cli("sync")
        new_code = city.query("SELECT code FROM sites WHERE id = ?", (site_id,))[0][0]
        assert office.query("SELECT code FROM sites WHERE id = ?", (site_id,))[0][0] == new_code
    finally:
        stop(district)
        stop(city)

    everything = sent | {fever["uuid"]} | {r["uuid"] for r in others if r["kind"] == "entry"}
    everything |= unsent | fresh
    at_city = uuids(city)
    assert len(at_city) == len(set(at_city)), "a record reached the city twice"
    assert set(at_city) == everything
    at_district = uuids(on_pg)
    assert len(at_district) == len(set(at_district))
    assert set(at_district) == everything
    for table, wire in [("case_actions", case), *((w["kind"], w) for w in others)]:
        table = {
            "daily_report": "daily_reports",
            "correction": "corrections",
            "registration": "registrations",
            "entry": "entries",
        }.get(table, table)
        assert len(city.query(f"SELECT 1 FROM {table} WHERE uuid = ?", (wire["uuid"],))) == 1
    logged = [r[0] for r in city.query("SELECT uuid FROM changes WHERE kind = 'entry'")]
    assert sorted(logged) == sorted(at_city), "the city's change log counts a record twice"
    # A seq handed out before the move, even one since purged, is never handed out again.
    after = unsent | fresh
    marks = ",".join("?" * len(after))
    new = on_pg.query(f"SELECT seq FROM changes WHERE uuid IN ({marks})", tuple(after))
    assert len(new) == len(after) and min(r[0] for r in new) > handed_out


def on_pg(url: str, sql: str) -> set:
    conn = connect(url)
    try:
        return {r[0] for r in conn.execute(sql)}
    finally:
        conn.close()


@pytest.fixture
def site(app, db):
    with app.app_context():
        return dict(sites.add_site(db, "阳光花园小区", "residential", district="金坛区"))


@pytest.mark.sqlite_only
def test_a_copy_made_while_the_server_stores_a_push_is_one_moment_of_the_source(
    app, db, site, runner, pg_database, monkeypatch
):
    """A push stored between the copy's reading of the change log and of the entries is in
    the copy whole or not at all: never an entry without its change-log line (which would
    never go upstream)."""
    from reports_support import entry as report_entry
    from reports_support import save

    now = datetime.now(UTC)
    first = report_entry(site["id"], iso(now - timedelta(days=1)))
    assert save(app, db, [first]) == ["applied"]
    late = report_entry(site["id"], iso(now), name="迟到")
    real = copying._tables
    pushed = []

    class PushAfterTheChangeLog(list):
        """The copy's tables, in its order; the server stores a push as soon as the copy has
        read the change log (the next table's turn), once."""

        def __iter__(self):
            for table in list.__iter__(self):
                yield table
                if table == "changes" and not pushed:
                    pushed.append(save(app, db, [late]))

    monkeypatch.setattr(copying, "_tables", lambda conn: PushAfterTheChangeLog(real(conn)))
    result = runner.invoke(args=["db", "copy", "--to", pg_database], env=ZH)
    assert result.exit_code == 0, result.output
    assert "已复制并核对无误" in result.output
    monkeypatch.setattr(copying, "_tables", real)
    assert pushed == [["applied"]]
    assert {r[0] for r in db.execute("SELECT uuid FROM entries")} == {first["uuid"], late["uuid"]}
    entries = on_pg(pg_database, "SELECT uuid FROM entries")
    logged = on_pg(pg_database, "SELECT uuid FROM changes WHERE kind = 'entry'")
    assert entries == logged == {first["uuid"]}  # the source as it was when the copy began


@pytest.mark.sqlite_only
def test_a_copy_that_does_not_verify_leaves_the_target_empty_to_run_again(
    app, db, site, runner, pg_database, monkeypatch
):
    from reports_support import entry as report_entry
    from reports_support import save

    made = report_entry(site["id"], iso(datetime.now(UTC) - timedelta(days=1)))
    assert save(app, db, [made]) == ["applied"]
    real = copying.verify
    monkeypatch.setattr(copying, "verify", lambda source, target: ["changes"])
    result = runner.invoke(args=["db", "copy", "--to", pg_database], env=ZH)
    assert result.exit_code != 0
    assert on_pg(pg_database, "SELECT uuid FROM entries") == set()
    assert on_pg(pg_database, "SELECT uuid FROM changes") == set()
    assert (
        "副本与原库不一致的表：changes。目标数据库未写入任何内容；请重新运行此命令。"
        in result.output
    )
    monkeypatch.setattr(copying, "verify", real)
    again = runner.invoke(args=["db", "copy", "--to", pg_database], env=ZH)
    assert again.exit_code == 0, again.output
    assert "已复制并核对无误" in again.output
    assert on_pg(pg_database, "SELECT uuid FROM entries") == {made["uuid"]}
    assert on_pg(pg_database, "SELECT uuid FROM changes WHERE kind = 'entry'") == {made["uuid"]}
