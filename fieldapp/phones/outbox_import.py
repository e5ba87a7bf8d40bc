"""Importing a phone's exported outbox file: the same idempotent path as a push (records.save),
its records first timed as the phone would time them before sending (a clock that was wrong
while it recorded: see "A phone's wrong clock" below)."""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import gettext as _

import sync
from fieldapp import db, records
from sync.store import CLOCK_TOLERANCE, iso, parse_time, utcnow

FORMAT = "fieldapp-outbox"
MAX_RECORDS = 100_000
BATCH = 500
MS = timedelta(milliseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# How far a clock may be off before it counts as wrong, in ms (outbox.js CLOCK_TOLERANCE_MS).
TOLERANCE_MS = CLOCK_TOLERANCE // MS
UNPLACED = "unplaced"  # the count of records whose time of recording cannot be told


class OutboxFileError(ValueError):
    """A file that is not a usable outbox export; the message says why."""


class Export(NamedTuple):
    """An exported outbox file as read: its wire records (with what the phone knew of its clock
    when it kept each: contact_at, contact_offset), the phone's clock as it exported
    (exported_at) and its last contact with an instance (clock: offset_ms, at, server_at, as
    outbox.js keeps it in "meta"). Files from before the clock was exported carry neither."""

    records: list[Any]
    exported_at: Any = None
    clock: Any = None


def parse(raw: bytes) -> Export:
    """An exported outbox file's records and clock; OutboxFileError if it is not one."""
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
    return Export(out, doc.get("exported_at"), doc.get("clock"))


# ---- A phone's wrong clock ---------------------------------------------------------------------
# What the phone does before it sends (static/js/outbox.js retimeWrongClock, then the instance's
# hold of what a wrong clock stamped, sync.store.apply_batch, and the phone's restamp by the
# offset it is given), done here once for the records of a file: the import is their sending.
# The rule is outbox.js's, line for line; tests/browser/test_phone_clock.py runs both on the
# same records. Times are in milliseconds since 1970, as the phone keeps them.


# The furthest a JavaScript Date reaches from 1970, in ms: no phone keeps a time beyond it.
MAX_TIME_MS = 8.64e15


def _number(value: Any) -> bool:
    """typeof value === "number" for what a phone's JSON carries: finite, and no further from
    1970 than a Date can be (a crafted 10**400 is no number here, not a crash)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and abs(value) <= MAX_TIME_MS
    except OverflowError:  # an int too large for a float
        return False


def _ms(value: Any) -> int | None:
    """Date.parse() of a time the phone stamped, or None (not a time)."""
    try:
        return (parse_time(value) - EPOCH) // MS
    except (sync.Invalid, OverflowError):
        return None


def _iso(ms: float) -> str | None:
    """new Date(ms).toISOString(), or None for a time no date can hold."""
    try:
        return iso(EPOCH + math.trunc(ms) * MS)
    except OverflowError:
        return None


def _retimed(rec: dict[str, Any], ms: float) -> dict[str, Any]:
    """outbox.js retimed(): the record at that time, marked restamped, its stamp kept (as it is,
    should the time be none a date can hold), a day its clock set moved with it (day_moved)."""
    at = _iso(ms)
    if at is None:
        return rec
    return {
        **day_moved(rec, ms),
        "recorded_at": at,
        "restamped": True,
        "stamped_at": rec["recorded_at"],
    }


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _local_day(ms: float, zone: tzinfo) -> date | None:
    """outbox.js day(): the date at the gates of a moment in ms, or None (no date holds it)."""
    try:
        return (EPOCH + math.trunc(ms) * MS).astimezone(zone).date()
    except (OverflowError, ValueError):
        return None


def day_moved(rec: dict[str, Any], ms: float) -> dict[str, Any]:
    """outbox.js dayMoved(): the record with its day moved as its time of recording is moved to
    ms. A record whose day its phone's clock set (a screening answer, which carries the zone of
    that "today" as day_tz) is of the day by that clock: the day moves by as many calendar days,
    in that zone, as the time does; so does its test date, when a chip ("today", "yesterday")
    set it by that clock (nat_date_by_clock; a typed one is as typed). Any other record is as
    it is."""
    data, tz = rec.get("data"), rec.get("day_tz")
    if not isinstance(tz, str) or not isinstance(data, dict):
        return rec
    try:
        zone: tzinfo = ZoneInfo(tz)
    except (ValueError, ZoneInfoNotFoundError):
        zone = UTC  # the phone used its own zone, which no file tells: none of ours is wrong
    at = _ms(rec.get("recorded_at"))
    was = None if at is None else _local_day(at, zone)
    now = _local_day(ms, zone)
    names = ("day", "nat_date") if rec.get("nat_date_by_clock") is True else ("day",)
    out = dict(data)
    for name in names:
        given = data.get(name)
        if not isinstance(given, str) or not _DAY.fullmatch(given):
            continue
        try:
            out[name] = (date.fromisoformat(given) + (now - was)).isoformat()  # type: ignore[operator]
        except (TypeError, ValueError, OverflowError):
            continue
    return rec if out == data else {**rec, "data": out}


def retime_wrong_clock(
    items: list[Any], offset_now: float, now: float, tolerance: float = TOLERANCE_MS
) -> tuple[list[Any], int]:
    """outbox.js retimeWrongClock(offsetNow), mirrored: the records (in a new list) with those
    the phone's clock stamped outside what it knows for sure timed again within it, and how
    many were. offset_now is the instance's clock minus the phone's at the sending, now the
    instance's time then (the phone's Date.now() + offsetNow). A record was made after its
    phone's last contact before it was kept (contact_at, the instance's time) and no later than
    now. One inside those bounds by offset_now is left as it is. One outside is timed by the
    offset of that contact (contact_offset) if that puts it inside, else by none; else as late
    as the bounds allow, the records of one contact (stamped behind it, or ahead) keeping the
    gaps between them, the latest at now, none before the contact."""
    out = list(items)
    groups: dict[tuple[float, bool], list[tuple[int, int, float]]] = {}
    count = 0
    for i, rec in enumerate(out):
        if not isinstance(rec, dict) or rec.get("restamped"):
            continue
        at = _ms(rec.get("recorded_at"))
        if at is None:
            continue
        since = rec["contact_at"] if _number(rec.get("contact_at")) else -math.inf

        def inside(t: float, since: float = since) -> bool:
            return since - tolerance <= t <= now + tolerance

        if inside(at + offset_now):
            continue
        count += 1
        offsets = (rec.get("contact_offset"), 0)
        by = next((o for o in offsets if _number(o) and inside(at + o)), None)
        if by is not None:
            out[i] = _retimed(rec, at + by)
            continue
        # The records of one contact stamped behind it (the clock went back), or those ahead.
        groups.setdefault((since, at + offset_now > now), []).append((i, at, since))
    for group in groups.values():
        shift = now - max(at for _i, at, _since in group)
        for i, at, since in group:
            out[i] = _retimed(out[i], min(now, max(since, at + shift)))
    return out, count


def export_moment(export: Export, now: float, tolerance: float = TOLERANCE_MS):
    """(offset, instance time) of the phone's clock as it exported, the sending's offsetNow and
    now; None when the file cannot tell. The export was made after the phone's last contact
    (clock.server_at) and before this import (now): its clock then was off by what it was at
    that contact, or by nothing (it was set right since). Whichever of the two puts the export
    within those bounds is taken; if neither does (the clock went wrong since), or both do and
    they differ (an import days after a slow clock's contact: set right or not, both fit), the
    file cannot tell, and a guess would file its records days off."""
    exported, clock = _ms(export.exported_at), export.clock
    if exported is None or not isinstance(clock, dict) or not _number(clock.get("offset_ms")):
        return None
    offset = clock["offset_ms"]
    if _number(clock.get("server_at")):  # outbox.js contactAt()
        since = clock["server_at"]
    elif _number(clock.get("at")):
        since = clock["at"] + offset
    else:
        since = -math.inf
    fits = [by for by in (offset, 0) if since - tolerance <= exported + by <= now + tolerance]
    if not fits or abs(fits[0] - fits[-1]) > tolerance:
        return None
    return fits[0], exported + fits[0]


def place(export: Export, now: datetime) -> tuple[list[Any], list[tuple[str, str]]]:
    """The file's records timed as the phone would time them before sending them now, and
    [(uuid, reason)] of those whose time cannot be told (not to be stored).

    Known how far the phone's clock was off as it exported (export_moment): retimeWrongClock
    by that offset, as of the export; then what it left stamped by a clock off by more than the
    tolerance is moved by that offset, as the instance's hold and the phone's restamp do
    (apply_batch: recorded no later than the clock said at the sending, plus the tolerance). Not
    known (export_moment cannot tell): a record timed already
    (restamped) is as it is; any other cannot be placed. A file with no evidence of a clock at
    all (from before the clock was exported) is imported as stamped, as it always was."""
    now_ms = (now - EPOCH) // MS
    moment = export_moment(export, now_ms)
    items = export.records
    if moment is None:
        evidence = isinstance(export.clock, dict) or any(
            isinstance(r, dict) and _number(r.get("contact_at")) for r in items
        )
        if not evidence:
            return list(items), []
        reason = _(
            "Not imported: the file cannot tell whether the phone's clock was right when it was"
            " exported, so when this was recorded cannot be told."
        )
        keep, unplaced = [], []
        for rec in items:
            timed = not isinstance(rec, dict) or rec.get("restamped")
            if not timed and _ms(rec.get("recorded_at")) is not None:
                unplaced.append((str(rec.get("uuid")), reason))
            else:
                keep.append(rec)  # timed already, or refused as it is
        return keep, unplaced
    offset, at_export = moment
    timed, _count = retime_wrong_clock(items, offset, at_export)
    if abs(offset) <= TOLERANCE_MS:
        return timed, []
    sent_at = at_export - offset  # the phone's clock as it exported
    out = []
    for rec in timed:
        at = _ms(rec.get("recorded_at")) if isinstance(rec, dict) else None
        if at is not None and not rec.get("restamped") and at <= sent_at + TOLERANCE_MS:
            moved = _iso(at + offset)  # outbox.js restamp()
            if moved:
                rec = {**day_moved(rec, at + offset), "recorded_at": moved, "restamped": True}
        out.append(rec)
    return out, []


# ---- the import -----------------------------------------------------------------------------


def import_records(
    conn: sqlite3.Connection,
    items: list[Any],
    *,
    source: str,
    unplaced: list[tuple[str, str]] | None = None,
    received_at: datetime | None = None,
) -> tuple[Counter, list[tuple[str, str]]]:
    """Save records in one transaction; return (count per status, [(uuid, reason)] refused or
    not placed). Timed here (place), they are sent as by a clock that is right (sent_at): one
    the phone pushed itself, timed otherwise, is the same record (a duplicate), not a conflict."""
    counts: Counter = Counter()
    refused: list[tuple[str, str]] = list(unplaced or [])
    counts[UNPLACED] = len(refused)
    now = received_at or utcnow()
    with db.transaction(conn):
        for batch in db.chunks(items, BATCH):
            saved = records.save(
                conn, batch, source=source, received_at=now, sent_at=now, phone=True
            )
            for result in saved:
                counts[result.status] += 1
                if result.reason:
                    refused.append((result.uuid, result.reason))
    return counts, refused


def import_bytes(
    conn: sqlite3.Connection, raw: bytes, *, source: str
) -> tuple[Counter, list[tuple[str, str]]]:
    """Parse an exported outbox file, time its records as the phone would, import them."""
    now = utcnow()
    items, unplaced = place(parse(raw), now)
    return import_records(conn, items, source=source, unplaced=unplaced, received_at=now)


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
    if counts[UNPLACED]:
        line += " " + _(
            "%(n)d not imported: the file cannot tell whether the phone's clock was right when it"
            " was exported, so when they were recorded cannot be told. They stay on the phone:"
            " it sends them itself once it reaches this instance over the network.",
            n=counts[UNPLACED],
        )
    return line
