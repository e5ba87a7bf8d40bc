"""Volunteers' phones: one-time enrolment links, the device cookie (and who may record at a gate),
listing and revoking."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, g, request
from flask_babel import gettext as _

import sync
from fieldapp import rules
from fieldapp.console.accounts import current_user, in_scope
from fieldapp.db import transaction
from fieldapp.gate import sites
from sync import peers
from sync.store import iso

COOKIE = "fieldapp_device"
# Browsers cap cookie lifetime at 400 days; the phone keeps its token until revoked.
COOKIE_MAX_AGE = 400 * 24 * 3600
ENROL_HOURS = 24


class EnrolError(ValueError):
    """An enrolment link that cannot be used; the message says why, in the user's language."""


@dataclass(frozen=True)
class Enrolment:
    """A link not yet redeemed, as shown on the confirmation page."""

    name: str
    site_id: str
    site_name: str
    site_code: str
    expires_at: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_enrolment(
    conn: sqlite3.Connection, site_code: str, name: str, hours: int = ENROL_HOURS
) -> tuple[str, str]:
    """Make a one-time enrolment token for a phone at a site; return (token, expires_at)."""
    clean = rules.clean_line(name or "")
    if clean is None:
        raise EnrolError(
            _("The phone's name must be one line, without tabs or invisible characters.")
        )
    name = clean
    if not name or len(name) > 50:
        raise EnrolError(_("The phone's name must be 1 to 50 characters."))
    if not 1 <= hours <= 24 * 30:
        raise EnrolError(_("An enrolment link is valid for 1 hour to 30 days."))
    status, site = sites.by_code(conn, site_code)
    if status == "old" and site is not None:  # as `site qr` says it
        raise EnrolError(
            _(
                "%(code)s is an old code of %(name)s; its code is now %(new)s.",
                code=site_code,
                name=site["name"],
                new=site["code"],
            )
        )
    if site is None or not site["active"]:
        raise EnrolError(_("There is no active site with the code %(code)s.", code=site_code))
    token = secrets.token_urlsafe(24)
    now = sync.utcnow()
    expires = iso(now + timedelta(hours=hours))
    with transaction(conn):
        conn.execute(
            "INSERT INTO device_enrolments (token_hash, site_id, name, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (_digest(token), site["id"], name, iso(now), expires),
        )
    return token, expires


def _usable(conn: sqlite3.Connection, token: str) -> sqlite3.Row:
    """The enrolment row for a token that may still be redeemed; EnrolError otherwise."""
    row = conn.execute(
        "SELECT e.token_hash, e.name, e.site_id, e.expires_at, e.used_at,"
        " s.name AS site_name, s.code AS site_code, s.active"
        " FROM device_enrolments e JOIN sites s ON s.id = e.site_id WHERE e.token_hash = ?",
        (_digest(token or ""),),
    ).fetchone()
    if row is None:
        raise EnrolError(_("This enrolment link is not valid. Ask your coordinator for a new one."))
    if row["used_at"] is not None:
        raise EnrolError(
            _("This enrolment link has already been used. Ask your coordinator for a new one.")
        )
    if row["expires_at"] < iso(sync.utcnow()):
        raise EnrolError(_("This enrolment link has expired. Ask your coordinator for a new one."))
    if not row["active"]:
        raise EnrolError(_("This site is no longer active."))
    return row


def pending(conn: sqlite3.Connection, token: str) -> Enrolment:
    """What a still-usable enrolment link would enrol; EnrolError if it cannot be used."""
    row = _usable(conn, token)
    return Enrolment(
        row["name"], row["site_id"], row["site_name"], row["site_code"], row["expires_at"]
    )


def redeem(
    conn: sqlite3.Connection, token: str, replacing: str | None = None
) -> tuple[peers.Peer, str, str]:
    """Use an enrolment link once: create the device peer; return (peer, device token, site code).
    replacing: the device this phone was enrolled as (its cookie came with the link), revoked
    in the same transaction: its token leaves the phone with the new cookie, and the console's
    list of phones would otherwise show it live, never pushing again."""
    with transaction(conn):
        row = _usable(conn, token)
        # The WHERE used_at IS NULL makes a second tab redeeming the same link lose cleanly.
        claimed = conn.execute(
            "UPDATE device_enrolments SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
            (iso(sync.utcnow()), row["token_hash"]),
        ).rowcount
        if claimed != 1:
            raise EnrolError(
                _("This enrolment link has already been used. Ask your coordinator for a new one.")
            )
        peer, device_token = peers.create(conn, "device", row["name"], row["site_id"])
        conn.execute(
            "UPDATE device_enrolments SET device_id = ? WHERE token_hash = ?",
            (peer.id, row["token_hash"]),
        )
        if replacing is not None:
            peers.revoke(conn, "device", replacing)
    return peer, device_token, row["site_code"]


def redeemed_here(conn: sqlite3.Connection, token: str) -> str | None:
    """The code of the open site a used link enrolled this very phone at (its live device
    cookie came with the request), or None: opening the link again is no reason to ask the
    coordinator for a new one."""
    phone = peer_from_cookie(conn)
    if phone is None:
        return None
    row = conn.execute(
        "SELECT s.code, s.active FROM device_enrolments e JOIN sites s ON s.id = e.site_id"
        " WHERE e.token_hash = ? AND e.device_id = ?",
        (_digest(token or ""), phone.id),
    ).fetchone()
    return row["code"] if row is not None and row["active"] else None


def peer_from_cookie(conn: sqlite3.Connection) -> peers.Peer | None:
    """The enrolled, unrevoked phone whose device cookie came with this request, or None."""
    # Asked by the visitor/volunteer switch, the view and the push alike: look it up once.
    if "device_peer" not in g:
        peer = peers.authenticate(conn, request.cookies.get(COOKIE))
        g.device_peer = peer if peer is not None and peer.kind == "device" else None
    return g.device_peer


def writer_at(conn: sqlite3.Connection, site_id: str) -> tuple[str | None, bool]:
    """Who may record at a gate (a report, a screening): an enrolled phone, or a console user
    who may write and whose scope has the site (a viewer only reads; a visitor who scanned the
    poster is neither). Returns (the phone's device id or None, allowed)."""
    phone = peer_from_cookie(conn)
    if phone is not None:
        return phone.id, True
    user = current_user()
    return None, user is not None and user.can_write and in_scope(user, site_id)


def set_cookie(response, device_token: str) -> None:
    """Give the phone its device token: HttpOnly, SameSite=Strict, kept as long as browsers allow."""
    response.set_cookie(
        COOKIE,
        device_token,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Strict",
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        path="/",
    )


def enrol_url(token: str) -> str:
    """The absolute link a phone opens to enrol."""
    return current_app.config["BASE_URL"].rstrip("/") + "/enrol/" + token


def listing(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Enrolled phones with their site, newest first."""
    return conn.execute(
        "SELECT p.id, p.name, p.created_at, p.revoked_at, p.last_push_at, p.records_in,"
        " s.code AS site_code, s.name AS site_name"
        " FROM peers p LEFT JOIN sites s ON s.id = p.site_id"
        " WHERE p.kind = 'device' ORDER BY p.created_at DESC"
    ).fetchall()


def revoke(
    conn: sqlite3.Connection, name_or_id: str, site_code: str | None = None
) -> tuple[int, int]:
    """Revoke the live phones with this id, or with this name (at the site of site_code, when
    given), and cancel the unused enrolment links of that name (a link sent to the wrong
    person, a phone lost before it was enrolled): they then say they have expired. Returns
    (phones revoked, links cancelled). Every site may have its 东门 1 号机: a name that phones
    or links of several sites share is refused without the site (EnrolError), so that revoking
    one lost phone does not stop the others' syncing."""
    now = iso(sync.utcnow())
    with transaction(conn):
        site = sites.find(conn, site_code) if site_code else None
        rows = conn.execute(
            "SELECT p.id, p.site_id, s.name AS site_name FROM peers p"
            " LEFT JOIN sites s ON s.id = p.site_id"
            " WHERE p.kind = 'device' AND p.revoked_at IS NULL AND (p.id = ? OR p.name = ?)",
            (name_or_id, name_or_id),
        ).fetchall()
        links = conn.execute(
            "SELECT e.token_hash, e.site_id, s.name AS site_name FROM device_enrolments e"
            " JOIN sites s ON s.id = e.site_id"
            " WHERE e.name = ? AND e.used_at IS NULL AND e.expires_at > ?",
            (name_or_id, now),
        ).fetchall()
        if any(r["id"] == name_or_id for r in rows):  # an id names one phone, no link
            links = []
        named = rows + links
        if site is not None:
            rows = [r for r in rows if r["site_id"] == site["id"]]
            links = [r for r in links if r["site_id"] == site["id"]]
        elif len({r["site_id"] for r in named}) > 1:
            raise EnrolError(
                _(
                    "Phones of %(n)d sites are called %(name)s (%(sites)s): name the site with"
                    " --site CODE, or give the phone's id (fieldapp device list).",
                    n=len({r["site_id"] for r in named}),
                    name=name_or_id,
                    sites="、".join(sorted({r["site_name"] or "-" for r in named})),
                )
            )
        for row in rows:
            peers.revoke(conn, "device", row["id"])
        # A second back: expired at once, whatever the clock's resolution.
        past = iso(sync.utcnow() - timedelta(seconds=1))
        for link in links:
            conn.execute(
                "UPDATE device_enrolments SET expires_at = ? WHERE token_hash = ?",
                (past, link["token_hash"]),
            )
        return len(rows), len(links)
