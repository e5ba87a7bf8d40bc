"""Applying a batch of records to a database: a set union keyed by UUID, in one transaction."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import operator
import re
import sqlite3
import threading
import uuid as uuidlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from . import wire
from .records import Data, Invalid, NotYet, RecordKind, Registry

log = logging.getLogger(__name__)

# Checking a batch's records is Python from end to end, and Python runs one thread at a time
# (the GIL): in one process, one batch is checked at a time, while another is written. Eight
# pushes checked at once would only take turns, and the switching costs CPU (a tenth of the
# push's: bench/NOTES.md, fourteenth stop).
_CHECKING = threading.Lock()

APPLIED, DUPLICATE, CONFLICT, REJECTED, EXPIRED, HELD = (
    "applied",
    "duplicate",
    "conflict",
    "rejected",
    "expired",
    "held",  # not stored yet (NotYet): the sender keeps it and sends it again
)
# A device clock this far ahead of ours is wrong, not early.
MAX_CLOCK_AHEAD = timedelta(days=1)
# A phone whose clock, as it sends, is further than this from ours has a wrong clock: what it
# recorded by that clock is answered held with the offset, for the phone to time it again.
CLOCK_TOLERANCE = timedelta(minutes=10)
COMMON_COLUMNS = ("uuid", "hash", "origin", "device", "recorded_at", "received_at")


class Result(NamedTuple):
    """What became of one record of a batch (a tuple: one is made per record ingested)."""

    uuid: str
    status: str
    reason: str = ""
    # Held because the phone's clock is wrong: ours minus the phone's, in milliseconds; the
    # phone adds it to the record's recorded_at and sends the record again.
    clock_offset_ms: int | None = None

    def as_dict(self) -> dict[str, str | int]:
        """The JSON shape of a result."""
        out: dict[str, str | int] = {"uuid": self.uuid, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.clock_offset_ms is not None:
            out["clock_offset_ms"] = self.clock_offset_ms
        return out


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """A UTC timestamp as stored everywhere: 2026-11-23T08:30:00.000Z (sorts as text)."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clock_offset_ms(now: datetime, sent_at: datetime) -> int:
    """How far a sender's clock is behind ours (negative: ahead), in whole milliseconds."""
    return (now - sent_at) // timedelta(milliseconds=1)


def horizon_for(retention_days: int, now: datetime | None = None) -> str:
    """The oldest recorded_at still kept under a retention of that many days."""
    return iso((now or utcnow()) - timedelta(days=retention_days))


# The stored forms of a timestamp and a uuid. What a sender sends is nearly always in them
# already: it is then only checked, not rebuilt (a tenth of a push's Python per record).
_STORED_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
# A record's id as crypto.randomUUID() and Python's uuid write it; the app's forms check a
# roster person's id against the same pattern (fieldapp.rules).
UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_STORED_UUID = re.compile(UUID_PATTERN)


def normal_time(value: Any) -> str:
    """A timestamp in the stored form (UTC, milliseconds, Z); raise Invalid otherwise."""
    if isinstance(value, str) and _STORED_TIME.fullmatch(value):
        parse_time(value)  # a real date and time (no 30 February)
        return value
    return iso(parse_time(value))


def parse_time(value: Any) -> datetime:
    """Parse an ISO 8601 timestamp with a zone; raise Invalid otherwise."""
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid("recorded_at must be an ISO 8601 timestamp", "bad_time")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("recorded_at must be an ISO 8601 timestamp", "bad_time") from None
    if dt.tzinfo is None:
        raise Invalid("recorded_at must carry a time zone (e.g. Z)", "bad_time")
    try:
        dt.astimezone(UTC)  # 0001-01-01T00:00+14:00 has no UTC time: refused, not a crash
    except OverflowError:
        raise Invalid("recorded_at must be an ISO 8601 timestamp", "bad_time") from None
    return dt


def canonical_uuid(value: Any, field: str = "uuid") -> str:
    """The lower-case hyphenated form of a UUID; raise Invalid otherwise."""
    if isinstance(value, str) and len(value) <= 40:
        if _STORED_UUID.fullmatch(value):
            return value
        try:
            return str(uuidlib.UUID(value))
        except ValueError:
            pass
    raise Invalid(f"{field} must be a UUID string", "bad_uuid", field=field)


def content_hash(kind: str, uuid: str, recorded_at: str, device: str | None, data: Data) -> str:
    """Hash of what the device recorded; the same record hashes the same on every instance.

    The definition (docs/sync-protocol.md): the first 32 hex digits of the SHA-256 of the
    UTF-8 JSON text of [kind, uuid, recorded_at, device, data], object keys sorted, no
    whitespace, non-ASCII characters as themselves, numbers as Python's json writes them.
    """
    text = _HASH_JSON.encode([kind, uuid, recorded_at, device, data])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# The JSON of the content hash: json.dumps(sort_keys=True, separators=(",", ":"),
# ensure_ascii=False), its encoder made once rather than at every record. A record read from
# JSON holds no cycle to look for (check_circular changes nothing else).
_HASH_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or join the caller's transaction."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def apply_batch(
    conn: sqlite3.Connection,
    registry: Registry,
    records: Sequence[Any],
    *,
    source: str,
    origin: str,
    device: str | None = None,
    keep_origin: bool = False,
    horizon: str | None = None,
    received_at: datetime | None = None,
    sent_at: datetime | None = None,
    inside: Callable[[sqlite3.Connection, list[Result]], None] | None = None,
    describe: Callable[[Invalid], str] | None = None,
    review: Callable[[Any], Any] | None = None,
    phone: bool | None = None,
) -> list[Result]:
    """Store a batch of wire records; return one Result per record, in order.

    source names who sent the batch (for the review of rejects). origin is this instance: the
    first instance to accept a record sets its origin, so only records relayed by another
    instance (keep_origin) keep the one they carry. device, when the sender is a phone, is
    stamped on every record. Records recorded before horizon are acknowledged as expired and
    not stored. All of it happens in one transaction: a failure stores nothing. inside, if
    given, runs in that same transaction after the records are written (cursor, counters);
    validation runs before the write lock is taken (one batch at a time in a process), so a
    batch is checked while another is written. describe words a refusal for the sender and
    the reviewer (the app's language); else its message. review gives a refused record as it
    is kept for review (the app masks ID numbers).
    sent_at is a phone's clock as it sent the batch (None: not known). When it is further
    than CLOCK_TOLERANCE from ours, a record stamped by that clock (recorded_at no later than
    sent_at, and not timed again already: "restamped") cannot be placed in time: it is held
    with the offset (Result.clock_offset_ms), nothing of it stored, whatever its age. Such a
    phone's record whose only difference from the one stored under its uuid is its time of
    recording is a duplicate (the instance's gate form or an earlier correction timed it).
    A caller with a transaction open on conn gets the write in it. phone (by default: device
    is given) says the records come from a phone: of a kind phones do not make
    (RecordKind.from_phones), they are refused.

    Whatever a record holds, it gets a result of its own: a value no database could store,
    or one a kind's validate() trips over, refuses that record and no other.
    """
    now = received_at or utcnow()
    now_iso = iso(now)
    latest_allowed = iso(now + MAX_CLOCK_AHEAD)
    offset_ms = None if sent_at is None else clock_offset_ms(now, sent_at)
    # Records stamped by a wrong clock: recorded no later than that clock said at sending.
    wrong_clock = None
    if sent_at is not None and abs(now - sent_at) > CLOCK_TOLERANCE:
        wrong_clock = iso(sent_at + CLOCK_TOLERANCE)
    from_phone = device is not None if phone is None else phone
    results: list[Result | None] = [None] * len(records)
    # Per kind: the kind, and (index in the batch, uuid, content hash, row) per valid record.
    pending: dict[str, tuple[RecordKind, list[tuple[int, str, str, tuple[Any, ...]]]]] = {}
    rejects: list[tuple[str, str, str, str, str, str, str]] = []
    word = describe or str
    reads = _Reads(conn)

    def body(raw: Any) -> str:
        """A refused record as it is kept for review: made only for the refused ones."""
        return wire.dump_for_review(review(raw) if review else raw)

    with _CHECKING:
        for i, raw in enumerate(records):
            is_map = isinstance(raw, Mapping)
            given_uuid = raw.get("uuid") if is_map else None
            kind_name = raw.get("kind") if is_map else None
            try:
                if not is_map:
                    raise Invalid("a record must be a JSON object", "not_object")
                rid = canonical_uuid(given_uuid)
                kind = registry.get(kind_name) if isinstance(kind_name, str) else None
                if kind is None:
                    raise Invalid("unknown record kind", "unknown_kind", kind=_shown(kind_name))
                if from_phone and not kind.from_phones:
                    raise Invalid("a phone does not send records of this kind", "phone_kind")
                recorded_at = normal_time(raw.get("recorded_at"))
                if (
                    wrong_clock is not None
                    and recorded_at <= wrong_clock
                    and raw.get("restamped") is not True
                ):
                    raise NotYet("the phone's clock is wrong", "clock", offset_ms=offset_ms)
                if recorded_at > latest_allowed:
                    raise NotYet("recorded_at is in the future: check the device's clock", "future")
                rec_device = raw.get("device")
                if device is not None:
                    if rec_device not in (None, device):
                        raise Invalid(
                            "record names another device than the one sending it", "device"
                        )
                    rec_device = device
                elif rec_device is not None and not _is_id(rec_device):
                    raise Invalid("device must be an id of at most 64 characters", "device")
                rec_origin = origin
                if keep_origin and raw.get("origin") not in (None, ""):
                    rec_origin = raw["origin"]
                    if not _is_id(rec_origin):
                        raise Invalid("origin must be an id of at most 64 characters", "origin")
                data = raw.get("data")
                if not isinstance(data, Mapping):
                    raise Invalid("data must be a JSON object", "not_object")
                if kind.expires and horizon is not None and recorded_at < horizon:
                    results[i] = Result(rid, EXPIRED)
                    continue
                try:
                    clean = kind.validate(reads, dict(data))
                    digest = content_hash(kind.name, rid, recorded_at, rec_device, clean)
                    stored = kind.to_row(clean)
                    values = tuple(map(stored.__getitem__, kind.columns))
                    _storable(values)
                except Invalid:
                    raise
                except UnicodeEncodeError:  # a lone surrogate the kind kept: no database stores it
                    raise Invalid(_WIRE_PROBLEMS["text"], "text") from None
                except Exception:  # a kind's bug must cost one record, never the batch
                    log.exception("record %s of kind %s could not be checked", rid, kind.name)
                    raise Invalid("this record could not be checked", "unchecked") from None
                row = (rid, digest, rec_origin, rec_device, recorded_at, now_iso) + values
                pending.setdefault(kind.name, (kind, []))[1].append((i, rid, digest, row))
            except Invalid as exc:
                reason = wire.printable(word(exc))
                shown = _shown(given_uuid)
                if isinstance(exc, NotYet):  # the sender keeps it: nothing to review here
                    offset = offset_ms if exc.code == "clock" else None
                    results[i] = Result(shown, HELD, reason, offset)
                    continue
                results[i] = Result(shown, REJECTED, reason)
                rejects.append(
                    (shown, _shown(kind_name), source, REJECTED, reason, body(raw), now_iso)
                )

    conflict = word(Invalid("same uuid, different content: the first one is kept", "conflict"))

    def conflicting(i: int, rid: str, kind: RecordKind) -> Result:
        """Record i's uuid is stored with other content: kept for review, the first one stays.
        Unless only the device differs: a phone enrolled again (a new device id) sends what its
        old enrolment sent, or its exported file names it anew. That is a repeat. So is a
        record from a phone that sends its clock (sent_at) that differs only in its time of
        recording: stored with the time the instance gave it, sent again as the phone timed it."""
        raw = records[i]
        rec_device = device if device is not None else raw.get("device")
        sql = f"SELECT device, hash, recorded_at FROM {kind.table} WHERE uuid = ?"  # noqa: S608
        stored = conn.execute(sql, (rid,)).fetchone()
        if stored is not None and (stored[0] != rec_device or sent_at is not None):
            # Checked again (it passed once): conflicts are rare, a batch's checks are not. As
            # at the first check, whatever a kind's validate() raises costs this record only.
            try:
                clean = kind.validate(reads, dict(raw["data"]))
                at = stored[2] if sent_at is not None else normal_time(raw["recorded_at"])
                same = content_hash(kind.name, rid, at, stored[0], clean) == stored[1]
            except Exception:
                same = False
            if same:
                return Result(rid, DUPLICATE)
        rejects.append((rid, kind.name, source, CONFLICT, conflict, body(records[i]), now_iso))
        return Result(rid, CONFLICT, conflict)

    with transaction(conn):
        for kind, items in pending.values():
            _write_kind(conn, kind, items, results, conflicting)
        if rejects:
            conn.executemany(
                "INSERT INTO sync_rejects (uuid, kind, source, status, reason, body, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rejects,
            )
        done = [r for r in results if r is not None]
        if inside is not None:
            inside(conn, done)
    return done


def _write_kind(
    conn: sqlite3.Connection,
    kind: RecordKind,
    items: list[tuple[int, str, str, tuple[Any, ...]]],
    results: list[Result | None],
    conflicting: Callable[[int, str, RecordKind], Result],
) -> None:
    """Store one kind's valid records of a batch and log the new ones, in batch order.

    Each uuid is inserted once (the first of the batch; later ones are compared with it);
    a uuid stored before is a duplicate if its content hash is the same, else a conflict.
    What is stored already is read first, in the write transaction: the rest is new.
    """
    first: dict[str, str] = {}
    unique = []
    for item in items:
        if item[1] not in first:
            first[item[1]] = item[2]
            unique.append(item)
    before = _stored_hashes(conn, kind.table, list(first))
    new = [item for item in unique if item[1] not in before]
    columns = COMMON_COLUMNS + kind.columns
    if new:
        insert_rows(
            conn,
            f"INSERT INTO {kind.table} ({','.join(columns)})"  # noqa: S608 -- names from code
            f" VALUES ({','.join('?' * len(columns))})",
            [item[3] for item in new],
        )
    if kind.after_write is not None and new:
        names = kind.after_write_reads or columns
        pick = operator.itemgetter(*(columns.index(name) for name in names))
        if len(names) == 1:
            kind.after_write(conn, [{names[0]: pick(item[3])} for item in new])
        else:
            kind.after_write(conn, [dict(zip(names, pick(item[3]), strict=True)) for item in new])
    inserted = {item[1] for item in new}
    chain = _last_chain(conn)
    links: list[tuple[str, str, str]] = []  # kind, uuid, chain: the change log's rows
    for i, rid, digest, _row in items:
        if rid in inserted:  # the first of the batch with this uuid, stored just now
            inserted.discard(rid)  # a repeat later in the batch is compared with it
            chain = chain_next(chain, rid)
            links.append((kind.name, rid, chain))
            results[i] = Result(rid, APPLIED)
        elif before.get(rid, first[rid]) == digest:
            results[i] = Result(rid, DUPLICATE)
        else:
            results[i] = conflicting(i, rid, kind)
    if links:
        insert_rows(conn, "INSERT INTO changes (kind, uuid, chain) VALUES (?, ?, ?)", links)


# The most parameters a statement of insert_rows binds on SQLite: its default limit since 3.32
# (SQLITE_MAX_VARIABLE_NUMBER), or the build's own if lower.
SQLITE_MAX_PARAMETERS = 32766
# The row of `?` marks of a plain `INSERT … VALUES (?, …)`: what a multi-row INSERT repeats (the
# PostgreSQL adapter's executemany reads it too).
ROW_OF_MARKS = re.compile(r"\bVALUES\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.IGNORECASE)


def insert_rows(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """conn.executemany(sql, rows) for an `INSERT … VALUES (?, …)`, on SQLite as few multi-row
    INSERTs as its limit on parameters allows. SQLite lets go of the GIL for each statement it
    runs: a thread holding the write lock then waits for the GIL once per statement rather than
    once per row, behind threads checking the next batches. (PostgreSQL's executemany sends
    multi-row INSERTs by itself.)"""
    if not isinstance(conn, sqlite3.Connection):
        conn.executemany(sql, rows)
        return
    limit = min(SQLITE_MAX_PARAMETERS, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    per = max(1, limit // len(rows[0])) if rows else 1
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        conn.execute(_multirow(sql, len(chunk)), [value for row in chunk for value in row])


@lru_cache(maxsize=64)
def _multirow(sql: str, rows: int) -> str:
    """An INSERT of one row of `?` marks as the INSERT of that many rows."""
    found = ROW_OF_MARKS.search(sql)
    if found is None:
        raise ValueError("insert_rows takes an INSERT … VALUES (?, …)")
    group = found.group(0)[found.group(0).index("(") :]
    return sql[: found.end()] + ("," + group) * (rows - 1) + sql[found.end() :]


def log_again(conn: sqlite3.Connection, kind: str, uuid: str) -> None:
    """Append a change row for a record stored here already, at the end of the change log: it
    goes up again in order (a repeat there), and so past the upstream's cursor like the rest."""
    with transaction(conn):
        chain = chain_next(_last_chain(conn), uuid)
        conn.execute(
            "INSERT INTO changes (kind, uuid, chain) VALUES (?, ?, ?)", (kind, uuid, chain)
        )


def chain_next(previous: str, uuid: str) -> str:
    """The change log's hash chain one record further."""
    return hashlib.sha256(f"{previous}:{uuid}".encode()).hexdigest()[:32]


def _last_chain(conn: sqlite3.Connection) -> str:
    """The chain value of the newest change row ('' for an empty log or one from before 0004)."""
    row = conn.execute("SELECT chain FROM changes ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0] or "") if row else ""


def _stored_hashes(conn: sqlite3.Connection, table: str, uuids: list[str]) -> dict[str, str]:
    """uuid -> content hash of those of uuids stored in table."""
    found: dict[str, str] = {}
    for start in range(0, len(uuids), 900):
        chunk = uuids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT uuid, hash FROM {table} WHERE uuid IN ({marks})"  # noqa: S608 -- table from code
        found.update((row[0], row[1]) for row in conn.execute(sql, chunk).fetchall())
    return found


_WIRE_PROBLEMS = {
    "deep": "the record is nested deeper than any record kind allows",
    "text": "the record holds text that is not valid Unicode (a lone surrogate)",
    "number": "the record holds a number beyond 64 bits, NaN or infinity",
    "nul": "the record holds a NUL character (U+0000), which no database here stores",
}


def _is_id(value: Any) -> bool:
    """A device or instance id as records carry it: text of 1 to 64 characters."""
    return isinstance(value, str) and 0 < len(value) <= 64 and wire.problem(value) is None


def _storable(values: tuple[Any, ...]) -> None:
    """Refuse a row a database cannot hold: integers beyond 64 bits, NaN, infinities, text with
    U+0000 (PostgreSQL's text cannot hold it: refused on SQLite too, so that what one tier took
    every tier takes). (Text with a lone surrogate fails earlier, when the content hash
    encodes it.)"""
    for value in values:
        kind = type(value)
        if kind is str:
            if "\x00" in value:
                raise Invalid(_WIRE_PROBLEMS["nul"], "nul")
        elif kind is int:
            if not -wire.MAX_INT - 1 <= value <= wire.MAX_INT:
                raise Invalid(_WIRE_PROBLEMS["number"], "number")
        elif kind is float and not math.isfinite(value):
            raise Invalid(_WIRE_PROBLEMS["number"], "number")


class _Reads:
    """The connection as a batch's validators see it: a query asked again with the same
    parameters (is this site known?) is answered from the first time, not the database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._seen: dict[tuple[str, tuple[Any, ...]], list[Any]] = {}

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Fetched:
        """The rows of sql with params, asked of the database once per batch."""
        key = (sql, tuple(params))
        rows = self._seen.get(key)
        if rows is None:
            rows = self._seen[key] = self._conn.execute(sql, params).fetchall()
        return _Fetched(rows)


class _Fetched(list):
    """Rows read already, with a cursor's fetchone() and fetchall()."""

    def fetchone(self) -> Any:
        """The first row, or None."""
        return self[0] if self else None

    def fetchall(self) -> list[Any]:
        """Every row."""
        return list(self)


def _shown(value: Any) -> str:
    """A value the sender gave as an id or a kind, if it can be shown and stored as it is."""
    return value if _is_id(value) else ""  # "" is no id, and shown as itself
