"""Configuration versions: what flows down (sites, rosters, settings) is numbered by change."""

from __future__ import annotations

import sqlite3


def next_version(conn: sqlite3.Connection) -> int:
    """Take the next configuration version; call inside the transaction that makes the change."""
    conn.execute("UPDATE config_version SET version = version + 1 WHERE id = 1")
    return conn.execute("SELECT version FROM config_version WHERE id = 1").fetchone()[0]


def current_version(conn: sqlite3.Connection) -> int:
    """The latest configuration version here."""
    return conn.execute("SELECT version FROM config_version WHERE id = 1").fetchone()[0]
