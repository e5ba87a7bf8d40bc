"""Site posters (场所码): an A4 PDF page per site with its QR code, made with reportlab.

All text, the URL included, is set in pdffont.pdf_font(), WenQuanYi Micro Hei, embedded as a
subset: the page prints the same in any viewer (the built-in CID font STSong-Light used before
left the glyphs to the viewer, and poppler drew empty boxes). That module says why that font.
"""

from __future__ import annotations

import sqlite3
from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth

from fieldapp.gate.qr import draw_pdf, matrix
from fieldapp.gate.sites import gate_url
from fieldapp.pdffont import a4_canvas


def sites_for(
    conn: sqlite3.Connection, district: str | None = None, site_ids: set[str] | None = None
) -> list[sqlite3.Row]:
    """Active sites of a district (or all), by district and name, for a sheet of posters."""
    where = " AND district = ?" if district else ""
    rows = conn.execute(
        "SELECT id, name, district, address, contact, code, optional_fields FROM sites"  # noqa: S608 -- a fixed clause
        f" WHERE active = 1{where} ORDER BY district, name, id",
        (district,) if district else (),
    ).fetchall()
    if site_ids is not None:
        rows = [r for r in rows if r["id"] in site_ids]
    return rows


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Break text into lines that fit width; CJK text breaks between any two characters."""
    lines, line = [], ""
    for ch in text:
        if stringWidth(line + ch, font, size) > width and line:
            lines.append(line)
            line = ch.lstrip()
        else:
            line += ch
    if line:
        lines.append(line)
    return lines


def render(
    sites: list[sqlite3.Row], *, base_url: str, printed: date, language: str = "zh_Hans"
) -> bytes:
    """One A4 page per site: name, large QR code, instructions, printed date. Returns the PDF.

    Raises FontMissing (its message in the caller's language) when the font is not installed."""
    width, height = A4
    margin = 18 * mm
    with a4_canvas(language, _l("Site posters")) as (pdf, font):
        for site in sites:
            url = gate_url(base_url, site["code"])
            y = height - margin - 14 * mm
            pdf.setFont(font, 20)
            pdf.drawCentredString(width / 2, y + 4 * mm, _("Gate registration · scan to register"))
            y -= 14 * mm
            for line in _wrap(site["name"], font, 34, width - 2 * margin):
                pdf.setFont(font, 34)
                pdf.drawCentredString(width / 2, y, line)
                y -= 13 * mm
            place = "　".join(p for p in (site["district"], site["address"]) if p)
            if place:
                pdf.setFont(font, 14)
                pdf.drawCentredString(width / 2, y + 3 * mm, place)
                y -= 6 * mm
            side = 115 * mm
            y -= side
            draw_pdf(pdf, matrix(url), (width - side) / 2, y, side)
            pdf.setFont(font, 10)
            pdf.drawCentredString(width / 2, y - 2 * mm, url)
            y -= 12 * mm
            blocks = [
                (
                    _("Visitors"),
                    _(
                        "Scan the code with your phone's camera, fill in the registration and show "
                        "it to the volunteer with your health code. Have your temperature taken."
                    ),
                ),
                (
                    _("Volunteers"),
                    _(
                        "Scan the code to open this gate's register. It works without a network; "
                        "records are sent when the phone is online again. Submit the daily report "
                        "every day, a zero report if nobody passed."
                    ),
                ),
            ]
            for title, text in blocks:
                pdf.setFont(font, 15)
                pdf.drawString(margin, y, title)
                y -= 7 * mm
                pdf.setFont(font, 12)
                for line in _wrap(text, font, 12, width - 2 * margin):
                    pdf.drawString(margin, y, line)
                    y -= 6 * mm
                y -= 3 * mm
            pdf.setFont(font, 11)
            pdf.drawString(
                margin, margin + 7 * mm, _("A newer poster replaces this one when the code changes")
            )
            footer = _("Printed on %(day)s", day=printed.isoformat())
            if site["contact"]:
                footer += "　" + _("Questions: %(contact)s", contact=site["contact"])
            pdf.drawString(margin, margin, footer)
            pdf.showPage()
        if not sites:
            pdf.setFont(font, 16)
            pdf.drawString(margin, height - margin - 10 * mm, _("No active sites in this scope."))
            pdf.showPage()
    return pdf.getpdfdata()
