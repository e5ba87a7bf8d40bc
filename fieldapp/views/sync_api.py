"""/sync/v1: the JSON endpoints downstream instances and phones push to and pull from."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request
from flask_babel import gettext as _

import sync

from .. import syncing
from ..db import get_db
from ..security import csrf

bp = Blueprint("sync_api", __name__, url_prefix="/sync/v1")
# A JSON API authenticated by token (or a phone's cookie with a JSON content type, which a
# cross-site form cannot send): form CSRF tokens do not apply.
csrf.exempt(bp)
bp.record_once(lambda state: syncing.init_app(state.app))


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


def _unauthorised():
    return _error(401, "unauthorised", _("The token is missing, wrong or revoked."))


@bp.get("/cursor")
def cursor():
    """Where this instance is for the asking downstream: the highest seq committed from it."""
    conn = get_db()
    peer = syncing.authenticate_request(conn)
    if peer is None:
        return _unauthorised()
    if peer.kind != "instance":
        return {"source": peer.id, "cursor": None, "uuid": None}
    return sync.server.cursor_answer(conn, peer)


@bp.post("/push")
def push():
    """Apply one batch of records in one transaction; a result per record and the cursor."""
    if request.mimetype != "application/json":
        return _error(415, "not_json", _("Send the batch as Content-Type: application/json."))
    conn = get_db()
    peer = syncing.authenticate_request(conn)
    if peer is None:
        return _unauthorised()
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
        answer = syncing.receive_push(conn, peer, body)
    except sync.BatchError as exc:
        status = {"wrong_source": 403, "too_many": 413}.get(exc.code, 400)
        return _error(status, exc.code, syncing.batch_error_message(exc))
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
    """Configuration (sites, roster, settings) changed since version `since`."""
    conn = get_db()
    peer = syncing.authenticate_request(conn)
    if peer is None:
        return _unauthorised()
    if peer.kind != "instance":
        return _error(403, "not_instance", _("Only instances pull configuration."))
    raw = request.args.get("since", "0")
    if not raw.isdigit() or len(raw) > 18:
        return _error(400, "bad_since", _("“since” must be a whole number ≥ 0."))
    return jsonify(syncing.export_config(conn, int(raw)))
