"""Where sync stands, for the console and `fieldapp sync --status`."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import current_app

from fieldapp.syncing import configuration
from fieldapp.syncing.upstream import last_error, upstream
from sync import client as sync_client
from sync import peers


def status(conn: sqlite3.Connection) -> dict[str, Any]:
    """Sync status for the console and `fieldapp sync --status`. A stable shape:

    {"downstream": [{"id", "kind" ('instance'|'device'), "name", "site_id", "last_push_at",
                     "records_in", "cursor" (instances; else None), "revoked" (bool)}],
     "upstream": None | {"url", "cursor", "waiting", "config_version", "last_success_at",
                         "last_attempt_at", "last_error", "retention_notice"}}
    Times are UTC ISO 8601 strings or None; last_error and retention_notice are worded in the
    current language (None when there is none).
    """
    cursors = dict(conn.execute("SELECT source, seq FROM sync_cursors").fetchall())
    downstream = [
        {
            "id": p["id"],
            "kind": p["kind"],
            "name": p["name"],
            "site_id": p["site_id"],
            "last_push_at": p["last_push_at"],
            "records_in": p["records_in"],
            "cursor": cursors.get(p["id"]) if p["kind"] == "instance" else None,
            "revoked": p["revoked_at"] is not None,
        }
        for p in peers.listing(conn)
    ]
    url, _token = upstream(current_app.config)
    up = None
    if url:
        state = sync_client.upstream_state(conn)
        cursor = int(state["cursor"]) if state.get("url") == url else 0
        up = {
            "url": url,
            "cursor": cursor,
            "waiting": sync_client.waiting(conn, cursor),
            "held": sync_client.held(conn),
            "config_version": state.get("config_version") if state.get("url") == url else 0,
            "last_success_at": state.get("last_success_at"),
            "last_attempt_at": state.get("last_attempt_at"),
            "last_error": last_error(state),
            "retention_notice": configuration.retention_notice(conn, current_app.config),
        }
    return {"downstream": downstream, "upstream": up}
