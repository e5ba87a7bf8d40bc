"""Applying a batch of records to a database: a set union keyed by UUID, in one transaction."""

from __future__ import annotations

import hashlib
import json
import logging
import operator
import re
import sqlite3
import uuid as uuidlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, Protocol

from . import wire
from .records import Data, Invalid, RecordKind, Registry

log = logging.getLogger(__name__)

APPLIED, DUPLICATE, CONFLICT, REJECTED, EXPIRED = (
    "applied",
    "duplicate",
    "conflict",
    "rejected",
    "expired",
)
# A device clock this far ahead of ours is wrong, not early.
MAX_CLOCK_AHEAD = timedelta(days=1)
COMMON_COLUMNS = ("uuid", "hash", "origin", "device", "recorded_at", "received_at")


class Result(NamedTuple):
    """What became of one record of a batch (a tuple: one is made per record ingested)."""

    uuid: str
    status: str
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        """The JSON shape of a result."""
        out = {"uuid": self.uuid, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        return out


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """A UTC timestamp as stored everywhere: 2026-11-23T08:30:00.000Z (sorts as text)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def horizon_for(retention_days: int, now: datetime | None = None) -> str:
    """The oldest recorded_at still kept under a retention of that many days."""
    return iso((now or utcnow()) - timedelta(days=retention_days))


# The stored form of a timestamp and of a UUID: what instances send each other. Checking the
# shape is enough for those; anything else goes through the full parse.
_ISO_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# Days already checked to exist (a batch's records share a few days); bounded.
_REAL_DAYS: dict[str, bool] = {}


def normal_time(value: Any) -> str:
    """A timestamp in the stored form (UTC, milliseconds, Z); raise Invalid otherwise."""
    if isinstance(value, str) and _ISO_RE.fullmatch(value):
        if not _real_day(value):
            raise Invalid("recorded_at must be an ISO 8601 timestamp", "bad_time")
        return value
    return iso(parse_time(value))


def _real_day(value: str) -> bool:
    """Whether a timestamp of the stored shape names a real moment, not 2026-13-45T25:61."""
    if value[11:13] > "23" or value[14:16] > "59" or value[17:19] > "59":
        return False
    day = value[:10]
    real = _REAL_DAYS.get(day)
    if real is None:
        try:
            date(int(value[:4]), int(value[5:7]), int(value[8:10]))
            real = True
        except ValueError:
            real = False
        if len(_REAL_DAYS) < 4096:
            _REAL_DAYS[day] = real
    return real


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
    return dt


def canonical_uuid(value: Any, field: str = "uuid") -> str:
    """The lower-case hyphenated form of a UUID; raise Invalid otherwise."""
    if isinstance(value, str) and len(value) <= 40:
        if _UUID_RE.fullmatch(value):
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
    envelope = [kind, uuid, recorded_at, device, data]
    text = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
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


class _Rows:
    """A fetched result standing in for a cursor: fetchone, fetchall, iteration."""

    __slots__ = ("_rows", "_at")  # one is made per record checked: keep it light

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows
        self._at = 0

    def fetchone(self) -> Any:
        """The next row, or None."""
        at, rows = self._at, self._rows
        if at >= len(rows):
            return None
        self._at = at + 1
        return rows[at]

    def fetchall(self) -> list[Any]:
        """The rows not fetched yet."""
        rest, self._at = self._rows[self._at :], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class _BatchReads:
    """The connection as a kind's validate() sees it during one batch: the same query with the
    same parameters (is this site known?) is answered once per batch, not once per record."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._seen: dict[tuple[str, tuple[Any, ...]], list[Any]] = {}

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run sql; a SELECT asked before in this batch is answered from memory."""
        if type(params) is tuple:  # the usual repeat: one dict look-up (only SELECTs are kept)
            try:
                return _Rows(self._seen[(sql, params)])
            except (KeyError, TypeError):  # not asked yet; a parameter that is not hashable
                pass
        if not sql.lstrip()[:6].upper() == "SELECT":
            return self._conn.execute(sql, params)
        frozen = tuple(sorted(params.items())) if isinstance(params, Mapping) else tuple(params)
        key = (sql, frozen)
        rows = self._seen.get(key)
        if rows is None:
            rows = self._seen[key] = self._conn.execute(sql, params).fetchall()
        return _Rows(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


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
    inside: Callable[[sqlite3.Connection, list[Result]], None] | None = None,
    describe: Callable[[Invalid], str] | None = None,
    writer: Writer | None = None,
) -> list[Result]:
    """Store a batch of wire records; return one Result per record, in order.

    source names who sent the batch (for the review of rejects). origin is this instance: the
    first instance to accept a record sets its origin, so only records relayed by another
    instance (keep_origin) keep the one they carry. device, when the sender is a phone, is
    stamped on every record. Records recorded before horizon are acknowledged as expired and
    not stored. All of it happens in one transaction: a failure stores nothing. inside, if
    given, runs in that same transaction after the records are written (cursor, counters);
    validation runs before the write lock is taken, so concurrent batches overlap. describe
    words a refusal for the sender and the reviewer (the app's language); else its message.

    Whatever a record holds, it gets a result of its own: a value no database could store,
    or one a kind's validate() trips over, refuses that record and no other.

    writer, if given, does the writing (a GroupCommit: the batch commits together with other
    threads' batches, still all or nothing); otherwise it is done on conn, in the caller's
    transaction if one is open. conn is only read from then (is this site known?).
    """
    now = received_at or utcnow()
    now_iso = iso(now)
    latest_allowed = iso(now + MAX_CLOCK_AHEAD)
    results: list[Result | None] = [None] * len(records)
    # Per kind: the kind, and (index in the batch, uuid, content hash, row) per valid record.
    pending: dict[str, tuple[RecordKind, list[tuple[int, str, str, tuple[Any, ...]]]]] = {}
    rejects: list[tuple[str, str, str, str, str, str, str]] = []
    reads = _BatchReads(conn)
    getters: dict[str, Callable[[Mapping[str, Any]], tuple[Any, ...]]] = {}
    word = describe or str

    for i, raw in enumerate(records):
        is_map = isinstance(raw, Mapping)
        given_uuid = raw.get("uuid") if is_map else None
        kind_name = raw.get("kind") if is_map else None
        try:
            if not is_map:
                raise Invalid("a record must be a JSON object", "not_object")
            trouble = wire.problem(raw)
            if trouble is not None:
                raise Invalid(_WIRE_PROBLEMS[trouble], trouble)
            rid = canonical_uuid(given_uuid)
            kind = registry.get(kind_name) if isinstance(kind_name, str) else None
            if kind is None:
                raise Invalid("unknown record kind", "unknown_kind", kind=_shown(kind_name))
            recorded_at = normal_time(raw.get("recorded_at"))
            if recorded_at > latest_allowed:
                raise Invalid("recorded_at is in the future: check the device's clock", "future")
            rec_device = raw.get("device")
            if device is not None:
                if rec_device not in (None, device):
                    raise Invalid("record names another device than the one sending it", "device")
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
                clean = kind.validate(reads, dict(data))  # type: ignore[arg-type]
                digest = content_hash(kind.name, rid, recorded_at, rec_device, clean)
                group = pending.get(kind.name)
                if group is None:
                    group = pending[kind.name] = (kind, [])
                    getters[kind.name] = _columns_getter(kind.columns)
                values = getters[kind.name](kind.to_row(clean))
            except Invalid:
                raise
            except Exception:  # a kind's bug must cost one record, never the batch
                log.exception("record %s of kind %s could not be checked", rid, kind.name)
                raise Invalid("this record could not be checked", "unchecked") from None
            row = (rid, digest, rec_origin, rec_device, recorded_at, now_iso) + values
            group[1].append((i, rid, digest, row))
        except Invalid as exc:
            reason = word(exc)
            shown = _shown(given_uuid)
            results[i] = Result(shown, REJECTED, reason)
            rejects.append(
                (
                    shown,
                    _shown(kind_name),
                    source,
                    REJECTED,
                    reason,
                    wire.dump_for_review(raw),
                    now_iso,
                )
            )

    # What the write needs that does not depend on what is stored is prepared here, before
    # the write lock: the writer holds it for every other batch too.
    plans = [_Plan(kind, items) for kind, items in pending.values()]
    conflict = word(Invalid("same uuid, different content: the first one is kept", "conflict"))

    def write(conn: sqlite3.Connection) -> list[Result]:
        return _write_batch(
            conn, records, results, plans, rejects, (source, now_iso, conflict), inside
        )

    if writer is not None:
        return writer.run(write)
    with _write(conn):
        return write(conn)


class Writer(Protocol):
    """What writes a batch for apply_batch: sync.GroupCommit, or anything with its run()."""

    def run(self, work: Callable[[sqlite3.Connection], list[Result]]) -> list[Result]: ...


class _Plan:
    """One kind's valid records of a batch, ready to write: the INSERT and its rows (each uuid
    once: the first of a batch is written, later ones are compared with it), the results if
    all of them are new, and the repeats."""

    __slots__ = ("kind", "inserts", "first", "unique", "applied", "repeats")

    def __init__(self, kind: RecordKind, items: list[tuple[int, str, str, tuple[Any, ...]]]):
        self.kind = kind
        self.first: dict[str, str] = {}
        self.unique: list[tuple[int, str, str, tuple[Any, ...]]] = []
        self.repeats: list[tuple[int, str, str, tuple[Any, ...]]] = []
        for item in items:
            if item[1] in self.first:
                self.repeats.append(item)
            else:
                self.first[item[1]] = item[2]
                self.unique.append(item)
        self.applied = [(item[0], Result(item[1], APPLIED)) for item in self.unique]
        # Multi-row INSERTs: the writer lets go of the GIL once per statement, not once per
        # row (sqlite3 releases it around every step), so the batch checking beside it in
        # this process takes it from the writer less often.
        width = len(COMMON_COLUMNS) + len(kind.columns)
        per = max(1, _MAX_VARIABLES // width)
        self.inserts = [
            (
                _insert_sql(kind, min(per, len(self.unique) - start)),
                [value for item in self.unique[start : start + per] for value in item[3]],
            )
            for start in range(0, len(self.unique), per)
        ]


def _variable_limit() -> int:
    """How many values one statement may bind on this SQLite (999 before 3.32, often more)."""
    probe = sqlite3.connect(":memory:")
    try:
        return probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        probe.close()


# Values bound per statement: SQLite's own limit, at most its default since 3.32 (a build
# allowing more would only make each statement's text longer, not the write faster).
_MAX_VARIABLES = min(_variable_limit(), 32766)
_INSERTS: dict[tuple[str, tuple[str, ...], int], str] = {}


def _insert_sql(kind: RecordKind, rows: int) -> str:
    """INSERT of that many rows of kind, skipping uuids stored before (names come from code)."""
    key = (kind.table, kind.columns, rows)  # two registries may name one table differently
    sql = _INSERTS.get(key)
    if sql is None:
        columns = COMMON_COLUMNS + kind.columns
        row = "(" + ",".join("?" * len(columns)) + ")"
        sql = (
            f"INSERT INTO {kind.table} ({','.join(columns)}) VALUES "  # noqa: S608
            + ",".join([row] * rows)
            + " ON CONFLICT (uuid) DO NOTHING"
        )
        if len(_INSERTS) < 1024:
            _INSERTS[key] = sql
    return sql


def _write_batch(
    conn: sqlite3.Connection,
    records: Sequence[Any],
    checked: list[Result | None],
    plans: list[_Plan],
    refused: list[tuple[str, str, str, str, str, str, str]],
    review: tuple[str, str, str],
    inside: Callable[[sqlite3.Connection, list[Result]], None] | None,
) -> list[Result]:
    """apply_batch's write, in the transaction conn has open: a Result per record.

    review is (source, received_at, reason) for the conflicts kept for review."""
    results = list(checked)  # copies: what validation found stays as it was
    rejects = list(refused)
    chain = _last_chain(conn)
    for plan in plans:
        kind, unique = plan.kind, plan.unique
        # Insert, skipping uuids stored before; only when some were skipped (a resend) look up
        # which, by rowid: the rows this statement added are numbered after `top`.
        top = conn.execute(f"SELECT max(rowid) FROM {kind.table}").fetchone()[0] or 0  # noqa: S608
        before = conn.total_changes
        for sql, values in plan.inserts:
            conn.execute(sql, values)
        links: list[str] = []  # kind, uuid, chain, flat: the change log's rows
        if conn.total_changes - before == len(unique):  # all new: the usual batch
            name = kind.name
            for _i, rid, _digest, _row in unique:
                chain = chain_next(chain, rid)
                links += (name, rid, chain)
            for i, result in plan.applied:
                results[i] = result
            stored: dict[str, str] = {}
        else:
            stored = _stored_hashes(conn, kind.table, list(plan.first), top)
            for i, rid, digest, _row in unique:
                seen = stored.get(rid)
                if seen is None:
                    chain = chain_next(chain, rid)
                    links += (kind.name, rid, chain)
                    results[i] = Result(rid, APPLIED)
                elif seen == digest:
                    results[i] = Result(rid, DUPLICATE)
                else:
                    results[i] = _conflict(rid, kind.name, records[i], review, rejects)
        for i, rid, digest, _row in plan.repeats:
            if stored.get(rid, plan.first[rid]) == digest:
                results[i] = Result(rid, DUPLICATE)
            else:
                results[i] = _conflict(rid, kind.name, records[i], review, rejects)
        _log_changes(conn, links)
    if rejects:
        conn.executemany(
            "INSERT OR IGNORE INTO sync_rejects"
            " (uuid, kind, source, status, reason, body, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rejects,
        )
    done = [r for r in results if r is not None]
    if inside is not None:
        inside(conn, done)
    return done


def _log_changes(conn: sqlite3.Connection, links: list[str]) -> None:
    """Append change-log rows, given flat (kind, uuid, chain, kind, ...), as many rows per
    statement as SQLite binds values (a batch's rows in one statement).

    One multi-row INSERT instead of executemany's statement per row: AUTOINCREMENT reads and
    writes sqlite_sequence once per statement, so the log cost about half as much per record.
    """
    step = 3 * (_MAX_VARIABLES // 3)
    for start in range(0, len(links), step):
        part = links[start : start + step]
        conn.execute(
            "INSERT INTO changes (kind, uuid, chain) VALUES "  # noqa: S608 -- only placeholders
            + ",".join(["(?,?,?)"] * (len(part) // 3)),
            part,
        )


def chain_next(previous: str, uuid: str) -> str:
    """The change log's hash chain one record further."""
    return hashlib.sha256(f"{previous}:{uuid}".encode()).hexdigest()[:32]


def _last_chain(conn: sqlite3.Connection) -> str:
    """The chain value of the newest change row ('' for an empty log or one from before 0004)."""
    row = conn.execute("SELECT chain FROM changes ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0] or "") if row else ""


def _columns_getter(columns: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function giving a kind's row values in column order, always as a tuple."""
    pick = operator.itemgetter(*columns)
    if len(columns) == 1:
        return lambda row: (pick(row),)
    return pick


def _stored_hashes(
    conn: sqlite3.Connection, table: str, uuids: list[str], top: int
) -> dict[str, str]:
    """uuid -> hash for those of uuids stored in table at rowid top or below (before a write)."""
    found: dict[str, str] = {}
    for start in range(0, len(uuids), 900):
        chunk = uuids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT uuid, hash FROM {table} WHERE uuid IN ({marks}) AND rowid <= ?"  # noqa: S608 -- table from code
        found.update(conn.execute(sql, [*chunk, top]).fetchall())
    return found


def _conflict(
    rid: str, kind: str, raw: Any, review: tuple[str, str, str], rejects: list[tuple[str, ...]]
) -> Result:
    """The result for a uuid stored with other content; the record is kept for review."""
    source, now_iso, reason = review
    rejects.append((rid, kind, source, CONFLICT, reason, wire.dump_for_review(raw), now_iso))
    return Result(rid, CONFLICT, reason)


_WIRE_PROBLEMS = {
    "deep": "the record is nested deeper than any record kind allows",
    "text": "the record holds text that is not valid Unicode (a lone surrogate)",
    "number": "the record holds a number beyond 64 bits, NaN or infinity",
}


def _is_id(value: Any) -> bool:
    """A device or instance id as records carry it: text of 1 to 64 characters."""
    return isinstance(value, str) and 0 < len(value) <= 64


def _shown(value: Any) -> str:
    """A value the sender gave as an id or a kind, if it can be shown and stored as it is."""
    if isinstance(value, str) and len(value) <= 64 and wire.problem(value) is None:
        return value
    return ""
