"""Exports of the log for the chosen filters: CSV streamed in constant memory, XLSX written by
XlsxWriter in constant-memory mode. Personal data follows the same rules as on screen. And the
audited download of a console table (the roll-call, a campaign's coverage).
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import xlsxwriter
from flask import Response
from flask_babel import gettext as _

from fieldapp import days, db, rules
from fieldapp.console import corrections, logbook
from fieldapp.console.accounts import WRITE_ROLES, audit_action
from fieldapp.pages import table_download
from fieldapp.privacy.ids import IdVault
from fieldapp.tables import DIGITS_AS_TEXT, FORMULA_START, csv_cell

BOM = "\ufeff"


def headers() -> list[str]:
    """Column titles in the current language."""
    return [
        _("Time"),
        _("Site"),
        _("Direction"),
        _("Person type"),
        _("Name"),
        _("Phone"),
        _("ID number"),
        _("Temperature"),
        _("Fever action"),
        _("Health code"),
        _("Travel to a risk area"),
        _("Where"),
        _("Vehicle plate"),
        _("Unit / destination"),
        _("Note"),
        _("Volunteer"),
        _("Corrected"),
        _("Void"),
        _("Record ID"),
    ]


def row_maker(
    tz: ZoneInfo,
    role: str,
    full: bool,
    vault: IdVault | None,
    sites: dict[str, str],
    *,
    guard: bool = True,
) -> Callable:
    """A function turning an entry (current value) into an export row for that role.

    full (admins and coordinators only, audited) gives full phone and ID numbers; sites maps
    site ids to names (logbook.site_names); guard: free text that would start a formula is
    quoted with a ', and digits Excel would read as a number and change are led by a tab
    (csv_cell: for a CSV file; an XLSX cell holds the text as entered).
    """
    d_labels = {k: str(v) for k, v in rules.DIRECTIONS.items()}
    p_labels = {k: str(v) for k, v in rules.PERSON_TYPES.items()}
    h_labels = {k: str(v) for k, v in rules.HEALTH_CODES.items()}
    f_labels = {k: str(v) for k, v in rules.FEVER_ACTIONS.items()}
    yes, no = _("yes"), ""
    full = full and role in WRITE_ROLES and vault is not None
    viewer = role == "viewer"
    mask_phone, mask_name = rules.mask_phone, logbook.mask_name
    local = local_times(tz)
    cell = csv_cell if guard else _as_is

    columns = logbook.ITER_COLUMNS

    def make(e) -> list:
        if type(e) is dict:  # corrected: corrections.current() made it
            corrected = yes if e["corrected"] else no
            void = cell(e["void_reason"]) if e["void"] else no
            e = tuple(e[c] for c in columns)
        else:
            corrected = void = no
        (_id, uuid, recorded_at, site_id, direction, person_type, name, phone, id_masked,
         id_cipher, temperature, fever_action, health_code, travel, where, plate, dest, note,
         vol) = e  # fmt: skip
        # Free text could start a formula in a spreadsheet opening a CSV file (CSV injection):
        # quote it (the site's name and a void's reason too).
        name, where, dest, note, vol = map(cell, (name, where, dest, note, vol))
        return [
            local(recorded_at),
            cell(sites.get(site_id, "")),
            d_labels.get(direction, direction),
            p_labels.get(person_type, person_type),
            mask_name(name) if viewer else name,
            cell(phone) if full else mask_phone(phone),
            cell(vault.open(id_cipher)) if full else id_masked,  # type: ignore[union-attr]
            temperature,
            f_labels.get(fever_action, fever_action),
            h_labels.get(health_code, health_code),
            yes if travel else no,
            where,
            plate,
            dest,
            note,
            vol,
            corrected,
            void,
            uuid,
        ]

    return make


def _as_is(value: Any) -> Any:
    return value


_FORMULA_START_SQL = ", ".join(f"'{c}'" for c in sorted(FORMULA_START))


def _quoted(column: str) -> str:
    """SQL for a free-text column's CSV cell, as csv_cell makes it: quoted with a ' if it would
    start a formula, led by a tab if it is digits Excel would change (ltrim works alike in
    SQLite and PostgreSQL)."""
    return (
        f"CASE WHEN substr({column}, 1, 1) IN ({_FORMULA_START_SQL})"
        f" THEN '''' || {column}"
        f" WHEN ltrim({column}, '0123456789') = ''"
        f" AND (length({column}) >= {DIGITS_AS_TEXT}"
        f" OR (length({column}) > 1 AND substr({column}, 1, 1) = '0'))"
        f" THEN '\t' || {column} ELSE {column} END"
    )


def _label(column: str, choices: dict) -> tuple[str, list[str]]:
    """SQL mapping a code column to its label in the current language, and its parameters."""
    whens, params = [], []
    for key, label in choices.items():
        whens.append("WHEN ? THEN ?")
        params += [key, str(label)]
    return f"CASE {column} {' '.join(whens)} ELSE {column} END", params


def local_times(tz: ZoneInfo) -> Callable[[str], str]:
    """A stored UTC time as the gates' local 'YYYY-MM-DD HH:MM:SS', each minute converted once
    (through the zone's rules, so an export across a DST change is right either side of it).
    A time the clocks show twice (the hour repeated when DST ends) carries its UTC offset,
    'YYYY-MM-DD HH:MM:SS-04:00', so that its two readings stay apart."""
    minutes: dict[str, tuple[str, str]] = {}

    def local(ts: str) -> str:
        key = ts[:16]
        found = minutes.get(key)
        if found is None:
            if len(minutes) > 100_000:
                minutes.clear()
            at = days.local(key + ":00.000Z", tz)
            twice = at.replace(fold=1 - at.fold).utcoffset() != at.utcoffset()
            found = minutes[key] = (
                at.strftime("%Y-%m-%d %H:%M"),
                at.isoformat()[19:] if twice else "",
            )
        return found[0] + ts[16:19] + found[1]

    return local


def _fast_sql(conn, f, site_ids, tz, guard: bool = True) -> tuple[str, list]:
    """The export rows for admins and coordinators, masked and labelled by the database.

    Same columns and values as row_maker(..., full=False, guard=guard) gives, but for the local
    time, which rows() converts: the database does per row what would otherwise be a Python
    call.
    """
    quoted = _quoted if guard else _as_is
    direction, p1 = _label("e.direction", rules.DIRECTIONS)
    person, p2 = _label("e.person_type", rules.PERSON_TYPES)
    fever, p3 = _label("e.fever_action", rules.FEVER_ACTIONS)
    code, p4 = _label("e.health_code", rules.HEALTH_CODES)
    src = logbook.source(conn, f, site_ids, tz)
    sql = (
        f"SELECT e.recorded_at, {quoted('s.name')},"  # noqa: S608 -- SQL and ? only
        f" {direction}, {person}, {quoted('e.name')},"
        " CASE WHEN length(e.phone) = 11"
        "  THEN substr(e.phone, 1, 3) || '****' || substr(e.phone, 8) ELSE e.phone END,"
        f" e.id_masked, e.temperature, {fever}, {code},"
        f" CASE WHEN e.travel = 1 THEN ? ELSE '' END, {quoted('e.travel_where')}, e.plate,"
        f" {quoted('e.destination')}, {quoted('e.note')}, {quoted('e.volunteer')},"
        " '', '', e.uuid"
        f" FROM {src.tables} JOIN sites s ON s.id = e.site_id"
        f" WHERE {src.where} ORDER BY {src.at} DESC, e.id DESC"
    )
    params = [*p1, *p2, *p3, *p4, _("yes"), *src.params]
    return sql, params


def rows(
    conn: sqlite3.Connection,
    f: logbook.Filters,
    site_ids: list[str] | None,
    tz: ZoneInfo,
    role: str,
    full: bool = False,
    vault: IdVault | None = None,
    chunk: int = 5000,
    *,
    guard: bool = True,
) -> Iterator[list]:
    """The export's rows (in headers() order) in chunks: memory stays flat at any size.

    Personal data follows the role: viewers get masked names and phones; full phone and ID
    numbers only for admins and coordinators who ask (the caller audits that). Corrected and
    voided entries show their current value. guard: free text that would start a formula is
    quoted with a ', as a CSV file needs (csv_chunks); write_xlsx takes rows without it, since
    an XLSX cell holds the text as entered and is never run as a formula.
    """
    make = row_maker(tz, role, full, vault, logbook.site_names(conn), guard=guard)
    if role == "viewer" or (full and role in WRITE_ROLES):
        for part in logbook.iterate(conn, f, site_ids, tz, chunk):
            yield [make(e) for e in part]
        return
    sql, params = _fast_sql(conn, f, site_ids, tz, guard)
    check = corrections.any_exist(conn)
    local = local_times(tz)
    for part in db.stream(conn, sql, params, chunk):
        part = [(local(r[0]), *r[1:]) for r in part]
        if check:
            fixes = corrections.for_entries(conn, [r[-1] for r in part])
            if fixes:
                raw = logbook.raw_entries(conn, list(fixes))
                part = [
                    make(corrections.current(raw[r[-1]], fixes[r[-1]])) if r[-1] in fixes else r
                    for r in part
                ]
        yield part


def csv_chunks(
    chunks: Iterable[list], progress: Callable[[int], None] | None = None
) -> Iterator[str]:
    """The CSV text in pieces (UTF-8 BOM first, so Excel reads Chinese); memory stays flat."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write(BOM)
    writer.writerow(headers())
    yield buf.getvalue()
    for part in chunks:
        buf.seek(0)
        buf.truncate()
        writer.writerows(part)
        yield buf.getvalue()
        if progress:
            progress(len(part))


def cut_notice(rows_sent: int) -> str:
    """The CSV file's last line when an error cuts the export: the file says itself that it is
    not whole (a client on HTTP/1.0, or a proxy speaking it, cannot tell a cut from the end)."""
    buf = io.StringIO()
    csv.writer(buf).writerow(
        [
            _(
                "EXPORT INCOMPLETE: an error stopped it after %(n)d rows; this file is not the"
                " whole export. Export again.",
                n=rows_sent,
            )
        ]
    )
    return buf.getvalue()


# The rows of an Excel sheet, its header included: XlsxWriter (constant memory) drops any row past
# it without a word, so a longer export goes on in another sheet (a test lowers it).
SHEET_ROWS = 1_048_576


def sheet_name(k: int) -> str:
    """The k-th sheet's name (from 1): Entries, then Entries (continued, sheet 2)... (a sheet's
    name has at most 31 characters)."""
    name = _("Entries")
    return name if k == 1 else _("%(sheet)s (continued, sheet %(n)d)", sheet=name, n=k)[:31]


def write_xlsx(
    chunks: Iterable[list], target, progress: Callable[[int], None] | None = None
) -> int:
    """Write the XLSX workbook to target (a path or file); return the number of rows.

    chunks: rows(..., guard=False): every text is written as a string cell, as entered
    (strings_to_formulas off: never a formula, no ' needed); the time is a date-time cell in
    local time, so a spreadsheet sorts and filters by it (a time the clocks show twice shows
    its UTC offset beside it). Rows past a sheet's last (SHEET_ROWS) go on in the next sheet,
    which has the same header and says it continues the first: every row is in the file."""
    book = xlsxwriter.Workbook(
        target, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    bold = book.add_format({"bold": True})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    header = headers()

    def new_sheet(k: int):
        sheet = book.add_worksheet(sheet_name(k))
        sheet.set_column(0, 0, 20)  # the whole time: a narrower column shows ####
        sheet.write_row(0, 0, header, bold)
        sheet.freeze_panes(1, 0)
        return sheet

    sheets = 1
    sheet = new_sheet(sheets)
    n = r = 0  # rows written in all, and in this sheet
    offsets: dict[str, Any] = {}  # a time the clocks show twice: shown with its UTC offset
    parse = datetime.fromisoformat
    for part in chunks:
        for row in part:
            if r == SHEET_ROWS - 1:
                sheets += 1
                sheet = new_sheet(sheets)
                r = 0
            n += 1
            r += 1
            at, offset = row[0][:19], row[0][19:]
            shown = when
            if offset:
                shown = offsets.get(offset) or offsets.setdefault(
                    offset, book.add_format({"num_format": f'yyyy-mm-dd hh:mm:ss "{offset}"'})
                )
            sheet.write_datetime(r, 0, parse(at), shown)
            sheet.write_row(r, 1, row[1:])
        if progress:
            progress(len(part))
    book.close()
    return n


def xlsx_tempfile(chunks: Iterable[list]) -> str:
    """Write the workbook to a temporary file and return its path (the caller removes it)."""
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        write_xlsx(chunks, path)
    except BaseException:
        os.unlink(path)
        raise
    return path


def filename(ext: str, now: datetime, tz: ZoneInfo) -> str:
    """entries-20200215-0830.csv"""
    return f"entries-{now.astimezone(tz).strftime('%Y%m%d-%H%M')}.{ext}"


def audited_download(table: Any, formats: Any, kind: str, what: str, about: str = "") -> Response:
    """A console table with its day and scope (the roll-call, a campaign's coverage) as a CSV or
    XLSX file named what-day[-scope].kind (formats: its module, as pages.table_download takes
    it); the export is written to the audit log (target what.kind, the file's name after
    `about`)."""
    name = f"{what}-{table.day.isoformat()}{'-' + table.scope if table.scope else ''}"
    response = table_download(table, formats, kind, name)
    audit_action("export", f"{what}.{kind}", f"{about} {name}" if about else name)
    return response
