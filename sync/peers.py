"""Peers that push to this instance (downstream instances, enrolled phones) and their tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import uuid
from dataclasses import dataclass

from .store import iso, utcnow


@dataclass(frozen=True)
class Peer:
    """An authenticated sender."""

    id: str
    kind: str  # 'instance' or 'device'
    name: str
    site_id: str | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    conn: sqlite3.Connection, kind: str, name: str, site_id: str | None = None
) -> tuple[Peer, str]:
    """Add a peer; return it with its token, which is shown once and stored only hashed."""
    if kind not in ("instance", "device"):
        raise ValueError(f"unknown peer kind {kind!r}")
    token = secrets.token_urlsafe(32)
    while token.startswith("-"):  # it is pasted into shell commands, where it would be an option
        token = secrets.token_urlsafe(32)
    peer = Peer(str(uuid.uuid4()), kind, name, site_id)
    conn.execute(
        "INSERT INTO peers (id, kind, name, site_id, token_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (peer.id, kind, name, site_id, _digest(token), iso(utcnow())),
    )
    return peer, token


def authenticate(conn: sqlite3.Connection, token: str | None) -> Peer | None:
    """The live peer holding this token, or None."""
    if not token or len(token) > 200:
        return None
    digest = _digest(token)
    row = conn.execute(
        "SELECT id, kind, name, site_id, token_hash FROM peers"
        " WHERE token_hash = ? AND revoked_at IS NULL",
        (digest,),
    ).fetchone()
    # The lookup is by hash of a 256-bit secret; the compare below keeps it constant-time anyway.
    if row is None or not hmac.compare_digest(row[4], digest):
        return None
    return Peer(row[0], row[1], row[2], row[3])


def pushed(conn: sqlite3.Connection, peer_id: str, applied: int, when: str) -> None:
    """Count a push from a peer: when it was (last push and last seen) and how many of its
    records were applied. Call it in the transaction that stored them."""
    conn.execute(
        "UPDATE peers SET last_push_at = ?, last_seen_at = ?, records_in = records_in + ?"
        " WHERE id = ?",
        (when, when, applied, peer_id),
    )


def revoke(conn: sqlite3.Connection, kind: str, name_or_id: str) -> int:
    """Revoke the live peers of that kind with that name or id; return how many."""
    cur = conn.execute(
        "UPDATE peers SET revoked_at = ? WHERE kind = ? AND (name = ? OR id = ?)"
        " AND revoked_at IS NULL",
        (iso(utcnow()), kind, name_or_id, name_or_id),
    )
    return cur.rowcount


def listing(conn: sqlite3.Connection, kind: str | None = None) -> list[sqlite3.Row]:
    """Peers (of one kind, or all), newest first."""
    if kind is None:
        return conn.execute("SELECT * FROM peers ORDER BY created_at DESC").fetchall()
    return conn.execute(
        "SELECT * FROM peers WHERE kind = ? ORDER BY created_at DESC", (kind,)
    ).fetchall()
