"""Record kinds: what a record of each kind holds, how it is checked and where it is stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Data = dict[str, Any]


class Refusal(ValueError):
    """What a sender sent is not accepted; the message is the reason given to it.

    The protocol's own refusals carry a code (and params) so that the app can word them in
    the user's language.
    """

    def __init__(self, message: str, code: str = "", **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class Invalid(Refusal):
    """A record's content is not acceptable (that record is refused, not its batch); a kind's
    validate() may raise it with a message already worded."""


class NotYet(Invalid):
    """A record this instance cannot store yet, through no fault of its own: it names a site, a
    campaign or a person whose configuration has not reached this instance (or that a restore
    from an older backup took away), or it was recorded ahead of this instance's clock. It is
    answered `held`: nothing is kept here, and the sender keeps it and sends it again later."""


@dataclass(frozen=True)
class Record:
    """One record on the wire: an envelope around its kind's data."""

    uuid: str
    kind: str
    recorded_at: str
    data: Data
    device: str | None = None
    origin: str | None = None


@dataclass(frozen=True)
class RecordKind:
    """How one kind of record is validated and stored.

    validate(conn, data) returns the normalised data (the wire form the content hash is taken
    of) or raises Invalid. to_row(data) gives the table's columns for it; from_row(row) gives
    the data back, for relaying upstream. The common columns (uuid, hash, origin, device,
    recorded_at, received_at) are the store's business, not the kind's. after_write, if given,
    is called in the batch's write transaction with the rows it stored (the common columns and
    the kind's, by name), so that counts a kind keeps of its records never disagree with them.
    after_write_reads, if given, names the only columns after_write reads: its rows then hold
    just those (a row of every column costs a push of 500 entries a millisecond and a half).
    """

    name: str
    table: str
    validate: Callable[[sqlite3.Connection, Data], Data]
    to_row: Callable[[Data], Mapping[str, Any]]
    from_row: Callable[[sqlite3.Row], Data]
    columns: tuple[str, ...] = field(default=())
    expires: bool = True  # False for records kept past the entry horizon (daily reports)
    after_write: Callable[[sqlite3.Connection, list[dict[str, Any]]], None] | None = None
    after_write_reads: tuple[str, ...] = ()
    # A phone may send it (what its gate, report and screening pages make). The other kinds
    # (a coordinator's corrections and follow-ups) come from the console, or relayed by an
    # instance: a phone that sends one has it refused.
    from_phones: bool = False


class Registry:
    """The record kinds an instance knows, by name."""

    def __init__(self, kinds: Iterable[RecordKind] = ()) -> None:
        self._kinds: dict[str, RecordKind] = {}
        for kind in kinds:
            self.add(kind)

    def add(self, kind: RecordKind) -> None:
        """Register a kind; its name must be new."""
        if kind.name in self._kinds:
            raise ValueError(f"record kind {kind.name!r} registered twice")
        if not kind.columns:
            raise ValueError(f"record kind {kind.name!r} declares no columns")
        self._kinds[kind.name] = kind

    def get(self, name: Any) -> RecordKind | None:
        """The kind of that name, or None (for a name that is not even text, too)."""
        return self._kinds.get(name) if isinstance(name, str) else None

    def __iter__(self):
        return iter(self._kinds.values())

    def names(self) -> list[str]:
        """Names of all registered kinds."""
        return list(self._kinds)
