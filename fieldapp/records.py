"""The record kinds this instance knows, and the one way records are written: sync.apply_batch.

A gate form, a phone's outbox and a downstream instance all store records through save(), so
the change log, dedupe by UUID and retention apply the same to all of them.
"""

from __future__ import annotations

import sqlite3
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from babel.units import format_unit
from flask import Flask, current_app
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import sync
from fieldapp import instance, rules, settings
from fieldapp.rules import SPACES

# Who recorded a console record (a correction, a fever case's step, a screening follow-up's
# step), and a step's note: checked by the gate's own text rule.
AUTHOR = rules.Field(
    "author",
    "text",
    _l("Recorded by"),
    required=True,
    max_len=40,
)
NOTE = rules.Field("note", "text", _l("Note"), max_len=200)

# An area's record kinds, made for an app's settings (the entry kind needs ID_KEY).
KindsOf = Callable[[Mapping[str, Any]], list[sync.RecordKind]]


def registry() -> sync.Registry:
    """The current app's record kinds."""
    return current_app.extensions["fieldapp.records"]


def kind(
    name: str,
    table: str,
    validate: Callable[[sqlite3.Connection, dict[str, Any]], dict[str, Any]],
    columns: tuple[str, ...],
    flags: tuple[str, ...] = (),
    **options: Any,
) -> sync.RecordKind:
    """A record kind whose data is its columns, stored as they are but for the flags among them
    (yes/no: 0/1 in the table, true/false on the wire). options: sync.RecordKind's."""

    def to_row(data: Mapping[str, Any]) -> dict[str, Any]:
        row = dict(data)  # the store picks the columns out of it
        for flag in flags:
            row[flag] = int(data[flag])
        return row

    def from_row(row: sqlite3.Row) -> dict[str, Any]:
        data = {c: row[c] for c in columns}
        for flag in flags:
            data[flag] = bool(data[flag])
        return data

    return sync.RecordKind(name, table, validate, to_row, from_row, columns, **options)


def new(
    kind: str, data: Mapping[str, Any], *, uuid: str | None = None, recorded_at: str | None = None
) -> dict[str, Any]:
    """A wire record of a kind around data, ready for save(): a new one made here now, unless
    its uuid and time of recording are given."""
    return {
        "uuid": uuid or str(uuidlib.uuid4()),
        "kind": kind,
        "recorded_at": recorded_at or sync.store.iso(sync.utcnow()),
        "data": dict(data),
    }


def retention_days(conn: sqlite3.Connection, config: Mapping[str, Any] | None = None) -> int:
    """Days records are kept: the value pulled from upstream if any, else RETENTION_DAYS.
    The one reader of it; ValueError (worded) if it is not a number of days from 7 to 60."""
    row = conn.execute("SELECT value FROM settings WHERE name = 'retention_days'").fetchone()
    config = current_app.config if config is None else config
    return settings.check_retention_days(row[0] if row else config["RETENTION_DAYS"])


def checked(
    data: Mapping[str, Any], fields: Sequence[rules.Field] = rules.FIELDS
) -> dict[str, Any]:
    """data's fields normalised by their rules (rules.check); sync.Invalid, naming the first
    field refused, if any is."""
    clean, errors = rules.check(data, fields)
    if errors:
        raise sync.Invalid(rules.first_problem(errors, fields))
    return clean


def site_of(conn: sqlite3.Connection, data: Mapping[str, Any]) -> str:
    """The site a record's data names (site_id, spaces stripped), if this instance knows it;
    sync.Invalid, worded for the sender, otherwise. Every kind that belongs to a site asks here."""
    site_id = data.get("site_id")
    if isinstance(site_id, str):
        site_id = site_id.strip(SPACES)
    # A NUL is in no site's id (PostgreSQL's text cannot even hold one to look it up).
    if not isinstance(site_id, str) or not site_id or len(site_id) > 40 or "\x00" in site_id:
        raise sync.Invalid(_("The record names no site."))
    if conn.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone() is None:
        raise sync.NotYet(_("The record names a site this instance does not know."))
    return site_id


# A time of recording a live form brings is trusted this far behind our clock and ahead of it.
CLOCK_WINDOW = (timedelta(days=1), timedelta(minutes=5))
# The header in which a page's save says what the phone's clock read as it sent the form.
SENT_AT = "X-Fieldapp-Sent-At"


def recorded_at(value: Any, sent_at: Any = None) -> str:
    """The device's time of recording of a form posted as it is saved, if it is within the
    clock window of ours; else ours (no JavaScript, or a phone whose clock is wrong: ahead it
    would be refused, a day behind it could fall past the retention horizon).

    sent_at: the phone's clock as it sent the form (header SENT_AT). Further from ours than a
    push allows (sync.store.CLOCK_TOLERANCE), that clock is wrong, and the time it stamped is
    moved by the difference, as the phone times again what it pushes by that clock: a phone
    two hours slow neither files an entry made after midnight under the day before nor
    reports on time after the cutoff."""
    now = sync.utcnow()
    try:
        when = sync.store.parse_time(value)
    except sync.Invalid:
        return sync.store.iso(now)
    try:
        clock = sync.store.parse_time(sent_at) if sent_at else None
    except sync.Invalid:
        clock = None
    if clock is not None and abs(now - clock) > sync.store.CLOCK_TOLERANCE:
        try:
            when += now - clock
        except OverflowError:  # a clock at the end of time: ours, as for any time out of reach
            return sync.store.iso(now)
    behind, ahead = CLOCK_WINDOW
    return sync.store.iso(when if now - behind <= when <= now + ahead else now)


def save(
    conn: sqlite3.Connection,
    records: Sequence[Any],
    *,
    source: str,
    device: str | None = None,
    **options: Any,
) -> list[sync.Result]:
    """Store wire records made here, on a phone or downstream; one result each.

    options go to sync.apply_batch (received_at; keep_origin; inside, which the sync endpoint
    uses to move its cursor in the same transaction). A caller with a transaction open on conn
    (a console edit written with its audit row) gets the write in it.
    """
    return sync.apply_batch(
        conn,
        registry(),
        records,
        source=source,
        origin=instance.instance_id(conn),
        device=device,
        horizon=sync.horizon_for(retention_days(conn)),
        describe=describe,
        review=current_app.extensions["fieldapp.for_review"],
        **options,
    )


def describe(exc: sync.Invalid) -> str:
    """Why a record was refused, as a sentence in the user's language (the sender's phone and
    the console's review show it). A kind's own refusals come worded already."""
    field = exc.params.get("field", "uuid")
    words = {
        "not_object": lambda: _("The record is not in the form a record must have."),
        "deep": lambda: _("The record is nested deeper than any record may be."),
        "text": lambda: _("The record holds text that is not valid Unicode."),
        "number": lambda: _("The record holds a number that is too large, or not a number."),
        "nul": lambda: _("The record holds a NUL character (U+0000), which cannot be stored."),
        "bad_uuid": lambda: (
            _("The record's id is not valid.")
            if field == "uuid"
            else _("The record does not name a valid entry it concerns.")
        ),
        "unknown_kind": lambda: _(
            "This instance does not know records of the kind “%(kind)s”: update it.",
            kind=exc.params.get("kind", ""),
        ),
        "bad_time": lambda: _("The record's time of recording is not a valid time."),
        "future": lambda: _(
            "The record was made in the future: check the date and time of the phone or computer"
            " that made it. It is kept there and sent again."
        ),
        "clock": lambda: _clock_wrong(int(exc.params.get("offset_ms") or 0)),
        "device": lambda: _("The record names another phone than the one that sent it."),
        "phone_kind": lambda: _(
            "A phone does not make records of this kind: they come from the console."
        ),
        "origin": lambda: _("The record names its instance in a way that is not valid."),
        "conflict": lambda: _(
            "Another record with the same id but other content is stored already: the first"
            " one is kept, this one is kept for review."
        ),
        "unchecked": lambda: _("This record could not be checked; it is kept for review."),
    }
    word = words.get(exc.code)
    return word() if word is not None else str(exc)


def clock_gap(offset_ms: int) -> str:
    """How far a clock is off, in the unit a person sets a phone's clock by: days from two days,
    hours from two hours, else minutes ("40 天", "3 小时")."""
    minutes = abs(offset_ms) / 60000
    if round(minutes / (24 * 60)) >= 2:
        amount, unit = round(minutes / (24 * 60)), "duration-day"
    elif round(minutes / 60) >= 2:
        amount, unit = round(minutes / 60), "duration-hour"
    else:
        amount, unit = round(minutes), "duration-minute"
    return format_unit(amount, unit, length="long", locale=str(get_locale() or "zh_Hans"))


def _clock_wrong(offset_ms: int) -> str:
    """Why a phone's record is held: its clock (offset_ms behind ours; negative: ahead)."""
    if offset_ms >= 0:
        return _(
            "The phone's date and time are wrong (%(gap)s slow): the record is timed again by"
            " this instance's clock and sent again by itself. Turn on “set time automatically”"
            " in the phone's settings.",
            gap=clock_gap(offset_ms),
        )
    return _(
        "The phone's date and time are wrong (%(gap)s fast): the record is timed again by this"
        " instance's clock and sent again by itself. Turn on “set time automatically” in the"
        " phone's settings.",
        gap=clock_gap(offset_ms),
    )


def init_app(
    app: Flask, kinds: Sequence[KindsOf], for_review: Callable[[Any], Any] | None = None
) -> None:
    """The app's record kinds, and how a refused record is kept for review (masked)."""
    app.extensions["fieldapp.records"] = sync.Registry(
        kind for make in kinds for kind in make(app.config)
    )
    app.extensions["fieldapp.for_review"] = for_review
