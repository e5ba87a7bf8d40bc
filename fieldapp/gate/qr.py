"""QR codes of site URLs, for the poster at the gate (package qrcode)."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg

# M recovers from ~15 % damage: a poster taped to a gate gets scuffed and rained on.
ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M


def _make(url: str, **kwargs) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, border=4, **kwargs)
    code.add_data(url)
    code.make(fit=True)
    return code


def svg(url: str) -> bytes:
    """The QR code of url as a standalone SVG document."""
    image = _make(url, box_size=10).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode").encode()


def png(url: str, box_size: int = 10) -> bytes:
    """The QR code of url as a PNG image (black on white)."""
    image = _make(url, box_size=box_size).make_image(fill_color="black", back_color="white")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
