"""App-side glue of the sync protocol: upstream settings, a sync round, status, config pull.

The protocol itself is in sync/ (no Flask); this module binds it to the app's database,
record kinds, settings and languages, and holds the `instance`, `upstream` and `sync` commands.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from flask_babel import gettext as _

import sync
from fieldapp import db, instance
from fieldapp.i18n import cli_locale
from fieldapp.settings import is_downstream
from fieldapp.syncing import configuration
from sync import client as sync_client

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0  # never wait longer than this after failures


# --- upstream settings -------------------------------------------------------------------


def upstream(config: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(URL, token) of this instance's upstream, from settings (env wins over instance config)."""
    return config.get("UPSTREAM_URL") or None, config.get("UPSTREAM_TOKEN") or None


def check_upstream(url: str, token: str) -> str | None:
    """What is wrong with an upstream URL and token, in the user's language, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- a port that is not a number raises here, not at the first sync
    except ValueError:  # http://[::1 (an address left open), http://host:port
        return _("The upstream URL must start with http:// or https:// and name a host.")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _("The upstream URL must start with http:// or https:// and name a host.")
    if parts.query or parts.fragment:
        return _("The upstream URL must not have a query or a fragment.")
    if not token or len(token) > 200 or not re.fullmatch(r"[A-Za-z0-9_\-]+", token):
        return _("The token is not one `fieldapp instance add` prints.")
    return None


def set_upstream(app: Flask, url: str, token: str) -> None:
    """Write UPSTREAM_URL and UPSTREAM_TOKEN into instance/config.py (kept out of the database).

    The file holds the instance's keys too: a write that fails (a full disk) leaves it as it
    was (instance.write_config); OSError."""
    path = Path(app.instance_path) / "config.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    kept = [ln for ln in lines if not re.match(r"\s*UPSTREAM_(URL|TOKEN)\s*=", ln)]
    kept += [f"UPSTREAM_URL = {url.rstrip('/')!r}\n", f"UPSTREAM_TOKEN = {token!r}\n"]
    instance.write_config(path, "".join(kept))
    app.config.update(UPSTREAM_URL=url.rstrip("/"), UPSTREAM_TOKEN=token)


def _state_for(conn: sqlite3.Connection, url: str) -> dict[str, Any]:
    """The upstream state row, started afresh when the upstream URL changed."""
    state = sync_client.upstream_state(conn)
    if state.get("url") != url:
        conn.execute(
            "UPDATE sync_upstream SET url = ?, source = NULL, cursor = 0, config_version = 0,"
            " config_version_id = NULL, last_error = NULL, last_problem = NULL,"
            " retention_refused = NULL WHERE id = 1",
            (url,),
        )
        state = sync_client.upstream_state(conn)
    return state


# --- the downstream side: one round ------------------------------------------------------


def sync_round(
    app: Flask,
    *,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Push everything the upstream lacks, then pull configuration; raise sync.SyncError."""
    url, token = upstream(app.config)
    if not url or not token:
        raise sync.SyncError(_("No upstream is set. Run: fieldapp upstream set URL TOKEN"))
    # The upstream's own messages (a revoked token…) in the language of whoever reads them here.
    transport = sync.HttpTransport(url, token, language=cli_locale().replace("_", "-"))
    conn = db.connect(app.config["DATABASE"])
    try:
        _state_for(conn, url)  # started afresh if the upstream changed
        registry = app.extensions["fieldapp.records"]
        sizes = {
            "batch_size": int(app.config["SYNC_BATCH_SIZE"]),
            "max_bytes": int(app.config["SYNC_MAX_BATCH_BYTES"]),
        }
        try:
            report = sync.push_pending(
                conn, registry, transport, **sizes, on_start=on_start, on_batch=on_batch
            )
            sync_client.remember(conn, source=report.source)
            delivered, still_held = sync_client.retry_held(
                conn, registry, transport, report.source, **sizes
            )
            pushed = report.sent + delivered
            if delivered:  # logged again by retry_held: sent in order now, not next round
                again = sync.push_pending(conn, registry, transport, **sizes)
                # It sends the delivered records once more (repeats there, counted once above)
                # and whatever was recorded meanwhile.
                pushed += max(0, again.sent - delivered)
                report = dataclasses.replace(
                    report,
                    cursor=again.cursor,
                    applied=report.applied + again.applied,
                    refused=report.refused + again.refused,
                    reset=report.reset or again.reset,
                )
            pulled = configuration.pull(conn, transport)
        except sync.SyncError as exc:
            sync_client.mark_attempt(conn, describe(exc), exc)
            raise
        sync_client.mark_attempt(conn, None)
        return {
            "retention_notice": configuration.retention_notice(conn, app.config),
            "pushed": pushed,
            "applied": report.applied,
            "refused": report.refused,
            "cursor": report.cursor,
            "reset": report.reset,
            "pulled": pulled,
            "held": still_held,
        }
    finally:
        conn.close()


def describe(exc: sync.SyncError) -> str:
    """A failed round in the user's language. The upstream words its own refusals (it is asked
    for this language); what failed here, the link or an answer that is not one, is worded
    here from what sync/ tells of it (SyncError.problem)."""
    p = exc.params
    if exc.problem == "unreachable":
        why = {
            "refused": lambda: _("the connection was refused (is fieldapp running there?)"),
            "timeout": lambda: _("no answer in time (a slow or broken network)"),
            "name": lambda: _("the address cannot be found (check it, and the network)"),
            "tls": lambda: _("the secure connection failed (%(reason)s)", reason=p["reason"]),
            "network": lambda: _("no network here (no signal, or not connected)"),
            "cut": lambda: _("the connection was cut (a broken network)"),
        }.get(p["why"], lambda: p["reason"])()
        return _("cannot reach %(url)s: %(why)s", url=p["url"], why=why)
    if exc.problem == "not_ours":
        return _(
            "%(url)s answered, but not as a fieldapp instance does (check the address; or the"
            " network wants a sign-in page first)",
            url=p["url"],
        )
    if exc.problem == "too_large":
        return _(
            "%(url)s answered with more than %(mb)d MB, more than any answer of a fieldapp"
            " instance; it was not read (check the address; or the network wants a sign-in"
            " page first)",
            url=p["url"],
            mb=int(p["limit"]) // (1024 * 1024),
        )
    if exc.problem == "protocol":
        return _(
            "the upstream's answer does not follow the sync protocol (%(detail)s): do both run"
            " the same version of fieldapp?",
            detail=p["detail"],
        )
    if exc.problem == "config":
        return configuration.word(exc.params)
    if exc.code == "unauthorised":  # the upstream's words for it, in this reader's language
        return _("The token is missing, wrong or revoked.")
    return str(exc)


def last_error(state: Mapping[str, Any]) -> str | None:
    """The last round's error in the reader's language: worded now from what it was
    (sync_client.problem_of), else as it was worded then (a row from before, an upstream's own
    refusal)."""
    failure = sync_client.problem_of(state)
    if failure is None:
        return state.get("last_error")
    try:
        return describe(failure)
    except (KeyError, ValueError, TypeError):  # params of another version: the words of then
        return state.get("last_error")


# --- background: `fieldapp serve` keeps syncing when an upstream is set ------------------


def background_job(app: Flask) -> None:
    """One round if an upstream is set and the backoff allows it."""
    if not is_downstream(app.config):
        return
    state = app.extensions.setdefault("fieldapp.sync.backoff", {"failures": 0, "next": 0.0})
    if time.monotonic() < state["next"]:
        return
    try:
        sync_round(app)
    except sync.SyncError as exc:
        state["failures"] += 1
        state["next"] = time.monotonic() + backoff(state["failures"], interval(app))
        log.warning("sync failed (%d in a row): %s", state["failures"], exc)
        return
    state["failures"], state["next"] = 0, 0.0


def backoff(failures: int, interval: float = 10.0) -> float:
    """Seconds to wait after that many failed rounds in a row: doubling, capped."""
    return min(MAX_BACKOFF, interval * 2 ** min(failures, 10))


def interval(app: Flask) -> float:
    """Seconds between sync rounds (SYNC_INTERVAL, at least 1)."""
    return max(1.0, float(app.config.get("SYNC_INTERVAL") or 10))
