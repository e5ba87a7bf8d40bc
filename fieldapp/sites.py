"""Sites (residential compounds, construction sites): their codes, posters and CLI.

Sites are configuration: owned by the instance without an upstream and versioned, so every
change takes sync.config.next_version() in the same transaction and can flow down.
"""

from __future__ import annotations

import secrets
import sqlite3
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from sync import config as sync_config
from sync.store import iso, utcnow

from . import rules
from .db import connect, transaction
from .i18n import cli_locale

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


def now_iso() -> str:
    """The current UTC time as stored everywhere."""
    return iso(utcnow())


def gate_url(base_url: str, code: str) -> str:
    """The absolute URL a site's poster encodes."""
    return f"{base_url.rstrip('/')}/s/{code}"


def refuse_if_downstream(config: Mapping[str, Any]) -> None:
    """Configuration is owned upstream: an instance with an upstream does not edit it."""
    if config.get("UPSTREAM_URL"):
        raise SiteError(
            _(
                "This instance has an upstream (%(url)s): sites and rosters are managed there "
                "and flow down to this instance.",
                url=config["UPSTREAM_URL"],
            )
        )


def _clean_text(value: str | None, label: Any, limit: int, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise SiteError(_("%(field)s is required.", field=label))
    if len(value) > limit:
        raise SiteError(_("%(field)s is longer than %(n)d characters.", field=label, n=limit))
    return value


def clean_optional_fields(value: str | None) -> str:
    """Check a comma list of optional gate-form fields and return it normalised."""
    chosen = [f.strip() for f in (value or "").split(",") if f.strip()]
    unknown = [f for f in chosen if f not in rules.OPTIONAL_FIELDS]
    if unknown:
        raise SiteError(
            _(
                "Unknown optional field %(field)s; choose from %(choices)s.",
                field=", ".join(unknown),
                choices=", ".join(rules.OPTIONAL_FIELDS),
            )
        )
    return ",".join(f for f in rules.OPTIONAL_FIELDS if f in chosen)


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
    fields = clean_optional_fields(optional_fields)
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
                now_iso(),
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


def list_sites(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every site, active first, by district and name."""
    return conn.execute(
        "SELECT * FROM sites ORDER BY active DESC, district, name, created_at"
    ).fetchall()


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
            (site["code"], site_id, now_iso()),
        )
        conn.execute("UPDATE sites SET code = ?, version = ? WHERE id = ?", (new, version, site_id))
    return new


def set_active(conn: sqlite3.Connection, site_id: str, active: bool) -> bool:
    """Close a site (active False) or open it again; False if it already was so.

    A closed site keeps its records and codes; its gate page says it is closed, no phone
    enrols there and it leaves the roll call. The change flows down with the next version.
    """
    with transaction(conn):
        site = get_site(conn, site_id)
        if site is None:
            raise SiteError(_("No such site."))
        if bool(site["active"]) == active:
            return False
        version = sync_config.next_version(conn)
        conn.execute(
            "UPDATE sites SET active = ?, version = ? WHERE id = ?", (int(active), version, site_id)
        )
    return True


def shown_optional_fields(site: Mapping[str, Any]) -> set[str]:
    """The optional gate-form fields this site asks for."""
    return {f for f in (site["optional_fields"] or "").split(",") if f}


# --- command line --------------------------------------------------------------------------


def _open() -> sqlite3.Connection:
    return connect(current_app.config["DATABASE"])


@click.group("site")
def site_group() -> None:
    """Sites: add, list, rotate a code, close or reopen, write a QR poster."""


@site_group.command("add")
@click.option("--name", required=True, help="Site name, e.g. 阳光花园小区")
@click.option(
    "--kind", type=click.Choice(list(rules.SITE_KINDS)), default="residential", show_default=True
)
@click.option("--address", default="")
@click.option("--district", default="", help="District the site reports to, e.g. 金坛区")
@click.option("--contact", default="", help="Who to ask (shown on an out-of-date poster)")
@click.option(
    "--fields",
    default=",".join(rules.OPTIONAL_FIELDS),
    show_default=True,
    help="Optional gate-form fields to show (comma list; empty for none)",
)
@with_appcontext
def site_add(name: str, kind: str, address: str, district: str, contact: str, fields: str) -> None:
    """Create a site and print its code and gate URL."""
    conn = _open()
    try:
        with force_locale(cli_locale()):
            refuse_if_downstream(current_app.config)
            site = add_site(
                conn,
                name,
                kind,
                address=address,
                district=district,
                contact=contact,
                optional_fields=fields,
            )
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    click.echo(
        f"{site['code']}\t{site['name']}\t{gate_url(current_app.config['BASE_URL'], site['code'])}"
    )


@site_group.command("list")
@with_appcontext
def site_list() -> None:
    """List sites: code, kind, district, name, gate URL (closed ones marked)."""
    conn = _open()
    try:
        rows = list_sites(conn)
    finally:
        conn.close()
    base = current_app.config["BASE_URL"]
    with force_locale(cli_locale()):
        closed = "\t" + _("(closed)")
    for site in rows:
        flag = "" if site["active"] else closed
        click.echo(
            f"{site['code']}\t{site['kind']}\t{site['district'] or '-'}\t{site['name']}"
            f"\t{gate_url(base, site['code'])}{flag}"
        )


@site_group.command("rotate-code")
@click.argument("code")
@with_appcontext
def site_rotate_code(code: str) -> None:
    """Give the site a new code (old posters then say they are out of date)."""
    conn = _open()
    try:
        with force_locale(cli_locale()):
            refuse_if_downstream(current_app.config)
            site = find(conn, code)
            new = rotate_code(conn, site["id"])
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    click.echo(f"{new}\t{site['name']}\t{gate_url(current_app.config['BASE_URL'], new)}")


def _set_active_command(code: str, active: bool) -> None:
    conn = _open()
    try:
        with force_locale(cli_locale()):
            refuse_if_downstream(current_app.config)
            site = find(conn, code)
            changed = set_active(conn, site["id"], active)
            if active:
                message = (
                    _(
                        "%(name)s is active again: its gate page takes entries and it is back in the roll call.",
                        name=site["name"],
                    )
                    if changed
                    else _("%(name)s is already active.", name=site["name"])
                )
            else:
                message = (
                    _(
                        "%(name)s is closed: its gate page says so, no phone can enrol there and it has left the roll call. Its records are kept.",
                        name=site["name"],
                    )
                    if changed
                    else _("%(name)s is already closed.", name=site["name"])
                )
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    click.echo(message)


@site_group.command("deactivate")
@click.argument("code")
@with_appcontext
def site_deactivate(code: str) -> None:
    """Close a site that no longer keeps a gate (it leaves the roll call; records are kept)."""
    _set_active_command(code, False)


@site_group.command("activate")
@click.argument("code")
@with_appcontext
def site_activate(code: str) -> None:
    """Open a closed site again."""
    _set_active_command(code, True)


@site_group.command("qr")
@click.argument("code")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write: .svg or .png",
)
@with_appcontext
def site_qr(code: str, out: Path) -> None:
    """Write the site's QR code (its gate URL) as SVG or PNG."""
    from . import qr

    suffix = out.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise click.BadParameter("the file name must end in .svg or .png", param_hint="--out")
    conn = _open()
    try:
        with force_locale(cli_locale()):
            site = find(conn, code)
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    url = gate_url(current_app.config["BASE_URL"], site["code"])
    out.write_bytes(qr.svg(url) if suffix == ".svg" else qr.png(url))
    click.echo(f"{out}\t{url}")


commands = [site_group]
