"""`fieldapp backup` / `fieldapp restore` on an instance's SQLite file, and the daily backup
`fieldapp serve` makes into BACKUP_DIR. (The restore drills across instances, a site office and
a central put back from their backups and syncing again, are in test_sync_faults.py.)"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from console_support import login, make_user
from cryptography.fernet import Fernet
from reports_support import entry, save
from servers import ROOT, make_server

from fieldapp.db import backup as backups
from fieldapp.db import cli as db_cli
from fieldapp.gate import sites
from sync.store import iso

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
ZH = {"FIELDAPP_LANG": "zh_CN.UTF-8"}  # the operator's language (zh-Hans, the default)
ID_NUMBER = "320482198506123014"  # made up, its check digit right


@pytest.fixture
def site(app, db):
    with app.app_context():
        return dict(sites.add_site(db, "阳光花园小区", "residential", district="金坛区"))


def fresh(site_id: str, name: str = "张三") -> dict:
    return entry(site_id, iso(datetime.now(UTC) - timedelta(minutes=5)), name=name)


def names(path: str | Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM entries")}
    finally:
        conn.close()


def backup_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.sqlite_only
def test_backup_is_a_consistent_private_copy_without_the_keys(app, db, site, runner, tmp_path):
    assert save(app, db, [fresh(site["id"], "王已存")]) == ["applied"]
    # A write in progress on another connection (a push being stored) is not in the copy.
    busy = sqlite3.connect(app.config["DATABASE"], isolation_level=None)
    busy.execute("BEGIN IMMEDIATE")
    busy.execute("UPDATE sites SET name = '半截写入' WHERE id = ?", (site["id"],))
    try:
        result = runner.invoke(args=["backup", "--out", str(tmp_path / "backups")], env=ZH)
    finally:
        busy.execute("ROLLBACK")
        busy.close()
    assert result.exit_code == 0, result.output
    (name,) = backup_files(tmp_path / "backups")  # one self-contained file, no -wal beside it
    copy = tmp_path / "backups" / name
    assert backups.made_at(copy) is not None
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600  # personal data: its owner only
    assert names(copy) == {"王已存"}
    conn = sqlite3.connect(copy)
    assert conn.execute("SELECT name FROM sites").fetchall() == [("阳光花园小区",)]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert app.config["ID_KEY"].encode() not in copy.read_bytes()
    assert "备份已写入" in result.output and name in result.output
    assert f"请把 {app.instance_path}/config.py 另存一份" in result.output  # the keys, kept apart


@pytest.mark.sqlite_only
def test_backups_past_the_retention_horizon_are_deleted(app, db, site, tmp_path):
    out = tmp_path / "backups"
    out.mkdir()
    old = out / "fieldapp-20261114T030000Z.sqlite3"  # 22 days before NOW: past 21
    kept = out / "fieldapp-20261116T030000Z.sqlite3"  # 20 days
    other = out / "notes.txt"  # not ours: never touched
    for path in (old, kept, other):
        path.write_text("x")
    made = backups.backup(app.config["DATABASE"], out, keep_days=21, now=NOW)
    assert made.pruned == [old]
    assert backup_files(out) == sorted([kept.name, made.path.name, other.name])


@pytest.mark.sqlite_only
def test_restore_puts_the_backup_back_and_refuses_what_is_not_one(app, db, site, runner, tmp_path):
    assert save(app, db, [fresh(site["id"], "备份前")]) == ["applied"]
    made = backups.backup(app.config["DATABASE"], tmp_path / "b", keep_days=21)
    assert save(app, db, [fresh(site["id"], "备份后")]) == ["applied"]

    garbage = tmp_path / "photo.jpg"
    garbage.write_bytes(b"\xff\xd8\xff" + os.urandom(5000))
    for bad in (garbage, tmp_path / "missing.sqlite3"):
        result = runner.invoke(args=["restore", str(bad)], env=ZH)
        assert result.exit_code != 0
        assert f"{bad} 不是可读取的数据库" in result.output or f"{bad} 处没有备份" in result.output
        assert names(app.config["DATABASE"]) == {"备份前", "备份后"}  # nothing touched

    result = runner.invoke(args=["restore", str(made.path)], env=ZH)
    assert result.exit_code == 0 and "已从" in result.output, result.output
    assert names(app.config["DATABASE"]) == {"备份前"}
    assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"


@pytest.mark.sqlite_only
def test_restore_on_a_new_machine_makes_the_instance_folder(app, db, site, runner, tmp_path):
    """Disaster recovery: the instance folder named by FIELDAPP_INSTANCE is not made yet."""
    assert save(app, db, [fresh(site["id"], "备份前")]) == ["applied"]
    made = backups.backup(app.config["DATABASE"], tmp_path / "b", keep_days=21)
    app.config["DATABASE"] = str(tmp_path / "new-instance" / "fieldapp.sqlite3")
    result = runner.invoke(args=["restore", str(made.path)], env=ZH)
    assert result.exit_code == 0 and "已从" in result.output, result.output
    assert names(app.config["DATABASE"]) == {"备份前"}
    assert stat.S_IMODE((tmp_path / "new-instance").stat().st_mode) == 0o700
    # A place no database can be written: a message, not a traceback.
    (tmp_path / "a-file").write_text("")
    app.config["DATABASE"] = str(tmp_path / "a-file" / "fieldapp.sqlite3")
    refused = runner.invoke(args=["restore", str(made.path)], env=ZH)
    assert refused.exit_code == 1 and "无法在" in refused.output and "写入数据库" in refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)


@pytest.mark.sqlite_only
def test_serve_backs_up_once_a_local_day_into_backup_dir(app, db, site, tmp_path):
    app.config["BACKUP_DIR"] = str(tmp_path / "nightly")
    first = db_cli.daily_job(app, now=NOW)
    assert first is not None and first.parent == tmp_path / "nightly"
    assert db_cli.daily_job(app, now=NOW + timedelta(hours=12)) is None  # 23:00 in Shanghai
    second = db_cli.daily_job(app, now=NOW + timedelta(hours=21))  # the next day there
    assert second is not None and second != first
    assert len(backup_files(tmp_path / "nightly")) == 2


def test_postgresql_is_backed_up_with_its_own_tools(app, runner, engine, tmp_path):
    result = runner.invoke(args=["backup", "--out", str(tmp_path / "b")], env=ZH)
    if engine == "postgresql":
        assert result.exit_code != 0 and "请用 pg_dump 或 pg_basebackup 备份" in result.output
        assert not (tmp_path / "b").exists()
        app.config["BACKUP_DIR"] = str(tmp_path / "nightly")
        assert db_cli.daily_job(app) is None  # and serve's daily job leaves it to them
    else:
        assert result.exit_code == 0, result.output


def test_db_copy_refuses_what_is_not_an_empty_postgresql_database(runner, engine, tmp_path):
    result = runner.invoke(args=["db", "copy", "--to", str(tmp_path / "o.sqlite3")], env=ZH)
    assert result.exit_code != 0
    if engine == "postgresql":
        assert "本实例已在使用 PostgreSQL" in result.output
    else:
        assert "--to 必须是 PostgreSQL 地址" in result.output


@pytest.mark.sqlite_only
def test_a_full_disk_during_a_backup_is_said_and_leaves_no_partial_copy(
    app, site, runner, tmp_path, monkeypatch
):
    def full(conn, path):  # SQLite's own answer when the copy fills the disk
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode = sqlite3.SQLITE_FULL
        raise exc

    monkeypatch.setattr(backups, "_check", full)
    out = tmp_path / "backups"
    result = runner.invoke(args=["backup", "--out", str(out)], env=ZH)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"无法写入 {out}：磁盘已满" in result.output
    assert backup_files(out) == []  # no .part left, nothing that looks like a backup


@pytest.mark.sqlite_only
def test_a_backup_folder_that_cannot_be_made_is_said(app, site, runner, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / "a-file" / "backups"
    result = runner.invoke(args=["backup", "--out", str(out)], env=ZH)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"无法写入 {out}：路径中有一部分是文件，而不是文件夹" in result.output


@pytest.mark.sqlite_only
@pytest.mark.parametrize("name", ["before#fix.sqlite3", "what?.sqlite3", "50%25 done.sqlite3"])
def test_a_backup_is_restored_whatever_its_name(app, db, site, runner, tmp_path, name):
    assert save(app, db, [fresh(site["id"], "备份前")]) == ["applied"]
    made = backups.backup(app.config["DATABASE"], tmp_path / "b", keep_days=21)
    assert save(app, db, [fresh(site["id"], "备份后")]) == ["applied"]
    copy = made.path.rename(tmp_path / "b" / name)
    result = runner.invoke(args=["restore", str(copy)], env=ZH)
    assert result.exit_code == 0, result.output
    assert names(app.config["DATABASE"]) == {"备份前"}
    assert backup_files(tmp_path / "b") == [name]  # no stray file named after part of it


@pytest.mark.sqlite_only
def test_a_backup_whose_id_numbers_this_key_cannot_open_is_refused(app, db, site, runner, tmp_path):
    """Another instance's backup, or this one's after `fieldapp init` made a new ID_KEY: put
    back, its ID numbers could never be shown, exported or synced (the full-ID pages and the
    push would fail on every one). Refused, and the database is left as it was."""
    with_id = fresh(site["id"], "有证件")
    with_id["data"]["id_number"] = ID_NUMBER
    assert save(app, db, [with_id]) == ["applied"]
    made = backups.backup(app.config["DATABASE"], tmp_path / "b", keep_days=21)
    assert save(app, db, [fresh(site["id"], "备份后")]) == ["applied"]
    kept = app.config["ID_KEY"]

    app.config["ID_KEY"] = Fernet.generate_key().decode()
    result = runner.invoke(args=["restore", str(made.path)], env=ZH)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "本实例的 ID_KEY 无法读取其中的身份证号" in result.output
    assert "数据库未作任何改动" in result.output
    assert names(app.config["DATABASE"]) == {"有证件", "备份后"}

    app.config["ID_KEY"] = kept  # the instance/config.py kept apart, put back
    result = runner.invoke(args=["restore", str(made.path)], env=ZH)
    assert result.exit_code == 0, result.output
    assert names(app.config["DATABASE"]) == {"有证件"}


@pytest.mark.sqlite_only
def test_a_restore_under_a_running_server_is_refused(tmp_path):
    """`fieldapp serve` holds its database while it runs: a restore would pull the pages from
    under it, and what it stores meanwhile would be lost. Refused until the server stops."""
    server = make_server(tmp_path / "office", FIELDAPP_LANG="zh_CN.UTF-8")
    server.cli("backup", "--out", str(tmp_path / "b"))
    (made,) = (tmp_path / "b").glob("fieldapp-*.sqlite3")
    before = {r[0] for r in server.query("SELECT id FROM sites")}
    server.cli("site", "add", "--name", "备份后小区")
    now = {r[0] for r in server.query("SELECT id FROM sites")}
    assert now > before
    server.start()
    try:
        refused = server.cli("restore", str(made), check=False)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "服务器正在使用" in refused.stderr and "请先停止" in refused.stderr, refused.stderr
        assert {r[0] for r in server.query("SELECT id FROM sites")} == now  # untouched
    finally:
        server.stop()
    done = server.cli("restore", str(made), check=False)  # the server stopped
    assert done.returncode == 0, done.stderr
    assert {r[0] for r in server.query("SELECT id FROM sites")} == before


@pytest.mark.sqlite_only
def test_a_db_copy_under_a_running_server_is_refused(tmp_path):
    """What the server stores after the copy's snapshot would not be in PostgreSQL: the
    phones' entries it acknowledged (they delete them then) and the console's work would be
    lost at the switch. Refused, before the target is even opened, until the server stops."""
    server = make_server(tmp_path / "central", FIELDAPP_LANG="zh_CN.UTF-8")
    server.start()
    try:
        url = "postgresql://nobody@127.0.0.1:9/none"  # never reached
        refused = server.cli("db", "copy", "--to", url, check=False)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "服务器正在使用" in refused.stderr and "请先停止" in refused.stderr, refused.stderr
    finally:
        server.stop()
    stopped = server.cli("db", "copy", "--to", url, check=False)
    assert stopped.returncode == 1 and "服务器正在使用" not in stopped.stderr
    assert "无法打开" in stopped.stderr or "127.0.0.1" in stopped.stderr, stopped.stderr


@pytest.mark.sqlite_only
@pytest.mark.parametrize("damage", ["header", "truncated"])
def test_a_damaged_database_is_restored_over_and_kept_aside(
    app, db, site, runner, tmp_path, damage
):
    """The moment a restore is for: the disk or a power cut damaged the instance's file. The
    restore goes through, and the damaged file is kept aside (whatever it still holds may be
    read from it), not written over."""
    for n in range(200):
        assert save(app, db, [fresh(site["id"], f"备份前{n}")]) == ["applied"]
    made = backups.backup(app.config["DATABASE"], tmp_path / "b", keep_days=21)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    live = Path(app.config["DATABASE"])
    with open(live, "r+b") as f:
        if damage == "header":
            f.write(os.urandom(100))
        else:
            f.truncate(3 * 4096)
    hurt = live.read_bytes()

    result = runner.invoke(args=["restore", str(made.path)], env=ZH)
    assert result.exit_code == 0, result.output
    assert names(live) == {f"备份前{n}" for n in range(200)}
    (aside,) = live.parent.glob(live.name + ".damaged-*")
    assert aside.read_bytes() == hurt
    assert f"已损坏的数据库已移至 {aside}" in result.output


@pytest.mark.sqlite_only
def test_another_instances_backup_is_refused_over_this_ones_records(tmp_path):
    """Two site offices, one set up as a copy of the other's keys: office B's backup put back
    at office A would throw away A's records (those not yet synced are lost for good) and make
    A push as B. Refused while A holds records; a new, empty instance may take it (a machine
    set up again from scratch)."""
    a = make_server(tmp_path / "a", demo=False, FIELDAPP_LANG="zh_CN.UTF-8")
    b = make_server(tmp_path / "b", demo=False, FIELDAPP_LANG="zh_CN.UTF-8")
    (b.folder / "config.py").write_text((a.folder / "config.py").read_text())  # same ID_KEY
    b.cli("site", "add", "--name", "乙小区")
    b.cli("backup", "--out", str(tmp_path / "b-backups"))
    (made,) = (tmp_path / "b-backups").glob("fieldapp-*.sqlite3")
    a.cli("site", "add", "--name", "甲小区")

    refused = a.cli("restore", str(made), check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "是另一个实例的备份" in refused.stderr and "未作任何改动" in refused.stderr
    assert [r[0] for r in a.query("SELECT name FROM sites")] == ["甲小区"]

    fresh_machine = make_server(tmp_path / "new", demo=False, FIELDAPP_LANG="zh_CN.UTF-8")
    (fresh_machine.folder / "config.py").write_text((a.folder / "config.py").read_text())
    done = fresh_machine.cli("restore", str(made), check=False)
    assert done.returncode == 0, done.stderr
    assert [r[0] for r in fresh_machine.query("SELECT name FROM sites")] == ["乙小区"]


@pytest.mark.sqlite_only
def test_backups_past_the_retention_horizon_are_deleted_when_a_backup_fails_too(
    app, site, runner, tmp_path, monkeypatch
):
    """A disk that is full fails every nightly backup: the backups past the horizon must go
    all the same (they keep purged personal data, and they are what fills the disk)."""

    def full(conn, path):
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode = sqlite3.SQLITE_FULL
        raise exc

    monkeypatch.setattr(backups, "_check", full)
    out = tmp_path / "backups"
    out.mkdir()
    now = datetime.now(UTC)
    old = out / f"fieldapp-{(now - timedelta(days=70)).strftime(backups.STAMP)}.sqlite3"
    kept = out / f"fieldapp-{(now - timedelta(days=2)).strftime(backups.STAMP)}.sqlite3"
    for path in (old, kept):
        path.write_text("x")
    result = runner.invoke(args=["backup", "--out", str(out)], env=ZH)
    assert result.exit_code == 1 and "磁盘已满" in result.output, result.output
    assert backup_files(out) == [kept.name]


# --- the last backup's outcome, on the console's dashboard ------------------------------


def dashboard(app, language: str = "zh-CN") -> str:
    """The console's dashboard as an administrator reads it, in language."""
    client = app.test_client()
    login(client, "root")
    return client.get("/console/", headers={"Accept-Language": language}).get_data(as_text=True)


def backup_notice(html: str) -> str:
    """The dashboard's backup notice, or '' when it shows none."""
    start = html.find('id="backup-status"')
    return "" if start < 0 else html[html.rindex("<p", 0, start) : html.index("</p>", start)]


def stored_outcome(db) -> dict:
    row = db.execute("SELECT made_at, made_file, failed_at, failure FROM backup_status").fetchone()
    return dict(zip(("made_at", "made_file", "failed_at", "failure"), row, strict=True))


@pytest.mark.sqlite_only
def test_a_failing_daily_backup_is_shown_on_the_dashboard_in_the_readers_language(
    app, db, site, tmp_path
):
    make_user(app, "root", "admin")
    (tmp_path / "a-file").write_text("not a folder")  # a folder that cannot be made
    folder = tmp_path / "a-file" / "nightly"
    app.config["BACKUP_DIR"] = str(folder)
    notice = backup_notice(dashboard(app))
    assert "最近备份: 从未" in notice and "失败" not in notice  # none yet: serve makes it soon

    with pytest.raises(NotADirectoryError):  # the job's loop logs it, and tries again
        db_cli.daily_job(app, now=NOW)
    outcome = stored_outcome(db)
    assert outcome["made_at"] is None and outcome["failed_at"] == iso(NOW)
    failure = json.loads(outcome["failure"])  # the errno, not a sentence in the server's words
    assert failure["errno"] == errno.ENOTDIR and failure["folder"] == str(folder)
    notice = backup_notice(dashboard(app))
    assert 'class="notice alert"' in notice and "最近备份: 从未" in notice
    # 11:00 in Shanghai (the instance's zone), worded for the reader, in their language.
    assert (
        f"2026-12-06 11:00 的备份尝试失败：无法写入 {folder}：路径中有一部分是文件，而不是文件夹"
        in notice
    )
    assert "無法寫入 " + str(folder) + "：路徑中有一部分是文件，而不是文件夾" in backup_notice(
        dashboard(app, "zh-TW")
    )
    assert "a part of the path is a file, not a folder" in backup_notice(dashboard(app, "en"))

    (tmp_path / "a-file").unlink()  # the operator fixes it; the next round makes the backup
    made = db_cli.daily_job(app, now=NOW + timedelta(hours=1))
    assert made is not None
    outcome = stored_outcome(db)
    assert outcome == {
        "made_at": iso(NOW + timedelta(hours=1)),
        "made_file": str(made),
        "failed_at": None,
        "failure": None,
    }
    notice = backup_notice(dashboard(app))
    assert "最近备份: 2026-12-06 12:00" in notice and "失败" not in notice and "alert" not in notice


@pytest.mark.sqlite_only
def test_fieldapp_backup_keeps_its_outcome_for_the_dashboard(
    app, db, site, runner, tmp_path, monkeypatch
):
    make_user(app, "root", "admin")
    assert backup_notice(dashboard(app)) == ""  # no BACKUP_DIR and no backup: nothing to say
    out = tmp_path / "backups"
    result = runner.invoke(args=["backup", "--out", str(out)], env=ZH)
    assert result.exit_code == 0, result.output
    (name,) = backup_files(out)
    assert stored_outcome(db)["made_file"] == str(out / name)
    made_at = stored_outcome(db)["made_at"]
    assert made_at is not None and "最近备份: 从未" not in backup_notice(dashboard(app))

    def full(conn, path):  # SQLite's own answer when the copy fills the disk
        exc = sqlite3.OperationalError("database or disk is full")
        exc.sqlite_errorcode = sqlite3.SQLITE_FULL
        raise exc

    monkeypatch.setattr(backups, "_check", full)
    result = runner.invoke(args=["backup", "--out", str(out)], env=ZH)
    assert result.exit_code == 1 and "磁盘已满" in result.output, result.output
    outcome = stored_outcome(db)
    assert outcome["made_at"] == made_at and outcome["failed_at"] is not None
    assert json.loads(outcome["failure"])["errno"] == errno.ENOSPC
    notice = backup_notice(dashboard(app))
    assert f"无法写入 {out}：磁盘已满" in notice and 'class="notice alert"' in notice
    assert f"無法寫入 {out}：磁盤已滿" in backup_notice(dashboard(app, "zh-TW"))

    def damaged(conn, path):
        raise backups.Unsound("damaged", path, "row 3 missing from index")

    monkeypatch.setattr(backups, "_check", damaged)
    result = runner.invoke(args=["backup", "--out", str(out)], env=ZH)
    assert result.exit_code == 1, result.output
    failure = json.loads(stored_outcome(db)["failure"])
    assert failure["problem"] == "damaged" and "errno" not in failure
    assert "is damaged: row 3 missing from index" in backup_notice(dashboard(app, "en"))


def test_postgresql_shows_no_backup_status(app, db, engine, tmp_path):
    """PostgreSQL is backed up with pg_dump: the dashboard says nothing of backups there."""
    make_user(app, "root", "admin")
    app.config["BACKUP_DIR"] = str(tmp_path / "nightly")
    notice = backup_notice(dashboard(app))
    if engine == "postgresql":
        assert notice == "" and db_cli.daily_job(app) is None
        assert stored_outcome(db) == dict.fromkeys(("made_at", "made_file", "failed_at", "failure"))
    else:
        assert "最近备份: 从未" in notice


# --- what a restore replaces is kept; backups made in the same second ----------------------


@pytest.mark.sqlite_only
def test_a_restore_saves_the_database_it_replaces_as_a_backup(app, db, site, runner, tmp_path):
    """The operator restores the wrong backup: what was recorded since is not lost. The
    database it replaced is a backup like any other in BACKUP_DIR (its owner only, its name
    one `restore` takes back, deleted past the retention horizon), and the output names it."""
    nightly = tmp_path / "nightly"
    app.config["BACKUP_DIR"] = str(nightly)
    nightly.mkdir()
    now = datetime.now(UTC)
    old = nightly / f"fieldapp-{(now - timedelta(days=70)).strftime(backups.STAMP)}.sqlite3"
    old.write_text("x")  # past the horizon: deleted as any backup save deletes it
    assert save(app, db, [fresh(site["id"], "备份前")]) == ["applied"]
    made = backups.backup(app.config["DATABASE"], tmp_path / "b", keep_days=21)
    assert save(app, db, [fresh(site["id"], "备份后")]) == ["applied"]

    result = runner.invoke(args=["restore", str(made.path)], env=ZH)
    assert result.exit_code == 0, result.output
    assert names(app.config["DATABASE"]) == {"备份前"}
    (saved,) = nightly.iterdir()
    assert backups.made_at(saved) is not None
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert names(saved) == {"备份前", "备份后"}
    assert f"被替换的数据库已另存为 {saved}" in result.output
    assert f"已删除超过保存期限的备份：{old}" in result.output

    # The wrong backup, then: the saved one takes everything back (and is itself kept).
    again = runner.invoke(args=["restore", str(saved)], env=ZH)
    assert again.exit_code == 0, again.output
    assert names(app.config["DATABASE"]) == {"备份前", "备份后"}
    (second,) = set(nightly.iterdir()) - {saved}  # a name of its own, even in the same second
    assert names(second) == {"备份前"} and names(saved) == {"备份前", "备份后"}
    assert f"被替换的数据库已另存为 {second}" in again.output


@pytest.mark.sqlite_only
def test_without_backup_dir_the_replaced_database_is_kept_in_the_instance_and_expires(
    app, db, site, runner, tmp_path
):
    assert app.config.get("BACKUP_DIR") is None
    assert save(app, db, [fresh(site["id"], "备份前")]) == ["applied"]
    made = backups.backup(app.config["DATABASE"], tmp_path / "b", keep_days=21)
    assert save(app, db, [fresh(site["id"], "备份后")]) == ["applied"]
    result = runner.invoke(args=["restore", str(made.path)], env={"FIELDAPP_LANG": "zh_TW.UTF-8"})
    assert result.exit_code == 0, result.output
    folder = Path(app.instance_path) / "backups"
    (saved,) = folder.iterdir()
    assert names(saved) == {"备份前", "备份后"}
    assert f"被替換的資料庫已另存為 {saved}" in result.output
    # No backup is made there, yet serve's hourly backup round deletes it past the horizon.
    assert db_cli.daily_job(app, now=datetime.now(UTC) + timedelta(days=20)) is None
    assert saved.exists()
    assert db_cli.daily_job(app, now=datetime.now(UTC) + timedelta(days=22)) is None
    assert list(folder.iterdir()) == []


@pytest.mark.sqlite_only
def test_a_restore_whose_replaced_database_cannot_be_saved_is_refused(
    app, db, site, runner, tmp_path
):
    """No copy, no restore: the database stays as it was, and the output says why."""
    (tmp_path / "a-file").write_text("not a folder")
    folder = tmp_path / "a-file" / "nightly"
    app.config["BACKUP_DIR"] = str(folder)
    assert save(app, db, [fresh(site["id"], "备份前")]) == ["applied"]
    made = backups.backup(app.config["DATABASE"], tmp_path / "b", keep_days=21)
    assert save(app, db, [fresh(site["id"], "备份后")]) == ["applied"]
    result = runner.invoke(args=["restore", str(made.path)], env=ZH)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert (
        f"恢复前无法先把将被替换的数据库另存到 {folder}：路径中有一部分是文件，而不是文件夹。"
        "数据库未作任何改动。" in result.output
    )
    assert names(app.config["DATABASE"]) == {"备份前", "备份后"}


CRASH_AFTER_THE_COPY = """
import os, signal, sys
from fieldapp.db import backup as backups
from fieldapp.cli import main

made = backups.backup
def then_power_cut(*args, **kwargs):  # the copy made, the database not yet replaced
    print(made(*args, **kwargs).path, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
backups.backup = then_power_cut
sys.argv = ["fieldapp", "restore", sys.argv[1]]
main()
"""


@pytest.mark.sqlite_only
def test_a_crash_between_the_copy_and_the_restore_leaves_both(tmp_path):
    """A power cut after the database was saved and before the backup is written over it:
    the database is there, whole, and so is its copy; running restore again completes."""
    server = make_server(tmp_path / "office", demo=False, FIELDAPP_LANG="zh_CN.UTF-8")
    server.cli("site", "add", "--name", "备份前小区")
    server.cli("backup", "--out", str(tmp_path / "b"))
    (made,) = (tmp_path / "b").glob("fieldapp-*.sqlite3")
    server.cli("site", "add", "--name", "备份后小区")
    both = {"备份前小区", "备份后小区"}

    cut = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_THE_COPY, str(made)],
        env=server.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cut.returncode == -signal.SIGKILL, cut.stdout + cut.stderr
    saved = Path(cut.stdout.split()[0])
    assert saved.parent == server.folder / "backups"
    assert {r[0] for r in server.query("SELECT name FROM sites")} == both  # untouched
    conn = sqlite3.connect(saved)
    assert {r[0] for r in conn.execute("SELECT name FROM sites")} == both
    conn.close()

    done = server.cli("restore", str(made), check=False)
    assert done.returncode == 0, done.stderr
    assert {r[0] for r in server.query("SELECT name FROM sites")} == {"备份前小区"}
    back = server.cli("restore", str(saved), check=False)
    assert back.returncode == 0, back.stderr
    assert {r[0] for r in server.query("SELECT name FROM sites")} == both


@pytest.mark.sqlite_only
def test_two_backups_in_the_same_second_are_both_kept(app, db, site, runner, tmp_path, monkeypatch):
    """`fieldapp backup` run by hand while serve's daily one runs, or twice in a second: the
    second overwrote the first (the name has the time to the second), or deleted the partial
    copy it was writing. Each has a name of its own, which restore, pruning and the
    dashboard's last backup all read."""

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return NOW

    monkeypatch.setattr(db_cli, "datetime", Clock)
    out = tmp_path / "out"
    out.mkdir()
    writing = out / f"fieldapp-{NOW.strftime(backups.STAMP)}.sqlite3.part"
    writing.write_bytes(b"another backup being written")
    assert save(app, db, [fresh(site["id"], "第一份")]) == ["applied"]
    first = runner.invoke(args=["backup", "--out", str(out)], env=ZH)
    assert first.exit_code == 0, first.output
    assert save(app, db, [fresh(site["id"], "第二份")]) == ["applied"]
    second = runner.invoke(args=["backup", "--out", str(out)], env=ZH)
    assert second.exit_code == 0, second.output

    made = sorted(out.glob("fieldapp-*.sqlite3"), key=lambda p: names(p) == {"第一份", "第二份"})
    assert len(made) == 2 and names(made[0]) == {"第一份"}, backup_files(out)
    assert writing.read_bytes() == b"another backup being written"  # not taken, not deleted
    assert f"备份已写入：{made[0]}" in first.output and f"备份已写入：{made[1]}" in second.output
    assert [backups.made_at(p) for p in made] == [NOW, NOW]
    assert backups.newest(out) == NOW
    assert stored_outcome(db)["made_file"] == str(made[1])  # the dashboard's last backup

    restored = runner.invoke(args=["restore", str(made[0])], env=ZH)
    assert restored.exit_code == 0, restored.output
    assert names(app.config["DATABASE"]) == {"第一份"}
    assert backups.prune(out, keep_days=21, now=NOW + timedelta(days=21)) == []
    writing.unlink()
    assert sorted(backups.prune(out, keep_days=21, now=NOW + timedelta(days=22))) == made
