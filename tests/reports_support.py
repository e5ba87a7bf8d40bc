"""Helpers for the daily report, roll-call and retention tests: a day, its local times, an entry,
storing records, a purge; and printed PDFs (posters, pass cards) read back as poppler and a
phone's camera see them."""

from __future__ import annotations

import subprocess
import uuid
from datetime import date, datetime, timedelta

import zxingcpp
from PIL import Image

from fieldapp import days, records
from fieldapp.db import transaction
from fieldapp.privacy import retention

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


def qr_codes_by_page(pdf: bytes, tmp_path, dpi: int) -> list[list[str]]:
    """Print each page as a phone's camera would see it (poppler's pdftoppm, grey, at dpi) and
    decode the QR codes on it: a list of them a page."""
    folder = tmp_path / "printed"
    folder.mkdir(exist_ok=True)
    (folder / "p.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-gray", "-png", str(folder / "p.pdf"), str(folder / "page")],
        check=True,
    )
    return [
        [code.text for code in zxingcpp.read_barcodes(Image.open(png))]
        for png in sorted(folder.glob("page-*.png"))
    ]
