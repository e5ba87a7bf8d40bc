"""Fixtures: an app on a fresh database, its client and CLI runner (as in flaskr); and a
throwaway PostgreSQL cluster with a fresh database per test (tests/pg_cluster.py).

Every test that uses the app (or `database`) runs on both engines: SQLite, the embedded
default, and PostgreSQL, a central's. A test about SQLite itself (its files, its pragmas) is
marked `sqlite_only` and runs on SQLite alone.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fieldapp import create_app  # noqa: E402
from fieldapp.console.cases import ensure as ensure_cases  # noqa: E402
from fieldapp.db import close_all, connect, migrate  # noqa: E402
from fieldapp.gate.counts import ensure as ensure_counts  # noqa: E402
from fieldapp.instance import ensure_identity  # noqa: E402

ENGINES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    """Run each test that needs a database once per engine (SQLite only, when so marked); the
    PostgreSQL runs are `slow` (they need the cluster), so `-m "not slow"` is SQLite's alone."""
    if "engine" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only")
        engines = [
            pytest.param(e, marks=pytest.mark.slow) if e == "postgresql" else e
            for e in (ENGINES[:1] if only else ENGINES)
        ]
        metafunc.parametrize("engine", engines, scope="function")


@pytest.fixture(scope="session")
def migrated(tmp_path_factory) -> Path:
    """An empty SQLite database with every migration applied, made once: a test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "fieldapp.sqlite3"
    conn = connect(path)
    migrate(conn)
    ensure_counts(conn, "Asia/Shanghai")  # as `fieldapp init` does (the tests' TIMEZONE)
    ensure_cases(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


@pytest.fixture(scope="session")
def pg_migrated(pg_cluster) -> str:
    """The name of a PostgreSQL database with every migration applied: a test gets a copy."""
    url = pg_cluster.create_database(prefix="migrated")
    conn = connect(url)
    migrate(conn)
    ensure_counts(conn, "Asia/Shanghai")
    ensure_cases(conn)
    conn.close()
    return url.rsplit("/", 1)[1]


@pytest.fixture
def database(engine, request, tmp_path, migrated) -> str:
    """A fresh, migrated database of this test's engine: a SQLite file's path or a URL."""
    if engine == "postgresql":
        template = request.getfixturevalue("pg_migrated")
        target = request.getfixturevalue("make_pg_database")(template=template)
    else:
        target = str(tmp_path / "fieldapp.sqlite3")
        shutil.copyfile(migrated, target)
    conn = connect(target)
    ensure_identity(conn)  # each test's instance has an id of its own
    conn.close()
    return target


@pytest.fixture
def app(tmp_path, database):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE": database,
            "SECRET_KEY": "test",
            "ID_KEY": Fernet.generate_key().decode(),
            "BASE_URL": "http://gate.test",
        }
    )
    app.instance_path = str(tmp_path)
    yield app
    close_all(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """A separate connection to the app's database, for asserting what it holds."""
    conn = connect(app.config["DATABASE"])
    yield conn
    conn.close()


# -- PostgreSQL ------------------------------------------------------------------------------
# One throwaway cluster per test session, started the first time a test asks for one of these
# fixtures (a run with no PostgreSQL test starts no server). See tests/pg_cluster.py.


@pytest.fixture(scope="session")
def pg_cluster():
    """The session's PgCluster: .url, .admin_url, .url_for(name), .create_database(),
    .drop_database(), .schema_url(). Stopped and removed at the end of the session."""
    from pg_cluster import throwaway_cluster

    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def pg_url(pg_cluster) -> str:
    """postgresql://postgres@127.0.0.1:PORT/fieldapp_test, shared by the whole session: a test
    that writes there must clean up after itself (prefer pg_database)."""
    return pg_cluster.url


@pytest.fixture
def make_pg_database(pg_cluster):
    """A function make(prefix="t", template="template0", locale=None) -> URL of a new
    database with a unique name (locale: another than the cluster's C, from template0), for a test that needs several (a central and a middle tier on
    databases of their own). Every one is dropped after the test, connections and all.

    To migrate once and clone per test, fill a database, close every connection to it, then
    pass its name as template."""
    made: list[str] = []

    def make(prefix: str = "t", template: str = "template0", locale: str | None = None) -> str:
        url = pg_cluster.create_database(prefix=prefix, template=template, locale=locale)
        made.append(url)
        return url

    yield make
    for url in made:
        pg_cluster.drop_database(url)


@pytest.fixture
def pg_database(make_pg_database) -> str:
    """The URL of a fresh empty database (UTF8, C collation) of its own, dropped afterwards."""
    return make_pg_database()


@pytest.fixture
def pg_schema(pg_cluster):
    """Cheaper than pg_database: the URL of the shared fieldapp_test database with a fresh
    empty schema first on its search_path (CREATE SCHEMA, DROP SCHEMA ... CASCADE afterwards).
    Isolates only code that never names a schema (public.x) and makes no database-wide
    objects (extensions, roles, database settings)."""
    import psycopg
    from psycopg import sql

    name = f"s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield pg_cluster.schema_url(name)
    with psycopg.connect(pg_cluster.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes():
    """Passwords hashed with argon2's cheapest parameters in this process (the library's profile
    for tests): a login costs microseconds instead of ~50 ms, and the rate-limit tests make
    dozens. Instances started as processes keep the real ones."""
    from argon2 import PasswordHasher
    from argon2.profiles import CHEAPEST

    from fieldapp.console import accounts

    cheap = PasswordHasher.from_parameters(CHEAPEST)
    real = accounts._hasher, accounts._DUMMY_HASH
    accounts._hasher, accounts._DUMMY_HASH = cheap, cheap.hash("not a password of anyone")
    yield
    accounts._hasher, accounts._DUMMY_HASH = real
