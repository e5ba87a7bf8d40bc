"""Site posters (场所码): an A4 PDF page per site with its QR code, made with reportlab.

All text, the URL included, is set in pdffont.pdf_font(), WenQuanYi Micro Hei, embedded as a
subset: the page prints the same in any viewer (the built-in CID font STSong-Light used before
left the glyphs to the viewer, and poppler drew empty boxes). That module says why that font,
and draws a rare character it lacks (a place name's 㙟 or 𡌶) in a second one: every width is
measured with its string_width().
"""

from __future__ import annotations

import sqlite3
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm

from fieldapp.gate.qr import draw_pdf, matrix
from fieldapp.gate.sites import gate_url
from fieldapp.pdffont import a4_canvas, string_width

# The most posters one PDF is made of, without a district chosen: a page takes ~7 ms, so a
# province's tens of thousands would take minutes, past a reverse proxy's timeout (nginx's is
# 60 s), and nobody prints them at once; past it the console asks for a district at a time.
SHEET_LIMIT = 2000


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


def _in_word(ch: str) -> bool:
    """Whether ch belongs to a word that is not broken (Latin letters, digits), unlike hanzi and
    full-width signs, between any two of which a line may break."""
    return not ch.isspace() and unicodedata.east_asian_width(ch) not in ("W", "F")


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Break text into lines that fit width: CJK text between any two characters, Latin text at
    its last space (a word longer than the line, anywhere)."""
    lines, line = [], ""
    for ch in text:
        while line and string_width(line + ch, font, size) > width:
            cut = line.rfind(" ")
            if cut > 0 and _in_word(ch) and _in_word(line[-1]):
                lines.append(line[:cut].rstrip())
                line = line[cut + 1 :].lstrip()
            else:
                lines.append(line.rstrip())
                line = ""
        if line or not ch.isspace():
            line += ch
    if line.rstrip():
        lines.append(line.rstrip())
    return lines


WIDTH, HEIGHT = A4
MARGIN = 18 * mm
INNER = WIDTH - 2 * MARGIN
# The name's sizes, largest first, and the QR code's sides: a page takes the first that fits
# above the footer. The QR code keeps its 115 mm (phones read it from a metre and more) unless
# even a name at 16 pt leaves no room, which only a site with every field at its longest needs.
NAME_SIZES = (34, 30, 26, 22, 18, 16)
QR_SIDES = (115 * mm, 105 * mm, 95 * mm, 85 * mm)
# The font's ascent and descent (WenQuanYi Micro Hei: 0.765 and 0.240 of the size): a line's
# ink lies between them, so lines are set top to bottom and nothing crosses the next.
ASCENT, DESCENT = 0.77, 0.25


@dataclass(frozen=True)
class Texts:
    """What a site's poster says, top to bottom (the QR code after `place`)."""

    heading: str
    name: str
    place: str  # district and address
    url: str
    blocks: list[tuple[str, str]]  # (title, instructions) for visitors, then volunteers
    newer: str
    footer: str  # print date and who to ask


def texts(site: sqlite3.Row, url: str, printed: date) -> Texts:
    """The poster's texts in the current language."""
    footer = _("Printed on %(day)s", day=printed.isoformat())
    if site["contact"]:
        footer += "　" + _("Questions: %(contact)s", contact=site["contact"])
    return Texts(
        heading=_("Gate registration · scan to register"),
        name=site["name"],
        place="　".join(p for p in (site["district"], site["address"]) if p),
        url=url,
        blocks=[
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
        ],
        newer=_("A newer poster replaces this one when the code changes"),
        footer=footer,
    )


@dataclass(frozen=True)
class _Line:
    text: str
    size: float
    y: float  # baseline
    centred: bool


@dataclass
class _Flow:
    """Lines set top to bottom within the margins, and where the QR code goes."""

    font: str
    bottom: float  # the lowest ink so far
    lines: list[_Line] = field(default_factory=list)
    qr: tuple[float, float, float] = (0.0, 0.0, 0.0)  # x, y (its bottom), side

    def add(self, text: str, size: float, leading: float, gap: float, centred: bool = False):
        """Set text, wrapped to the margins, `gap` below what is set already."""
        y = self.bottom - gap - ASCENT * size
        for i, line in enumerate(_wrap(text, self.font, size, INNER)):
            if i:
                y -= leading * size
            self.lines.append(_Line(line, size, y, centred))
        self.bottom = y - DESCENT * size


def _footer(said: Texts, font: str) -> _Flow:
    """The footer, standing on the bottom margin, the print date and who to ask wrapped; its
    `bottom` is then the top of the footer."""
    size, leading, gap = 11, 1.35, 7 * mm - 11  # the two parts' baselines 7 mm apart
    count = len(_wrap(said.newer, font, size, INNER)) + len(_wrap(said.footer, font, size, INNER))
    top = MARGIN + 2 * (ASCENT + DESCENT) * size + (count - 2) * leading * size + gap
    flow = _Flow(font, top)
    flow.add(said.newer, size, leading, 0)
    flow.add(said.footer, size, leading, gap)
    flow.bottom = top
    return flow


def _layout(said: Texts, font: str, name_size: float, qr_side: float) -> _Flow:
    """The page above the footer with the name at name_size and the QR code qr_side wide."""
    flow = _Flow(font, HEIGHT - MARGIN)
    flow.add(said.heading, 20, 1.3, 4 * mm, centred=True)
    flow.add(said.name, name_size, 1.08, 6 * mm, centred=True)
    if said.place:  # 14 pt; smaller under a name set smaller than 20 pt
        flow.add(said.place, min(14, round(0.7 * name_size)), 1.2, 3 * mm, centred=True)
    flow.bottom -= 3 * mm + qr_side  # the code's own white border sets it apart
    flow.qr = ((WIDTH - qr_side) / 2, flow.bottom, qr_side)
    flow.add(said.url, 10, 1.2, 1 * mm, centred=True)
    for n, (title, text) in enumerate(said.blocks):
        flow.add(title, 15, 1.2, (4 if n else 7) * mm)
        flow.add(text, 12, 1.4, 2 * mm)
    return flow


def _fit(said: Texts, font: str, top_of_footer: float) -> _Flow:
    """The first layout that ends 4 mm above the footer: the name shrinks first, then the QR
    code. Past the last, the smallest is drawn (no site's allowed texts need more)."""
    tries = [(size, QR_SIDES[0]) for size in NAME_SIZES]
    tries += [(NAME_SIZES[-1], side) for side in QR_SIDES[1:]]
    for size, side in tries:
        flow = _layout(said, font, size, side)
        if flow.bottom >= top_of_footer + 4 * mm:
            break
    return flow


def render(
    sites: list[sqlite3.Row], *, base_url: str, printed: date, language: str = "zh_Hans"
) -> bytes:
    """One A4 page per site: name, large QR code, instructions, printed date. Returns the PDF.

    Every text is wrapped within the margins, and the name shrinks (then the QR code) until
    the instructions end above the footer: the contact stays readable with the longest name
    and address a site may have. Raises FontMissing (its message in the caller's language)
    when the font is not installed."""
    with a4_canvas(language, _l("Site posters")) as (pdf, font):
        for site in sites:
            url = gate_url(base_url, site["code"])
            said = texts(site, url, printed)
            footer = _footer(said, font)
            page = _fit(said, font, footer.bottom)
            draw_pdf(pdf, matrix(url), *page.qr)
            for line in page.lines + footer.lines:
                pdf.setFont(font, line.size)
                if line.centred:
                    pdf.drawCentredString(WIDTH / 2, line.y, line.text)
                else:
                    pdf.drawString(MARGIN, line.y, line.text)
            pdf.showPage()
        if not sites:
            pdf.setFont(font, 16)
            pdf.drawString(MARGIN, HEIGHT - MARGIN - 10 * mm, _("No active sites in this scope."))
            pdf.showPage()
    return pdf.getpdfdata()
