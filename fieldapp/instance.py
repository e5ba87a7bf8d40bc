"""This instance's identity and keys: created once by `fieldapp init`, never by a request."""

from __future__ import annotations

import os
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
        write_config(path, text + "".join(added))
        app.config.from_pyfile(str(path))


def write_config(path: Path, text: str) -> None:
    """Write instance/config.py, which holds the instance's keys: whole, beside itself, then in
    the old one's place, readable by its owner only. A write that fails (a full disk) leaves
    the old file as it was; OSError."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


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
