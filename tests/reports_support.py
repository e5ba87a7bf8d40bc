"""Helpers for the daily report, roll-call and retention tests: a day, its local times, an entry,
storing records, a purge; and printed PDFs (posters, pass cards) read back as poppler and a
phone's camera see them."""

from __future__ import annotations

import html
import io
import re
import subprocess
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import zxingcpp
from PIL import Image
from pypdf import PdfReader

from fieldapp import days, records
from fieldapp.db import transaction
from fieldapp.privacy import retention
from fieldapp.reports import daily

TZ = "Asia/Shanghai"
# A few days ago: inside the entries' retention whenever the tests run.
DAY = days.today("Asia/Shanghai") - timedelta(days=3)


def local(day: date, hh: int, mm: int = 0) -> str:
    """A recorded_at string for a local (Shanghai) time of day (UTC+8, no DST)."""
    t = datetime(day.year, day.month, day.day, hh, mm) - timedelta(hours=8)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def entry(site_id: str, at: str, **data) -> dict:
    base = {
        "site_id": site_id,
        "direction": "in",
        "person_type": "resident",
        "name": "张三",
        "temperature": 36.5,
        "health_code": "green",
    }
    base.update(data)
    return {"uuid": str(uuid.uuid4()), "kind": "entry", "recorded_at": at, "data": base}


def report_data(site: str, on: date | str, **data) -> dict:
    """A daily report's data: every count, 0 unless given (a zero report by default)."""
    base = dict.fromkeys(daily.COUNT_KEYS, 0)
    base.update(site_id=site, day=on if isinstance(on, str) else on.isoformat())
    base.update(data)
    return base


def added_on(db, day: date, site_ids: list[str] | None = None) -> None:
    """Date sites' creation back to the start of a local day, as if they had been added then
    (every site if None): a past day's roll-call lists only the sites that existed on it."""
    start = days.bounds(day, TZ)[0]
    where = f" WHERE id IN ({','.join('?' * len(site_ids))})" if site_ids is not None else ""
    with transaction(db):
        db.execute(f"UPDATE sites SET created_at = ?{where}", (start, *(site_ids or ())))  # noqa: S608


def save(app, db, recs, source="test") -> list[str]:
    """Store records through fieldapp.records.save, as a push would; their statuses."""
    with app.test_request_context():
        return [r.status for r in records.save(db, recs, source=source)]


def purge_past_a_week(app, db, now: datetime | None = None) -> retention.Purge:
    """retention.purge with a 7-day horizon (a year for daily reports), Shanghai's days, the
    app's record kinds; its counts."""
    with app.app_context():
        return retention.purge(
            db,
            days=7,
            report_days=365,
            tz_name=TZ,
            now=now,
            registry=app.extensions["fieldapp.records"],
        )


def pdf_text(pdf: bytes, tmp_path) -> str:
    """The PDF's text as pdftotext (poppler) reads it: each page's, ended by a form feed."""
    path = tmp_path / "t.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True
    ).stdout.decode()


def pdf_fonts(pdf: bytes, tmp_path) -> list[dict[str, str]]:
    """The fonts poppler's pdffonts lists: name, emb, sub."""
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, check=True, text=True)
    fonts = []
    for line in out.stdout.splitlines()[2:]:  # a header and a rule first
        # name, type (may hold spaces), encoding, emb, sub, uni, object, generation
        name, rest = line.split(None, 1)
        *_kind, emb, sub, _uni, _obj, _gen = rest.split()
        fonts.append({"name": name, "emb": emb, "sub": sub})
    return fonts


def pdf_text_by_font(pdf: bytes) -> dict[str, str]:
    """The text a PDF draws in each font, as pypdf reads its pages: font name (a subset's
    ABCDEF+ tag dropped) -> the characters drawn in it, in order, spaces left out."""
    drawn: dict[str, str] = {}

    def seen(text, _cm, _tm, font, _size):
        if font is not None and text.strip():
            name = str(font["/BaseFont"]).lstrip("/").split("+", 1)[-1]
            drawn[name] = drawn.get(name, "") + "".join(text.split())

    for page in PdfReader(io.BytesIO(pdf)).pages:
        page.extract_text(visitor_text=seen)
    return drawn


def _printed(pdf: bytes, tmp_path, dpi: int) -> list[Image.Image]:
    """Each page as poppler's pdftoppm prints it, grey, at dpi."""
    folder = tmp_path / "printed"
    folder.mkdir(exist_ok=True)
    for old in folder.glob("page-*.png"):
        old.unlink()
    (folder / "p.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-gray", "-png", str(folder / "p.pdf"), str(folder / "page")],
        check=True,
    )
    return [Image.open(png) for png in sorted(folder.glob("page-*.png"))]


def qr_codes_by_page(pdf: bytes, tmp_path, dpi: int) -> list[list[str]]:
    """Print each page as a phone's camera would see it (poppler's pdftoppm, grey, at dpi) and
    decode the QR codes on it: a list of them a page."""
    return [
        [code.text for code in zxingcpp.read_barcodes(page)]
        for page in _printed(pdf, tmp_path, dpi)
    ]


def qr_boxes_by_page(pdf: bytes, tmp_path) -> list[list[tuple[str, Box]]]:
    """Each page's QR codes, printed at 72 dpi (a pixel a point): (text, the symbol's box in
    points from the page's top left, quiet zone not included)."""
    found = []
    for page in _printed(pdf, tmp_path, 72):
        codes = []
        for code in zxingcpp.read_barcodes(page):
            p = code.position
            corners = (p.top_left, p.top_right, p.bottom_left, p.bottom_right)
            xs, ys = [c.x for c in corners], [c.y for c in corners]
            codes.append((code.text, Box(min(xs), min(ys), max(xs), max(ys))))
        found.append(codes)
    return found


@dataclass(frozen=True)
class Box:
    """A rectangle in points from the page's top left."""

    x0: float
    top: float
    x1: float
    bottom: float

    def overlaps(self, other: Box, slack: float = 0.1) -> bool:
        return (
            self.x0 + slack < other.x1
            and other.x0 + slack < self.x1
            and self.top + slack < other.bottom
            and other.top + slack < self.bottom
        )


def pdf_words(pdf: bytes, tmp_path) -> list[list[tuple[str, Box]]]:
    """Each page's words as poppler's pdftotext -bbox reads them, with the box their glyphs
    take (ascent to descent, first to last advance), in points from the page's top left."""
    path = tmp_path / "words.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-bbox", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True
    ).stdout.decode()
    word = re.compile(
        r'<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">(.*?)</word>'
    )
    return [
        [
            (html.unescape(m[5]), Box(float(m[1]), float(m[2]), float(m[3]), float(m[4])))
            for m in word.finditer(page)
        ]
        for page in out.split("<page ")[1:]
    ]
