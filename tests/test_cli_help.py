"""`fieldapp --help` and every command's --help in the command-line user's language: zh-Hans
unless the locale says otherwise (zh_TW, zh_HK: zh-Hant; en_*: English)."""

import os
import re
import subprocess
import sys
import unicodedata

import click
import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from i18n_catalog import ROOT, source_messages, translated

from fieldapp import create_app
from fieldapp.cli import main
from fieldapp.i18n import CliText

CJK = re.compile(r"[\u4e00-\u9fff]")
# Flask's own commands: their summary in `fieldapp --help` is ours; their options are Flask's.
FLASKS = {"run", "shell", "routes"}


def fieldapp(tmp_path, *args: str, lang: str | None = "C.UTF-8") -> str:
    """The output of `fieldapp ARGS` (it must succeed) in a shell whose LANG is lang (None:
    unset), with an instance folder that has no database yet."""
    drop = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG", "FIELDAPP_LANG")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["FIELDAPP_INSTANCE"] = str(tmp_path)
    if lang is not None:
        env["LANG"] = lang
    cmd = [sys.executable, "-m", "fieldapp.cli", *args]
    run = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


def listing(output: str) -> dict[str, str]:
    """The commands a --help lists, with their summaries (a wrapped one joined up again)."""
    rows: dict[str, str] = {}
    name = None
    section = re.search(r"^(命令|Commands)[:：]\n", output, re.M)
    assert section, output
    for line in output[section.end() :].splitlines():
        found = re.match(r"  (\S+)\s+(.*)", line)
        if found:
            name, text = found.groups()
            rows[name] = text
        elif name and line.strip():
            # A line broken between two Chinese characters had no space there.
            cjk = CJK.search(rows[name][-1:]) and CJK.search(line.strip()[:1])
            rows[name] += ("" if cjk else " ") + line.strip()
    return rows


@pytest.mark.parametrize("lang", ["C.UTF-8", None, "zh_CN.UTF-8"])
def test_fieldapp_help_is_in_simplified_chinese_by_default(tmp_path, lang):
    out = fieldapp(tmp_path, "--help", lang=lang)
    assert "fieldapp：门岗登记，离线可用，并逐级向上同步。" in out
    assert re.search(r"-A, --app IMPORT\s+要加载的 Flask 应用", out)
    rows = listing(out)
    assert rows["site"] == "场所：添加、列出、更换代码、停用或重新启用、选择登记项、生成二维码。"
    assert rows["user"] == "管理后台账号。"
    assert rows["demo"] == "没有场所时创建一个演示小区和一个演示工地。"  # its first sentence
    assert rows["run"] == "运行 Flask 的开发服务器（正式使用请用 `fieldapp serve`）。"
    assert len(rows) > 20
    english = {name: text for name, text in rows.items() if not CJK.search(text)}
    assert english == {}
    assert "Console accounts" not in out and "Load environment variables" not in out


def test_a_commands_options_are_in_simplified_chinese(tmp_path):
    out = fieldapp(tmp_path, "site", "add", "--help")
    assert "创建场所，并显示其代码和门岗网址。" in out
    assert re.search(r"--name TEXT\s+场所名称，例如 阳光花园小区  \[必填\]", out)
    assert re.search(r"--address TEXT\s+地址，印在场所的二维码海报上", out)
    assert re.search(r"--fields TEXT\s+门岗登记表显示的可选登记项", out)
    assert "场所类型：居民小区（residential）" in out
    assert "Site name" not in out and "[required]" not in out
    # a group's listing: each summary up to its first full stop outside brackets
    rows = listing(fieldapp(tmp_path, "site", "--help"))
    assert rows["deactivate"] == "停用不再设门岗的场所（从明天起不再列入每日报告名单；记录保留）。"
    assert rows["add"] == "创建场所，并显示其代码和门岗网址。"
    # a help with a value in it
    out = fieldapp(tmp_path, "export", "--help")
    assert re.search(r"--fever\s+只导出体温 ≥ 37.3 °C 的记录", out)


@pytest.mark.parametrize("lang", ["zh_TW.UTF-8", "zh_HK.UTF-8"])
def test_help_is_traditional_for_taiwan_and_hong_kong(tmp_path, lang):
    out = fieldapp(tmp_path, "--help", lang=lang)
    assert (
        listing(out)["site"]
        == "場所：新增、列出、更換代碼、停用或重新啟用、選擇登記項、產生二維碼。"
    )
    out = fieldapp(tmp_path, "site", "add", "--help", lang=lang)
    assert re.search(r"--name TEXT\s+場所名稱，例如 陽光花園小區  \[必填\]", out)
    assert "场所" not in out


def test_help_is_english_for_an_english_locale(tmp_path):
    out = fieldapp(tmp_path, "--help", lang="en_GB.UTF-8")
    assert "fieldapp: gate registration that works offline and syncs up the chain." in out
    rows = listing(out)
    assert rows["user"] == "Console accounts."
    assert rows["demo"] == "Seed a demo compound and construction site when there are no sites"
    assert not CJK.search(rows["site"])
    out = fieldapp(tmp_path, "site", "add", "--help", lang="en_US.UTF-8")
    assert re.search(r"--name TEXT\s+Site name, e.g. 阳光花园小区  \[required\]", out)
    assert "Create a site and print its code and gate URL." in out


def _commands(group: click.Group, ctx: click.Context, path: str):
    """(path, command) for every command under group, as Click finds them."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield f"{path} {name}", command
        if isinstance(command, click.Group) and name not in FLASKS:
            yield from _commands(command, click.Context(command, parent=ctx), f"{path} {name}")


def test_every_command_and_option_has_a_translated_help(tmp_path, monkeypatch):
    """A command or an option added without a help marked _l("…") (a docstring, a plain
    help="…") and translated in both catalogs fails here."""
    monkeypatch.setenv("FIELDAPP_INSTANCE", str(tmp_path))
    app = create_app()
    marked = source_messages()
    catalogs = {lang: translated(lang) for lang in ("zh_Hans", "zh_Hant")}
    problems = []

    def check(where: str, text: object) -> None:
        if not isinstance(text, CliText):
            problems.append(f"{where}: not marked _l(…): {text!r}")
        elif text.message not in marked:
            problems.append(f"{where}: not found by the catalogs' extraction: {text.message!r}")
        else:
            for lang, catalog in catalogs.items():
                if text.message not in catalog:
                    problems.append(f"{where}: no {lang} translation: {text.message!r}")

    with click.Context(main, obj=ScriptInfo(create_app=lambda: app)) as ctx:
        check("fieldapp", main.help)
        options = [p for p in main.params if isinstance(p, click.Option)]
        assert {p.name for p in options} >= {"app", "env_file", "debug"}
        for param in options:
            check(f"fieldapp {param.opts}", param.help)
        found = list(_commands(main, ctx, "fieldapp"))
        for path, command in found:
            if path.split()[1] in FLASKS:
                check(path, command.short_help)  # its own help and options are Flask's
                continue
            check(path, command.help)
            for param in command.params:
                if isinstance(param, click.Option):
                    check(f"{path} {param.opts}", param.help)
                elif isinstance(param, click.Argument):  # listed under "Positional arguments"
                    check(f"{path} {param.name.upper()}", param.help)
    assert len(found) > 40  # every area's commands, and their subcommands
    assert problems == []


def columns(line: str) -> int:
    """The columns a line takes in a terminal: two for each East Asian wide character."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


@pytest.mark.parametrize("lang", ["zh_CN.UTF-8", "zh_TW.UTF-8", "en_US.UTF-8"])
def test_every_help_fits_an_80_column_terminal(tmp_path, monkeypatch, lang):
    """Click measures a line by len(): a Chinese character counts one column where the
    terminal gives it two, and lines of up to 140 columns broke anywhere. No line of any
    command's --help is wider than the terminal now, and none starts with a closing mark."""
    monkeypatch.setenv("FIELDAPP_INSTANCE", str(tmp_path))
    app = create_app()
    with click.Context(main, obj=ScriptInfo(create_app=lambda: app)) as ctx:
        paths = [path.split()[1:] for path, _command in _commands(main, ctx, "fieldapp")]
    env = {"COLUMNS": "80", "FIELDAPP_LANG": lang, "FIELDAPP_INSTANCE": str(tmp_path)}
    runner = CliRunner()
    wide, orphans = [], []
    for path in [[], *paths]:
        result = runner.invoke(main, [*path, "--help"], env=env, prog_name="fieldapp")
        assert result.exit_code == 0, (path, result.output)
        for line in result.output.splitlines():
            if columns(line) > 80:
                wide.append(f"{' '.join(path)}: {columns(line)}: {line}")
            if line.strip()[:1] in set("，。、；：）」"):
                orphans.append(f"{' '.join(path)}: {line}")
    assert len(paths) > 40
    assert wide == []
    assert orphans == []


def test_positional_arguments_are_described(tmp_path):
    out = fieldapp(tmp_path, "roster", "import", "--help")
    assert re.search(r"位置参数:\n  SITE  场所：其代码或编号。\n  FILE  名册 CSV 文件", out)
    out = fieldapp(tmp_path, "user", "add", "--help", lang="zh_TW.UTF-8")
    assert re.search(r"位置參數:\n  NAME  管理後台帳號的名稱。", out)
    out = fieldapp(tmp_path, "upstream", "set", "--help", lang="en_US.UTF-8")
    assert re.search(r"Positional arguments:\n  URL\s+The upstream's address", out)
    assert re.search(r"  TOKEN\s+The token the upstream printed for this instance.", out)
