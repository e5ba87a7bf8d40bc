"""Every user-visible string is translated into zh-Hans and zh-Hant."""

import gettext
import os
import subprocess
import sys

from i18n_catalog import ROOT, TRANSLATIONS, missing

CLICK = TRANSLATIONS / "click"


def test_every_string_translated():
    gaps = missing()
    assert gaps == {"zh_Hans": [], "zh_Hant": []}, "run tests/i18n_catalog.py to list them"


def fieldapp(tmp_path, *args: str, lang: str | None = None) -> subprocess.CompletedProcess:
    """`fieldapp ARGS` in a shell whose locale says nothing (LANG=C.UTF-8, as on a server)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    env.update(FIELDAPP_INSTANCE=str(tmp_path), LANG="C.UTF-8")
    env.pop("FIELDAPP_LANG", None)
    if lang:
        env["FIELDAPP_LANG"] = lang
    cmd = [sys.executable, "-m", "fieldapp.cli", *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_clicks_own_usage_errors_are_in_the_users_language(tmp_path):
    """A wrong argument is refused by Click before any command of ours runs: its words too."""
    run = fieldapp(tmp_path, "site", "add")
    assert run.returncode == 2
    assert "错误：缺少选项 '--name'" in run.stderr
    assert "用法：" in run.stderr and "查看帮助" in run.stderr
    run = fieldapp(tmp_path, "site", "add", "--name", "工地", "--kind", "castle")
    assert "错误：'--kind' 的值无效：'castle' 不是可选的值：" in run.stderr
    assert "没有命令 'sitee'" in fieldapp(tmp_path, "sitee").stderr
    assert "缺少選項 '--name'" in fieldapp(tmp_path, "site", "add", lang="zh_TW").stderr
    assert "Error: Missing option '--name'." in fieldapp(tmp_path, "site", "add", lang="en").stderr


def test_clicks_messages_have_both_chinese_catalogs():
    for lang in ("zh_Hans", "zh_Hant"):
        click_words = gettext.translation("messages", CLICK, languages=[lang])
        for msgid in (
            "Usage:",
            "Missing option",
            "Error: {message}",
            "No such command {name!r}.",
            "required",
        ):
            assert click_words.gettext(msgid) != msgid, (lang, msgid)


def test_zh_hant_says_database_one_way():
    """資料庫 (Taiwan, Hong Kong), never 數據庫 (the mainland's word, in traditional characters)
    beside it: one thing, one word."""
    from babel.messages.pofile import read_po

    said = []
    for po in sorted(TRANSLATIONS.glob("*/zh_Hant/LC_MESSAGES/messages.po")):
        with po.open("rb") as f:
            for message in read_po(f):
                strings = message.string if isinstance(message.string, tuple) else (message.string,)
                said += [s for s in strings if s]
    assert [s for s in said if "數據庫" in s or "数据库" in s] == []
    assert len([s for s in said if "資料庫" in s]) > 20


def test_fieldapp_init_says_database_in_taiwan_usage(tmp_path):
    first = fieldapp(tmp_path, "init", lang="zh_TW")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("資料庫 ") and "：已應用 " in first.stdout
    again = fieldapp(tmp_path, "init", lang="zh_TW")
    assert again.stdout.startswith("資料庫 ") and "：已是最新" in again.stdout
    assert "數據庫" not in first.stdout + first.stderr + again.stdout + again.stderr
