"""The skeleton: migrations, settings, languages, security headers."""

import sqlite3

import pytest

from fieldapp.db import IntegrityError, connect, migrate, transaction


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


def test_executemany_of_an_insert_stores_what_one_statement_a_row_would(database, engine):
    """executemany sends an INSERT … VALUES of many rows as multi-row INSERTs (SQLite: as many
    rows a statement as its limit on bound values allows): the same rows, the same refusals of
    a row stored before or repeated, and a failure in a later statement keeps nothing."""
    conn = connect(database)
    conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)")
    sent: list[str] = []
    if engine == "sqlite":
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # 50 rows of 2 a statement
    conn.execute("INSERT INTO t (a, b) VALUES (?, ?)", (7, "stored before"))
    if engine == "sqlite":
        conn.set_trace_callback(sent.append)
    rows = [(n, f"row {n}") for n in range(1, 2001)] + [(3, "repeated")]
    with transaction(conn):
        conn.executemany("INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT DO NOTHING", iter(rows))
    stored = dict(conn.execute("SELECT a, b FROM t ORDER BY a").fetchall())
    assert len(stored) == 2000
    assert stored[7] == "stored before"
    assert stored[3] == "row 3"
    assert stored[2000] == "row 2000"
    if engine == "sqlite":
        assert len([s for s in sent if s.startswith("INSERT INTO t")]) == 41  # 2,001 rows / 50

    conn.execute("DELETE FROM t")
    bad = [(n, f"row {n}") for n in range(1, 201)]
    bad[150] = (151, None)  # in the fourth statement of 50 rows
    with pytest.raises(IntegrityError), transaction(conn):
        conn.executemany("INSERT INTO t (a, b) VALUES (?, ?)", bad)
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    conn.executemany("UPDATE t SET b = ? WHERE a = ?", [("x", 1)])  # not an INSERT: as before
    conn.close()


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


def test_ping_is_not_cached(client):
    r = client.get("/ping")
    assert r.json == {"ok": True}
    assert r.headers["Cache-Control"] == "no-store"
