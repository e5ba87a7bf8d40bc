"""Fixtures: an app on a fresh database file, its client and CLI runner (as in flaskr)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fieldapp import create_app  # noqa: E402
from fieldapp.db import connect, migrate  # noqa: E402
from fieldapp.instance import ensure_identity  # noqa: E402


@pytest.fixture
def app(tmp_path):
    db_path = tmp_path / "fieldapp.sqlite3"
    conn = connect(db_path)
    migrate(conn)
    ensure_identity(conn)
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
