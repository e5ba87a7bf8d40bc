"""Console accounts: roles, argon2 passwords, login throttling, the current user, their scopes
and the audit lines of what they do (audit_action).

Other areas protect their console pages with ``require_role`` and narrow their queries with
``scope_site_ids``; both are a stable contract.
"""

from __future__ import annotations

import functools
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import abort, current_app, g, make_response, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import sync
from fieldapp import audit
from fieldapp.db import get_db, in_list, transaction
from fieldapp.gate import sites as site_lookup
from fieldapp.pages import is_htmx
from sync.store import iso

ROLES = {
    "admin": _l("Administrator"),
    "coordinator": _l("Coordinator"),
    "viewer": _l("Viewer (read only)"),
}
# Roles that may see full phone and ID numbers (deliberately, audited) and write records.
WRITE_ROLES = ("admin", "coordinator")
MIN_PASSWORD = 8
# Failed logins within WINDOW: this many per account, or per address, and logins are refused.
WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
IP_LIMIT = 20

_hasher = PasswordHasher()
# A hash to verify against when the account does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AccountError(ValueError):
    """A user name, role, scope or password is not acceptable; the message says why (worded
    for `fieldapp user`), and on_form as the console's account form words it, where they differ
    (the command's --sites and --districts are the form's sites and districts)."""

    def __init__(self, message: str, on_form: str = "") -> None:
        super().__init__(message)
        self.on_form = on_form or message


# What a user name may hold besides letters and digits (of any script): nothing that breaks
# the path of its console pages ("/") or reads as an option of `fieldapp user` (a "-" first).
NAME_MARKS = "._-@"


def _check_name(name: str) -> None:
    if (
        not name
        or len(name) > 40
        or name.startswith("-")
        or not all(c.isalnum() or c in NAME_MARKS for c in name)
    ):
        raise AccountError(
            _("A user name is 1 to 40 letters, digits or . _ - @, and does not start with -.")
        )


class TooManyFailures(Exception):
    """Logins for this account or address are refused for now."""


@dataclass(frozen=True)
class User:
    """A signed-in console user."""

    id: int
    name: str
    role: str
    sites: tuple[str, ...] = field(default=())  # site ids
    districts: tuple[str, ...] = field(default=())

    @property
    def can_write(self) -> bool:
        """May correct entries, act on fever cases and unmask personal data."""
        return self.role in WRITE_ROLES

    @property
    def is_admin(self) -> bool:
        """Sees everything, the audit log included."""
        return self.role == "admin"


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(_("The password must have at least %(n)d characters.", n=MIN_PASSWORD))


def _load(conn: sqlite3.Connection, row: sqlite3.Row) -> User:
    scopes = conn.execute(
        "SELECT kind, value FROM user_scopes WHERE user_id = ? ORDER BY value", (row["id"],)
    ).fetchall()
    return User(
        row["id"],
        row["name"],
        row["role"],
        tuple(s["value"] for s in scopes if s["kind"] == "site"),
        tuple(s["value"] for s in scopes if s["kind"] == "district"),
    )


def active_users(conn: sqlite3.Connection) -> list[User]:
    """Every active console account, by name."""
    names = conn.execute("SELECT name FROM users WHERE active = 1 ORDER BY name").fetchall()
    return [user for row in names if (user := get_user(conn, row["name"])) is not None]


def listing(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every account's name and whether it is active, active ones first, by name."""
    return conn.execute("SELECT name, active FROM users ORDER BY active DESC, name").fetchall()


def get_user(conn: sqlite3.Connection, name: str) -> User | None:
    """The active user of that name (case-insensitive), or None."""
    row = conn.execute("SELECT * FROM users WHERE name = ? AND active = 1", (name,)).fetchone()
    return _load(conn, row) if row else None


def create_user(
    conn: sqlite3.Connection,
    name: str,
    role: str,
    password: str,
    sites: list[str] | None = None,
    districts: list[str] | None = None,
    actor: str = "cli",
    form: str = "",
) -> User:
    """Add an account; sites are given by their code, districts by name. One transaction.

    form: the uuid of the console's form (canonical), kept in the audit line: the same form
    sent again (a double click, a retry after a lost answer) finds the account it made and
    makes nothing, where another naming the same user is refused."""
    name = (name or "").strip()
    _check_name(name)
    if role not in ROLES:
        raise AccountError(_("The role must be one of %(roles)s.", roles=", ".join(ROLES)))
    _check_password(password)
    sites = [s.strip() for s in sites or [] if s.strip()]
    districts = [d.strip() for d in districts or [] if d.strip()]
    if role == "coordinator" and not sites and not districts:
        raise AccountError(
            _("A coordinator needs --sites or --districts."),
            _("A coordinator needs sites or districts: choose a site or enter a district."),
        )
    if role == "admin" and (sites or districts):
        raise AccountError(
            _("An administrator sees every site; give no --sites or --districts."),
            _("An administrator sees every site: choose no sites and enter no districts."),
        )
    site_ids = [site_lookup.find(conn, code)["id"] for code in sites]
    for district in districts:
        if conn.execute("SELECT 1 FROM sites WHERE district = ?", (district,)).fetchone() is None:
            raise AccountError(_("No site is in the district %(name)s.", name=district))
    now = iso(sync.utcnow())
    with transaction(conn):
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            if form and audit.form_done(conn, "user_add", name, form):
                return get_user(conn, name)  # type: ignore[return-value]
            raise AccountError(_("The user %(name)s already exists.", name=name))
        user_id = conn.execute(
            "INSERT INTO users (name, role, password_hash, created_at, password_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            (name, role, hash_password(password), now, now),
        ).fetchone()[0]
        conn.executemany(
            "INSERT INTO user_scopes (user_id, kind, value) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(user_id, "site", s) for s in site_ids]
            + [(user_id, "district", d) for d in districts],
        )
        detail = f"role={role} sites={','.join(sites)} districts={','.join(districts)}"
        audit.write(conn, actor, "user_add", name, detail, form=form)
    return get_user(conn, name)  # type: ignore[return-value]


def set_password(conn: sqlite3.Connection, name: str, password: str, actor: str = "cli") -> None:
    """Change a password; sessions made with the old one stop working."""
    _check_password(password)
    with transaction(conn):
        cur = conn.execute(
            "UPDATE users SET password_hash = ?, password_at = ? WHERE name = ?",
            (hash_password(password), iso(sync.utcnow()), name),
        )
        if cur.rowcount == 0:
            raise AccountError(_("There is no user %(name)s.", name=name))
        audit.write(conn, actor, "user_passwd", name)


def disable_user(conn: sqlite3.Connection, name: str, actor: str = "cli") -> None:
    """Disable an account: it can no longer sign in and its sessions end. Kept for the audit."""
    with transaction(conn):
        cur = conn.execute("UPDATE users SET active = 0 WHERE name = ? AND active = 1", (name,))
        if cur.rowcount == 0:
            raise AccountError(_("There is no user %(name)s.", name=name))
        audit.write(conn, actor, "user_disable", name)


def _failures(conn: sqlite3.Connection, column: str, value: str, since: str) -> int:
    sql = f"SELECT count(*) FROM login_failures WHERE {column} = ? AND at >= ?"  # noqa: S608 -- account or ip
    return conn.execute(sql, (value, since)).fetchone()[0]


def authenticate(conn: sqlite3.Connection, name: str, password: str, ip: str) -> User | None:
    """Check a login; None when wrong. Raises TooManyFailures while throttled.

    Failures are counted per account and per address in the database, so the limit holds
    across processes and restarts; a throttled attempt is refused even with the right password.
    """
    name = (name or "").strip()[:40]
    now = sync.utcnow()
    since = iso(now - WINDOW)
    if (
        _failures(conn, "account", name, since) >= ACCOUNT_LIMIT
        or _failures(conn, "ip", ip, since) >= IP_LIMIT
    ):
        with transaction(conn):
            audit.write(conn, name or "?", "login_failed", name, "throttled", ip)
        raise TooManyFailures
    row = conn.execute("SELECT * FROM users WHERE name = ? AND active = 1", (name,)).fetchone()
    try:
        ok = _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password) and bool(row)
    except (VerificationError, InvalidHashError):
        ok = False
    with transaction(conn):
        if not ok:
            conn.execute(
                "INSERT INTO login_failures (account, ip, at) VALUES (?, ?, ?)",
                (name, ip, iso(now)),
            )
            # Only the window counts; older failures would just grow the table.
            conn.execute("DELETE FROM login_failures WHERE at < ?", (iso(now - 4 * WINDOW),))
            audit.write(conn, name or "?", "login_failed", name, "", ip)
            return None
        conn.execute("DELETE FROM login_failures WHERE account = ?", (name,))
        if _hasher.check_needs_rehash(row["password_hash"]):
            conn.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?",
                (hash_password(password), row["id"]),
            )
        audit.write(conn, row["name"], "login", row["name"], "", ip)
    return _load(conn, row)


def client_ip() -> str:
    """The address a request came from; behind TRUSTED_PROXIES proxies, the one they saw.

    Without the setting X-Forwarded-For is ignored (anyone can send it); behind a proxy every
    request would otherwise share the proxy's address, and 20 failures would lock out all.
    """
    hops = int(current_app.config.get("TRUSTED_PROXIES") or 0)
    if hops > 0:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")
        forwarded = [a.strip() for a in forwarded if a.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return request.remote_addr or ""


def audit_action(action: str, target: str = "", detail: str = "") -> None:
    """Write what the signed-in user just did, from their address, to the audit log, in a
    transaction of its own (a look at personal data, an export, a sign-out)."""
    conn = get_db()
    with transaction(conn):
        audit.write(conn, current_user().name, action, target, detail, client_ip())


def login_user(user: User) -> None:
    """Start a fresh session for the user (a new session, so a planted one is not reused).

    The session's id is kept in the signed cookie and in console_sessions: signing out
    deletes the row, which ends every copy of the cookie. Sessions older than the session
    lifetime (the cookie's own limit) are purged here, as login failures are in authenticate.
    """
    conn = get_db()
    now = sync.utcnow()
    session_id = secrets.token_urlsafe(32)
    with transaction(conn):
        if "session_id" in session:  # signing in over a session ends it
            conn.execute("DELETE FROM console_sessions WHERE id = ?", (session["session_id"],))
        conn.execute(
            "DELETE FROM console_sessions WHERE started_at < ?",
            (iso(now - current_app.permanent_session_lifetime),),
        )
        conn.execute(
            "INSERT INTO console_sessions (id, user_id, started_at) VALUES (?, ?, ?)",
            (session_id, user.id, iso(now)),
        )
        row = conn.execute("SELECT password_at FROM users WHERE id = ?", (user.id,)).fetchone()
    session.clear()
    session["user_id"] = user.id
    session["session_id"] = session_id
    session["password_at"] = row["password_at"]


def logout_user() -> None:
    """End the session for good: its row goes, so no copy of the cookie signs in again."""
    session_id = session.get("session_id")
    if session_id is not None:
        conn = get_db()
        with transaction(conn):
            conn.execute("DELETE FROM console_sessions WHERE id = ?", (session_id,))
    session.clear()
    g.pop("console_user", None)


def current_user() -> User | None:
    """The signed-in user of this request, or None: the session must still be open (not signed
    out, not older than the session lifetime) and made with the current password."""
    if "console_user" in g:
        return g.console_user
    user = None
    user_id = session.get("user_id")
    session_id = session.get("session_id")
    if user_id is not None and session_id is not None:
        since = iso(sync.utcnow() - current_app.permanent_session_lifetime)
        row = (
            get_db()
            .execute(
                "SELECT users.* FROM console_sessions JOIN users ON users.id = user_id"
                " WHERE console_sessions.id = ? AND user_id = ? AND started_at >= ?"
                " AND active = 1",
                (session_id, user_id, since),
            )
            .fetchone()
        )
        if row is not None and row["password_at"] == session.get("password_at"):
            user = _load(get_db(), row)
    g.console_user = user
    return user


def require_role(*roles: str) -> Callable:
    """Decorate a view: anonymous users go to the login page, other roles get 403.

    Usage: ``@require_role("admin", "coordinator")``; with no roles, any signed-in user.
    The user is then available as ``current_user()``.
    """
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any):
            user = current_user()
            if user is None:
                target = url_for("console_auth.login", next=request.full_path.rstrip("?"))
                if is_htmx():
                    # A poll after the session ended: have htmx load the login page whole,
                    # not swap it into the dashboard.
                    response = make_response("", 200)
                    response.headers["HX-Redirect"] = target
                    response.vary.add("HX-Request")
                    return response
                return redirect(target)
            if roles and user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def scope_site_ids(user: User, conn: sqlite3.Connection | None = None) -> list[str] | None:
    """The site ids a user may see: None means every site (admins, unscoped viewers).

    A coordinator sees the sites assigned to them plus every site of their districts; a viewer
    with no assignment sees every site (always masked). An empty list means no site at all.
    Use it as: ``ids = scope_site_ids(user); if ids is not None: sql += " AND site_id IN (...)"``.
    """
    if user.role == "admin" or (user.role == "viewer" and not user.sites and not user.districts):
        return None
    conn = conn or get_db()
    ids = set(user.sites)
    if user.districts:
        ids.update(
            r[0]
            for r in conn.execute(
                f"SELECT id FROM sites WHERE {in_list('district', user.districts)}",  # noqa: S608 -- only marks
                user.districts,
            )
        )
    return sorted(ids)


def in_scope(user: User, site_id: str) -> bool:
    """Whether the user may see that site."""
    ids = scope_site_ids(user)
    return ids is None or site_id in ids


# --- command line --------------------------------------------------------------------------
