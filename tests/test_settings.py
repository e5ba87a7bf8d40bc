"""Settings an instance cannot use are refused at start, plainly, in the user's language."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fieldapp import settings

ROOT = Path(__file__).resolve().parent.parent


def fieldapp(
    tmp_path: Path, env: dict[str, str], *args: str, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """`fieldapp ARGS` in its own process, run from cwd, its instance folder in tmp_path unless
    env names one."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("FIELDAPP_")}
    path = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    full.update({"FIELDAPP_INSTANCE": str(tmp_path / "instance"), "PYTHONPATH": path, **env})
    return subprocess.run(
        [sys.executable, "-m", "fieldapp.cli", *args],
        env=full,
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def test_a_relative_instance_folder_is_taken_from_where_the_command_runs(tmp_path):
    """`FIELDAPP_INSTANCE=site fieldapp init`, as a shell user types it: the folder is made
    under the current folder, and the next command there finds the same database."""
    env = {"FIELDAPP_INSTANCE": "site", "LANG": "zh_CN.UTF-8"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return fieldapp(tmp_path, env, *args, cwd=tmp_path)

    init = run("init")
    assert init.returncode == 0, init.stderr
    assert "Traceback" not in init.stderr
    database = tmp_path / "site" / "fieldapp.sqlite3"
    assert f"数据库 {database}：已应用" in init.stdout
    assert (tmp_path / "site" / "config.py").exists()
    assert run("site", "add", "--name", "阳光花园小区", "--district", "金坛区").returncode == 0
    listed = run("site", "list")
    assert "阳光花园小区" in listed.stdout
    with sqlite3.connect(database) as conn:
        assert conn.execute("SELECT name FROM sites").fetchall() == [("阳光花园小区",)]


def test_an_empty_instance_folder_is_the_default_one():
    assert settings.instance_folder({"FIELDAPP_INSTANCE": ""}) == str(ROOT / "instance")
    assert settings.instance_folder({}) == str(ROOT / "instance")


@pytest.mark.parametrize("value", ["gate.example.cn", "ftp://gate.example.cn", "http://"])
def test_a_base_url_phones_cannot_open_is_refused_before_anything_is_made(tmp_path, value):
    run = fieldapp(tmp_path, {"FIELDAPP_BASE_URL": value, "LANG": "zh_CN.UTF-8"}, "init")
    assert run.returncode == 1
    assert (
        f"BASE_URL 必须是手机打开的地址，例如 https://gate.example.cn，不能是 {value!r}"
        in run.stderr
    )
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "instance" / "fieldapp.sqlite3").exists()


def test_a_setting_of_the_wrong_type_names_itself_in_english_too(tmp_path):
    run = fieldapp(
        tmp_path, {"FIELDAPP_SYNC_INTERVAL": "ten", "LANG": "en_GB.UTF-8"}, "sync", "--status"
    )
    assert run.returncode == 1
    assert "Error: FIELDAPP_SYNC_INTERVAL must be a whole number, not 'ten'" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_lan_address_with_its_port_is_a_good_base_url(tmp_path):
    env = {"FIELDAPP_BASE_URL": "http://192.168.1.5:8000", "LANG": "zh_CN.UTF-8"}
    assert fieldapp(tmp_path, env, "init").returncode == 0
    run = fieldapp(tmp_path, env, "site", "add", "--name", "阳光花园小区", "--district", "金坛区")
    assert run.returncode == 0, run.stderr
    assert "http://192.168.1.5:8000/s/" in run.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"FIELDAPP_TIMEZONE": "Mars/Phobos"},
            "TIMEZONE 必须是时区名称，例如 Asia/Shanghai，不能是 'Mars/Phobos'",
        ),
        (
            # 0 records a batch: a push sends nothing and reports success, so nothing ever leaves
            {"FIELDAPP_SYNC_BATCH_SIZE": "0"},
            "SYNC_BATCH_SIZE 必须是 1 到 10000 之间的整数，不能是 0",
        ),
        (
            # a body limit no push fits under: every push refused
            {"FIELDAPP_SYNC_MAX_BATCH_BYTES": "-1"},
            "SYNC_MAX_BATCH_BYTES 必须是 1024 到 16777216 之间的整数，不能是 -1",
        ),
        (
            # every save and every purge would fail while the instance ran on
            {"FIELDAPP_RETENTION_DAYS": "3"},
            "RETENTION_DAYS 必须是 7 到 60 之间的整数，不能是 3",
        ),
        (
            {"FIELDAPP_REPORT_RETENTION_DAYS": "5"},
            "REPORT_RETENTION_DAYS 必须是 30 到 3660 之间的整数，不能是 5",
        ),
        (
            # the roll-call and every report's lateness read it
            {"FIELDAPP_REPORT_CUTOFF": "25:00"},
            "REPORT_CUTOFF 必须是 20:00 这样的时间，当前为 25:00",
        ),
    ],
    ids=["timezone", "batch size", "batch bytes", "retention", "report retention", "cutoff"],
)
def test_a_setting_that_cannot_work_is_refused_at_start(tmp_path, env, message):
    run = fieldapp(tmp_path, {**env, "LANG": "zh_CN.UTF-8"}, "site", "list")
    assert run.returncode == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_a_database_url_that_cannot_be_reached_is_said_in_one_line(tmp_path):
    env = {"FIELDAPP_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x", "LANG": "zh_CN.UTF-8"}
    run = fieldapp(tmp_path, env, "site", "list")
    assert run.returncode == 1
    assert run.stderr.startswith("错误：无法连接 DATABASE_URL 指定的数据库：")
    assert "127.0.0.1" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr
