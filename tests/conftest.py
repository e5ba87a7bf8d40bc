"""Fixtures: an app on a fresh database file, its client and CLI runner (as in flaskr); and a
throwaway PostgreSQL cluster with a fresh database per test (tests/pg_cluster.py)."""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fieldapp import create_app  # noqa: E402
from fieldapp.db import connect, migrate  # noqa: E402
from fieldapp.instance import ensure_identity  # noqa: E402


@pytest.fixture(scope="session")
def migrated(tmp_path_factory) -> Path:
    """An empty database with every migration applied, made once: each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "fieldapp.sqlite3"
    conn = connect(path)
    migrate(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


@pytest.fixture
def app(tmp_path, migrated):
    db_path = tmp_path / "fieldapp.sqlite3"
    shutil.copyfile(migrated, db_path)
    conn = connect(db_path)
    ensure_identity(conn)  # each test's instance has an id of its own
    conn.close()
    app = create_app(
        {
            "TESTING": True,
            "DATABASE": str(db_path),
            "SECRET_KEY": "test",
            "ID_KEY": Fernet.generate_key().decode(),
            "BASE_URL": "http://gate.test",
        }
    )
    app.instance_path = str(tmp_path)
    yield app


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
    """A function make(prefix="t", template="template0") -> URL of a new
    database with a unique name, for a test that needs several (a central and a middle tier on
    databases of their own). Every one is dropped after the test, connections and all.

    To migrate once and clone per test, fill a database, close every connection to it, then
    pass its name as template."""
    made: list[str] = []

    def make(prefix: str = "t", template: str = "template0") -> str:
        url = pg_cluster.create_database(prefix=prefix, template=template)
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
