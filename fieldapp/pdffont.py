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
says so in the reader's language rather than making such a PDF.

Place names also use rarer hanzi, beyond GBK and Big5 (CJK Extension A: 㙟, 䢺, 䶮; B and later:
𡌶, 𠮷, 𬒔), which WenQuanYi Micro Hei lacks. Those characters, and only those, are drawn in a
second font, Hanazono Mincho (花園明朝, Debian's fonts-hanazono, which `make install` installs
too): TrueType, HanaMinA has every URO and Extension A hanzi, HanaMinB every one of Extensions B
to F; a Mincho (Song) face beside the Hei, but the right character. reportlab has no fallback of
its own, so runs() splits a string by the font that has each character, and every text an
a4_canvas draws, and string_width() that posters and passes measure with, goes through it. A
character neither has (Extension G: 𰻞) is drawn as 〓, not left blank.
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
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

FONT_NAME = "WenQuanYiMicroHei"
PACKAGE = "fonts-wqy-microhei"
# Where Debian's package puts it; face 0 of the collection is the proportional one (1 is Mono).
FONT_FILES = (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),)
FACE = 0

# The second font, for the characters the first lacks, first face that has it: (name, file).
RARE_PACKAGE = "fonts-hanazono"
RARE_FONTS = (
    ("HanaMinA", Path("/usr/share/fonts/truetype/hanazono/HanaMinA.ttf")),  # URO, Extension A
    ("HanaMinB", Path("/usr/share/fonts/truetype/hanazono/HanaMinB.ttf")),  # Extensions B to F
)

# What a character no font has (Extension G's 𰻞; any rare hanzi where fonts-hanazono is absent)
# is drawn as: 〓, the typesetter's mark for a missing character. reportlab would leave a blank
# that reads as another name (祥 园小区); both are as wide as a hanzi, so nothing else moves.
MISSING = "〓"

_lock = threading.Lock()

_reportlab_to_unicode = ttfonts.makeToUnicodeCMap


def _to_unicode(fontname: str, subset: list[int]) -> str:
    """reportlab's ToUnicode map (which character each glyph of a subset is: what a viewer
    copies, searches and reads aloud), a character past U+FFFF (Extension B on) written as the
    UTF-16 pair the PDF standard asks for: reportlab 5 writes its code point, five hex digits,
    which viewers read as another character (𡌶, U+21336, as ℳ, U+2133)."""
    cmap = _reportlab_to_unicode(fontname, subset)
    for i, code in enumerate(subset):
        if code > 0xFFFF:
            pair = chr(code).encode("utf-16-be").hex().upper()
            cmap = cmap.replace(f"<{i:02X}> <{code:04X}>\n", f"<{i:02X}> <{pair}>\n")
    return cmap


ttfonts.makeToUnicodeCMap = _to_unicode  # reportlab looks it up when it writes a PDF


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


def _rare_font(code: int) -> str | None:
    """The first of RARE_FONTS that has a glyph for this code point (registered with reportlab
    on first use: half a second and 70 MB of memory, only in a process that prints one),
    or None."""
    for name, path in RARE_FONTS:
        with _lock:
            if name not in pdfmetrics.getRegisteredFontNames():
                # Not installed (no apt, or installed by hand without it): the character prints
                # as MISSING, as before there was a second font, and the PDF is made all the same.
                if not path.is_file():
                    continue
                pdfmetrics.registerFont(TTFont(name, str(path)))
        if code in pdfmetrics.getFont(name).face.charToGlyph:
            return name
    return None


_has: dict[str, frozenset[str]] = {}  # font name -> the characters it has


def runs(text: str, font: str) -> list[tuple[str, str]]:
    """text as (run, font name) pairs to draw one after another: the characters font has (and
    spaces) in it, each other one in the first of RARE_FONTS that has it, else as MISSING."""
    glyphs = pdfmetrics.getFont(font).face.charToGlyph
    if font not in _has:
        _has[font] = frozenset(map(chr, glyphs))
    if _has[font].issuperset(text):  # the usual text, without a loop in Python (2x quicker)
        return [(text, font)] if text else []
    found: list[tuple[str, str]] = []
    for c in text:
        face = font if ord(c) in glyphs or c.isspace() else _rare_font(ord(c))
        if face is None:
            c, face = MISSING, font
        if found and found[-1][1] == face:
            found[-1] = (found[-1][0] + c, face)
        else:
            found.append((c, face))
    return found


def string_width(text: str, font: str, size: float) -> float:
    """How wide text is drawn on an a4_canvas in font at size, the runs in other fonts too."""
    return sum(pdfmetrics.stringWidth(run, face, size) for run, face in runs(text, font))


class _Canvas(canvas.Canvas):
    """A canvas whose strings are drawn in runs(): in the font set, the characters it lacks in
    a second font. Only (x, y, text): no character or word spacing, which the runs' advances
    do not count."""

    def drawString(self, x, y, text):
        font, size, leading = self._fontname, self._fontsize, self._leading
        parts = runs(text, font)
        for run, face in parts:
            if face != font:
                self.setFont(face, size, leading)
            super().drawString(x, y, run)
            if face != font:
                self.setFont(font, size, leading)
            x += pdfmetrics.stringWidth(run, face, size)

    def drawCentredString(self, x, y, text):
        self.drawString(x - string_width(text, self._fontname, self._fontsize) / 2, y, text)

    def drawRightString(self, x, y, text):
        self.drawString(x - string_width(text, self._fontname, self._fontsize), y, text)


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
