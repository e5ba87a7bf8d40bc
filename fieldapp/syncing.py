"""App-side glue of the sync protocol: upstream settings, a sync round, status, config pull.

The protocol itself is in sync/ (no Flask); this module binds it to the app's database,
record kinds, settings and languages, and holds the `instance`, `upstream` and `sync` commands.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask, current_app, request
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _

import sync
from sync import client as sync_client
from sync import config as sync_config
from sync import peers, server

from . import background, db, devices, i18n, records

log = logging.getLogger(__name__)

# Configuration that flows down: these tables are owned by the upstream and versioned there.
CONFIG_TABLES = ("sites", "roster")
MAX_BACKOFF = 300.0  # never wait longer than this after failures


# --- upstream settings -------------------------------------------------------------------


def upstream(config: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(URL, token) of this instance's upstream, from settings (env wins over instance config)."""
    return config.get("UPSTREAM_URL") or None, config.get("UPSTREAM_TOKEN") or None


def is_downstream(app_or_config: Flask | Mapping[str, Any]) -> bool:
    """True when this instance has an upstream: its configuration is then owned upstream.

    Sites and roster commands call this and refuse to edit configuration locally.
    """
    config = app_or_config.config if isinstance(app_or_config, Flask) else app_or_config
    return upstream(config)[0] is not None


def check_upstream(url: str, token: str) -> str | None:
    """What is wrong with an upstream URL and token, in the user's language, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _("The upstream URL must start with http:// or https:// and name a host.")
    if parts.query or parts.fragment:
        return _("The upstream URL must not have a query or a fragment.")
    if not token or len(token) > 200 or not re.fullmatch(r"[A-Za-z0-9_\-]+", token):
        return _("The token is not one `fieldapp instance add` prints.")
    return None


def set_upstream(app: Flask, url: str, token: str) -> None:
    """Write UPSTREAM_URL and UPSTREAM_TOKEN into instance/config.py (kept out of the database)."""
    path = Path(app.instance_path) / "config.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    kept = [ln for ln in lines if not re.match(r"\s*UPSTREAM_(URL|TOKEN)\s*=", ln)]
    kept += [f"UPSTREAM_URL = {url.rstrip('/')!r}\n", f"UPSTREAM_TOKEN = {token!r}\n"]
    path.write_text("".join(kept), encoding="utf-8")
    path.chmod(0o600)
    app.config.update(UPSTREAM_URL=url.rstrip("/"), UPSTREAM_TOKEN=token)


def _state_for(conn: sqlite3.Connection, url: str) -> dict[str, Any]:
    """The upstream state row, started afresh when the upstream URL changed."""
    state = sync_client.upstream_state(conn)
    if state.get("url") != url:
        conn.execute(
            "UPDATE sync_upstream SET url = ?, source = NULL, cursor = 0, config_version = 0,"
            " last_error = NULL WHERE id = 1",
            (url,),
        )
        state = sync_client.upstream_state(conn)
    return state


# --- the upstream side: who is asking, and what a push does ------------------------------


def authenticate_request(conn: sqlite3.Connection) -> peers.Peer | None:
    """The peer behind this request: a Bearer token, else a phone's enrolment cookie."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return peers.authenticate(conn, token.strip())
    return devices.peer_from_cookie(conn)


def receive_push(conn: sqlite3.Connection, peer: peers.Peer, body: Any) -> dict[str, Any]:
    """Check and store one push from peer; the JSON answer. Raises sync.BatchError."""
    push = server.parse_push(body, peer, max_records=int(current_app.config["SYNC_BATCH_SIZE"]))
    save = functools.partial(records.save, conn)
    results, cursor = server.receive(peer, push, save)
    return {"results": [r.as_dict() for r in results], "cursor": cursor}


def batch_error_message(exc: sync.BatchError) -> str:
    """A batch error in the user's language."""
    messages: dict[str, Callable[[], str]] = {
        "not_object": lambda: _("The body must be a JSON object."),
        "bad_source": lambda: _("“source” must be the id of the sender."),
        "wrong_source": lambda: _("“source” is not the instance or phone this token belongs to."),
        "bad_records": lambda: _("“records” must be a list."),
        "too_many": lambda: _(
            "Too many records in one batch: %(n)d, at most %(max)d.",
            n=exc.params.get("n", 0),
            max=exc.params.get("max", 0),
        ),
        "bad_seq": lambda: _(
            "“%(field)s” must be a whole number from the sender's change log.",
            field=exc.params.get("field", "seq"),
        ),
    }
    return messages.get(exc.code, lambda: str(exc))()


def export_config(conn: sqlite3.Connection, since: int) -> dict[str, Any]:
    """Sites, roster rows and settings changed after version `since`, with the current version.

    A downstream ahead of us (we were restored from an older copy) gets everything again.
    """
    version = sync_config.current_version(conn)
    full = since > version
    if full:
        since = 0
    out: dict[str, Any] = {"version": version, "full": full}
    for table in CONFIG_TABLES:
        cur = conn.execute(
            f"SELECT * FROM {table} WHERE version > ? ORDER BY version",  # noqa: S608 -- table from code
            (since,),
        )
        names = [d[0] for d in cur.description]
        out[table] = [
            {k: v for k, v in zip(names, row, strict=True) if k != "version"} for row in cur
        ]
    for site in out["sites"]:
        site["old_codes"] = [
            {"code": r[0], "retired_at": r[1]}
            for r in conn.execute(
                "SELECT code, retired_at FROM site_old_codes WHERE site_id = ?", (site["id"],)
            )
        ]
    out["settings"] = {"retention_days": records.retention_days(conn)}
    return out


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _upsert(conn: sqlite3.Connection, table: str, row: Mapping[str, Any], version: int) -> None:
    """Insert or replace one configuration row by id, stamped with our own version.

    Only columns this database has are written (names come from PRAGMA, never from the wire).
    """
    cols = [c for c in _columns(conn, table) if c in row and c != "version"]
    if "id" not in cols:
        raise sync.SyncError(f"{table}: a row without id")
    cols.append("version")
    values = [row[c] for c in cols[:-1]] + [version]
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id")
    conn.execute(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"  # noqa: S608 -- names from PRAGMA
        f" ON CONFLICT (id) DO UPDATE SET {updates}",
        values,
    )


def apply_config(conn: sqlite3.Connection, payload: Any) -> dict[str, int]:
    """Apply a pull answer in one transaction; remember its version. Counts of rows changed."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("version"), int):
        raise sync.SyncError("the upstream's pull answer is malformed")
    rows = {t: payload.get(t) or [] for t in CONFIG_TABLES}
    if not all(
        isinstance(v, list) and all(isinstance(r, Mapping) for r in v) for v in rows.values()
    ):
        raise sync.SyncError("the upstream's pull answer is malformed")
    settings = payload.get("settings") or {}
    counts = {t: len(v) for t, v in rows.items()}
    try:
        with db.transaction(conn):
            # Our own version number, so downstreams of ours pull what we took (chains).
            version = sync_config.next_version(conn) if any(counts.values()) else 0
            now = sync.store.iso(sync.utcnow())
            for site in rows["sites"]:
                old = conn.execute(
                    "SELECT code FROM sites WHERE id = ?", (site.get("id"),)
                ).fetchone()
                if old is not None and old[0] != site.get("code"):
                    conn.execute(
                        "INSERT OR IGNORE INTO site_old_codes (code, site_id, retired_at)"
                        " VALUES (?, ?, ?)",
                        (old[0], site["id"], now),
                    )
                _upsert(conn, "sites", site, version)
                for oc in site.get("old_codes") or []:
                    if isinstance(oc, Mapping) and isinstance(oc.get("code"), str):
                        conn.execute(
                            "INSERT OR IGNORE INTO site_old_codes (code, site_id, retired_at)"
                            " VALUES (?, ?, ?)",
                            (oc["code"], site["id"], str(oc.get("retired_at") or now)),
                        )
            for person in rows["roster"]:
                _upsert(conn, "roster", person, version)
            days = settings.get("retention_days") if isinstance(settings, Mapping) else None
            if isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= 3650:
                conn.execute(
                    "INSERT INTO settings (name, value) VALUES ('retention_days', ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (str(days),),
                )
            sync_client.remember(conn, config_version=payload["version"])
    except (sqlite3.IntegrityError, KeyError, TypeError) as exc:
        raise sync.SyncError(f"the upstream's configuration could not be applied: {exc}") from None
    return counts


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
        raise sync.SyncError("no upstream is set: fieldapp upstream set URL TOKEN")
    transport = sync.HttpTransport(url, token)
    conn = db.connect(app.config["DATABASE"])
    try:
        state = _state_for(conn, url)
        try:
            report = sync.push_pending(
                conn,
                app.extensions["fieldapp.records"],
                transport,
                batch_size=int(app.config["SYNC_BATCH_SIZE"]),
                max_bytes=int(app.config["SYNC_MAX_BATCH_BYTES"]),
                on_start=on_start,
                on_batch=on_batch,
            )
            sync_client.remember(conn, source=report.source)
            registry = app.extensions["fieldapp.records"]
            delivered, still_held = sync_client.retry_held(conn, registry, transport, report.source)
            pulled = apply_config(conn, transport.pull(int(state["config_version"])))
        except sync.SyncError as exc:
            sync_client.mark_attempt(conn, str(exc))
            raise
        sync_client.mark_attempt(conn, None)
        return {
            "pushed": report.sent + delivered,
            "applied": report.applied,
            "cursor": report.cursor,
            "reset": report.reset,
            "pulled": pulled,
            "held": still_held,
        }
    finally:
        conn.close()


def status(conn: sqlite3.Connection) -> dict[str, Any]:
    """Sync status for the console and `fieldapp sync --status`. A stable shape:

    {"downstream": [{"id", "kind" ('instance'|'device'), "name", "site_id", "last_push_at",
                     "records_in", "cursor" (instances; else None), "revoked" (bool)}],
     "upstream": None | {"url", "cursor", "waiting", "config_version", "last_success_at",
                         "last_attempt_at", "last_error"}}
    Times are UTC ISO 8601 strings or None.
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
            "last_error": state.get("last_error"),
        }
    return {"downstream": downstream, "upstream": up}


# --- background: `fieldapp serve` keeps syncing when an upstream is set ------------------


def _background_job(app: Flask) -> None:
    """One round if an upstream is set and the backoff allows it."""
    if not is_downstream(app):
        return
    state = app.extensions.setdefault("fieldapp.sync.backoff", {"failures": 0, "next": 0.0})
    if time.monotonic() < state["next"]:
        return
    try:
        sync_round(app)
    except sync.SyncError as exc:
        state["failures"] += 1
        state["next"] = time.monotonic() + backoff(state["failures"], _interval(app))
        log.warning("sync failed (%d in a row): %s", state["failures"], exc)
        return
    state["failures"], state["next"] = 0, 0.0


def backoff(failures: int, interval: float = 10.0) -> float:
    """Seconds to wait after that many failed rounds in a row: doubling, capped."""
    return min(MAX_BACKOFF, interval * 2 ** min(failures, 10))


def _interval(app: Flask) -> float:
    return max(1.0, float(app.config.get("SYNC_INTERVAL") or 10))


def init_app(app: Flask) -> None:
    """Ask `fieldapp serve` to keep syncing in the background (a no-op without an upstream)."""
    background.register(app, "sync", _background_job, _interval(app))


# --- commands ----------------------------------------------------------------------------


def _localised(f: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command in the user's language (from FIELDAPP_LANG / LANG)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with force_locale(i18n.cli_locale()):
            return f(*args, **kwargs)

    return wrapper


def _open() -> sqlite3.Connection:
    return db.connect(current_app.config["DATABASE"])


@click.group("instance")
def instance_group() -> None:
    """Downstream instances allowed to push here."""


@instance_group.command("add")
@click.argument("name")
@with_appcontext
@_localised
def instance_add(name: str) -> None:
    """Allow a downstream instance NAME to push here; print its token once."""
    name = name.strip()
    if not name or len(name) > 80:
        raise click.UsageError(_("The name must be 1 to 80 characters."))
    conn = _open()
    try:
        with db.transaction(conn):
            peer, token = peers.create(conn, "instance", name)
    except sqlite3.IntegrityError:
        raise click.ClickException(
            _("An instance named “%(name)s” exists already.", name=name)
        ) from None
    finally:
        conn.close()
    click.echo(_("Instance “%(name)s” added (id %(id)s).", name=name, id=peer.id))
    click.echo(_("Its token, shown only this once:"))
    click.echo(token)
    click.echo(_("On that instance run: fieldapp upstream set %(url)s TOKEN", url=_base_url()))


def _base_url() -> str:
    return str(current_app.config.get("BASE_URL") or "http://127.0.0.1:5000")


@instance_group.command("revoke")
@click.argument("name")
@with_appcontext
@_localised
def instance_revoke(name: str) -> None:
    """Revoke instance NAME's token: its pushes are refused from now on."""
    conn = _open()
    try:
        with db.transaction(conn):
            n = peers.revoke(conn, "instance", name)
    finally:
        conn.close()
    if not n:
        raise click.ClickException(_("No live instance named “%(name)s”.", name=name))
    click.echo(_("Instance “%(name)s” revoked.", name=name))


@instance_group.command("list")
@with_appcontext
@_localised
def instance_list() -> None:
    """List downstream instances: last push and records received."""
    conn = _open()
    try:
        rows = peers.listing(conn, "instance")
    finally:
        conn.close()
    if not rows:
        click.echo(_("No downstream instances yet: fieldapp instance add NAME"))
    for row in rows:
        state = _("revoked") if row["revoked_at"] else _("active")
        click.echo(
            f"{row['name']}\t{row['id']}\t{state}\t"
            + _("last push: %(when)s", when=row["last_push_at"] or _("never"))
            + "\t"
            + _("records received: %(n)d", n=row["records_in"])
        )


@click.group("upstream")
def upstream_group() -> None:
    """The instance this one pushes to."""


@upstream_group.command("set")
@click.argument("url")
@click.argument("token")
@with_appcontext
@_localised
def upstream_set(url: str, token: str) -> None:
    """Push to the instance at URL with the TOKEN it issued (fieldapp instance add there)."""
    problem = check_upstream(url, token)
    if problem:
        raise click.UsageError(problem)
    set_upstream(current_app._get_current_object(), url, token)
    click.echo(_("Upstream set to %(url)s. Run fieldapp sync to push and pull now.", url=url))


def _print_status(conn: sqlite3.Connection) -> None:
    info = status(conn)
    up = info["upstream"]
    if up is None:
        click.echo(_("Upstream: none (this instance is a central)."))
    else:
        click.echo(_("Upstream: %(url)s", url=up["url"]))
        click.echo("  " + _("records waiting to go: %(n)d", n=up["waiting"]))
        if up["held"]:
            click.echo(
                "  "
                + _(
                    "records held back: %(n)d (the upstream could not store them; they are"
                    " tried again every round):",
                    n=len(up["held"]),
                )
            )
            for row in up["held"]:
                click.echo(f"    {row['kind']} {row['uuid']}: {row['reason']}")
        click.echo("  " + _("last success: %(when)s", when=up["last_success_at"] or _("never")))
        if up["last_error"]:
            click.echo("  " + _("last error: %(error)s", error=up["last_error"]))
    shown = [p for p in info["downstream"] if not p["revoked"]]
    if not shown:
        click.echo(_("Downstream: none."))
    for p in shown:
        kind = _("instance") if p["kind"] == "instance" else _("phone")
        click.echo(
            f"{kind} {p['name']}: "
            + _("last push: %(when)s", when=p["last_push_at"] or _("never"))
            + ", "
            + _("records received: %(n)d", n=p["records_in"])
        )


@click.command("sync")
@click.option("--watch", is_flag=True, help="Keep syncing, backing off after failures.")
@click.option("--status", "show_status", is_flag=True, help="Show where sync stands and exit.")
@with_appcontext
@_localised
def sync_command(watch: bool, show_status: bool) -> None:
    """Push every record the upstream lacks, then pull configuration."""
    app = current_app._get_current_object()
    if show_status:
        conn = _open()
        try:
            _print_status(conn)
        finally:
            conn.close()
        return
    if not is_downstream(app):
        raise click.ClickException(_("No upstream is set. Run: fieldapp upstream set URL TOKEN"))
    failures = 0
    while True:
        try:
            done = _one_round(app)
        except sync.SyncError as exc:
            if not watch:
                raise click.ClickException(_("Sync failed: %(error)s", error=str(exc))) from None
            failures += 1
            wait = backoff(failures, _interval(app))
            click.echo(
                _("Sync failed: %(error)s. Next try in %(s)d s.", error=str(exc), s=int(wait)),
                err=True,
            )
        else:
            failures = 0
            wait = _interval(app)
            click.echo(
                _(
                    "Pushed %(sent)d records (%(new)d new upstream); pulled %(sites)d sites and"
                    " %(roster)d roster rows.",
                    sent=done["pushed"],
                    new=done["applied"],
                    sites=done["pulled"]["sites"],
                    roster=done["pulled"]["roster"],
                )
            )
            if done["held"]:
                click.echo(
                    _(
                        "%(n)d records are held back: the upstream could not store them. They"
                        " are tried again every round; fieldapp sync --status lists them.",
                        n=done["held"],
                    ),
                    err=True,
                )
        if not watch:
            return
        time.sleep(wait)


def _one_round(app: Flask) -> dict[str, Any]:
    """A round with a progress bar on a terminal."""
    from tqdm import tqdm

    bar: list[Any] = []

    def start(total: int) -> None:
        if total:
            bar.append(tqdm(total=total, unit=" records", disable=None, leave=False))

    def step(n: int) -> None:
        if bar:
            bar[0].update(n)

    try:
        return sync_round(app, on_start=start, on_batch=step)
    finally:
        if bar:
            bar[0].close()


commands = [instance_group, upstream_group, sync_command]
