"""Configuration versions: what flows down (sites, rosters, settings) is numbered by change, and
each number has a random id, so a number handed out again after a restore is told apart."""

from __future__ import annotations

import secrets
import sqlite3


def next_version(conn: sqlite3.Connection) -> int:
    """Take the next configuration version; call inside the transaction that makes the change."""
    conn.execute("UPDATE config_version SET version = version + 1 WHERE id = 1")
    version = conn.execute("SELECT version FROM config_version WHERE id = 1").fetchone()[0]
    conn.execute(
        "INSERT INTO config_version_ids (version, id) VALUES (?, ?)"
        " ON CONFLICT (version) DO UPDATE SET id = excluded.id",
        (version, secrets.token_hex(16)),
    )
    return version


def current_version(conn: sqlite3.Connection) -> int:
    """The latest configuration version here."""
    return conn.execute("SELECT version FROM config_version WHERE id = 1").fetchone()[0]


def version_id(conn: sqlite3.Connection, version: int) -> str | None:
    """The id of a configuration version here (None for one from before ids, or never here)."""
    row = conn.execute("SELECT id FROM config_version_ids WHERE version = ?", (version,)).fetchone()
    return row[0] if row else None
