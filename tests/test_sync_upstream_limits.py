"""What a site instance takes from its upstream, and how it tells its operator what it did not
take: an answer longer than any an instance gives is not read; a configuration with text longer
than the forms here take is refused whole; a retention this instance cannot keep is said, with
the one in force; and the last round's error is worded in the language of whoever reads it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from console_support import login, make_user
from sync_helpers import SITE_ID, Upstream, add_site, entry, site

import sync
from fieldapp import jobs, records
from fieldapp.syncing import configuration, upstream
from sync import client as sync_client

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


def person(**changed) -> dict:
    row = {"id": "r1", "site_id": SITE_ID, "name": "王五", "phone": "", "unit": "1-101"}
    return {**row, **changed}


def campaign(**changed) -> dict:
    row = {
        "id": "c1",
        "name": "全员筛查",
        "start_day": "2026-01-01",
        "questions": "fever",
        "created_at": "2026-01-01T00:00:00.000Z",
    }
    return {**row, **changed}


TOO_LONG = {
    "a site name of 10 MB": (
        {"sites": [site(name="长" * 10 * MB)]},
        f"sites {SITE_ID}: “name” is longer than 100 characters",
    ),
    "a site address past the form's 200": (
        {"sites": [site(address="路" * 201)]},
        f"sites {SITE_ID}: “address” is longer than 200 characters",
    ),
    "a roster name past the import's 50": (
        {"sites": [site()], "roster": [person(name="王" * 51)]},
        "roster r1: “name” is longer than 50 characters",
    ),
    "a roster unit past the import's 50": (
        {"sites": [site()], "roster": [person(unit="1" * 51)]},
        "roster r1: “unit” is longer than 50 characters",
    ),
    "a campaign name past the form's 100": (
        {"screening_campaigns": [campaign(name="查" * 101)]},
        "screening_campaigns c1: “name” is longer than 100 characters",
    ),
    "an old code no instance makes": (
        {"sites": [site(old_codes=[{"code": "C" * 5000, "retired_at": "2026-01-01T00:00:00Z"}])]},
        f"sites {SITE_ID}: “old_codes” is longer than 200 characters",
    ),
    "a site code no instance makes": (
        {"sites": [site(code="C" * 5000)]},
        f"sites {SITE_ID}: “code” is longer than 200 characters",
    ),
}


@pytest.mark.parametrize(("payload", "said"), TOO_LONG.values(), ids=TOO_LONG.keys())
def test_text_longer_than_the_forms_take_is_refused_whole_naming_where(
    app, db, runner, monkeypatch, payload, said
):
    here = add_site(app.config["DATABASE"], "本地小区")
    before = stored(db)
    # Beside the long value, a row that alone would be taken: none of it is written.
    rows = {"sites": [], "roster": [], "screening_campaigns": [], **payload}
    rows["sites"] = [site(id="6d0c1a53-0d8e-4a49-9e55-3d8f1c9b2a11", code="Fine1234")] + rows[
        "sites"
    ]
    answer = {"version": 7, "version_id": "v7", **rows}
    monkeypatch.setattr(sync, "HttpTransport", lambda _url, _token, **_: Upstream(answer))
    app.config.update(UPSTREAM_URL="http://city.test", UPSTREAM_TOKEN="abc")
    result = runner.invoke(args=["sync"], env={"LANG": "en_US.UTF-8"})
    assert result.exit_code == 1, result.output
    assert said in result.output, result.output
    assert len(result.output) < 2000  # the value itself is not shown
    assert stored(db) == before
    assert [r[0] for r in db.execute("SELECT id FROM sites")] == [here]
    assert db.execute("SELECT count(*) FROM roster").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM screening_campaigns").fetchone()[0] == 0
    status = runner.invoke(args=["sync", "--status"], env={"LANG": "zh_CN.UTF-8"})
    assert "上级发来的配置无法应用" in status.output and "超过" in status.output, status.output


def test_text_as_long_as_the_forms_take_is_applied(app, db):
    payload = {
        "version": 7,
        "sites": [site(name="长" * 100, address="路" * 200, district="区" * 100)],
        "roster": [person(name="王" * 50, unit="1" * 50, phone="13800138000")],
        "screening_campaigns": [campaign(name="查" * 100, sites=json.dumps([SITE_ID] * 500))],
    }
    with app.app_context():
        configuration.apply_config(db, payload)
    assert db.execute("SELECT name FROM sites WHERE id = ?", (SITE_ID,)).fetchone()[0] == "长" * 100
    assert db.execute("SELECT name FROM roster").fetchone()[0] == "王" * 50
    assert db.execute("SELECT name FROM screening_campaigns").fetchone()[0] == "查" * 100


def retention_kept(db):
    return db.execute("SELECT value FROM settings WHERE name = 'retention_days'").fetchone()


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        (
            "en_US.UTF-8",
            "The upstream's retention (90 days) was not applied: this instance keeps entries"
            " 7 to 60 days. In force here: 21 days.",
        ),
        (
            "zh_CN.UTF-8",
            "上级的保存天数（90 天）未被采用：本实例的记录保存天数须在 7 到 60 天之间。本实例现行：21 天。",
        ),
        ("zh_TW.UTF-8", "上級的保存天數（90 天）未被採用"),
    ],
)
def test_a_retention_this_instance_cannot_keep_is_said_with_the_one_in_force(
    app, db, runner, monkeypatch, lang, said
):
    answer = {"version": 3, "sites": [site()], "settings": {"retention_days": 90}}
    monkeypatch.setattr(sync, "HttpTransport", lambda _url, _token, **_: Upstream(answer))
    app.config.update(UPSTREAM_URL="http://city.test", UPSTREAM_TOKEN="abc")
    result = runner.invoke(args=["sync"], env={"LANG": lang})
    assert result.exit_code == 0, result.output
    assert said in result.output, result.output
    assert retention_kept(db) is None  # ours stays: RETENTION_DAYS, 21
    # The sites came all the same.
    assert db.execute("SELECT name FROM sites WHERE id = ?", (SITE_ID,)).fetchone()[0] == "上游小区"
    status = runner.invoke(args=["sync", "--status"], env={"LANG": lang})
    assert said in status.output, status.output

    # The console's sync status says it too, in its reader's language.
    html = dashboard(app, "en")
    assert "The upstream&#39;s retention (90 days) was not applied" in html, html

    # Once the upstream's is one this instance can keep, it is taken and nothing is said.
    answer["settings"] = {"retention_days": 30}
    answer["version"] = 4
    result = runner.invoke(args=["sync"], env={"LANG": lang})
    assert result.exit_code == 0 and said not in result.output, result.output
    assert retention_kept(db)[0] == "30"
    status = runner.invoke(args=["sync", "--status"], env={"LANG": lang})
    assert said not in status.output and "(90 " not in status.output, status.output
    assert 'id="retention-notice"' not in dashboard(app, "en")


def test_a_retention_that_is_no_number_is_said_too(app, db, runner, monkeypatch):
    answer = {"version": 3, "sites": [site()], "settings": {"retention_days": "x" * 5000}}
    monkeypatch.setattr(sync, "HttpTransport", lambda _url, _token, **_: Upstream(answer))
    app.config.update(UPSTREAM_URL="http://city.test", UPSTREAM_TOKEN="abc")
    result = runner.invoke(args=["sync"], env={"LANG": "en_US.UTF-8"})
    assert result.exit_code == 0, result.output
    assert "was not applied" in result.output and "In force here: 21 days." in result.output
    assert len(result.output) < 1000
    assert retention_kept(db) is None


def dashboard(app, lang: str) -> str:
    """The console's dashboard, with its sync status, as an administrator reads it in lang."""
    try:
        make_user(app, "admin", "admin")
    except ValueError:  # made for an earlier look
        pass
    client = app.test_client()
    login(client, "admin")
    return client.get(f"/console/?lang={lang}").get_data(as_text=True)


def test_a_background_rounds_error_is_worded_in_the_readers_language(app, db, monkeypatch):
    """`fieldapp serve` runs its rounds in the server's language (zh-Hans here); an English
    reader of the console reads the error in English, a zh-Hant one in zh-Hant."""
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    answer = {"version": 3, "sites": [site(contact="电" * 201)]}
    monkeypatch.setattr(sync, "HttpTransport", lambda _url, _token, **_: Upstream(answer))
    app.config.update(UPSTREAM_URL="http://city.test", UPSTREAM_TOKEN="abc")
    assert jobs.run_once(app, "sync", upstream.background_job)
    kept = sync_client.upstream_state(db)["last_error"]
    assert kept.startswith("上级发来的配置无法应用")  # as said then, in the server's language
    english = dashboard(app, "en")
    assert (
        "The upstream&#39;s configuration could not be applied: sites"
        f" {SITE_ID}: “contact” is longer than 200 characters"
    ) in english, english
    assert "上级" not in english
    assert "「contact」超過 200 個字元" in dashboard(app, "zh_Hant")


def test_a_link_that_failed_in_the_background_is_worded_for_the_reader(app, db, monkeypatch):
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    url = "http://127.0.0.1:9"  # the discard port: nothing listens
    app.config.update(UPSTREAM_URL=url, UPSTREAM_TOKEN="token")
    assert jobs.run_once(app, "sync", upstream.background_job)
    assert sync_client.upstream_state(db)["last_error"].startswith(f"无法连接 {url}")
    english = dashboard(app, "en")
    assert f"cannot reach {url}: the connection was refused" in english, english


def test_an_error_kept_before_its_name_was_kept_still_shows(app, db, runner):
    """A row written by an older version holds the words alone: they are shown as they are."""
    app.config.update(UPSTREAM_URL="http://city.test", UPSTREAM_TOKEN="abc")
    with app.app_context():
        upstream._state_for(db, "http://city.test")
    db.execute("UPDATE sync_upstream SET last_error = '无法连接 http://city.test：旧的说法'")
    assert "无法连接 http://city.test：旧的说法" in dashboard(app, "en")
    status = runner.invoke(args=["sync", "--status"], env={"LANG": "en_US.UTF-8"})
    assert "last error: 无法连接 http://city.test：旧的说法" in status.output, status.output


def test_another_upstream_starts_with_nothing_said_of_the_last_one(app, db, runner, monkeypatch):
    answer = {"version": 3, "sites": [site()], "settings": {"retention_days": 90}}
    monkeypatch.setattr(sync, "HttpTransport", lambda _url, _token, **_: Upstream(answer))
    app.config.update(UPSTREAM_URL="http://city.test", UPSTREAM_TOKEN="abc")
    assert runner.invoke(args=["sync"], env={"LANG": "en_US.UTF-8"}).exit_code == 0
    answer.update(version=4, sites=[site(contact="电" * 201)])
    assert runner.invoke(args=["sync"], env={"LANG": "en_US.UTF-8"}).exit_code == 1
    said = runner.invoke(args=["sync", "--status"], env={"LANG": "en_US.UTF-8"}).output
    assert "last error" in said and "retention (90 days)" in said, said
    app.config.update(UPSTREAM_URL="http://district.test")
    with app.app_context():
        upstream._state_for(db, "http://district.test")
    status = runner.invoke(args=["sync", "--status"], env={"LANG": "en_US.UTF-8"})
    assert "http://district.test" in status.output
    assert "last error" not in status.output and "retention" not in status.output, status.output
