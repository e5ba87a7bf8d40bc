"""The record kinds this instance knows, and the one way records are written: sync.apply_batch.

A gate form, a phone's outbox and a downstream instance all store records through save(), so
the change log, dedupe by UUID and retention apply the same to all of them.
"""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, current_app
from flask_babel import gettext as _

import sync

from . import db, instance

# Each module here has record_kinds(config) -> list[sync.RecordKind].
KIND_MODULES = ("fieldapp.entries", "fieldapp.corrections", "fieldapp.cases", "fieldapp.reports")


def build_registry(config: Mapping[str, Any]) -> sync.Registry:
    """A registry of every kind the domain modules declare."""
    registry = sync.Registry()
    for name in KIND_MODULES:
        for kind in importlib.import_module(name).record_kinds(config):
            registry.add(kind)
    return registry


def registry() -> sync.Registry:
    """The current app's registry."""
    return current_app.extensions["fieldapp.records"]


def retention_days(conn: sqlite3.Connection) -> int:
    """Retention in days: the value pulled from upstream if any, else this instance's setting."""
    row = conn.execute("SELECT value FROM settings WHERE name = 'retention_days'").fetchone()
    return int(row[0]) if row else int(current_app.config["RETENTION_DAYS"])


def save(
    conn: sqlite3.Connection,
    records: Sequence[Any],
    *,
    source: str,
    device: str | None = None,
    **options: Any,
) -> list[sync.Result]:
    """Store wire records made here, on a phone or downstream; one result each.

    options go to sync.apply_batch (received_at; inside, which the sync endpoint uses to move
    its cursor in the same transaction). conn reads (validation); the app's writer writes, so
    the batches of concurrent requests share a commit. A caller with a transaction open on
    conn (a console edit written with its audit row) gets the write on conn, in it.
    """
    from .retention import redact_rejects

    caller_inside = options.pop("inside", None)

    def inside(c: sqlite3.Connection, results: list[sync.Result]) -> None:
        # Refused records are kept for review: never with a full ID number in clear.
        redact_rejects(c, results)
        if caller_inside is not None:
            caller_inside(c, results)

    return sync.apply_batch(
        conn,
        registry(),
        records,
        source=source,
        origin=instance.instance_id(conn),
        device=device,
        horizon=sync.horizon_for(retention_days(conn)),
        inside=inside,
        describe=describe,
        writer=None if conn.in_transaction else db.writer(),
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
            "The record was made in the future: check the date and time of the phone."
        ),
        "device": lambda: _("The record names another phone than the one that sent it."),
        "origin": lambda: _("The record names its instance in a way that is not valid."),
        "conflict": lambda: _(
            "Another record with the same id but other content is stored already: the first"
            " one is kept, this one is kept for review."
        ),
        "unchecked": lambda: _("This record could not be checked; it is kept for review."),
    }
    word = words.get(exc.code)
    return word() if word is not None else str(exc)


def init_app(app: Flask) -> None:
    """Build the registry once per app."""
    app.extensions["fieldapp.records"] = build_registry(app.config)
