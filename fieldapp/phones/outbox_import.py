"""Importing a phone's exported outbox file: the same idempotent path as a push (records.save)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from typing import Any

from flask_babel import gettext as _

import sync
from fieldapp import db, records

FORMAT = "fieldapp-outbox"
MAX_RECORDS = 100_000
BATCH = 500


class OutboxFileError(ValueError):
    """A file that is not a usable outbox export; the message says why."""


def parse(raw: bytes) -> list[dict[str, Any]]:
    """The wire records of an exported outbox file; OutboxFileError if it is not one."""
    try:
        # As a push is read: a file nested too deep or with a number of thousands of digits is
        # refused record by record, not a crash (a 500 on the web, a traceback in the CLI).
        doc = sync.wire.decode(raw.decode("utf-8-sig"))
    except ValueError:  # bad UTF-8 and bad JSON too
        raise OutboxFileError(
            _("The file is not JSON. Choose the file the phone exported.")
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise OutboxFileError(_("The file is not an outbox export from a fieldapp phone."))
    if doc.get("version") != 1:
        raise OutboxFileError(_("This outbox file format version is not supported."))
    items = doc.get("records")
    if not isinstance(items, list):
        raise OutboxFileError(_("The file has no list of records."))
    if len(items) > MAX_RECORDS:
        raise OutboxFileError(_("The file has more than %(n)d records.", n=MAX_RECORDS))
    device = doc.get("device")
    if device is not None and not isinstance(device, str):
        raise OutboxFileError(_("The file names its phone in an unknown way."))
    out = []
    for item in items:
        if isinstance(item, dict) and device and item.get("device") is None:
            # The phone's pushes carry its device id; an import must hash the same to dedupe.
            item = {**item, "device": device}
        out.append(item)
    return out


def import_records(
    conn: sqlite3.Connection, items: list[Any], *, source: str
) -> tuple[Counter, list[tuple[str, str]]]:
    """Save records in one transaction; return (count per status, [(uuid, reason)] refused)."""
    counts: Counter = Counter()
    refused: list[tuple[str, str]] = []
    with db.transaction(conn):
        for batch in db.chunks(items, BATCH):
            for result in records.save(conn, batch, source=source):
                counts[result.status] += 1
                if result.reason:
                    refused.append((result.uuid, result.reason))
    return counts, refused


def import_bytes(
    conn: sqlite3.Connection, raw: bytes, *, source: str
) -> tuple[Counter, list[tuple[str, str]]]:
    """Parse an exported outbox file and import its records."""
    return import_records(conn, parse(raw), source=source)


def describe(summary: tuple[Counter, list[tuple[str, str]]]) -> str:
    """One line saying what an import did."""
    counts, _refused = summary
    line = _(
        "Imported: %(applied)d new, %(duplicate)d already here, %(expired)d past retention,"
        " %(refused)d refused (kept for review).",
        applied=counts["applied"],
        duplicate=counts["duplicate"],
        expired=counts["expired"],
        refused=counts["rejected"] + counts["conflict"],
    )
    if counts["held"]:
        line += " " + _(
            "%(n)d not stored yet (this instance does not know their site yet, or they were"
            " recorded ahead of its clock): keep the file and import it again later.",
            n=counts["held"],
        )
    return line
