"""The console's tables as files: CSV for Excel, an XLSX workbook, a plain-text table for the
terminal. The roll-call (reports/rollcall.py) and a campaign's
coverage (screening/coverage.py) give their title, header and lines; their own to_csv, to_xlsx
and format_text stay the names commands.write_table and pages.table_download call."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import xlsxwriter

# What a cell starting with one of these holds, a spreadsheet runs as a formula (or a tab or line
# break hides one): such text is quoted with a ' (CSV injection).
FORMULA_START = frozenset("=+-@\t\r")


def safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is quoted with a '."""
    if isinstance(value, str) and value[:1] in FORMULA_START:
        return "'" + value
    return value


# A text of digits that Excel and WPS open from a CSV file as a number, and change: from 12
# digits it shows 1.23457E+11 (and saves the file again so), past 15 it keeps 15 (an 18-digit ID
# number loses its last 3 for good), and a leading 0 goes. An 11-digit mobile number (it starts
# with 1) is shown whole and is left as it is.
DIGITS_AS_TEXT = 12


def csv_cell(value: Any) -> Any:
    """A CSV cell as a spreadsheet should open it: text that would start a formula quoted with
    a ' (safe_cell), and digits Excel would change (DIGITS_AS_TEXT or more, or a leading
    0) led by a tab, so that Excel and WPS open them as text with every digit (the usual way
    for Chinese ID numbers: the tab does not show, and no formula is written)."""
    if (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and (len(value) >= DIGITS_AS_TEXT or (len(value) > 1 and value[0] == "0"))
    ):
        return "\t" + value
    return safe_cell(value)


def csv_bytes(lines: Iterable[Sequence[Any]]) -> bytes:
    """Lines as CSV in UTF-8 with a BOM, so Excel opens the Chinese right: quoted only where
    a cell holds , " or a line break, lines ended by CRLF, None as an empty cell, and every
    cell through csv_cell."""
    buf = io.StringIO()
    csv.writer(buf).writerows([csv_cell(v) for v in line] for line in lines)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def xlsx_bytes(
    sheet_name: str,
    title: str,
    header: list[str],
    lines: list[list[str | int]],
    *,
    plain: int,
    widths: Iterable[tuple[int, int, int]],
    summary: str | None = None,
) -> bytes:
    """An XLSX workbook (XlsxWriter): the title in bold, then the summary paragraph if any (a
    tall wrapped row across the table), the header in bold, the lines, those after the first
    `plain` (the totals) in bold. widths: (first column, last column, width) to set; the
    header and the first two columns stay in view when scrolling."""
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False})
    sheet = book.add_worksheet(sheet_name)
    bold = book.add_format({"bold": True})
    sheet.write(0, 0, title, bold)
    top = 1  # the header's row
    if summary is not None:
        wrap = book.add_format({"text_wrap": True, "valign": "top"})
        sheet.merge_range(1, 0, 1, len(header) - 1, summary, wrap)
        sheet.set_row(1, 75)
        top = 2
    sheet.write_row(top, 0, header, bold)
    for n, line in enumerate(lines):
        sheet.write_row(top + 1 + n, 0, line, bold if n >= plain else None)
    for first, last, width in widths:
        sheet.set_column(first, last, width)
    sheet.freeze_panes(top + 1, 2)
    book.close()
    return buf.getvalue()


def text_table(
    title: str, header: list[str], lines: list[list[str | int]], *, plain: int, summary: str = ""
) -> str:
    """A plain-text table for the terminal: the title, the header and the lines in aligned
    columns, a rule under the header and after the first `plain` lines (before the totals),
    then the summary paragraph if any."""
    cells = [[str(c) for c in line] for line in [header, *lines]]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(cells[0]))]
    out = [title]
    for n, row in enumerate(cells):
        out.append(
            "  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)).rstrip()
        )
        if n in (0, plain):
            out.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
    if summary:
        out += ["", summary]
    return "\n".join(out) + "\n"


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
