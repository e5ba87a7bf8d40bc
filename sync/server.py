"""The upstream side of the protocol: cursors per source and a push applied with its cursor."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from . import peers, wire
from .peers import Peer
from .records import Invalid, Refusal
from .store import APPLIED, CLOCK_TOLERANCE, HELD, Result, iso, parse_time, utcnow


class BatchError(Refusal):
    """A push body that is not acceptable as a whole; nothing of it is stored. Its code also
    picks the HTTP status."""


@dataclass(frozen=True)
class Push:
    """A checked push body."""

    source: str
    records: list[Any]
    since: int | None = None  # the cursor the sender read; None: "continues from your cursor"
    upto: int | None = None  # the highest seq of the sender's change log this batch covers
    upto_uuid: str | None = None
    upto_chain: str | None = None  # the sender's change-log chain at upto
    reset: bool = False  # the sender's log disagrees with our cursor: take upto even if lower
    sent_at: datetime | None = None  # phones: their clock as they sent (None: an older phone)


def _seq(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= wire.MAX_INT:
        raise BatchError(f"{name} must be a whole number ≥ 0", "bad_seq", field=name)
    return value


def _label(value: Any, name: str) -> str | None:
    """An upto_uuid or upto_chain: stored with the cursor, so short text or nothing."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64 or wire.problem(value) is not None:
        raise BatchError(f"{name} must be a string", "bad_seq", field=name)
    return value


def _sent_at(value: Any) -> datetime | None:
    """A phone's clock as it sent its push: an ISO 8601 time with a zone, or none given.

    A time within the clock tolerance of the end of time (9999-12-31T23:55Z) is no clock's:
    refused as the others are, not a crash where the push's records are judged by it.
    """
    if value is None:
        return None
    try:
        sent_at = parse_time(value)
        iso(sent_at + CLOCK_TOLERANCE)  # as apply_batch judges by it: OverflowError
    except (Invalid, OverflowError):
        raise BatchError("sent_at must be an ISO 8601 time", "bad_sent_at") from None
    return sent_at


def parse_push(body: Any, peer: Peer, *, max_records: int) -> Push:
    """Check the shape of a push body sent by peer; raise BatchError, change nothing."""
    if not isinstance(body, Mapping):
        raise BatchError("the body must be a JSON object", "not_object")
    source = body.get("source")
    if not isinstance(source, str) or not source:
        raise BatchError("source must be the sender's id", "bad_source")
    if source != peer.id:
        raise BatchError("source is not the peer the token belongs to", "wrong_source")
    records = body.get("records")
    if not isinstance(records, list):
        raise BatchError("records must be a list", "bad_records")
    if len(records) > max_records:
        raise BatchError(
            f"at most {max_records} records per batch", "too_many", n=len(records), max=max_records
        )
    if peer.kind != "instance":
        # Phones: no cursor, dedupe by UUID only (their numbering restarts when storage is wiped).
        return Push(source, records, sent_at=_sent_at(body.get("sent_at")))
    top, top_uuid = None, None
    for raw in records:
        if not isinstance(raw, Mapping):
            continue  # apply_batch rejects it with a reason; the batch stays acceptable
        seq = raw.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= wire.MAX_INT:
            raise BatchError(
                "every record from an instance carries its seq", "bad_seq", field="seq"
            )
        if top is None or seq > top:
            top, top_uuid = seq, raw.get("uuid")
    # The cursor names the record at the top seq; one whose uuid is refused names none.
    if not (isinstance(top_uuid, str) and len(top_uuid) <= 64 and wire.problem(top_uuid) is None):
        top_uuid = None
    since = _seq(body.get("since"), "since")
    upto = _seq(body.get("upto"), "upto")
    upto_uuid = body.get("upto_uuid")
    if upto is None:
        upto, upto_uuid = top, top_uuid
    elif top is not None and top > upto:
        raise BatchError("upto is lower than a record's seq", "bad_seq", field="upto")
    upto_uuid = _label(upto_uuid, "upto_uuid")
    upto_chain = _label(body.get("upto_chain"), "upto_chain")
    if since is not None and upto is not None and since > upto:
        raise BatchError("since is higher than upto", "bad_seq", field="since")
    return Push(source, records, since, upto, upto_uuid, upto_chain, body.get("reset") is True)


def cursor(conn: sqlite3.Connection, source: str) -> tuple[int, str | None]:
    """(seq, uuid at that seq) committed here from source; (0, None) for a new source."""
    row = conn.execute("SELECT seq, uuid FROM sync_cursors WHERE source = ?", (source,)).fetchone()
    return (row[0], row[1]) if row else (0, None)


def _advance(conn: sqlite3.Connection, push: Push, now: str) -> int:
    """Move the source's cursor as far as this batch proves it is contiguous; never skip a gap.
    Returns the cursor after."""
    seq, _uuid = cursor(conn, push.source)
    if push.upto is None:
        return seq
    since = seq if push.since is None else push.since
    if since > seq:
        # A gap: we hold less than the sender thinks (restored from an older copy). Keep our
        # cursor; the answer tells the sender to resend from it.
        return seq
    if push.upto <= seq and not push.reset:
        return seq  # a repeat, or a slower second pusher of the same source
    conn.execute(
        "INSERT INTO sync_cursors (source, seq, uuid, chain, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (source) DO UPDATE SET seq = excluded.seq, uuid = excluded.uuid,"
        " chain = excluded.chain, updated_at = excluded.updated_at",
        (push.source, push.upto, push.upto_uuid, push.upto_chain, now),
    )
    return push.upto


class Save(Protocol):
    """How records are stored: sync.apply_batch bound to a registry, origin and horizon."""

    def __call__(
        self,
        records: Sequence[Any],
        *,
        source: str,
        device: str | None,
        keep_origin: bool,
        received_at: datetime,
        inside: Callable[[sqlite3.Connection, list[Result]], None],
        sent_at: datetime | None = None,
    ) -> list[Result]: ...


def receive(
    peer: Peer, push: Push, save: Save, *, received_at: datetime | None = None
) -> tuple[list[Result], int | None]:
    """Store a checked push in one transaction with its cursor and the peer's counters.

    save is the one write path (fieldapp.records.save, or apply_batch bound in tests). Returns
    the results and, for an instance, the cursor after the batch (None for a phone). A phone's
    clock as it sent (push.sent_at) goes to save, which holds what a wrong clock stamped.
    """
    now = received_at or utcnow()
    now_iso = iso(now)
    after: list[int] = []

    def inside(c: sqlite3.Connection, results: list[Result]) -> None:
        peers.pushed(c, peer.id, sum(1 for r in results if r.status == APPLIED), now_iso)
        # A batch with a record held back leaves the cursor where it was until the sender has
        # kept that record aside (it then moves the cursor with an empty push): a sender that
        # dies in between sends the batch again, and nothing is lost.
        if peer.kind == "instance":  # the cursor after, in the transaction: ours, not a rival's
            if all(r.status != HELD for r in results):
                after.append(_advance(c, push, now_iso))
            else:
                after.append(cursor(c, peer.id)[0])

    clock = {"sent_at": push.sent_at} if push.sent_at is not None else {}
    results = save(
        push.records,
        source=peer.id,
        device=peer.id if peer.kind == "device" else None,
        keep_origin=peer.kind == "instance",  # a phone's records take this instance's id
        received_at=now,
        inside=inside,
        **clock,
    )
    return results, (after[0] if after else None)


def cursor_answer(conn: sqlite3.Connection, peer: Peer) -> dict[str, Any]:
    """The JSON answer of GET /sync/v1/cursor for peer: its cursor (as cursor() reads it) and
    the sender's change-log chain there, if it told us."""
    row = conn.execute(
        "SELECT seq, uuid, chain FROM sync_cursors WHERE source = ?", (peer.id,)
    ).fetchone()
    seq, uuid, chain = row if row else (0, None, None)
    return {"source": peer.id, "cursor": seq, "uuid": uuid, "chain": chain}
