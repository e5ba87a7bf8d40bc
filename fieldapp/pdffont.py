"""The font every PDF with Chinese text uses, embedded (subset) so it prints the same anywhere.

    from fieldapp.pdffont import pdf_font, FontMissing
    font = pdf_font()          # registers it with reportlab once; raises FontMissing if absent
    canvas.setFont(font, 12)

or a4_canvas(language, title) for a whole A4 document set in it (posters, pass cards).

WenQuanYi Micro Hei (文泉驿微米黑), Debian package fonts-wqy-microhei, which `make install`
installs: TrueType outlines that reportlab's TTFont can subset (Noto/Source Han CJK are CFF, which
it cannot read), every GB2312 and Big5 hanzi so zh_Hans and zh_Hant both print, the symbols the
catalogs use (°C, ≥, ·, full-width punctuation), a plain sans face that reads well on a poster
from a distance, 1.6 MB to download, Apache-2.0 (or GPL-3+ with the font exception), and its
embedding flag allows it. A PDF that only names a font (reportlab's built-in STSong-Light) leaves
the glyphs to the viewer: poppler, for one, prints empty boxes. Without the file, FontMissing
says so in the reader's language rather than making such a PDF. A character the font lacks
(beyond GBK and Big5: 𠮷, 䶮, emoji) is drawn as 〓 on an a4_canvas, not left blank.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask_babel import LazyString, force_locale
from flask_babel import gettext as _
from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

FONT_NAME = "WenQuanYiMicroHei"
PACKAGE = "fonts-wqy-microhei"
# Where Debian's package puts it; face 0 of the collection is the proportional one (1 is Mono).
FONT_FILES = (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),)
FACE = 0

# What a character the font lacks (rarer hanzi such as 𠮷 or 䶮, emoji) is drawn as: 〓, the
# typesetter's mark for a missing character. reportlab would leave a blank that reads as
# another name (祥 园小区); both are as wide as a hanzi, so nothing else on the page moves.
MISSING = "〓"

_lock = threading.Lock()


class FontMissing(ValueError):
    """The font file is not installed; str() says what to do, in the current locale."""

    def __str__(self) -> str:
        return _(
            "PDFs with Chinese text need the font %(font)s, which is not installed on this "
            "machine. Install the package %(package)s (`make install` does) and try again.",
            font="WenQuanYi Micro Hei",
            package=PACKAGE,
        )


def font_file() -> Path | None:
    """The installed font file, or None."""
    return next((p for p in FONT_FILES if p.is_file()), None)


def pdf_font() -> str:
    """Register the font with reportlab (once per process) and return its name for setFont.

    reportlab embeds only the glyphs a document uses, in subsets of 256. Raises FontMissing
    when the file is not installed."""
    path = font_file()
    if path is None:
        raise FontMissing(str(FONT_FILES[0]))
    with _lock:
        if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=FACE))
    return FONT_NAME


def printable(text: str, font: str) -> str:
    """text with each character the font has no glyph for (spaces aside) replaced by MISSING."""
    glyphs = pdfmetrics.getFont(font).face.charToGlyph
    return "".join(c if ord(c) in glyphs or c.isspace() else MISSING for c in text)


class _Canvas(canvas.Canvas):
    """A canvas whose strings are drawn printable() in the font set."""

    def drawString(self, x, y, text, *args, **kwargs):
        return super().drawString(x, y, printable(text, self._fontname), *args, **kwargs)

    def drawCentredString(self, x, y, text, *args, **kwargs):
        return super().drawCentredString(x, y, printable(text, self._fontname), *args, **kwargs)

    def drawRightString(self, x, y, text, *args, **kwargs):
        return super().drawRightString(x, y, printable(text, self._fontname), *args, **kwargs)


@contextmanager
def a4_canvas(language: str, title: LazyString) -> Iterator[tuple[Any, str]]:
    """An A4 reportlab canvas set in the font, with `language` in force while it is drawn: yields
    (canvas, font name); after the block, canvas.getpdfdata() is the PDF. title: a lazy string,
    read in `language`. Raises FontMissing, in the caller's language, before any of that."""
    font = pdf_font()  # before force_locale: a FontMissing speaks the user's language
    # Binary streams, not ASCII85: the same PDF, a fifth smaller, and much quicker to write
    # where reportlab's C accelerator is not installed.
    rl_config.useA85 = 0
    # initialFontName: no unused Helvetica named either, so every font in the PDF is embedded.
    pdf = _Canvas(io.BytesIO(), pagesize=A4, pageCompression=1, initialFontName=font)
    with force_locale(language):
        pdf.setTitle(str(title))
        pdf.setCreator("fieldapp")
        yield pdf, font
