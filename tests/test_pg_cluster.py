"""The throwaway PostgreSQL cluster of tests/pg_cluster.py and its fixtures work."""

from __future__ import annotations

import os
import pwd
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from pg_cluster import OWNER_FILE, sweep_stale_clusters, truncate_all

# Real processes (or a PostgreSQL cluster): `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


def test_a_fresh_database_stores_and_reads_back(pg_database):
    assert urlsplit(pg_database).hostname == "127.0.0.1"
    with psycopg.connect(pg_database) as conn:
        conn.execute("CREATE TABLE entry (id bigserial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO entry (name) VALUES (%s), (%s)", ("张伟", "Émile"))
        conn.commit()
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT name FROM entry ORDER BY id").fetchall() == [
            ("张伟",),
            ("Émile",),
        ]
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone() == (1,)


def test_databases_are_independent_and_dropped(pg_cluster, make_pg_database):
    central, middle = make_pg_database("central"), make_pg_database("middle")
    assert central != middle
    with psycopg.connect(central, autocommit=True) as conn:
        conn.execute("CREATE TABLE site (id text PRIMARY KEY)")
        conn.execute("INSERT INTO site VALUES ('a')")
    with psycopg.connect(middle, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('site')").fetchone() == (None,)
        conn.execute("CREATE TABLE site (id text PRIMARY KEY)")  # the same name, no clash
        assert conn.execute("SELECT count(*) FROM site").fetchone() == (0,)
    pg_cluster.drop_database(central)  # even with a connection left open (a leaked pool)
    leaked = psycopg.connect(middle)
    pg_cluster.drop_database(middle)
    leaked.close()
    with psycopg.connect(pg_cluster.admin_url) as conn:
        names = {urlsplit(u).path[1:] for u in (central, middle)}
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (list(names),)
        )
        assert rows.fetchall() == []


def test_collation_and_case_folding_match_sqlite(pg_database):
    """UTF8 with the C locale: code point order and ASCII-only lower(), as SQLite does."""
    with psycopg.connect(pg_database) as conn:
        row = conn.execute(
            "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database"
            " WHERE datname = current_database()"
        ).fetchone()
        assert row == ("UTF8", "C", "C")
        words = ["b", "B", "a", "张", "É", "é"]
        got = conn.execute("SELECT w FROM unnest(%s::text[]) w ORDER BY w", (words,)).fetchall()
        assert [w for (w,) in got] == sorted(words)  # Python sorts by code point too
        assert conn.execute("SELECT lower('ABC É')").fetchone() == ("abc É",)
        assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)


def test_a_filled_database_is_a_template_for_clones(make_pg_database):
    template = make_pg_database("tmpl")
    with psycopg.connect(template, autocommit=True) as conn:
        conn.execute("CREATE TABLE site (id text PRIMARY KEY)")
        conn.execute("INSERT INTO site VALUES ('seed')")
    name = urlsplit(template).path[1:]
    clone = make_pg_database("clone", template=name)
    with psycopg.connect(clone) as conn:
        assert conn.execute("SELECT id FROM site").fetchall() == [("seed",)]


def test_schema_per_test_and_truncate_all(pg_schema, pg_database):
    with psycopg.connect(pg_schema, autocommit=True) as conn:
        conn.execute("CREATE TABLE site (id text PRIMARY KEY)")
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        assert schema.startswith("s_")
        assert conn.execute(
            "SELECT schemaname FROM pg_tables WHERE tablename = 'site'"
        ).fetchall() == [(schema,)]
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE a (id serial PRIMARY KEY); CREATE TABLE b (x int)")
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute(
            "INSERT INTO a DEFAULT VALUES; INSERT INTO b VALUES (1); INSERT INTO kept VALUES (1)"
        )
        truncate_all(pg_database, keep=("kept",))
        assert conn.execute(
            "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)"
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1,)
        assert conn.execute("INSERT INTO a DEFAULT VALUES RETURNING id").fetchone() == (1,)


def _listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on `port` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, _, hexport = local.partition(":")
            if state != "0A" or int(hexport, 16) != port:  # 0A: LISTEN
                continue
            if len(addr) == 8:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
            else:
                raw = b"".join(bytes.fromhex(addr[i : i + 8])[::-1] for i in range(0, 32, 8))
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def test_the_server_listens_on_127_0_0_1_only(pg_cluster):
    assert _listening_addresses(pg_cluster.port) == {"127.0.0.1"}
    # Another loopback address reaches a server bound to 0.0.0.0, but not this one.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.2", pg_cluster.port), 2):
        pass
    with psycopg.connect(pg_cluster.admin_url) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        rules = conn.execute(
            "SELECT type, address, auth_method FROM pg_hba_file_rules ORDER BY line_number"
        ).fetchall()
    assert rules == [("local", None, "trust"), ("host", "127.0.0.1", "trust")]


def test_the_folder_is_private_to_the_server_user(pg_cluster):
    info = pg_cluster.folder.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700
    expected = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert info.st_uid == expected == (pg_cluster.folder / "data").stat().st_uid


CRASH = textwrap.dedent(
    """
    import os, signal, socket, sys
    sys.path.insert(0, {tests!r})
    from pg_cluster import PgCluster
    cluster = PgCluster().start()
    print(cluster.folder, cluster.port, flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    pid = os.fork()  # a forked child's exit must not end its parent's cluster
    if pid == 0:
        sys.exit(0)
    os.waitpid(pid, 0)
    socket.create_connection(("127.0.0.1", cluster.port), 2).close()
    print("alive-after-fork", flush=True)
    raise SystemExit("crash")
    """
)


def _crash(how: str) -> tuple[Path, int, str]:
    code = CRASH.format(tests=str(Path(__file__).parent))
    proc = subprocess.run(
        [sys.executable, "-c", code, how], capture_output=True, text=True, timeout=120
    )
    folder, port = proc.stdout.split()[:2]
    return Path(folder), int(port), proc.stdout


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 2).close()
    except OSError:
        return True
    return False


def test_a_crashed_run_leaves_no_cluster_behind():
    folder, port, out = _crash("exit")  # an uncaught exception: atexit stops and removes it
    assert "alive-after-fork" in out
    assert not folder.exists() and _refused(port)

    folder, port, _ = _crash("kill")  # SIGKILL: no atexit; the next start sweeps it away
    assert (folder / OWNER_FILE).exists() and not _refused(port)
    sweep_stale_clusters()
    assert not folder.exists() and _refused(port)
