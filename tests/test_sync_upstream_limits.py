"""What a site instance takes from its upstream: an answer longer than any an instance gives is
not read, and what is stored here stays as it was."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sync_helpers import add_site, entry

from fieldapp import records
from sync import client as sync_client

SITE_ID = "5d0c1a53-0d8e-4a49-9e55-3d8f1c9b2a10"
MB = 1024 * 1024


class Answers(BaseHTTPRequestHandler):
    """An upstream that answers its cursor as an instance does and its pull (or, with
    server.huge_cursor, its cursor too) with more than the client may read: with Content-Length
    (server.declared) or until it hangs up (close-delimited, as a sign-in page may)."""

    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 -- http.server's name
        """A push: every record applied, the cursor moved to the batch's end."""
        batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        results = [{"uuid": r["uuid"], "status": "applied"} for r in batch["records"]]
        cursor = batch.get("upto") or batch.get("since") or 0
        body = json.dumps({"results": results, "cursor": cursor}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 -- http.server's name
        huge = self.path.startswith("/sync/v1/pull") or self.server.huge_cursor
        if not huge:
            body = json.dumps({"source": "office", "cursor": 0}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.server.declared:
            self.send_header("Content-Length", str(10 * 1024 * MB))  # 10 GB, it says
        self.end_headers()
        self.server.sent = 0
        chunk = b'{"version": 9, "sites": [' + b" " * (MB - 26)
        try:
            while self.server.sent < 32 * MB:  # far more than the test's limit, then stop
                self.wfile.write(chunk)
                self.server.sent += len(chunk)
        except OSError:  # the client hung up: it read what it would
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for the answer being sent to end
    declared, huge_cursor, sent = False, False, 0


@pytest.fixture
def answers():
    server = Server(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def sent_in_all(server: Server) -> int:
    """How much of its answer the server sent before the client hung up, once it is done."""
    server.shutdown()
    server.server_close()
    return server.sent


def stored(db) -> tuple:
    """What a refused pull must leave as it was: sites, roster, settings, entries, the version
    pulled last (the records pushed before it went up: the push cursor may move)."""
    sites = [tuple(r) for r in db.execute("SELECT id, name, code, version FROM sites ORDER BY id")]
    roster = [tuple(r) for r in db.execute("SELECT id, name FROM roster ORDER BY id")]
    settings = [tuple(r) for r in db.execute("SELECT name, value FROM settings ORDER BY name")]
    entries = [r[0] for r in db.execute("SELECT uuid FROM entries ORDER BY uuid")]
    state = db.execute("SELECT config_version, config_version_id FROM sync_upstream")
    return sites, roster, settings, entries, tuple(state.fetchone())


@pytest.mark.parametrize("declared", [True, False], ids=["says-10-GB", "no-length"])
@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("en_US.UTF-8", "answered with more than 2 MB, more than any answer of a fieldapp"),
        ("zh_CN.UTF-8", "的应答超过 2 MB，比任何 fieldapp 实例的应答都大，未予读取"),
    ],
)
def test_an_answer_longer_than_any_instances_is_not_read(
    app, db, runner, answers, monkeypatch, declared, lang, said
):
    here = add_site(app.config["DATABASE"], "本地小区")
    with app.test_request_context():
        records.save(db, [entry(here, name="张三")], source="gate")
    monkeypatch.setattr(sync_client, "MAX_PULL_BYTES", 2 * MB)
    answers.declared = declared
    url = f"http://127.0.0.1:{answers.server_port}"
    app.config.update(UPSTREAM_URL=url, UPSTREAM_TOKEN="token")
    before = stored(db)
    result = runner.invoke(args=["sync"], env={"LANG": lang})
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert f"{url} {said}" in result.output
    assert stored(db) == before
    # The client hung up near its limit (what the sockets' buffers hold went on its way too).
    assert sent_in_all(answers) < 32 * MB
    status = runner.invoke(args=["sync", "--status"], env={"LANG": lang})
    assert said in status.output, status.output


def test_a_sign_in_page_without_end_for_every_address_is_not_read_either(
    app, runner, answers, monkeypatch
):
    monkeypatch.setattr(sync_client, "MAX_ANSWER_BYTES", 2 * MB)
    answers.huge_cursor = True
    app.config.update(UPSTREAM_URL=f"http://127.0.0.1:{answers.server_port}", UPSTREAM_TOKEN="t")
    result = runner.invoke(args=["sync"], env={"LANG": "en_US.UTF-8"})
    assert result.exit_code == 1
    assert "answered with more than 2 MB" in result.output, result.output


def test_the_limits_are_above_the_largest_answers_an_instance_gives():
    # A push answer: one result per record, SYNC_BATCH_SIZE at most 10,000, each a uuid, a
    # status and a reason of a few hundred characters at most.
    result = {"uuid": "5d0c1a53-0d8e-4a49-9e55-3d8f1c9b2a10", "status": "rejected"}
    result["reason"] = "理" * 300
    push = json.dumps({"results": [result] * 10_000, "cursor": 2**62}).encode()
    assert len(push) * 3 < sync_client.MAX_ANSWER_BYTES
    # A roster row as export_config sends it, its name and unit as long as the form takes,
    # escaped as Flask's JSON escapes them: half a million fit in a pull.
    row = {
        "id": SITE_ID,
        "site_id": SITE_ID,
        "name": "姓" * 50,
        "phone": "13800138000",
        "unit": "单" * 50,
        "person_type": "resident",
        "active": 1,
        "pass_token": "x" * 16,
        "pass_issued_at": "2026-01-01T00:00:00.000Z",
        "created_at": "2026-01-01T00:00:00.000Z",
    }
    assert len(json.dumps(row)) * 500_000 < sync_client.MAX_PULL_BYTES
