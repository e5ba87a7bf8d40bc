"""The skeleton: migrations, settings, languages, security headers."""

import sqlite3
from datetime import UTC, datetime, timedelta

from fieldapp.db import connect, migrate


def test_migrate_from_empty_then_again_is_a_no_op(tmp_path):
    conn = connect(tmp_path / "x.sqlite3")
    first = migrate(conn)
    assert "fieldapp/0001_core.sql" in first
    assert "sync/0001_changes.sql" in first
    assert migrate(conn) == []
    names = {r[0] for r in conn.execute("SELECT name FROM migrations")}
    assert set(first) == names
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_failed_migration_leaves_nothing_half_applied(tmp_path, monkeypatch):
    from fieldapp import db as dbmod

    good = dbmod._migrations()
    monkeypatch.setattr(
        dbmod,
        "_migrations",
        lambda: good + [("fieldapp/9999_bad.sql", "CREATE TABLE t (x);\nNOT SQL;")],
    )
    conn = connect(tmp_path / "x.sqlite3")
    try:
        migrate(conn)
    except sqlite3.OperationalError:
        pass
    assert (
        conn.execute("SELECT count(*) FROM migrations WHERE name LIKE '%9999%'").fetchone()[0] == 0
    )
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()[0] == 0


def test_init_command_is_safe_twice(runner, app):
    first = runner.invoke(args=["init"])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["init"], env={"FIELDAPP_LANG": "zh_CN.UTF-8"})
    assert second.exit_code == 0
    assert "已是最新" in second.output


def test_init_never_prints_the_database_password(runner, app, engine):
    """What init prints ends up in terminals and logs: a PostgreSQL URL's password stays out
    (the test cluster trusts local connections, so a password in the URL is not checked)."""
    if engine == "postgresql":
        url = app.config["DATABASE"]
        app.config["DATABASE"] = url.replace("postgres@", "postgres:s3cret-pw@", 1)
        assert "s3cret-pw" in app.config["DATABASE"]
    out = runner.invoke(args=["init"], env={"FIELDAPP_LANG": "zh_CN.UTF-8"})
    assert out.exit_code == 0, out.output
    assert "：已是最新" in out.output and "s3cret-pw" not in out.output
    if engine == "postgresql":
        assert "postgres:***@127.0.0.1" in out.output


def test_security_headers_and_csp(client):
    r = client.get("/")
    csp = r.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_default_language_is_simplified_chinese(client):
    r = client.get("/")
    assert 'lang="zh-Hans"' in r.text
    assert "门岗登记" in r.text


def test_language_from_accept_language_and_remembered_choice(client):
    assert 'lang="zh-Hant"' in client.get("/", headers={"Accept-Language": "zh-TW"}).text
    assert 'lang="en"' in client.get("/", headers={"Accept-Language": "en-GB,en"}).text
    r = client.get("/lang/en?next=/")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    assert "Gate register" in client.get("/").text
    assert client.get("/lang/en?next=//evil.example").headers["Location"] == "/"
    # What a browser reads as another site: a backslash for a slash, a tab dropped.
    for other in ("/\\evil.example", "/%5Cevil.example", "/%09/evil.example", "/\\/evil.example"):
        assert client.get(f"/lang/en?next={other}").headers["Location"] == "/", other


def test_a_language_chosen_by_either_spelling_is_remembered(client):
    """/lang/zh-Hant as BCP 47 writes it, /lang/zh_Hant as the pages' links do, in any case:
    the pages and the manifest then follow it, whatever the browser asks for."""
    asked = {"Accept-Language": "en-GB,en"}
    for code, lang, name in (
        ("zh-Hant", "zh-Hant", "門崗登記"),
        ("en", "en", "Gate register"),
        ("ZH-HANS", "zh-Hans", "门岗登记"),
        ("zh_hant", "zh-Hant", "門崗登記"),
        ("EN", "en", "Gate register"),
        ("zh-Hans", "zh-Hans", "门岗登记"),
    ):
        r = client.get(f"/lang/{code}?next=/")
        assert r.status_code == 302 and r.headers["Location"] == "/", code
        page = client.get("/", headers=asked).text
        assert f'<html lang="{lang}">' in page and name in page, code
        manifest = client.get("/manifest.webmanifest", headers=asked).get_json(force=True)
        assert (manifest["name"], manifest["lang"]) == (name, lang), code
    client.get("/lang/fr")  # not one of ours: the choice before stays
    assert '<html lang="zh-Hans">' in client.get("/", headers=asked).text


def test_the_script_subtag_decides_over_the_region(client):
    """zh-Hans-TW is Simplified Chinese read in Taiwan; without a script a region of Taiwan,
    Hong Kong or Macao means Traditional, any other region (or none) Simplified."""
    for tag, lang in (
        ("zh-Hans-TW", "zh-Hans"),
        ("zh-Hans-HK", "zh-Hans"),
        ("zh-Hant-CN", "zh-Hant"),
        ("zh-Hant", "zh-Hant"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh-MO", "zh-Hant"),
        ("zh_tw", "zh-Hant"),
        ("zh-CN", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("fr-FR,zh-Hans-TW;q=0.8,zh-TW;q=0.5", "zh-Hans"),
        ("zha,en;q=0.5", "en"),  # Zhuang is not Chinese
    ):
        page = client.get("/", headers={"Accept-Language": tag}).text
        assert f'<html lang="{lang}">' in page, tag
        manifest = client.get("/manifest.webmanifest", headers={"Accept-Language": tag})
        assert manifest.get_json(force=True)["lang"] == lang, tag


def test_ping_is_not_cached(client):
    r = client.get("/ping")
    assert r.json["ok"] is True
    assert r.headers["Cache-Control"] == "no-store"
    # The instance's clock, which a phone compares with its own (a wrong date is said).
    now = datetime.fromisoformat(r.json["now"])
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)
