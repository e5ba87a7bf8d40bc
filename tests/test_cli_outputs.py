"""A command's output file (passes, posters, the log export, the roll-call and coverage tables, a
site's or an enrolment's QR code) is written whole or not at all: a path that cannot be written
gets a message in the user's language that names it and says why, never a traceback; whatever
was at the path stays as it was, and nothing is recorded for a file the user did not get (the
export's audit row, the enrolment behind a QR code)."""

from __future__ import annotations

import errno
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from reports_support import entry, save

from fieldapp.gate import roster, sites
from sync.store import iso

ZH = {"FIELDAPP_LANG": "zh_CN.UTF-8"}  # the operator's language (zh-Hans, the default)
PHONE = "13812345678"


@pytest.fixture
def world(app, db, runner):
    with app.app_context():
        site = dict(sites.add_site(db, "阳光花园小区", "residential", district="金坛区"))
        roster.import_rows(
            db,
            site["id"],
            [{"name": "张建国", "phone": PHONE, "unit": "3-2-501", "person_type": "resident"}],
        )
    at = iso(datetime.now(UTC) - timedelta(minutes=5))
    assert save(app, db, [entry(site["id"], at, name="张建国", phone=PHONE)]) == ["applied"]
    made = runner.invoke(args=["screening", "campaign", "add", "--name", "测试排查", "--all-sites"])
    assert made.exit_code == 0, made.output
    return site


# Each command that writes a file: its arguments for an output path, and the file's suffix.
COMMANDS = {
    "site qr": (lambda site, out: ["site", "qr", site["code"], "--out", out], ".png"),
    "roster passes": (lambda site, out: ["roster", "passes", site["code"], "--out", out], ".pdf"),
    "posters": (lambda site, out: ["posters", "--out", out], ".pdf"),
    "export csv": (lambda site, out: ["export", "-o", out, "--full"], ".csv"),
    "export xlsx": (lambda site, out: ["export", "--format", "xlsx", "-o", out, "--full"], ".xlsx"),
    "report daily": (
        lambda site, out: ["report", "daily", "--format", "csv", "--out", out],
        ".csv",
    ),
    "screening coverage": (
        lambda site, out: ["screening", "coverage", "测试排查", "--format", "xlsx", "--out", out],
        ".xlsx",
    ),
    "device enrol --qr": (
        lambda site, out: [
            "device",
            "enrol",
            "--site",
            site["code"],
            "--name",
            "东门",
            "--qr",
            out,
        ],
        ".svg",
    ),
}


def recorded(db) -> dict[str, int]:
    """What the database says was written or handed out."""
    audit = db.execute("SELECT action, COUNT(*) FROM audit_log GROUP BY action").fetchall()
    enrolments = db.execute("SELECT COUNT(*) FROM device_enrolments").fetchone()[0]
    return {**{row[0]: row[1] for row in audit}, "enrolments": enrolments}


def refused(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a message, no traceback
    assert message in result.output, result.output
    assert "/enrol/" not in result.output  # no enrolment link for a QR code never written


@pytest.fixture
def full_disk(monkeypatch):
    """A disk that fills up as the file is made: its data never reaches the disk."""

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_folder_is_said_and_nothing_recorded(runner, db, world, tmp_path, command):
    args, suffix = COMMANDS[command]
    out = tmp_path / "无此文件夹" / f"输出{suffix}"
    before = recorded(db)
    result = runner.invoke(args=args(world, str(out)), env=ZH)
    refused(result, f"无法写入 {out}：文件夹不存在")
    assert not out.parent.exists()
    assert recorded(db) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_full_disk_leaves_the_previous_file_whole_and_nothing_recorded(
    runner, db, world, tmp_path, full_disk, command
):
    args, suffix = COMMANDS[command]
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / f"输出{suffix}"
    out.write_bytes(b"the previous file")
    before = recorded(db)
    result = runner.invoke(args=args(world, str(out)), env=ZH)
    refused(result, f"无法写入 {out}：磁盘已满")
    assert out.read_bytes() == b"the previous file"
    assert list(folder.iterdir()) == [out]  # no partial file left beside it
    assert recorded(db) == before


@pytest.mark.parametrize("command", ["roster passes", "posters", "export csv"])
def test_a_device_that_is_full_is_said(runner, db, world, command):
    args, _suffix = COMMANDS[command]
    before = recorded(db)
    result = runner.invoke(args=args(world, "/dev/full"), env=ZH)
    refused(result, "无法写入 /dev/full：磁盘已满")
    assert recorded(db) == before


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_full_export_is_readable_by_its_owner_only(runner, db, world, tmp_path, fmt):
    """Full ID and phone numbers: 0600 as backups are, whatever the umask, and a file written
    over (readable by others before) becomes 0600 too."""
    new, old = tmp_path / f"new.{fmt}", tmp_path / f"old.{fmt}"
    old.write_bytes(b"an older export")
    old.chmod(0o644)
    mask = os.umask(0o022)  # the common umask: a new file readable by everyone
    try:
        for out in (new, old):
            args = ["export", "--format", fmt, "-o", str(out), "--full"]
            done = runner.invoke(args=args, env=ZH)
            assert done.exit_code == 0, done.output
            assert stat.S_IMODE(out.stat().st_mode) == 0o600, out
    finally:
        os.umask(mask)
    if fmt == "csv":
        assert PHONE in new.read_text(encoding="utf-8-sig")  # the full numbers are in it
    assert recorded(db)["export"] == 2


def test_written_files_are_complete_and_recorded_after(runner, db, world, tmp_path):
    out = tmp_path / "log.csv"
    out.write_bytes(b"an older export")
    out.chmod(0o640)
    done = runner.invoke(args=["export", "-o", str(out)], env=ZH)
    assert done.exit_code == 0, done.output
    assert PHONE not in out.read_text(encoding="utf-8-sig")  # masked
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # who may read it stays as it was
    assert recorded(db)["export"] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

    qr = tmp_path / "enrol.svg"
    args = ["device", "enrol", "--site", world["code"], "--name", "东门", "--qr", str(qr)]
    done = runner.invoke(args=args, env=ZH)
    assert done.exit_code == 0, done.output
    assert "/enrol/" in done.output and qr.read_bytes().startswith(b"<?xml")
    assert recorded(db)["enrolments"] == 1
