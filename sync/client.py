"""The downstream side: read the upstream's cursor, push the change log after it, pull config.

The transport is anything with cursor(), push(body) and pull(since): HttpTransport talks to a
real upstream; tests pass one that calls sync.server directly.
"""

from __future__ import annotations

import errno
import http.client
import json
import socket
import sqlite3
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .records import RecordKind, Registry
from .store import iso, log_again, transaction, utcnow

USER_AGENT = "fieldapp-sync/1"

# The most an upstream's answer may hold, read no further: a broken or hostile upstream (or a
# network's sign-in page) answering without end must not fill this instance's memory.
# A cursor answer is small; a push answer holds one result per record of a batch (SYNC_BATCH_SIZE
# is at most 10,000): its uuid, status and a worded reason, a few hundred characters escaped as
# \uXXXX at most, under 2 KB: 20 MB for the largest batch, and this is three times that.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# A pull is not paged: a full one carries every site and every roster row. A roster row is at
# most about 900 bytes of JSON (a 50-character name and unit, escaped as \uXXXX), most are near
# 400: 512 MB holds more than half a million of the longest, over a million typical ones.
MAX_PULL_BYTES = 512 * 1024 * 1024


class SyncError(RuntimeError):
    """The upstream could not be reached or refused the request; the round can be retried.

    answered: the upstream did answer, with a server error or something that is not a result
    (a record in the batch may be what it cannot take); not for a link that failed.
    code: the upstream's own name for its refusal (its message is worded by it). problem: what
    went wrong on this side, for the app to word in its user's language, with params:
    "unreachable" (url; why: refused, timeout, name, network, tls, cut or ""; reason), "not_ours" (url:
    the answer is not an instance's, a network's login page, say), "too_large" (url, limit: bytes,
    the answer was longer and was not read) or "protocol" (detail).
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: str | None = None,
        *,
        answered: bool = False,
        problem: str = "",
        params: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.answered = answered
        self.problem = problem
        self.params = dict(params or {})


# The errors of a machine with no network at all (no signal, the cable out).
_NO_NETWORK = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN)


def _unreachable(url: str, reason: object) -> SyncError:
    """The SyncError of a link that failed before an answer came, and why, as far as told."""
    why = ""
    if isinstance(reason, TimeoutError):
        why = "timeout"
    elif isinstance(reason, ConnectionRefusedError):
        why = "refused"
    elif isinstance(reason, socket.gaierror):
        why = "name"
    elif isinstance(reason, ssl.SSLError):
        why = "tls"
    elif isinstance(reason, ConnectionError | http.client.HTTPException):
        why = "cut"
    elif isinstance(reason, OSError) and reason.errno in _NO_NETWORK:
        why = "network"
    text = f"{type(reason).__name__} {reason}".strip() if why == "cut" else str(reason)
    params = {"url": url, "why": why, "reason": text}
    return SyncError(f"{url}: {text}", problem="unreachable", params=params)


def _not_ours(url: str) -> SyncError:
    """The SyncError of an answer that is not an instance's (not HTTP, not a JSON object)."""
    return SyncError(
        f"{url}: the answer is not a fieldapp instance's",
        answered=True,
        problem="not_ours",
        params={"url": url},
    )


def _too_large(url: str, limit: int) -> SyncError:
    """The SyncError of an answer longer than any an instance gives; not the batch's fault."""
    return SyncError(
        f"{url}: the answer is longer than {limit} bytes",
        problem="too_large",
        params={"url": url, "limit": str(limit)},
    )


def _read(stream: Any, limit: int, url: str) -> bytes:
    """At most limit bytes of an answer's body; SyncError (too_large) if it says or has more."""
    length = stream.headers.get("Content-Length") if stream.headers else None
    if length and length.strip().isdigit() and int(length) > limit:
        raise _too_large(url, limit)
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise _too_large(url, limit)
    return raw


def _protocol(detail: str) -> SyncError:
    """The SyncError of an answer that does not follow the sync protocol."""
    return SyncError(detail, problem="protocol", params={"detail": detail})


class Transport(Protocol):
    """What a sync round needs of an upstream."""

    def cursor(self) -> dict[str, Any]:
        """The answer of GET /sync/v1/cursor."""
        ...

    def push(self, body: bytes) -> dict[str, Any]:
        """The answer of POST /sync/v1/push for an encoded body; SyncError if none came."""
        ...

    def pull(self, since: int, since_id: str | None = None) -> dict[str, Any]:
        """The answer of GET /sync/v1/pull?since=V&since_id=ID."""
        ...


class HttpTransport:
    """The /sync/v1 endpoints of an upstream over HTTP(S), with the token as Bearer.

    language: the tag (zh-Hans, en…) of the language the upstream's error messages should be
    in, those of the operator who reads them here; without one, the upstream's default.
    """

    def __init__(
        self, url: str, token: str, timeout: float = 60.0, language: str | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.language = language

    def _call(
        self, method: str, path: str, body: bytes | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """The JSON object an endpoint answers; at most limit bytes of it are read (by default
        MAX_ANSWER_BYTES, read when called: a test may lower it)."""
        limit = MAX_ANSWER_BYTES if limit is None else limit
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.language:
            headers["Accept-Language"] = self.language
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 -- URL set by the operator
                raw = _read(resp, limit, self.url)
        except urllib.error.HTTPError as exc:
            with exc:  # its connection closed now: `sync --watch` runs for months
                try:
                    detail = json.loads(_read(exc, MAX_ANSWER_BYTES, self.url) or b"{}")
                except (ValueError, SyncError):  # not JSON, or too long to be a refusal
                    detail = {}
            message = detail.get("message") if isinstance(detail, dict) else None
            failed = exc.code >= 500 or exc.code == 400
            raise SyncError(
                str(message or f"HTTP {exc.code}"),
                exc.code,
                detail.get("error") if isinstance(detail, dict) else None,
                answered=failed,
            ) from None
        except (OSError, urllib.error.URLError) as exc:
            raise _unreachable(self.url, getattr(exc, "reason", exc)) from None
        except http.client.HTTPException as exc:  # the link dropped mid-answer, or not HTTP
            if isinstance(exc, http.client.BadStatusLine) and not isinstance(
                exc, http.client.RemoteDisconnected
            ):
                raise _not_ours(self.url) from None
            raise _unreachable(self.url, exc) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise _not_ours(self.url)
        return answer

    def cursor(self) -> dict[str, Any]:
        """GET /sync/v1/cursor."""
        return self._call("GET", "/sync/v1/cursor")

    def push(self, body: bytes) -> dict[str, Any]:
        """POST /sync/v1/push with an encoded body."""
        return self._call("POST", "/sync/v1/push", body)

    def pull(self, since: int, since_id: str | None = None) -> dict[str, Any]:
        """GET /sync/v1/pull?since=V&since_id=ID (the id of our version V, when we have one)."""
        query = {"since": since} if since_id is None else {"since": since, "since_id": since_id}
        path = "/sync/v1/pull?" + urllib.parse.urlencode(query)
        return self._call("GET", path, limit=MAX_PULL_BYTES)


@dataclass
class Batch:
    """Wire records of the change log after a seq, and how far they reach."""

    records: list[dict[str, Any]]
    upto: int | None
    upto_uuid: str | None
    upto_chain: str | None = None


def outgoing(conn: sqlite3.Connection, registry: Registry, after: int, limit: int) -> Batch:
    """Up to limit changes after seq `after` as wire records carrying their seq, in order.

    A change whose record was purged since still moves upto, so the cursor passes it.
    """
    changes = conn.execute(
        "SELECT seq, kind, uuid, chain FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    ).fetchall()
    if not changes:
        return Batch([], None, None)
    by_kind: dict[str, list[str]] = {}
    for _seq, kind, uuid, _chain in changes:
        by_kind.setdefault(kind, []).append(uuid)
    # By kind and uuid: two kinds may carry the same uuid (a phone's push can), each its record.
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name, uuids in by_kind.items():
        kind = registry.get(name)
        if kind is None:
            continue  # a kind this version does not know; its records stay here
        for start in range(0, len(uuids), 900):
            chunk = uuids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT * FROM {kind.table} WHERE uuid IN ({marks})"  # noqa: S608 -- table from code
            for row in conn.execute(sql, chunk):
                found[name, row["uuid"]] = _wire(kind, row)
    records = []
    for seq, name, uuid, _chain in changes:
        wire = found.get((name, uuid))
        if wire is not None:
            records.append({**wire, "seq": seq})
    return Batch(records, changes[-1][0], changes[-1][2], changes[-1][3])


def _log_disagrees(
    conn: sqlite3.Connection, seq: int, uuid: str | None, chain: str | None = None
) -> bool:
    """Our change log is not the one the upstream's cursor describes at seq.

    The chain covers every row up to seq, so a log that diverged earlier (restored, then the
    same records received again in the same order) is caught too; without a chain, the uuid at
    seq is compared. A row missing because it was purged is no disagreement; a seq we never
    reached is.
    """
    here = conn.execute("SELECT uuid, chain FROM changes WHERE seq = ?", (seq,)).fetchone()
    if here is not None:
        if chain is not None and here[1] is not None:
            return here[1] != chain
        return uuid is not None and here[0] != uuid
    highest = highest_seq(conn)
    return highest is None or seq > highest


def highest_seq(conn: sqlite3.Connection) -> int | None:
    """The highest seq the change log has handed out, even if that row was purged since (None
    before the first): SQLite's AUTOINCREMENT counter, or PostgreSQL's identity sequence."""
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        row = conn.execute(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence('changes', 'seq')::regclass)"
        ).fetchone()
    else:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return row[0] if row else None


def waiting(conn: sqlite3.Connection, after: int) -> int:
    """How many changes lie after seq `after`."""
    return conn.execute("SELECT count(*) FROM changes WHERE seq > ?", (after,)).fetchone()[0]


@dataclass
class PushReport:
    """What a push round did."""

    source: str
    cursor: int  # the upstream's cursor at the end
    sent: int = 0
    applied: int = 0
    refused: int = 0  # rejected or conflicting: kept upstream for review, not sent again
    reset: bool = False


def encode(body: dict[str, Any]) -> bytes:
    """A push body as compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def push_pending(
    conn: sqlite3.Connection,
    registry: Registry,
    transport: Transport,
    *,
    batch_size: int = 500,
    max_bytes: int = 1_048_576,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> PushReport:
    """Push every change the upstream has not committed, resuming from the upstream's cursor.

    The cursor is read from the upstream, never from memory: an upstream restored from an older
    copy reports less and gets it again. If our log disagrees with the upstream's cursor (we were
    restored from an older copy and reuse seq numbers) we resend from 0: all duplicates, harmless.
    on_start(n) is told how many changes wait; on_batch(n) how many records each acknowledged
    batch held (for a progress bar).
    """
    info = transport.cursor()
    source = info.get("source")
    start = info.get("cursor")
    if not isinstance(source, str) or isinstance(start, bool) or not isinstance(start, int):
        raise _protocol("the upstream's cursor answer is malformed")
    reset = False
    if start > 0 and _log_disagrees(conn, start, info.get("uuid"), info.get("chain")):
        start, reset = 0, True
    report = PushReport(source, start, reset=reset)
    if on_start is not None:
        on_start(waiting(conn, start))
    cursor = start
    size = batch_size
    stalled = 0
    while True:
        batch = outgoing(conn, registry, cursor, size)
        if batch.upto is None:
            break
        data = encode(_body(source, cursor, batch, reset))
        if len(data) > max_bytes and size > 1:
            size = max(1, size // 2)  # large records: send fewer at a time
            continue
        try:
            answer = transport.push(data)
        except SyncError as exc:
            if exc.status == 413 and size > 1:
                size = max(1, min(size, len(batch.records)) // 2)  # the upstream's limit is lower
                continue
            if not (exc.answered or exc.status == 413):  # 413 here: one record over the limit
                raise
            if len(batch.records) > 1:
                # Something in this batch may be what the upstream cannot take: try half of it.
                size = (len(batch.records) + 1) // 2
                continue
            # One record fails alone. If the upstream answers an empty batch, the record is the
            # trouble: set it aside, move the cursor past it, go on. Else the upstream is.
            transport.push(encode({"source": source, "since": cursor, "records": []}))
            _hold(conn, batch.records[0], str(exc))  # kept before the upstream skips it
            batch = Batch([], batch.upto, batch.upto_uuid, batch.upto_chain)
            answer = transport.push(encode(_body(source, cursor, batch, reset)))
            size = batch_size
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(batch.records):
            raise _protocol("the upstream answered a different number of results")
        after = _cursor_of(answer)
        held = [(rec, r) for rec, r in zip(batch.records, results, strict=True) if _held(r)]
        if held:
            # The upstream cannot store these yet and kept its cursor: they are set aside here
            # (tried again every round), then the cursor is moved past them.
            for rec, r in held:
                _hold(conn, rec, str(r.get("reason") or "held"))
            past = Batch([], batch.upto, batch.upto_uuid, batch.upto_chain)
            after = _cursor_of(transport.push(encode(_body(source, cursor, past, reset))))
        reset = False
        report.sent += len(batch.records)
        report.applied += sum(1 for r in results if r.get("status") == "applied")
        report.refused += sum(1 for r in results if r.get("status") in ("rejected", "conflict"))
        if on_batch is not None:
            on_batch(len(batch.records))
        # Progress is judged by the upstream's answer: after a restore there it goes back.
        stalled = stalled + 1 if after <= cursor else 0
        if stalled > 3:
            raise _protocol("the upstream's cursor does not advance")
        cursor = after
        report.cursor = cursor
        remember(conn, cursor=cursor)
    return report


def _cursor_of(answer: dict[str, Any]) -> int:
    """The upstream's cursor after a push, from its answer; SyncError if it gives none."""
    after = answer.get("cursor")
    if isinstance(after, bool) or not isinstance(after, int):
        raise _protocol("the upstream's push answer has no cursor")
    return after


def _body(source: str, cursor: int, batch: Batch, reset: bool) -> dict[str, Any]:
    """The push of a batch after cursor (of no records: it moves the cursor past a held one)."""
    body: dict[str, Any] = {
        "source": source,
        "since": cursor,
        "upto": batch.upto,
        "upto_uuid": batch.upto_uuid,
        "upto_chain": batch.upto_chain,
        "records": batch.records,
    }
    if reset:
        body["reset"] = True
    return body


def _hold(conn: sqlite3.Connection, record: dict[str, Any], reason: str) -> None:
    """Keep a record the upstream cannot store in sync_held, to be tried again each round."""
    conn.execute(
        "INSERT INTO sync_held (seq, kind, uuid, reason, held_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (seq) DO UPDATE SET reason = excluded.reason, tries = tries + 1",
        (record["seq"], record["kind"], record["uuid"], reason[:500], iso(utcnow())),
    )


def _held(result: Any) -> bool:
    """Whether the upstream answered a record `held`: it cannot store it yet."""
    return isinstance(result, Mapping) and result.get("status") == "held"


def held(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The records held back from the upstream, oldest first."""
    sql = "SELECT seq, kind, uuid, reason, held_at, tries FROM sync_held ORDER BY seq"
    return [dict(row) for row in conn.execute(sql)]  # rows by name, as outgoing() reads them


def retry_held(
    conn: sqlite3.Connection,
    registry: Registry,
    transport: Transport,
    source: str,
    *,
    batch_size: int = 500,
    max_bytes: int = 1_048_576,
) -> tuple[int, int]:
    """Try the held records again, in batches as push_pending sends them; (delivered, still
    held).

    The upstream's cursor is past them already, so these pushes leave it where it is; a record
    it answers for (stored, a repeat, or refused and kept for review there) leaves the table
    and is logged again at the end of our change log. The next push sends it once more, a
    repeat, and moves the cursor past it: an upstream restored later from a copy taken before
    this delivery has a cursor below that row and is sent it again, as any other record.
    A batch the upstream fails on is halved until the record it cannot take stands alone,
    which stays held; the others go on.
    """
    waiting: list[dict[str, Any]] = []
    for row in held(conn):
        wire = _wire_of(conn, registry, row)
        if wire is None:  # purged here since: nothing left to send
            conn.execute("DELETE FROM sync_held WHERE seq = ?", (row["seq"],))
        else:
            waiting.append(wire)
    delivered = 0
    # A stack, the oldest batch on top; a batch split goes back as its two halves.
    batches = [waiting[i : i + batch_size] for i in range(0, len(waiting), batch_size)][::-1]
    while batches:
        batch = batches.pop()
        half = (len(batch) + 1) // 2
        data = encode({"source": source, "records": batch})
        if len(data) > max_bytes and len(batch) > 1:
            batches += [batch[half:], batch[:half]]
            continue
        try:
            answer = transport.push(data)
        except SyncError as exc:
            if not (exc.answered or exc.status == 413):
                raise
            if len(batch) > 1:  # something in it is what the upstream cannot take, or too much
                batches += [batch[half:], batch[:half]]
            else:
                _hold(conn, batch[0], str(exc))
            continue
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(batch):
            raise _protocol("the upstream answered a different number of results")
        for wire, result in zip(batch, results, strict=True):
            if _held(result):  # not yet: kept for the next round
                _hold(conn, wire, str(result.get("reason") or "held"))
            else:  # delivered out of order: logged again, to be sent in order too (below)
                with transaction(conn):
                    conn.execute("DELETE FROM sync_held WHERE seq = ?", (wire["seq"],))
                    log_again(conn, wire["kind"], wire["uuid"])
                delivered += 1
    return delivered, len(waiting) - delivered


def _wire_of(
    conn: sqlite3.Connection, registry: Registry, row: dict[str, Any]
) -> dict[str, Any] | None:
    """The wire record of a held row, or None if its kind is unknown or it was purged."""
    kind = registry.get(row["kind"])
    if kind is None:
        return None
    found = conn.execute(
        f"SELECT * FROM {kind.table} WHERE uuid = ?",  # noqa: S608 -- table from code
        (row["uuid"],),
    ).fetchone()
    return None if found is None else {**_wire(kind, found), "seq": row["seq"]}


def _wire(kind: RecordKind, row: Any) -> dict[str, Any]:
    """A stored row of a kind as a wire record."""
    return {
        "uuid": row["uuid"],
        "kind": kind.name,
        "recorded_at": row["recorded_at"],
        "device": row["device"],
        "origin": row["origin"],
        "data": kind.from_row(row),
    }


_STATE = ("url", "source", "cursor", "config_version", "config_version_id", "last_attempt_at")
_STATE += ("last_success_at", "last_error", "last_problem", "retention_refused")


def remember(conn: sqlite3.Connection, **values: Any) -> None:
    """Store fields of this instance's upstream state (cursor, config_version, last_error…)."""
    names = set(_STATE)
    sets = ", ".join(f"{k} = ?" for k in values if k in names)
    if sets:
        conn.execute(
            f"UPDATE sync_upstream SET {sets} WHERE id = 1",  # noqa: S608 -- names from the set above
            [v for k, v in values.items() if k in names],
        )


def upstream_state(conn: sqlite3.Connection) -> dict[str, Any]:
    """This instance's upstream state row as a dict."""
    row = conn.execute("SELECT * FROM sync_upstream WHERE id = 1").fetchone()
    return dict(row) if row else {}


def mark_attempt(
    conn: sqlite3.Connection, error: str | None, failure: SyncError | None = None
) -> None:
    """Record the end of a round: success (error None) or the error, as worded now and, when
    failure is given, as its problem, params, status and code (last_problem, JSON): whoever
    reads the status later has it worded in their own language (problem_of)."""
    now = iso(utcnow())
    if error is None:
        remember(conn, last_attempt_at=now, last_success_at=now, last_error=None, last_problem=None)
        return
    named = None
    if failure is not None and (failure.problem or failure.code):
        named = json.dumps(
            {
                "problem": failure.problem,
                # A param quotes what came (a reason, a detail): kept as long as the words are.
                "params": {k: str(v)[:500] for k, v in failure.params.items()},
                "status": failure.status,
                "code": failure.code,
            },
            ensure_ascii=False,
        )
    remember(conn, last_attempt_at=now, last_error=error[:500], last_problem=named)


def problem_of(state: Mapping[str, Any]) -> SyncError | None:
    """The last round's error as mark_attempt named it (its message the words of then), or None
    for a row from before last_problem, or one it cannot read."""
    try:
        named = json.loads(state.get("last_problem") or "null")
    except ValueError:
        return None
    if not isinstance(named, dict) or not isinstance(named.get("params"), dict):
        return None
    status, code = named.get("status"), named.get("code")
    return SyncError(
        str(state.get("last_error") or ""),
        status if isinstance(status, int) and not isinstance(status, bool) else None,
        code if isinstance(code, str) else None,
        problem=str(named.get("problem") or ""),
        params={str(k): str(v) for k, v in named["params"].items()},
    )
