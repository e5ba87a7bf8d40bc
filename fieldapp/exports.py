"""Exports of the log for the chosen filters: CSV streamed in constant memory, XLSX written by
XlsxWriter in constant-memory mode. Personal data follows the same rules as on screen.
"""

from __future__ import annotations

import csv
import getpass
import io
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import click
import xlsxwriter
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _

from . import audit, logbook, rules
from .db import connect, transaction
from .entries import IdVault
from .i18n import cli_locale

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
    tz: ZoneInfo, role: str, full: bool, vault: IdVault | None, sites: dict[str, str]
) -> Callable:
    """A function turning an entry (current value) into an export row for that role.

    full (admins and coordinators only, audited) gives full phone and ID numbers; sites maps
    site ids to names (logbook.site_names).
    """
    labels = {
        k: {key: str(v) for key, v in d.items()}
        for k, d in (
            ("direction", rules.DIRECTIONS),
            ("person_type", rules.PERSON_TYPES),
            ("health_code", rules.HEALTH_CODES),
            ("fever_action", rules.FEVER_ACTIONS),
        )
    }
    yes, no = _("yes"), ""
    full = full and role in ("admin", "coordinator") and vault is not None
    offset = datetime.now(tz).utcoffset() or timedelta(0)
    viewer = role == "viewer"
    mask_phone, mask_name = rules.mask_phone, logbook.mask_name
    d_labels, p_labels = labels["direction"], labels["person_type"]
    h_labels, f_labels = labels["health_code"], labels["fever_action"]
    minutes: dict[str, str] = {}

    def local(ts: str) -> str:
        # Stored times are fixed-format UTC text; converting once per minute (the gates' zone
        # has had no DST since 1991, so one offset holds) keeps the export fast.
        key = ts[:16]
        found = minutes.get(key)
        if found is None:
            if len(minutes) > 100_000:
                minutes.clear()
            found = (datetime.fromisoformat(key).replace(tzinfo=UTC) + offset).strftime(
                "%Y-%m-%d %H:%M"
            )
            minutes[key] = found
        return found + ts[16:19]

    columns = logbook.ITER_COLUMNS

    def make(e) -> list:
        if type(e) is dict:  # corrected: corrections.current() made it
            corrected = yes if e["corrected"] else no
            void = e["void_reason"] if e["void"] else no
            e = tuple(e[c] for c in columns)
        else:
            corrected = void = no
        (_id, uuid, recorded_at, site_id, direction, person_type, name, phone, id_masked,
         id_cipher, temperature, fever_action, health_code, travel, where, plate, dest, note,
         vol) = e  # fmt: skip
        # Free text could start a formula in a spreadsheet (CSV injection): quote it.
        if name[:1] in RISKY:
            name = "'" + name
        if where[:1] in RISKY:
            where = "'" + where
        if dest[:1] in RISKY:
            dest = "'" + dest
        if note[:1] in RISKY:
            note = "'" + note
        if vol[:1] in RISKY:
            vol = "'" + vol
        return [
            local(recorded_at),
            sites.get(site_id, ""),
            d_labels.get(direction, direction),
            p_labels.get(person_type, person_type),
            mask_name(name) if viewer else name,
            phone if full else mask_phone(phone),
            vault.open(id_cipher) if full else id_masked,  # type: ignore[union-attr]
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


RISKY = frozenset("=+-@\t\r")


def csv_chunks(
    conn: sqlite3.Connection,
    f: logbook.Filters,
    site_ids: list[str] | None,
    tz: ZoneInfo,
    make: Callable,
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """The CSV text in pieces (UTF-8 BOM first, so Excel reads Chinese); memory stays flat."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write(BOM)
    writer.writerow(headers())
    yield buf.getvalue()
    for chunk in logbook.iterate(conn, f, site_ids, tz):
        buf.seek(0)
        buf.truncate()
        writer.writerows([make(e) for e in chunk])
        yield buf.getvalue()
        if progress:
            progress(len(chunk))


def write_xlsx(
    conn: sqlite3.Connection,
    f: logbook.Filters,
    site_ids: list[str] | None,
    tz: ZoneInfo,
    make: Callable,
    target,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the XLSX workbook to target (a path or file); return the number of rows."""
    book = xlsxwriter.Workbook(
        target, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = book.add_worksheet(_("Entries"))
    bold = book.add_format({"bold": True})
    sheet.write_row(0, 0, headers(), bold)
    sheet.freeze_panes(1, 0)
    n = 0
    for chunk in logbook.iterate(conn, f, site_ids, tz):
        for e in chunk:
            n += 1
            sheet.write_row(n, 0, make(e))
        if progress:
            progress(len(chunk))
    book.close()
    return n


def xlsx_tempfile(*args, **kwargs) -> str:
    """Write the workbook to a temporary file and return its path (the caller removes it)."""
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    write_xlsx(*args, target=path, **kwargs)
    return path


def filename(ext: str, now: datetime, tz: ZoneInfo) -> str:
    """entries-20200215-0830.csv"""
    return f"entries-{now.astimezone(tz).strftime('%Y%m%d-%H%M')}.{ext}"


# --- command line --------------------------------------------------------------------------


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("--site", "site_code", help="Only this site (its code)")
@click.option("--from", "date_from", help="First local day, YYYY-MM-DD")
@click.option("--to", "date_to", help="Last local day, YYYY-MM-DD")
@click.option("--fever", is_flag=True, help="Only temperatures ≥ 37.3 °C")
@click.option("--travel", is_flag=True, help="Only people with travel to a risk area")
@click.option("--full", is_flag=True, help="Full phone and ID numbers (written to the audit log)")
@with_appcontext
def export_command(fmt, output, site_code, date_from, date_to, fever, travel, full) -> None:
    """Export the log (all sites) to CSV or XLSX, with a progress bar."""
    from tqdm import tqdm

    conn = connect(current_app.config["DATABASE"])
    tz = logbook.zone(current_app.config["TIMEZONE"])
    try:
        with force_locale(cli_locale()):
            args = {"date_from": date_from or "", "date_to": date_to or ""}
            if site_code:
                row = conn.execute("SELECT id FROM sites WHERE code = ?", (site_code,)).fetchone()
                if row is None:
                    raise click.ClickException(
                        _("There is no site with the code %(code)s.", code=site_code)
                    )
                args["site"] = row["id"]
            if fever:
                args["fever"] = "1"
            if travel:
                args["travel"] = "1"
            filters, errors = logbook.parse_filters(args, None)
            if errors:
                raise click.ClickException(" ".join(errors))
            vault = IdVault(current_app.config.get("ID_KEY")) if full else None
            make = row_maker(tz, "admin", full, vault, logbook.site_names(conn))
            total = logbook.count(conn, filters, None, tz)
            actor = f"cli:{getpass.getuser()}"
            with transaction(conn):
                detail = f"{fmt} full={int(full)} rows={total} {filters.as_args()}"
                audit.write(conn, actor, "export", output, detail)
            with tqdm(total=total, unit="rows", disable=None) as bar:
                if fmt == "csv":
                    with open(output, "w", encoding="utf-8", newline="") as out:
                        for piece in csv_chunks(conn, filters, None, tz, make, bar.update):
                            out.write(piece)
                else:
                    write_xlsx(conn, filters, None, tz, make, output, bar.update)
    finally:
        conn.close()
    click.echo(f"{total} rows → {output}", err=True)


commands = [export_command]
