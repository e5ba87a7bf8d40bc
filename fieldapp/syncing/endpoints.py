"""/sync/v1: the JSON endpoints downstream instances and phones push to and pull from; they
translate HTTP to calls of sync.server and sync.store (through records.save)."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request
from flask_babel import gettext as _

import sync
from fieldapp import records
from fieldapp.db import get_db
from fieldapp.phones import devices
from fieldapp.security import csrf
from fieldapp.syncing import configuration
from sync import peers, server

bp = Blueprint("sync_api", __name__, url_prefix="/sync/v1")
# A JSON API authenticated by token (or a phone's cookie with a JSON content type, which a
# cross-site form cannot send): form CSRF tokens do not apply.
csrf.exempt(bp)


def authenticate_request(conn: sqlite3.Connection) -> peers.Peer | None:
    """The peer behind this request: a Bearer token, else a phone's enrolment cookie."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return peers.authenticate(conn, token.strip())
    return devices.peer_from_cookie(conn)


def receive_push(conn: sqlite3.Connection, peer: peers.Peer, body: Any) -> dict[str, Any]:
    """Check and store one push from peer; the JSON answer. Raises sync.BatchError."""
    push = server.parse_push(body, peer, max_records=int(current_app.config["SYNC_BATCH_SIZE"]))
    save = functools.partial(records.save, conn)
    now = server.utcnow()  # the time of receipt, the one the clock offset is measured by
    results, cursor = server.receive(peer, push, save, received_at=now)
    answer: dict[str, Any] = {"results": [r.as_dict() for r in results], "cursor": cursor}
    if push.sent_at is not None:
        # How far the phone's clock is behind ours: its status line says so when it is wrong.
        answer["clock_offset_ms"] = sync.store.clock_offset_ms(now, push.sent_at)
    return answer


def batch_error_message(exc: sync.BatchError) -> str:
    """A batch error in the user's language."""
    messages: dict[str, Callable[[], str]] = {
        "not_object": lambda: _("The body must be a JSON object."),
        "bad_source": lambda: _("“source” must be the id of the sender."),
        "wrong_source": lambda: _("“source” is not the instance or phone this token belongs to."),
        "bad_records": lambda: _("“records” must be a list."),
        "too_many": lambda: _(
            "Too many records in one batch: %(n)d, at most %(max)d.",
            n=exc.params.get("n", 0),
            max=exc.params.get("max", 0),
        ),
        "bad_sent_at": lambda: _("“sent_at” must be a time in ISO 8601 with its zone."),
        "bad_seq": lambda: _(
            "“%(field)s” must be a whole number from the sender's change log.",
            field=exc.params.get("field", "seq"),
        ),
    }
    return messages.get(exc.code, lambda: str(exc))()


def _error(status: int, code: str, message: str):
    response = jsonify(error=code, message=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fieldapp"'
    return response


@bp.after_request
def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def _too_big(limit: int):
    return _error(
        413,
        "too_large",
        _("The batch is larger than %(n)d bytes: send fewer records at a time.", n=limit),
    )


def _peer(conn: sqlite3.Connection) -> peers.Peer:
    """The peer behind this request; without one, the request ends here with a 401."""
    peer = authenticate_request(conn)
    if peer is None:
        abort(_error(401, "unauthorised", _("The token is missing, wrong or revoked.")))
    return peer


@bp.get("/cursor")
def cursor():
    """Where this instance is for the asking downstream: the highest seq committed from it."""
    conn = get_db()
    peer = _peer(conn)
    if peer.kind != "instance":
        return {"source": peer.id, "cursor": None, "uuid": None}
    return sync.server.cursor_answer(conn, peer)


@bp.post("/push")
def push():
    """Apply one batch of records in one transaction; a result per record and the cursor."""
    if request.mimetype != "application/json":
        return _error(415, "not_json", _("Send the batch as Content-Type: application/json."))
    conn = get_db()
    peer = _peer(conn)
    limit = int(current_app.config["SYNC_MAX_BATCH_BYTES"])
    if request.content_length is not None and request.content_length > limit:
        return _too_big(limit)
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        return _too_big(limit)
    try:
        body = sync.wire.decode(raw)
    except ValueError:  # includes bad UTF-8
        return _error(400, "bad_json", _("The body is not valid JSON."))
    _fail_for_tests(body)
    try:
        answer = receive_push(conn, peer, body)
    except sync.BatchError as exc:
        status = {"wrong_source": 403, "too_many": 413}.get(exc.code, 400)
        return _error(status, exc.code, batch_error_message(exc))
    return jsonify(answer)


def _fail_for_tests(body) -> None:
    """A test hook: with TEST_FAIL_PUSH_UUIDS set, a batch holding one of them answers 500,
    as an instance would that crashes on a record (the senders must set it aside); with
    TEST_FAIL_EMPTY_PUSH too, an empty batch does (an upstream that fails for everything)."""
    poison = current_app.config.get("TEST_FAIL_PUSH_UUIDS")
    if not poison or not isinstance(body, dict) or not isinstance(body.get("records"), list):
        return
    records = body["records"]
    if not records and current_app.config.get("TEST_FAIL_EMPTY_PUSH"):
        abort(500)
    for record in records:
        if isinstance(record, dict) and isinstance(record.get("uuid"), str):
            if record["uuid"] in poison:
                abort(500)


@bp.get("/pull")
def pull():
    """Configuration (sites, roster, settings) changed since version `since`: everything if
    `since_id` (the id the caller got with that version) is not our version's id."""
    conn = get_db()
    peer = _peer(conn)
    if peer.kind != "instance":
        return _error(403, "not_instance", _("Only instances pull configuration."))
    raw = request.args.get("since", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # isdigit alone takes "²"
        return _error(400, "bad_since", _("“since” must be a whole number ≥ 0."))
    since_id = request.args.get("since_id")  # absent from a downstream older than the ids
    return jsonify(configuration.export_config(conn, int(raw), since_id))
