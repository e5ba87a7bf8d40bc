"""What a command is given from outside (an argument, a file it reads) is checked: bad input is
said in the user's language with a non-zero exit, never a traceback, and what is saved stays as
it was."""

from __future__ import annotations

import errno
import os
import pathlib

import pytest

from fieldapp.gate import sites

ZH = {"FIELDAPP_LANG": "zh_CN.UTF-8"}  # the operator's language (zh-Hans, the default)
ROSTER = "name,phone,unit\n张建国,13812345678,3-2-501\n".encode()
OUTBOX = b'{"format": "fieldapp-outbox", "version": 1, "records": []}'


@pytest.fixture
def site(app, db):
    with app.app_context():
        return dict(sites.add_site(db, "阳光花园小区", "residential", district="金坛区"))


def refused(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a message, no traceback
    assert message in result.output, result.output


def stored(db) -> dict[str, int]:
    return {
        table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("roster", "entries", "changes", "sync_rejects")
    }


def unreadable(monkeypatch, code: int) -> None:
    """Reading any file fails as a file without permission, or a failing USB stick, does."""

    def read_bytes(self):
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)


@pytest.mark.parametrize(
    ("code", "reason"), [(errno.EACCES, "没有读取权限"), (errno.EIO, "磁盘读取出错")]
)
@pytest.mark.parametrize("command", ["roster import", "import-outbox"])
def test_a_file_that_cannot_be_read_is_said(
    runner, db, site, tmp_path, monkeypatch, command, code, reason
):
    path = tmp_path / "名册.csv"
    path.write_bytes(ROSTER if command == "roster import" else OUTBOX)
    args = ["roster", "import", site["code"], str(path)]
    if command == "import-outbox":
        args = ["import-outbox", str(path)]
    before = stored(db)
    unreadable(monkeypatch, code)
    result = runner.invoke(args=args, env=ZH)
    refused(result, f"无法读取 {path}：{reason}")
    assert stored(db) == before


def test_upstream_set_on_a_full_disk_keeps_the_keys_file_as_it_was(
    app, runner, tmp_path, monkeypatch
):
    config = tmp_path / "config.py"
    keys = "SECRET_KEY = 'kept'\nID_KEY = 'kept too'\n"
    config.write_text(keys, encoding="utf-8")

    def fsync(fd: int) -> None:  # the disk fills up as the file is written
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    result = runner.invoke(args=["upstream", "set", "https://central.test", "tok_en"], env=ZH)
    refused(result, f"无法写入 {config}：磁盘已满")
    assert config.read_text(encoding="utf-8") == keys
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".config")] == []
    assert not app.config.get("UPSTREAM_URL")


def test_upstream_set_writes_the_keys_file_for_its_owner_only(app, runner, tmp_path):
    config = tmp_path / "config.py"
    config.write_text("SECRET_KEY = 'kept'\nUPSTREAM_URL = 'http://old.test'\n", encoding="utf-8")
    config.chmod(0o644)
    result = runner.invoke(args=["upstream", "set", "https://central.test/", "tok_en"], env=ZH)
    assert result.exit_code == 0, result.output
    assert config.read_text(encoding="utf-8") == (
        "SECRET_KEY = 'kept'\nUPSTREAM_URL = 'https://central.test'\nUPSTREAM_TOKEN = 'tok_en'\n"
    )
    assert config.stat().st_mode & 0o777 == 0o600
    assert app.config["UPSTREAM_URL"] == "https://central.test"


def count(db, table: str) -> int:
    return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# A tab or a line break in a name breaks every tab-separated listing (site list, device list)
# and every table and poster it is printed on: refused, nothing made.
MULTILINE = {
    "site add": (
        lambda code: ["site", "add", "--name", "东\t门"],
        "场所名称须为一行，不能含制表符或不可见字符。",
        "sites",
    ),
    "site add --district": (
        lambda code: ["site", "add", "--name", "东门", "--district", "金坛\n区"],
        "须为一行，不能含制表符或不可见字符。",
        "sites",
    ),
    "device enrol": (
        lambda code: ["device", "enrol", "--site", code, "--name", "东门\n1号机"],
        "手机名称须为一行，不能含制表符或不可见字符。",
        "device_enrolments",
    ),
    "instance add": (
        lambda code: ["instance", "add", "金坛\t区"],
        "名称须为一行，不能含制表符或不可见字符。",
        "peers",
    ),
    "screening campaign add": (
        lambda code: ["screening", "campaign", "add", "--name", "复工\n排查", "--all-sites"],
        "排查任务名称须为一行，不能含制表符或不可见字符。",
        "screening_campaigns",
    ),
}


@pytest.mark.parametrize("command", MULTILINE)
def test_a_name_on_more_than_one_line_is_refused(runner, db, site, command):
    args, message, table = MULTILINE[command]
    before = count(db, table)
    result = runner.invoke(args=args(site["code"]), env=ZH)
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert message in result.output, result.output
    assert count(db, table) == before


# The invisible marks a paste from a chat or a spreadsheet brings (a zero-width space, a BOM, a
# direction mark): dropped from a name as free text drops them, the name made and said without.
PASTED = {
    "site add": (
        lambda code: ["site", "add", "--name", "\ufeff东\u200b门\u200e"],
        "SELECT name FROM sites WHERE name <> '阳光花园小区'",
        "东门",
    ),
    "site add --district": (
        lambda code: ["site", "add", "--name", "东门", "--district", "金坛\u2060区\u200f"],
        "SELECT district FROM sites WHERE name = '东门'",
        "金坛区",
    ),
    "device enrol": (
        lambda code: ["device", "enrol", "--site", code, "--name", "\u200b东门 1 号机\u061c"],
        "SELECT name FROM device_enrolments",
        "东门 1 号机",
    ),
    "instance add": (
        lambda code: ["instance", "add", "金坛\ufeff区 "],
        "SELECT name FROM peers WHERE kind = 'instance'",
        "金坛区",
    ),
    "screening campaign add": (
        lambda code: ["screening", "campaign", "add", "--name", "复工\u200e排查", "--all-sites"],
        "SELECT name FROM screening_campaigns",
        "复工排查",
    ),
}


@pytest.mark.parametrize("command", PASTED)
def test_an_invisible_mark_pasted_with_a_name_is_dropped(runner, db, site, command):
    args, sql, meant = PASTED[command]
    result = runner.invoke(args=args(site["code"]), env=ZH)
    assert result.exit_code == 0, result.output
    assert [r[0] for r in db.execute(sql)] == [meant]
    if command in ("site add", "instance add", "screening campaign add"):  # said by name
        assert meant in result.output, result.output


@pytest.mark.parametrize("command", PASTED)
def test_a_mark_that_reorders_a_name_is_still_refused(runner, db, site, command):
    """A bidi override ("\u202e" shows "gpj.exe" as "exe.jpg") is no paste's harmless mark."""
    args, sql, _meant = PASTED[command]
    args = [a.replace("\u200b", "\u202e").replace("\u2060", "\u202e") for a in args(site["code"])]
    args = [a.replace("\ufeff", "\u202e").replace("\u200e", "\u202e") for a in args]
    before = db.execute(sql).fetchall()
    result = runner.invoke(args=args, env=ZH)
    assert result.exit_code in (1, 2), result.output
    assert "须为一行，不能含制表符或不可见字符。" in result.output, result.output
    assert db.execute(sql).fetchall() == before


def test_a_name_with_spaces_around_it_is_still_taken(runner, db):
    result = runner.invoke(args=["site", "add", "--name", " 南门\n"], env=ZH)
    assert result.exit_code == 0, result.output
    assert db.execute("SELECT name FROM sites").fetchall()[-1][0] == "南门"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (lambda code, out: ["site", "qr", code, "--out", out], "--out"),
        (
            lambda code, out: ["device", "enrol", "--site", code, "--name", "东门", "--qr", out],
            "--qr",
        ),
    ],
)
def test_a_qr_file_not_named_svg_or_png_is_refused_in_the_users_language(
    runner, db, site, tmp_path, args, option
):
    out = tmp_path / "二维码.txt"
    result = runner.invoke(args=args(site["code"], str(out)), env=ZH)
    assert result.exit_code == 2, result.output
    # (Click's own "Invalid value for" is localised by `fieldapp`'s group, not in this runner.)
    assert f"{option}: 文件名须以 .svg 或 .png 结尾" in result.output, result.output
    assert "/enrol/" not in result.output
    assert not out.exists()
    assert count(db, "device_enrolments") == 0


# A command run on a folder `fieldapp init` never made (a mistyped FIELDAPP_INSTANCE, before
# init) or on a database a new version's migrations have not reached: said, and no empty
# database file is left behind for the next command to trip over.
NOT_READY = {
    "site list": ["site", "list"],
    "roster import": ["roster", "import", "ABC", "{csv}"],
    "user list": ["user", "list"],
    "purge": ["purge"],
    "backup": ["backup", "--out", "{folder}"],
}


@pytest.fixture
def nowhere(tmp_path):
    """An app whose database file does not exist yet."""
    from cryptography.fernet import Fernet

    from fieldapp.app import create_app

    folder = tmp_path / "实例"
    folder.mkdir()
    app = create_app(
        {
            "TESTING": True,
            "DATABASE": str(folder / "fieldapp.sqlite3"),
            "SECRET_KEY": "test",
            "ID_KEY": Fernet.generate_key().decode(),
            "BASE_URL": "http://gate.test",
        }
    )
    app.instance_path = str(folder)
    return app


def fill(args: list[str], tmp_path) -> list[str]:
    csv = tmp_path / "名册.csv"
    csv.write_bytes(ROSTER)
    return [a.format(csv=csv, folder=tmp_path / "备份") for a in args]


@pytest.mark.parametrize("command", NOT_READY)
def test_a_command_before_init_says_to_run_it(nowhere, tmp_path, command):
    database = nowhere.config["DATABASE"]
    result = nowhere.test_cli_runner().invoke(args=fill(NOT_READY[command], tmp_path), env=ZH)
    refused(result, f"{database} 处没有数据库：请先运行 `fieldapp init`")
    assert not os.path.exists(database)


@pytest.mark.parametrize("command", NOT_READY)
def test_a_command_on_a_database_not_migrated_says_to_run_init(nowhere, tmp_path, command):
    from fieldapp import db as fdb

    database = nowhere.config["DATABASE"]
    conn = fdb.connect(database)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    conn.close()
    result = nowhere.test_cli_runner().invoke(args=fill(NOT_READY[command], tmp_path), env=ZH)
    refused(result, f"数据库 {database} 与当前版本的 fieldapp 不一致：请运行 `fieldapp init`")
    runner = nowhere.test_cli_runner()
    assert runner.invoke(args=["init"], env=ZH).exit_code == 0
    assert runner.invoke(args=["site", "list"], env=ZH).exit_code == 0


def test_a_missing_or_misplaced_path_is_said_wholly_in_the_users_language(tmp_path):
    from servers import make_server

    server = make_server(tmp_path / "实例", demo=False)
    server.env["FIELDAPP_LANG"] = "zh_CN.UTF-8"
    missing = tmp_path / "名册.csv"
    result = server.cli("roster", "import", "ABC", str(missing), check=False)
    assert result.returncode == 2, result.stderr
    assert f"文件 '{missing}' 不存在。" in result.stderr, result.stderr
    result = server.cli("backup", "--out", str(server.database), check=False)
    assert result.returncode == 2, result.stderr
    assert f"文件夹 '{server.database}' 是文件，不是文件夹。" in result.stderr, result.stderr
    server.env["FIELDAPP_LANG"] = "zh_TW.UTF-8"
    result = server.cli("export", "-o", str(tmp_path), check=False)
    assert f"文件 '{tmp_path}' 是文件夾，不是文件。" in result.stderr, result.stderr


# An output file named as the instance's own database or keys file replaced it: every record
# gone (export -o fieldapp.sqlite3), or the keys that decrypt the ID numbers (posters --out
# config.py). Refused, the file left as it was.
OUTPUTS = {
    "export": lambda code, out: ["export", "-o", out],
    "report daily": lambda code, out: ["report", "daily", "--format", "csv", "--out", out],
    "posters": lambda code, out: ["posters", "--out", out],
    "roster passes": lambda code, out: ["roster", "passes", code, "--out", out],
}


@pytest.mark.parametrize("own", ["database", "config.py"])
@pytest.mark.parametrize("command", OUTPUTS)
def test_an_output_file_never_replaces_the_instances_own_files(
    app, runner, db, site, tmp_path, command, own
):
    from fieldapp import db as fdb

    if own == "database" and fdb.is_postgres(app.config["DATABASE"]):
        pytest.skip("a PostgreSQL database is no file")
    config = tmp_path / "config.py"
    config.write_text("SECRET_KEY = 'kept'\n", encoding="utf-8")
    path = app.config["DATABASE"] if own == "database" else str(config)
    before = pathlib.Path(path).read_bytes()
    result = runner.invoke(args=OUTPUTS[command](site["code"], path), env=ZH)
    refused(result, f"{path} 是本实例自己的文件（数据库或密钥）：请写入其他文件。")
    assert pathlib.Path(path).read_bytes() == before
    assert count(db, "sites") == 1


def test_a_password_on_standard_input_that_is_not_utf8_is_said(runner, db):
    args = ["user", "add", "老王", "--role", "admin", "--password-stdin"]
    result = runner.invoke(args=args, input="密码密码12345678\n".encode("gbk"), env=ZH)
    refused(result, "从标准输入读到的密码不是 UTF-8 文本。")
    assert count(db, "users") == 0


TODAY_TYPED = "２０２６－１２－０７"  # as a Chinese input method in full-width mode types it

# A date option given empty (`--date "$DAY"` with DAY unset in a script) is not today, nor no
# limit: it is refused, naming the option, and nothing is made or written.
EMPTY_DATE = {
    "report daily --date": ["report", "daily", "--date", ""],
    "screening coverage --date": ["screening", "coverage", "复工排查", "--date", ""],
    "screening campaign add --start": ["screening", "campaign", "add", "--name", "排查"]
    + ["--all-sites", "--start", " "],
    "screening campaign add --end": ["screening", "campaign", "add", "--name", "排查"]
    + ["--all-sites", "--end", ""],
    "export --from": ["export", "-o", "OUT", "--from", ""],
    "export --to": ["export", "-o", "OUT", "--to", "　"],
}


@pytest.mark.parametrize("command", EMPTY_DATE)
@pytest.mark.parametrize(
    ("env", "says"),
    [
        (ZH, "日期为空：请按 2020-02-15 的格式填写"),
        ({"FIELDAPP_LANG": "zh_TW.UTF-8"}, "日期為空：請按 2020-02-15 的格式填寫"),
        ({"FIELDAPP_LANG": "en_US.UTF-8"}, "the date is empty: give one like 2020-02-15"),
    ],
)
def test_a_date_given_empty_is_refused_in_the_operators_language(
    runner, db, site, tmp_path, command, env, says
):
    with_campaign = runner.invoke(
        args=["screening", "campaign", "add", "--name", "复工排查", "--all-sites"], env=ZH
    )
    assert with_campaign.exit_code == 0, with_campaign.output
    out = tmp_path / "登记.csv"
    args = [str(out) if a == "OUT" else a for a in EMPTY_DATE[command]]
    before = {t: count(db, t) for t in ("screening_campaigns", "audit_log")}
    result = runner.invoke(args=args, env=env)
    assert result.exit_code == 2, result.output  # a usage error, as click says one
    assert isinstance(result.exception, SystemExit), result.exception
    assert says in result.output, result.output
    assert command.rpartition(" ")[2] in result.output, result.output  # the option named
    assert {t: count(db, t) for t in before} == before
    assert not out.exists()


def test_a_date_typed_with_full_width_digits_is_read_as_the_web_forms_read_it(runner, db, site):
    ascii_day = "2026-12-07"
    for args in (["report", "daily", "--date"], ["screening", "coverage", "复工排查", "--date"]):
        if args[0] == "screening":
            made = ["screening", "campaign", "add", "--name", "复工排查", "--all-sites"]
            made += ["--start", "２０２６－１２－０１", "--end", "２０２６－１２－３１"]
            assert runner.invoke(args=made, env=ZH).exit_code == 0
        typed = runner.invoke(args=[*args, TODAY_TYPED], env=ZH)
        assert typed.exit_code == 0, typed.output
        assert typed.output == runner.invoke(args=[*args, ascii_day], env=ZH).output
        assert ascii_day in typed.output, typed.output
    stored = db.execute("SELECT start_day, end_day FROM screening_campaigns").fetchall()
    assert [tuple(r) for r in stored] == [("2026-12-01", "2026-12-31")]


def test_an_export_between_days_typed_full_width_names_them_as_typed_in_ascii(
    runner, db, site, tmp_path
):
    out = tmp_path / "登记.csv"
    args = ["export", "-o", str(out), "--from", "２０２６－１２－０１", "--to", TODAY_TYPED]
    result = runner.invoke(args=args, env=ZH)
    assert result.exit_code == 0, result.output
    assert out.exists()
    (detail,) = db.execute("SELECT detail FROM audit_log WHERE action = 'export'").fetchone()
    assert "date_from=2026-12-01" in detail and "date_to=2026-12-07" in detail, detail


def test_a_number_typed_with_full_width_digits_is_taken(runner, db, site):
    result = runner.invoke(
        args=["device", "enrol", "--site", site["code"], "--name", "东门", "--hours", "２４"],
        env=ZH,
    )
    assert result.exit_code == 0, result.output
    assert count(db, "device_enrolments") == 1
