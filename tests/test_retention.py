"""Retention: purge exactly what is past the horizon, everything that points at it, log it,
and never let a late sync bring it back."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from instances_support import make_instance, sync_up
from reports_support import entry, purge_past_a_week, report_data, save

from fieldapp import days, records, settings
from fieldapp.gate import sites
from fieldapp.privacy import retention
from fieldapp.reports import daily as reports
from sync.store import iso

NOW = datetime.now(UTC)


def ago(days: float) -> str:
    return iso(NOW - timedelta(days=days))


def correction(entry_uuid: str, at: str) -> dict:
    return records.new(
        "correction",
        {
            "entry_uuid": entry_uuid,
            "changes": {"name": "张三丰"},
            "reason": "写错名字",
            "author": "coord",
        },
        recorded_at=at,
    )


@pytest.fixture
def site(app, db):
    with app.app_context():
        return dict(sites.add_site(db, "阳光花园小区", "residential", district="金坛区"))


def count(db, table):
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("bad", [6, 61, "abc", "", "14.5"])
def test_retention_days_must_be_7_to_60(app, bad):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        with pytest.raises(ValueError, match="from 7 to 60"):
            settings.check_retention_days(bad)
    with app.test_request_context():  # zh-Hans by default
        with pytest.raises(ValueError, match="7 到 60"):
            settings.check_retention_days(bad)


@pytest.mark.parametrize("batch", [retention.BATCH, 1])
def test_purge_removes_exactly_what_is_past_the_horizon(app, db, site, monkeypatch, batch):
    monkeypatch.setattr(retention, "BATCH", batch)  # a batch at a time, however small
    monkeypatch.setattr(retention, "SWEEP", batch)
    sid = site["id"]
    old, edge_out, edge_in, fresh = (
        entry(sid, ago(15)),
        entry(sid, ago(7.001)),  # just past a 7-day horizon
        entry(sid, ago(6.999)),  # just inside it
        entry(sid, ago(1)),
    )
    assert save(app, db, [old, edge_out, edge_in, fresh]) == ["applied"] * 4
    fix_old = correction(old["uuid"], ago(14))
    fix_fresh = correction(fresh["uuid"], ago(0.5))
    orphan = correction(str(uuid.uuid4()), ago(1))  # its entry may still arrive: kept
    assert save(app, db, [fix_old, fix_fresh, orphan]) == ["applied"] * 3
    with app.test_request_context():
        old_report = reports.submit(
            db,
            report_data(sid, (NOW - timedelta(days=400)).date()),
            recorded_at=ago(399),
        )
        kept_report = reports.submit(
            db,
            report_data(sid, (NOW - timedelta(days=15)).date()),
            recorded_at=ago(15),
        )
    assert old_report.status == kept_report.status == "applied"
    db.execute(
        "INSERT INTO sync_rejects (uuid, kind, source, status, reason, body, received_at)"
        " VALUES ('x', 'entry', 'p', 'rejected', 'bad', '{\"name\": \"李四\"}', ?)",
        (ago(10),),
    )

    result = purge_past_a_week(app, db, now=NOW)
    assert (result.entries, result.dependents, result.reports, result.rejects) == (2, 1, 1, 1)
    left = {r[0] for r in db.execute("SELECT uuid FROM entries")}
    assert left == {edge_in["uuid"], fresh["uuid"]}
    fixes = {r[0] for r in db.execute("SELECT uuid FROM corrections")}
    assert fixes == {fix_fresh["uuid"], orphan["uuid"]}
    assert {r[0] for r in db.execute("SELECT uuid FROM daily_reports")} == {kept_report.uuid}
    assert count(db, "sync_rejects") == 0
    # The change log no longer names what is gone.
    logged = {r[0] for r in db.execute("SELECT uuid FROM changes")}
    kept = {
        r[0]
        for t in ("entries", "corrections", "daily_reports")
        for r in db.execute(f"SELECT uuid FROM {t}")
    }
    assert logged == kept
    assert old["uuid"] not in logged and fix_old["uuid"] not in logged
    if getattr(db, "dialect", "sqlite") == "postgresql":  # their space vacuumed for reuse
        vacuumed = db.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL"
        ).fetchall()
        assert {"entries", "corrections", "changes", "sync_rejects"} <= {r[0] for r in vacuumed}
    # Logged twice: purge_log (for "once a day") and the console's audit log.
    (logrow,) = db.execute("SELECT * FROM purge_log").fetchall()
    assert logrow["entries"] == 2 and logrow["trigger"] == "cli"
    (audit,) = db.execute("SELECT actor, detail FROM audit_log WHERE action = 'purge'").fetchall()
    assert audit["actor"] == "system:cli" and '"entries": 2' in audit["detail"]


def test_a_late_sync_does_not_bring_a_purged_entry_back(tmp_path):
    """Two offices hold the same 10-day-old entry; one pushed it before the city purged, the
    other pushes it after: the city answers expired and stores nothing."""

    import sync
    from fieldapp.db import connect, transaction

    city = make_instance(tmp_path, "city")
    conn = connect(city.config["DATABASE"])
    with city.app_context():
        sid = sites.add_site(conn, "阳光花园小区", "residential", district="金坛区")["id"]
        with transaction(conn):
            tokens = {n: sync.peers.create(conn, "instance", n)[1] for n in ("a", "b")}
    offices = {n: make_instance(tmp_path, n) for n in tokens}
    for n, office in offices.items():
        sync_up(office, city, tokens[n])  # pulls the site
    old = entry(sid, ago(10), name="迟到的记录")
    for office in offices.values():
        oconn = connect(office.config["DATABASE"])
        assert save(office, oconn, [old]) == ["applied"]
        oconn.close()
    assert sync_up(offices["a"], city, tokens["a"]).applied == 1
    assert count(conn, "entries") == 1
    # The city lowers retention to 7 days and purges.
    conn.execute("INSERT INTO settings (name, value) VALUES ('retention_days', '7')")
    assert retention.purge_app(city).entries == 1
    late = sync_up(offices["b"], city, tokens["b"])
    assert late.sent == 1 and late.applied == 0
    assert count(conn, "entries") == 0
    assert save(city, conn, [old]) == ["expired"]  # and through the gate's path too
    assert count(conn, "entries") == 0
    conn.close()


def file_and_wal(database: str) -> bytes:
    """The bytes of the database file and of its WAL, if there is one."""
    raw = b""
    for suffix in ("", "-wal"):
        try:
            with open(database + suffix, "rb") as f:
                raw += f.read()
        except FileNotFoundError:
            pass
    return raw


@pytest.mark.sqlite_only  # the bytes of SQLite's files; PostgreSQL's are VACUUM's (docs/postgresql.md)
def test_purged_personal_data_is_gone_from_the_file_and_its_wal(app, db, site):
    marker = "欧阳独一无二"
    assert save(app, db, [entry(site["id"], ago(12), name=marker)]) == ["applied"]
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    purge_past_a_week(app, db)
    assert marker.encode() not in file_and_wal(app.config["DATABASE"])


# Holds SQLite's checkpointer lock from another process, as a checkpoint running there does:
# byte 121 of the -shm file (WAL_CKPT_LOCK at WALINDEX_LOCK_OFFSET 120, sqlite.org/walformat).
HOLD_CHECKPOINT_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 121)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.mark.sqlite_only  # the bytes of SQLite's files; PostgreSQL's are VACUUM's (docs/postgresql.md)
def test_purge_waits_for_a_checkpoint_running_elsewhere_to_empty_the_wal(app, db, site):
    """A checkpoint already running (the writer's background pass, another worker's) makes
    SQLite refuse the purge's at once; the purge tries again instead of leaving the WAL full."""
    marker = "司马未清空"
    assert save(app, db, [entry(site["id"], ago(12), name=marker)]) == ["applied"]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CHECKPOINT_LOCK, app.config["DATABASE"] + "-shm", "0.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        purge_past_a_week(app, db)
    finally:
        holder.wait(10)
        holder.stdout.close()
    assert marker.encode() not in file_and_wal(app.config["DATABASE"])


@pytest.mark.sqlite_only  # the bytes of SQLite's files; PostgreSQL's are VACUUM's (docs/postgresql.md)
def test_a_purge_whose_wal_cannot_be_emptied_says_so(app, db, site, runner, monkeypatch):
    """A checkpoint that cannot finish in time (a long export reading, another process's
    checkpoint) leaves the purged rows' old pages in the files: `fieldapp purge` must not
    report a clean purge then, and says to run it again."""
    monkeypatch.setattr(retention, "CHECKPOINT_SECONDS", 0.2)
    marker = "诸葛还在文件"
    assert save(app, db, [entry(site["id"], ago(12), name=marker)]) == ["applied"]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the entry's page in the file itself
    app.config["RETENTION_DAYS"] = 7
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CHECKPOINT_LOCK, app.config["DATABASE"] + "-shm", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        result = runner.invoke(args=["purge"], env={"LANG": "zh_CN.UTF-8"})
        lingering = marker.encode() in file_and_wal(app.config["DATABASE"])
    finally:
        holder.kill()
        holder.wait(10)
        holder.stdout.close()
    assert result.exit_code == 0, result.output
    assert count(db, "entries") == 0 and "登记 1 条" in result.output
    assert lingering  # what the message is about
    assert "预写日志未能清空" in result.output and "请稍后再运行 `fieldapp purge`" in result.output
    again = runner.invoke(args=["purge"], env={"LANG": "zh_CN.UTF-8"})
    assert again.exit_code == 0 and "预写日志未能清空" not in again.output, again.output
    assert marker.encode() not in file_and_wal(app.config["DATABASE"])


def test_cli_purge_refuses_a_bad_setting_and_deletes_nothing(app, db, site, runner):
    assert save(app, db, [entry(site["id"], ago(10))]) == ["applied"]
    app.config["RETENTION_DAYS"] = 5
    bad = runner.invoke(args=["purge"], env={"LANG": "en_US.UTF-8"})
    assert bad.exit_code != 0 and "from 7 to 60, not 5" in bad.output
    assert count(db, "entries") == 1
    app.config["RETENTION_DAYS"] = 7
    ok = runner.invoke(args=["purge"], env={"LANG": "zh_CN.UTF-8"})
    assert ok.exit_code == 0, ok.output
    assert "已删除" in ok.output and "登记 1 条" in ok.output
    assert count(db, "entries") == 0


def test_cli_purge_says_the_horizon_in_the_gates_time(app, db, site, runner):
    """The operator reads the horizon as a time at the gates (Shanghai), not a UTC timestamp
    eight hours off."""
    app.config["RETENTION_DAYS"] = 7
    ok = runner.invoke(args=["purge"], env={"LANG": "zh_CN.UTF-8"})
    assert ok.exit_code == 0, ok.output
    (horizon,) = db.execute("SELECT horizon FROM purge_log").fetchone()
    shown = days.local_text(horizon, app.config["TIMEZONE"])
    assert f"已删除 {shown} 之前的登记" in ok.output, ok.output
    assert horizon not in ok.output


def test_background_job_purges_once_a_local_day(app, db, site):
    assert ("purge", retention.daily_job, retention.BACKGROUND_EVERY_SECONDS) in app.extensions[
        "fieldapp.background"
    ]
    assert save(app, db, [entry(site["id"], ago(3))]) == ["applied"]
    first = retention.daily_job(app, now=NOW)
    assert first is not None and first.entries == 0
    # Five minutes later, or just before midnight if that comes first: still the same local day.
    tz = app.config["TIMEZONE"]
    midnight = datetime.fromisoformat(days.bounds(days.today(tz, NOW), tz)[1])
    same_day = min(NOW + timedelta(minutes=5), midnight - timedelta(milliseconds=1))
    assert retention.daily_job(app, now=same_day) is None  # done today
    later = retention.daily_job(app, now=NOW + timedelta(days=19))  # 22 days after the entry
    assert later is not None and later.entries == 1
    triggers = [r[0] for r in db.execute("SELECT trigger FROM purge_log ORDER BY id")]
    assert triggers == ["background", "background"]


def test_a_downstream_purges_with_the_retention_its_upstream_sets(tmp_path):
    """Retention is configuration: the city's value flows down and every office purges by it."""

    import sync
    from fieldapp.db import connect, transaction

    city = make_instance(tmp_path, "city")
    city.config["RETENTION_DAYS"] = 7
    conn = connect(city.config["DATABASE"])
    with city.app_context():
        sid = sites.add_site(conn, "阳光花园小区", "residential", district="金坛区")["id"]
        with transaction(conn):
            token = sync.peers.create(conn, "instance", "office")[1]
    conn.close()
    office = make_instance(tmp_path, "office")  # its own setting: the default 21 days
    oconn = connect(office.config["DATABASE"])
    oconn.execute(
        "INSERT INTO sites (id, name, kind, code, version, created_at)"
        " VALUES (?, '阳光花园小区', 'residential', 'c0de', 1, ?)",
        (sid, ago(30)),
    )
    assert save(office, oconn, [entry(sid, ago(10)), entry(sid, ago(2))]) == ["applied"] * 2
    sync_up(office, city, token)  # pushes (the old one expires at the city), pulls retention 7
    assert (
        oconn.execute("SELECT value FROM settings WHERE name = 'retention_days'").fetchone()[0]
        == "7"
    )
    assert retention.purge_app(office).entries == 1
    assert count(oconn, "entries") == 1
    oconn.close()
