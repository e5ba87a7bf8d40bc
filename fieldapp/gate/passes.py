"""Resident passes (出入证, 一户一证): a card per roster person with a QR code of a pass token.

The token is random and says nothing about the person; the gate page finds the person by it in
the roster the phone keeps (for_phone()), offline too. Reissuing a pass gives a new token, so a
lost or copied card stops working the moment the new roster reaches the gate. Tokens live in the
roster row and flow down with it, like every roster change (a new configuration version).

A card shows the name, the unit, the site, the person type, the date it was issued and the QR
code; never a phone or ID number (minimum necessary: a lost card tells its finder no more).
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm

from fieldapp import audit, days, rules
from fieldapp.db import transaction
from fieldapp.gate.qr import draw_pdf, matrix
from fieldapp.pdffont import a4_canvas, string_width
from fieldapp.privacy import fields as site_fields
from sync import config as sync_config
from sync.store import iso, utcnow

# What a card's QR code holds: this prefix and the token. A visitor's pass on their screen
# holds VISIT_PREFIX, the site's id and the registration's uuid (gate/selfreg.py).
PASS_PREFIX = "fieldapp:pass:"
VISIT_PREFIX = "fieldapp:visit:"
TOKEN_BYTES = 12  # 16 characters, 96 random bits: not guessed, short enough for a small code


def new_token() -> str:
    """A fresh pass token (URL-safe, 16 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def pass_text(token: str) -> str:
    """What a card's QR code says."""
    return PASS_PREFIX + token


def issue_missing(conn: sqlite3.Connection, site_id: str) -> int:
    """Give a token to every active person of the site who has none (rows from before passes
    existed); one configuration change. How many were issued."""
    with transaction(conn):
        ids = [r["id"] for r in roster_of(conn, site_id) if not r["pass_token"]]
        if ids:
            _issue(conn, ids)
    return len(ids)


def reissue(
    conn: sqlite3.Connection,
    site_id: str,
    person_ids: Iterable[str] | None = None,
    *,
    actor: str = "cli",
    ip: str = "",
    form: str = "",
) -> int | None:
    """New tokens for these people of the site (all its active people if None): their old
    cards stop working. One configuration change, in the audit log; how many were reissued.

    form: the uuid of the console's form (canonical), kept in the audit line. None when that
    form reissued already (a double click, a retry after a lost answer): nothing is done
    again, so a card printed after the first click keeps working."""
    with transaction(conn):
        if form and audit.form_done(conn, "pass_reissue", site_id, form):
            return None
        known = [r["id"] for r in roster_of(conn, site_id)]
        if person_ids is not None:
            wanted = set(person_ids)
            known = [i for i in known if i in wanted]
        if known:
            _issue(conn, known)
            detail = "all" if person_ids is None else ",".join(known)
            audit.write(
                conn, actor, "pass_reissue", target=site_id, detail=detail, ip=ip, form=form
            )
    return len(known)


def printed(
    conn: sqlite3.Connection, site_id: str, count: int, *, actor: str, ip: str = ""
) -> None:
    """Write a printing of passes to the audit log (cards are credentials: who made them)."""
    with transaction(conn):
        audit.write(conn, actor, "pass_print", target=site_id, detail=f"cards={count}", ip=ip)


def _issue(conn: sqlite3.Connection, person_ids: list[str]) -> None:
    version = sync_config.next_version(conn)
    now = iso(utcnow())
    for person_id in person_ids:
        conn.execute(
            "UPDATE roster SET pass_token = ?, pass_issued_at = ?, version = ? WHERE id = ?",
            (new_token(), now, version, person_id),
        )


def people(
    conn: sqlite3.Connection, site_id: str, person_ids: Iterable[str] | None = None
) -> list[sqlite3.Row]:
    """The site's active people with a pass, by name: what a sheet of cards prints."""
    wanted = None if person_ids is None else set(person_ids)
    return [
        r
        for r in roster_of(conn, site_id)
        if r["pass_token"] and (wanted is None or r["id"] in wanted)
    ]


def roster_of(conn: sqlite3.Connection, site_id: str) -> list[sqlite3.Row]:
    """Every active person of the site with their pass's state, by name (the console's list)."""
    return conn.execute(
        "SELECT id, name, phone, unit, person_type, pass_token, pass_issued_at FROM roster"
        " WHERE site_id = ? AND active = 1 ORDER BY name, id",
        (site_id,),
    ).fetchall()


def find_people(
    conn: sqlite3.Connection, site_id: str, refs: Iterable[str], *, active: bool = True
) -> list[str]:
    """Roster ids of the site's active people (or, active False, those taken off its roster)
    named by id or exact name (the CLI's --person).

    Raises ValueError (worded) for a name that matches nobody, or several people."""
    ids = []
    for ref in refs:
        rows = conn.execute(
            "SELECT id, unit FROM roster WHERE site_id = ? AND active = ? AND (id = ? OR name = ?)",
            (site_id, int(active), ref, ref),
        ).fetchall()
        if not rows:
            raise ValueError(_("Nobody on this site's roster is called %(name)s.", name=ref))
        if len(rows) > 1:
            raise ValueError(
                _(
                    "%(name)s names %(n)d people on this roster; give the id instead: %(ids)s",
                    name=ref,
                    n=len(rows),
                    ids=", ".join(f"{r['id']} ({r['unit']})" for r in rows),
                )
            )
        ids.append(rows[0]["id"])
    return ids


def for_phone(conn: sqlite3.Connection, site: Mapping[str, Any]) -> dict[str, Any]:
    """The roster a gate phone keeps (static/js/roster.js): what a scanned pass or a search
    fills the form with, and no more. The phone number only where the site's form asks it."""
    with_phone = "phone" in site_fields.shown(site)
    fields = ["id", "name", "unit", "person_type", "pass"] + (["phone"] if with_phone else [])
    people = [
        [r["id"], r["name"], r["unit"], r["person_type"], r["pass_token"]]
        + ([r["phone"]] if with_phone else [])
        for r in roster_of(conn, site["id"])
    ]
    return {"version": phone_version(conn, site), "fields": fields, "people": people}


def phone_version(conn: sqlite3.Connection, site: Mapping[str, Any]) -> str:
    """What changes whenever the phone's copy of the roster must: any roster row of the site
    (a pass reissued too), or the site's fields (phone asked or not)."""
    top = conn.execute(
        "SELECT max(version), count(*) FROM roster WHERE site_id = ?", (site["id"],)
    ).fetchone()
    return f"{site['version']}.{top[0] or 0}.{top[1]}"


# ---- the cards --------------------------------------------------------------------------------

CARD_W_MM, CARD_H_MM = 85.6, 54.0  # ID-1, a bank card's size: fits a wallet or a card sleeve
COLUMNS, ROWS = 2, 5


def render(
    site: Mapping[str, Any],
    people_: list[Mapping[str, Any]],
    *,
    printed: date,
    tz_name: str,
    language: str = "zh_Hans",
) -> bytes:
    """An A4 PDF of pass cards, ten a page, with cut lines. Raises FontMissing (worded)."""
    width, height = A4
    card_w, card_h = CARD_W_MM * mm, CARD_H_MM * mm
    left = (width - COLUMNS * card_w) / 2
    top = height - (height - ROWS * card_h) / 2
    with a4_canvas(language, _l("Passes of %(site)s", site=site["name"])) as (pdf, font):
        per_page = COLUMNS * ROWS
        for start in range(0, max(len(people_), 1), per_page):
            chunk = people_[start : start + per_page]
            if not chunk:
                pdf.setFont(font, 16)
                pdf.drawString(20 * mm, height - 30 * mm, _("Nobody on this roster has a pass."))
            for i, person in enumerate(chunk):
                x = left + (i % COLUMNS) * card_w
                y = top - (i // COLUMNS + 1) * card_h
                issued = days.local(person["pass_issued_at"], tz_name).date()
                _card(pdf, font, site, person, issued, x, y, card_w, card_h)
            pdf.setFont(font, 8)
            pdf.setFillColorRGB(0.4, 0.4, 0.4)
            pdf.drawString(
                left, 6 * mm, _("Printed on %(day)s", day=printed.isoformat()) + "　" + site["name"]
            )
            pdf.showPage()
    return pdf.getpdfdata()


def _fit(pdf, font: str, text: str, size: float, width: float) -> float:
    """The largest size up to `size` at which text fits width."""
    while size > 6 and string_width(text, font, size) > width:
        size -= 0.5
    return size


def _card(pdf, font: str, site, person, issued: date, x: float, y: float, w: float, h: float):
    pad = 4 * mm
    pdf.saveState()
    # The cut line, light enough not to distract once cut.
    pdf.setStrokeColorRGB(0.7, 0.7, 0.7)
    pdf.setLineWidth(0.3)
    pdf.setDash(2, 2)
    pdf.rect(x, y, w, h, stroke=1, fill=0)
    pdf.setDash()
    # A dark band with the site's name: which gate the card opens, readable at arm's length.
    band = 11 * mm
    pdf.setFillColorRGB(0.043, 0.122, 0.227)
    pdf.rect(x, y + h - band, w, band, stroke=0, fill=1)
    pdf.setFillColorRGB(1, 1, 1)
    title = _("Pass")
    size = _fit(pdf, font, site["name"], 11, w - 2 * pad - 14 * mm)
    pdf.setFont(font, size)
    pdf.drawString(x + pad, y + h - band + 4 * mm, site["name"])
    pdf.setFont(font, 11)
    pdf.drawRightString(x + w - pad, y + h - band + 4 * mm, title)
    # The QR code on the right, as large as the card allows; the words on the left.
    side = h - band - 2 * mm
    draw_pdf(pdf, matrix(pass_text(person["pass_token"])), x + w - side - 1 * mm, y + 1 * mm, side)
    text_w = w - side - pad - 2 * mm
    pdf.setFillColorRGB(0, 0, 0)
    line = y + h - band - 10 * mm
    pdf.setFont(font, _fit(pdf, font, person["name"], 20, text_w))
    pdf.drawString(x + pad, line, person["name"])
    line -= 8 * mm
    if person["unit"]:
        pdf.setFont(font, _fit(pdf, font, person["unit"], 13, text_w))
        pdf.drawString(x + pad, line, person["unit"])
        line -= 6 * mm
    kind = str(rules.PERSON_TYPES.get(person["person_type"], person["person_type"]))
    pdf.setFont(font, 9)
    pdf.drawString(x + pad, line, kind)
    pdf.setFillColorRGB(0.3, 0.3, 0.3)
    for text, at in (
        (_("Issued %(day)s", day=issued.isoformat()), 7 * mm),
        (_("For the holder only; a new card voids this one"), 3.5 * mm),
    ):
        pdf.setFont(font, _fit(pdf, font, text, 7, text_w))
        pdf.drawString(x + pad, y + at, text)
    pdf.restoreState()
