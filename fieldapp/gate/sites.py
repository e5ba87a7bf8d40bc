"""Sites (residential compounds, construction sites): their codes, posters and CLI.

Sites are configuration: owned by the instance without an upstream and versioned, so every
change takes sync.config.next_version() in the same transaction and can flow down.
"""

from __future__ import annotations

import ipaddress
import secrets
import sqlite3
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from fieldapp import audit, days, db, rules
from fieldapp.db import transaction
from fieldapp.privacy import fields as site_fields
from fieldapp.settings import is_downstream
from sync import config as sync_config
from sync.store import iso, utcnow

NAME_LIMIT, TEXT_LIMIT = 100, 200


class SiteError(ValueError):
    """A site change that cannot be made; the message says why, in the user's language."""


def new_code() -> str:
    """An unguessable, URL-safe site code (16 characters, about 95 random bits)."""
    while True:
        code = secrets.token_urlsafe(12)
        # A code starting with "-" would read as an option on the command line.
        if code[0].isalnum() and code[-1].isalnum():
            return code


def gate_url(base_url: str, code: str) -> str:
    """The absolute URL a site's poster encodes."""
    return f"{base_url.rstrip('/')}/s/{code}"


def unreachable_note(base_url: str) -> str | None:
    """Why phones cannot open base_url, which posters, QR codes and enrolment links carry, in
    the current language: its host is this computer's own (127.0.0.1, localhost, ::1,
    0.0.0.0: BASE_URL's default). None when it may be the address phones open."""
    host = (urlsplit(base_url).hostname or "").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
        local = address.is_loopback or address.is_unspecified
    except ValueError:
        local = host == "localhost" or host.endswith(".localhost")
    if not local:
        return None
    return _(
        "Posters, QR codes and enrolment links carry %(url)s, an address only this computer"
        " opens: no phone can. Set BASE_URL to the address phones open, like"
        " https://gate.example.cn.",
        url=base_url,
    )


def refuse_if_downstream(config: Mapping[str, Any]) -> None:
    """Configuration is owned upstream: an instance with an upstream does not edit it."""
    if is_downstream(config):
        raise SiteError(
            _(
                "This instance has an upstream (%(url)s): sites and rosters are managed there "
                "and flow down to this instance.",
                url=config["UPSTREAM_URL"],
            )
        )


def _clean_text(value: str | None, label: Any, limit: int, required: bool = False) -> str:
    clean = rules.clean_line(value or "")
    if clean is None:
        raise SiteError(
            _("%(field)s must be one line, without tabs or invisible characters.", field=label)
        )
    if required and not clean:
        raise SiteError(_("%(field)s is required.", field=label))
    if len(clean) > limit:
        raise SiteError(_("%(field)s is longer than %(n)d characters.", field=label, n=limit))
    return clean


def add_site(
    conn: sqlite3.Connection,
    name: str,
    kind: str,
    *,
    address: str = "",
    district: str = "",
    contact: str = "",
    optional_fields: str = ",".join(rules.OPTIONAL_FIELDS),
) -> sqlite3.Row:
    """Create a site with a fresh code; return its row."""
    name = _clean_text(name, _l("Site name"), NAME_LIMIT, required=True)
    if kind not in rules.SITE_KINDS:
        raise SiteError(
            _("Site kind must be one of %(choices)s.", choices=", ".join(rules.SITE_KINDS))
        )
    address = _clean_text(address, _l("Address"), TEXT_LIMIT)
    district = _clean_text(district, _l("District"), NAME_LIMIT)
    contact = _clean_text(contact, _l("Contact"), TEXT_LIMIT)
    fields = site_fields.clean(optional_fields)
    site_id = str(uuid.uuid4())
    with transaction(conn):
        version = sync_config.next_version(conn)
        conn.execute(
            "INSERT INTO sites (id, name, kind, address, district, contact, code, active,"
            " optional_fields, version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
            (
                site_id,
                name,
                kind,
                address,
                district,
                contact,
                new_code(),
                fields,
                version,
                iso(utcnow()),
            ),
        )
    return get_site(conn, site_id)


def get_site(conn: sqlite3.Connection, site_id: str) -> sqlite3.Row | None:
    """The site with that id, or None."""
    return conn.execute("SELECT * FROM sites WHERE id = ?", (site_id,)).fetchone()


def by_code(conn: sqlite3.Connection, code: str) -> tuple[str, sqlite3.Row | None]:
    """Resolve a poster's code: ('current', site), ('old', site) after a rotation, or ('unknown', None)."""
    site = conn.execute("SELECT * FROM sites WHERE code = ?", (code,)).fetchone()
    if site is not None:
        return "current", site
    old = conn.execute(
        "SELECT sites.* FROM site_old_codes JOIN sites ON sites.id = site_old_codes.site_id"
        " WHERE site_old_codes.code = ?",
        (code,),
    ).fetchone()
    if old is not None:
        return "old", old
    return "unknown", None


def posted_to(conn: sqlite3.Connection, code: str) -> sqlite3.Row | None:
    """The site of a code a record was posted to, current or old, open or closed; or None. Its
    page may have been opened before the code changed or the site closed: the person passed
    all the same, and the record is saved, as it would be from the phone's outbox."""
    return by_code(conn, code)[1]


def active_by_code(conn: sqlite3.Connection, code: str) -> sqlite3.Row | None:
    """The open site whose current code this is (a gate, enrolment or report page), or None."""
    status, site = by_code(conn, code)
    return site if status == "current" and site["active"] else None


def find(conn: sqlite3.Connection, ref: str) -> sqlite3.Row:
    """A site named on the command line by its current code or its id."""
    site = conn.execute("SELECT * FROM sites WHERE code = ? OR id = ?", (ref, ref)).fetchone()
    if site is None:
        status, old = by_code(conn, ref)
        if status == "old" and old is not None:
            raise SiteError(
                _(
                    "%(code)s is an old code of %(name)s; its code is now %(new)s.",
                    code=ref,
                    name=old["name"],
                    new=old["code"],
                )
            )
        raise SiteError(_("No site has the code %(code)s.", code=ref))
    return site


def listing(
    conn: sqlite3.Connection,
    site_ids: list[str] | None = None,
    *,
    active_only: bool = False,
    open_day: tuple[date, str] | None = None,
) -> list[sqlite3.Row]:
    """Sites, active ones first, by district and name: those of site_ids (None: all), only the
    active ones if asked, and with them those open at some time on a local day (open_day: the
    day and the time zone; open_on): a site closed that day, as the day's roll-call lists it."""
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if active_only and open_day is not None:
        opened, opened_params = open_on(*open_day, alias="sites")
        where.append(f"(active = 1 OR {opened})")
        params += opened_params
    elif active_only:
        where.append("active = 1")
    if site_ids is not None:
        where.append(db.in_list("id", site_ids))
        params += site_ids
    sql = "SELECT * FROM sites WHERE " + " AND ".join(where)  # noqa: S608 -- clauses from code
    return conn.execute(
        sql + " ORDER BY active DESC, district, name, created_at", params
    ).fetchall()


def districts(
    conn: sqlite3.Connection,
    site_ids: list[str] | None = None,
    open_day: tuple[date, str] | None = None,
) -> list[str]:
    """The districts of the active sites among site_ids (None: all), sorted: a drop-down's,
    without reading a city's 5,000 sites for their ten names. open_day (the day and the time
    zone): those of the sites open at some time that day instead (open_on), as its roll-call
    lists them."""
    where: list[str] = ["active = 1"]
    params: list[Any] = []
    if open_day is not None:
        opened, opened_params = open_on(*open_day, alias="sites")
        where, params = [opened], list(opened_params)
    if site_ids is not None:
        where.append(db.in_list("id", site_ids))
        params += site_ids
    sql = "SELECT DISTINCT district FROM sites WHERE " + " AND ".join(where)  # noqa: S608 -- clauses from code
    return sorted(r[0] for r in conn.execute(sql, params))


def rotate_code(conn: sqlite3.Connection, site_id: str) -> str:
    """Give a site a new code; the old one still resolves, to 'this poster is out of date'."""
    new = new_code()
    with transaction(conn):
        site = get_site(conn, site_id)
        if site is None:
            raise SiteError(_("No such site."))
        version = sync_config.next_version(conn)
        conn.execute(
            "INSERT INTO site_old_codes (code, site_id, retired_at) VALUES (?, ?, ?)",
            (site["code"], site_id, iso(utcnow())),
        )
        conn.execute("UPDATE sites SET code = ?, version = ? WHERE id = ?", (new, version, site_id))
    return new


def set_active(conn: sqlite3.Connection, site_id: str, active: bool) -> bool:
    """Close a site (active False) or open it again; False if it already was so.

    A closed site keeps its records and codes; its gate page says it is closed and no phone
    enrols there. When it closed is kept (closed_at, cleared on opening again), and when it
    closed and opened again (site_closures): it leaves the roll-call from the next day on, and
    is back on it from the day it opens again (open_on); the days before keep what they were.
    The change flows down with the next version.
    """
    with transaction(conn):
        site = get_site(conn, site_id)
        if site is None:
            raise SiteError(_("No such site."))
        if bool(site["active"]) == active:
            return False
        version = sync_config.next_version(conn)
        now = iso(utcnow())
        conn.execute(
            "UPDATE sites SET active = ?, closed_at = ?, version = ? WHERE id = ?",
            (int(active), None if active else now, version, site_id),
        )
        if active:
            end_closure(conn, site_id, now)
        else:
            conn.execute(
                "INSERT INTO site_closures (site_id, closed_at) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                (site_id, now),
            )
    return True


def end_closure(conn: sqlite3.Connection, site_id: str, at: str) -> None:
    """The site's closure still open ends: it was opened again at `at`."""
    conn.execute(
        "UPDATE site_closures SET opened_at = ? WHERE site_id = ? AND opened_at IS NULL",
        (at, site_id),
    )


def replace_closures(
    conn: sqlite3.Connection, site_id: str, rows: list[tuple[str, str | None]]
) -> None:
    """The site's closures (closed_at, opened_at) as its upstream keeps them."""
    conn.execute("DELETE FROM site_closures WHERE site_id = ?", (site_id,))
    conn.executemany(
        "INSERT INTO site_closures (site_id, closed_at, opened_at) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        [(site_id, *row) for row in rows],
    )


def closures(conn: sqlite3.Connection, site_id: str) -> list[dict[str, str | None]]:
    """When a site closed and opened again (None: closed still), oldest first."""
    return [
        {"closed_at": r[0], "opened_at": r[1]}
        for r in conn.execute(
            "SELECT closed_at, opened_at FROM site_closures WHERE site_id = ? ORDER BY closed_at",
            (site_id,),
        )
    ]


def open_on(day: date, tz: str, alias: str = "s") -> tuple[str, tuple[str, ...]]:
    """SQL for the sites (as `alias`) open at some time on a local day, with its parameters:
    created before the day ended, open now or closed after the day began, and not within a
    closure that spans the whole day (closed before it began, opened again after it ended, or
    not yet). A day's roll-call lists these, so it stays as it was when a site is added,
    closed or opened again later. A closed site without closed_at (closed before it was kept)
    counts as closed on every day."""
    start, end = days.bounds(day, tz)
    return (
        f"({alias}.created_at < ? AND ({alias}.active = 1 OR {alias}.closed_at >= ?)"  # noqa: S608 -- an alias from code
        " AND NOT EXISTS (SELECT 1 FROM site_closures c"
        f" WHERE c.site_id = {alias}.id AND c.closed_at < ?"
        " AND (c.opened_at IS NULL OR c.opened_at >= ?)))",
        (end, start, start, end),
    )


def was_open_on(conn: sqlite3.Connection, site_id: str, day: date, tz: str) -> bool:
    """Whether the site was open at some time on a local day (open_on): the roll-call of that
    day lists it, so its gate may still send that day's report after it closed."""
    opened, params = open_on(day, tz)
    sql = f"SELECT 1 FROM sites s WHERE s.id = ? AND {opened}"  # noqa: S608 -- a clause from code
    return conn.execute(sql, (site_id, *params)).fetchone() is not None


def set_optional_fields(
    conn: sqlite3.Connection,
    config: Mapping[str, Any],
    site_ref: str,
    value: str,
    *,
    actor: str = "cli",
) -> sqlite3.Row:
    """Choose the optional gate-form fields of a site (by id or code); a configuration change."""
    refuse_if_downstream(config)
    site = find(conn, site_ref)
    return _set(conn, site, "optional_fields", site_fields.clean(value), actor)


def set_self_service(
    conn: sqlite3.Connection,
    config: Mapping[str, Any],
    site_ref: str,
    on: bool,
    *,
    actor: str = "cli",
) -> sqlite3.Row:
    """Whether visitors take their own temperature at a site (nobody keeps its gate); a
    configuration change, by id or code, written to the audit log."""
    refuse_if_downstream(config)
    return _set(conn, find(conn, site_ref), "self_service", int(on), actor)


def _set(
    conn: sqlite3.Connection, site: sqlite3.Row, column: str, value: Any, actor: str
) -> sqlite3.Row:
    """Set one column of a site (a configuration change: a new version, written to the audit
    log as column=value); the site as it is now. A value the site has already (the same form
    sent twice, a command run again) is no change: no version, no audit line."""
    with transaction(conn):
        current = get_site(conn, site["id"])
        if current is not None and current[column] == value:
            return current
        version = sync_config.next_version(conn)
        conn.execute(
            f"UPDATE sites SET {column} = ?, version = ? WHERE id = ?",  # noqa: S608 -- a column name
            (value, version, site["id"]),
        )
        audit.write(conn, actor, "site_change", target=site["id"], detail=f"{column}={value}")
    return get_site(conn, site["id"])
