"""QR codes: a site's URL for the poster at the gate, a phone's enrolment link, a pass's text
for a card or a screen (package qrcode); as SVG, PNG, or vector rectangles in a reportlab PDF."""

from __future__ import annotations

import io
from itertools import groupby
from pathlib import Path

import qrcode
import qrcode.image.svg
from markupsafe import escape

# M recovers from ~15 % damage: a poster taped to a gate gets scuffed and rained on.
ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M


def _make(url: str, **kwargs) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, border=4, **kwargs)
    code.add_data(url)
    code.make(fit=True)
    return code


def svg(url: str) -> bytes:
    """The QR code of url as a standalone SVG document (with its XML declaration)."""
    image = _make(url, box_size=10).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="UTF-8", xml_declaration=True)


def png(url: str, box_size: int = 10) -> bytes:
    """The QR code of url as a PNG image (black on white)."""
    image = _make(url, box_size=box_size).make_image(fill_color="black", back_color="white")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def image(text: str, path: Path) -> bytes:
    """The QR code of text for a file at path: SVG for a name ending in .svg, PNG for any other
    (written with commands.output_file)."""
    return svg(text) if path.suffix.lower() == ".svg" else png(text)


def matrix(text: str) -> list[list[bool]]:
    """The QR code of text as rows of dark (True) modules, quiet zone included.

    A fixed mask pattern skips qrcode's search for the best of eight (most of its time); any
    mask is valid for every reader.
    """
    return _make(text, mask_pattern=0).get_matrix()


def _runs(rows: list[list[bool]]):
    """(row, first column, length) of each run of dark modules."""
    for r, row in enumerate(rows):
        c = 0
        for dark, run in groupby(row):
            w = len(list(run))
            if dark:
                yield r, c, w
            c += w


def svg_inline(text: str, label: str = "") -> str:
    """The QR code of text as an <svg> element to put in a page: one path, no style attribute
    (the Content-Security-Policy allows none), scaled by CSS."""
    rows = matrix(text)
    n = len(rows)
    path = "".join(f"M{c} {r}h{w}v1h-{w}z" for r, c, w in _runs(rows))
    title = f"<title>{escape(label)}</title>" if label else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" role="img"'
        f' shape-rendering="crispEdges">{title}<rect width="{n}" height="{n}" fill="#fff"/>'
        f'<path d="{path}" fill="#000"/></svg>'
    )


def draw_pdf(pdf, rows: list[list[bool]], x: float, y: float, side: float) -> None:
    """Draw a matrix() on a reportlab canvas as vector rectangles, one per run of dark modules
    in a row: sharp at any size, and small."""
    n = len(rows)
    pdf.saveState()
    pdf.translate(x, y + side)
    pdf.scale(side / n, -side / n)  # one unit per module, rows downwards: whole numbers below
    pdf.setFillColorRGB(1, 1, 1)
    pdf.rect(0, 0, n, n, stroke=0, fill=1)
    pdf.setFillColorRGB(0, 0, 0)
    path = pdf.beginPath()
    for r, c, w in _runs(rows):
        path.rect(c, r, w, 1)
    pdf.drawPath(path, stroke=0, fill=1)
    pdf.restoreState()
