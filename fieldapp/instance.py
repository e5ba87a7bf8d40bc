"""This instance's identity and keys: created once by `fieldapp init`, never by a request."""

from __future__ import annotations

import secrets
import sqlite3
import uuid
from pathlib import Path

from cryptography.fernet import Fernet
from flask import Flask


def ensure_keys(app: Flask) -> None:
    """Write instance/config.py with a secret key and an ID-encryption key if it has none."""
    path = Path(app.instance_path) / "config.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    added = []
    if "SECRET_KEY" not in text:
        added.append(f"SECRET_KEY = {secrets.token_urlsafe(48)!r}\n")
    if "ID_KEY" not in text:
        added.append(f"ID_KEY = {Fernet.generate_key().decode()!r}\n")
    if added:
        with path.open("a", encoding="utf-8") as f:
            f.writelines(added)
        path.chmod(0o600)
        app.config.from_pyfile(str(path))


def ensure_identity(conn: sqlite3.Connection) -> str:
    """Give the database a stable instance id (origin of the records made here)."""
    row = conn.execute("SELECT value FROM settings WHERE name = 'instance_id'").fetchone()
    if row:
        return row[0]
    instance_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO settings (name, value) VALUES ('instance_id', ?) ON CONFLICT DO NOTHING",
        (instance_id,),
    )
    return conn.execute("SELECT value FROM settings WHERE name = 'instance_id'").fetchone()[0]


def instance_id(conn: sqlite3.Connection) -> str:
    """The instance id recorded by `fieldapp init`."""
    row = conn.execute("SELECT value FROM settings WHERE name = 'instance_id'").fetchone()
    if row is None:
        raise RuntimeError("database not initialised: run `fieldapp init`")
    return row[0]
