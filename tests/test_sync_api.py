"""The /sync/v1 endpoints in-process: auth, batch checks, cursors, phones, pull, commands."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sync_helpers import add_site, entry

import sync
from fieldapp.settings import is_downstream
from fieldapp.syncing import configuration
from fieldapp.syncing import status as sync_status
from fieldapp.syncing import upstream as syncing
from sync import peers


@pytest.fixture
def site(app):
    return add_site(app.config["DATABASE"])


@pytest.fixture
def downstream(db):
    with db:
        return peers.create(db, "instance", "district")


def push(client, token, body, **headers):
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(
        "/sync/v1/push",
        data=raw,
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "en", **headers},
        content_type=headers.pop("content_type", "application/json"),
    )


def numbered(records, start=1):
    return [dict(r, seq=start + i) for i, r in enumerate(records)]


def counts(db):
    return (
        db.execute("SELECT count(*) FROM entries").fetchone()[0],
        db.execute("SELECT count(*) FROM sync_cursors").fetchone()[0],
        db.execute("SELECT coalesce(sum(records_in), 0) FROM peers").fetchone()[0],
    )


def test_a_batch_is_applied_with_its_cursor_and_counters(client, db, site, downstream):
    peer, token = downstream
    wire = numbered([entry(site, i) for i in range(3)])
    wire[1]["origin"] = "office-1"
    wire[1]["device"] = "phone-7"
    r = push(client, token, {"source": peer.id, "since": 0, "records": wire})
    assert r.status_code == 200
    assert r.json["cursor"] == 3
    assert [x["status"] for x in r.json["results"]] == ["applied"] * 3
    row = db.execute(
        "SELECT origin, device FROM entries WHERE uuid = ?", (wire[1]["uuid"],)
    ).fetchone()
    assert tuple(row) == ("office-1", "phone-7")  # kept through the hop
    p = db.execute("SELECT records_in, last_push_at FROM peers WHERE id = ?", (peer.id,)).fetchone()
    assert p["records_in"] == 3 and p["last_push_at"]
    answer = client.get("/sync/v1/cursor", headers={"Authorization": f"Bearer {token}"}).json
    assert (answer["source"], answer["cursor"], answer["uuid"]) == (peer.id, 3, wire[2]["uuid"])
    again = push(client, token, {"source": peer.id, "since": 0, "records": wire})
    assert [x["status"] for x in again.json["results"]] == ["duplicate"] * 3
    assert counts(db) == (3, 1, 3)  # counted once


def test_a_full_batch_is_logged_in_its_order_with_an_unbroken_chain(client, db, site, downstream):
    """The change log is written a few hundred rows per statement: across those statements
    the log keeps the batch's order (what the next tier pushes in) and its hash chain."""
    peer, token = downstream
    wire = numbered([entry(site, i) for i in range(500)])
    wire[310] = dict(wire[9], seq=311)  # a repeat inside the batch, past the first statement
    r = push(client, token, {"source": peer.id, "since": 0, "records": wire})
    assert r.status_code == 200 and r.json["cursor"] == 500
    statuses = [x["status"] for x in r.json["results"]]
    assert statuses.count("applied") == 499 and statuses[310] == "duplicate"
    log = db.execute("SELECT uuid, chain FROM changes WHERE kind = 'entry' ORDER BY seq").fetchall()
    assert [u for u, _c in log] == [w["uuid"] for i, w in enumerate(wire) if i != 310]
    chain = ""
    for uuid, link in log:
        chain = sync.store.chain_next(chain, uuid)
        assert link == chain


def test_same_uuid_other_content_is_a_conflict_kept_for_review(client, db, site, downstream):
    peer, token = downstream
    first = entry(site, 1)
    push(client, token, {"source": peer.id, "records": numbered([first])})
    other = dict(first, data=dict(first["data"], name="李四"))
    r = push(client, token, {"source": peer.id, "records": numbered([other], 2)})
    assert r.json["results"][0]["status"] == "conflict"
    assert db.execute("SELECT name FROM entries").fetchone()[0] == first["data"]["name"]
    assert db.execute("SELECT status FROM sync_rejects").fetchone()[0] == "conflict"


def test_a_uuid_twice_in_one_batch_and_resends_mixed_with_new_records(client, db, site, downstream):
    """Within one batch: a record sent twice is stored once, the same uuid with other content is
    a conflict; records stored before come back duplicate or conflict beside new ones."""
    peer, token = downstream
    old, changed_old = entry(site, 1), entry(site, 2)
    push(client, token, {"source": peer.id, "records": numbered([old, changed_old])})
    new = entry(site, 3)
    clash = entry(site, 4)
    batch = [
        new,
        old,
        dict(changed_old, data=dict(changed_old["data"], name="李四")),
        dict(new),
        clash,
        dict(clash, data=dict(clash["data"], temperature=36.9)),
    ]
    r = push(client, token, {"source": peer.id, "records": numbered(batch, 3)})
    statuses = [x["status"] for x in r.json["results"]]
    assert statuses == ["applied", "duplicate", "conflict", "duplicate", "applied", "conflict"]
    rows = dict(db.execute("SELECT uuid, name FROM entries").fetchall())
    assert len(rows) == 4 and rows[changed_old["uuid"]] == changed_old["data"]["name"]
    assert (
        db.execute("SELECT temperature FROM entries WHERE uuid = ?", (clash["uuid"],)).fetchone()[0]
        == clash["data"]["temperature"]
    )
    logged = [r[0] for r in db.execute("SELECT uuid FROM changes ORDER BY seq")]
    assert logged == [old["uuid"], changed_old["uuid"], new["uuid"], clash["uuid"]]
    review = db.execute("SELECT uuid FROM sync_rejects WHERE status = 'conflict'").fetchall()
    assert sorted(r[0] for r in review) == sorted([changed_old["uuid"], clash["uuid"]])
    assert counts(db)[2] == 4  # records_in counts what was applied, once


def test_one_invalid_record_does_not_block_the_batch(client, db, site, downstream):
    peer, token = downstream
    wire = numbered([entry(site, 1), entry(site, 2, temperature=51), entry(site, 3)])
    r = push(client, token, {"source": peer.id, "records": wire})
    assert [x["status"] for x in r.json["results"]] == ["applied", "rejected", "applied"]
    # A sentence in the sender's language naming the field, not a code word.
    assert r.json["results"][1]["reason"] == (
        "Temperature (°C): 51.0 °C is impossible: accept 34.0 to 43.0 °C; measure again."
    )
    assert r.json["cursor"] == 3  # acknowledged: the queue moves past it
    kept = db.execute("SELECT uuid, body FROM sync_rejects").fetchone()
    assert kept["uuid"] == wire[1]["uuid"] and '"temperature": 51' in kept["body"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("not json", 400, "bad_json"),
        ([], 400, "not_object"),
        ({"records": []}, 400, "bad_source"),
        ({"source": "SOURCE", "records": {}}, 400, "bad_records"),
        ({"source": "SOURCE", "records": [{"uuid": "x"}]}, 400, "bad_seq"),
        ({"source": "SOURCE", "records": [], "since": -1}, 400, "bad_seq"),
        ({"source": "someone-else", "records": []}, 403, "wrong_source"),
        ({"source": "SOURCE", "records": [{"seq": 1}] * 501}, 413, "too_many"),
    ],
)
def test_malformed_batches_are_refused_whole(client, db, site, downstream, body, status, error):
    peer, token = downstream
    if isinstance(body, dict) and body.get("source") == "SOURCE":
        body = dict(body, source=peer.id)
    if isinstance(body, dict) and body.get("records") == [{"uuid": "x"}]:
        body["records"] = [entry(site, 1), dict(entry(site, 2), seq=2)]
    r = push(client, token, body)
    assert r.status_code == status
    assert r.json["error"] == error and r.json["message"]
    assert counts(db) == (0, 0, 0)


def test_oversized_body_and_wrong_content_type_change_nothing(app, client, db, site, downstream):
    peer, token = downstream
    app.config["SYNC_MAX_BATCH_BYTES"] = 2000
    big = {"source": peer.id, "records": numbered([entry(site, i) for i in range(10)])}
    r = push(client, token, big)
    assert r.status_code == 413 and r.json["error"] == "too_large"
    r = push(client, token, json.dumps(big), content_type="text/plain")
    assert r.status_code == 415
    assert counts(db) == (0, 0, 0)


def test_tokens_missing_wrong_or_revoked_are_refused(client, db, site, downstream):
    peer, token = downstream
    body = {"source": peer.id, "records": numbered([entry(site, 1)])}
    assert client.post("/sync/v1/push", json=body).status_code == 401
    assert push(client, "x" * 43, body).status_code == 401
    with db:
        peers.revoke(db, "instance", "district")
    r = push(client, token, body)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert counts(db) == (0, 0, 0)


def test_error_messages_follow_the_language(client, downstream):
    _peer, token = downstream
    r = client.post(
        "/sync/v1/push",
        data="{",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"},
    )
    assert r.json["message"] == "请求内容不是有效的 JSON。"


def test_cursor_never_skips_a_gap_and_a_reset_takes_it_back(client, db, site, downstream):
    peer, token = downstream
    first = numbered([entry(site, i) for i in range(4)])
    assert (
        push(client, token, {"source": peer.id, "since": 0, "records": first}).json["cursor"] == 4
    )
    # The sender thinks we hold up to 10 (we were restored): apply, but keep our cursor.
    later = numbered([entry(site, i) for i in range(2)], start=11)
    r = push(client, token, {"source": peer.id, "since": 10, "records": later})
    assert r.json["cursor"] == 4 and {x["status"] for x in r.json["results"]} == {"applied"}
    # A second pusher behind us does not move the cursor back...
    r = push(client, token, {"source": peer.id, "since": 0, "records": first[:2]})
    assert r.json["cursor"] == 4
    # ...but a sender whose log disagrees (restored) resets it to where it really is.
    r = push(client, token, {"source": peer.id, "since": 0, "reset": True, "records": first[:2]})
    assert r.json["cursor"] == 2
    assert db.execute("SELECT uuid FROM sync_cursors").fetchone()[0] == first[1]["uuid"]


def test_a_phone_pushes_by_uuid_only_stamped_with_its_device(app, client, db, site):
    with db:
        phone, token = peers.create(db, "device", "门岗手机1", site)
    wire = [entry(site, 1), entry(site, 2)]
    r = push(client, token, {"source": phone.id, "records": wire})
    assert r.status_code == 200 and r.json["cursor"] is None
    rows = db.execute("SELECT origin, device FROM entries").fetchall()
    here = db.execute("SELECT value FROM settings WHERE name = 'instance_id'").fetchone()[0]
    assert {tuple(x) for x in rows} == {(here, phone.id)}
    bad = dict(entry(site, 3), device="another-phone")
    r = push(client, token, {"source": phone.id, "records": [bad]})
    assert r.json["results"][0]["status"] == "rejected"
    assert (
        client.get("/sync/v1/pull", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    )


def test_phone_cookie_is_the_fallback_when_no_bearer_token(app, client, db, site, monkeypatch):
    from fieldapp.phones import devices

    with db:
        phone, _token = peers.create(db, "device", "门岗手机2", site)
    monkeypatch.setattr(devices, "peer_from_cookie", lambda conn: phone)
    r = client.post("/sync/v1/push", json={"source": phone.id, "records": [entry(site, 1)]})
    assert r.status_code == 200 and r.json["results"][0]["status"] == "applied"
    # A form post (no JSON content type) cannot ride on the cookie.
    r = client.post("/sync/v1/push", data={"source": phone.id})
    assert r.status_code == 415


def test_pull_gives_config_since_a_version_and_a_downstream_applies_it(
    app, client, db, downstream, tmp_path
):
    from fieldapp.db import connect, migrate
    from fieldapp.gate import sites

    _peer, token = downstream
    auth = {"Authorization": f"Bearer {token}"}
    site_id = add_site(app.config["DATABASE"], "工地一号")
    from sync.config import next_version

    with db:
        db.execute(
            "INSERT INTO roster (id, site_id, name, phone, unit, version)"
            " VALUES ('r1', ?, '王五', '', '1-101', ?)",
            (site_id, next_version(db)),
        )
    for since in ("-1", "x", "%C2%B2", "1" * 19):  # "²" passes str.isdigit: was a 500
        r = client.get(f"/sync/v1/pull?since={since}", headers=auth)
        assert r.status_code == 400 and r.json["error"] == "bad_since", since
    first = client.get("/sync/v1/pull?since=0", headers=auth).json
    assert [s["name"] for s in first["sites"]] == ["工地一号"]
    assert [p["name"] for p in first["roster"]] == ["王五"]
    assert first["settings"] == {"retention_days": 21}

    below = connect(tmp_path / "below.sqlite3")
    migrate(below)
    with app.app_context():
        configuration.apply_config(below, first)
    old_code = first["sites"][0]["code"]
    new_code = sites.rotate_code(db, site_id)
    later = client.get(f"/sync/v1/pull?since={first['version']}", headers=auth).json
    assert [s["code"] for s in later["sites"]] == [new_code] and later["roster"] == []
    with app.app_context():
        configuration.apply_config(below, later)
    assert below.execute("SELECT code FROM sites").fetchone()[0] == new_code
    assert (
        below.execute("SELECT site_id FROM site_old_codes WHERE code = ?", (old_code,)).fetchone()[
            0
        ]
        == site_id
    )
    assert below.execute("SELECT name FROM roster").fetchone()[0] == "王五"
    # Taken under its own version numbers, so its own downstreams can pull from it.
    assert below.execute("SELECT version FROM config_version").fetchone()[0] == 2  # two pulls
    assert (
        below.execute("SELECT config_version FROM sync_upstream").fetchone()[0] == later["version"]
    )
    below.close()
    assert client.get("/sync/v1/pull?since=abc", headers=auth).status_code == 400
    # A downstream ahead of us (we were restored) gets everything again.
    assert client.get("/sync/v1/pull?since=999", headers=auth).json["full"] is True


def test_a_pull_whose_version_id_is_not_ours_gets_everything_again(
    app, client, downstream, tmp_path
):
    """Our version V under another id: the caller pulled a V we lost in a restore and took again."""
    from fieldapp.db import connect, migrate

    auth = {"Authorization": f"Bearer {downstream[1]}"}
    add_site(app.config["DATABASE"], "工地一号")
    first = client.get("/sync/v1/pull?since=0", headers=auth).json
    assert first["version"] == 1 and len(first["version_id"]) == 32
    add_site(app.config["DATABASE"], "工地二号")

    def pull(**query):
        answer = client.get("/sync/v1/pull", query_string=query, headers=auth).json
        return answer["full"], sorted(s["name"] for s in answer["sites"])

    assert pull(since=1, since_id=first["version_id"]) == (False, ["工地二号"])
    assert pull(since=1, since_id="f" * 32) == (True, ["工地一号", "工地二号"])
    assert pull(since=1) == (False, ["工地二号"])  # a downstream from before ids: by number
    # The downstream keeps the id with the version, to send it with its next pull.
    below = connect(tmp_path / "below.sqlite3")
    migrate(below)
    with app.app_context():
        configuration.apply_config(below, first)
    state = below.execute("SELECT config_version, config_version_id FROM sync_upstream")
    assert tuple(state.fetchone()) == (1, first["version_id"])
    below.close()


def test_a_sites_closing_date_is_pulled_and_an_upstream_without_one_is_still_taken(
    app, client, db, downstream, tmp_path
):
    """A closed site's closed_at comes down with its row (the roll-call of a day reads it);
    an upstream from before closing dates sends none: its answers are taken all the same, a
    site it opens again is open here with no closing date, one it closes has none (when is
    not known, as for sites closed before closing dates were kept)."""
    from fieldapp.db import connect, migrate
    from fieldapp.gate import sites

    _peer, token = downstream
    auth = {"Authorization": f"Bearer {token}"}
    site_id = add_site(app.config["DATABASE"], "工地一号")
    assert sites.set_active(db, site_id, False)
    closed_at = db.execute("SELECT closed_at FROM sites").fetchone()[0]
    answer = client.get("/sync/v1/pull?since=0", headers=auth).json
    assert [(s["active"], s["closed_at"]) for s in answer["sites"]] == [(0, closed_at)]

    below = connect(tmp_path / "below.sqlite3")
    migrate(below)

    def pulled(payload) -> tuple:
        with app.app_context():
            configuration.apply_config(below, payload)
        return tuple(below.execute("SELECT active, closed_at FROM sites").fetchone())

    assert pulled(answer) == (0, closed_at)
    old = {k: v for k, v in answer["sites"][0].items() if k != "closed_at"}
    version = answer["version"]
    assert pulled({"version": version + 1, "sites": [{**old, "active": 1}]}) == (1, None)
    assert pulled({"version": version + 2, "sites": [{**old, "active": 0}]}) == (0, None)
    below.close()


def test_a_malformed_pull_answer_changes_nothing(app, db):
    with app.app_context(), pytest.raises(sync.SyncError):
        configuration.apply_config(db, {"version": 3, "sites": [{"name": "no id"}]})
    assert db.execute("SELECT count(*) FROM sites").fetchone()[0] == 0
    assert db.execute("SELECT version FROM config_version").fetchone()[0] == 0


def test_instance_commands(runner, db):
    added = runner.invoke(args=["instance", "add", "district-east"], env={"LANG": "en_US.UTF-8"})
    assert added.exit_code == 0, added.output
    token = [ln for ln in added.output.splitlines() if len(ln) == 43 and " " not in ln][0]
    assert peers.authenticate(db, token).name == "district-east"
    assert token not in json.dumps([dict(r) for r in db.execute("SELECT * FROM peers")])
    twice = runner.invoke(args=["instance", "add", "district-east"], env={"LANG": "en_US.UTF-8"})
    assert twice.exit_code != 0 and "exists already" in twice.output
    listed = runner.invoke(args=["instance", "list"], env={"LANG": "en_US.UTF-8"})
    assert "district-east" in listed.output and "never" in listed.output
    revoked = runner.invoke(
        args=["instance", "revoke", "district-east"], env={"LANG": "en_US.UTF-8"}
    )
    assert revoked.exit_code == 0
    assert peers.authenticate(db, token) is None
    assert runner.invoke(args=["instance", "revoke", "district-east"]).exit_code != 0


def test_upstream_set_checks_and_stores_outside_the_database(app, runner, tmp_path):
    bad = runner.invoke(args=["upstream", "set", "ftp://x", "tok"], env={"LANG": "en_US.UTF-8"})
    assert bad.exit_code != 0 and "http://" in bad.output
    for url in ("http://[::1", "http://city.example:port"):  # urlsplit or .port raise
        bad = runner.invoke(args=["upstream", "set", url, "A" * 43], env={"LANG": "zh_CN.UTF-8"})
        assert bad.exit_code == 2 and isinstance(bad.exception, SystemExit), bad.output
        assert "上级网址必须以 http:// 或 https:// 开头，并包含主机名" in bad.output
    assert not (tmp_path / "config.py").exists()
    ok = runner.invoke(args=["upstream", "set", "https://city.example/", "A" * 43])
    assert ok.exit_code == 0, ok.output
    text = (tmp_path / "config.py").read_text()
    assert "UPSTREAM_URL = 'https://city.example'" in text and "A" * 43 in text
    assert is_downstream(app.config)
    again = runner.invoke(args=["upstream", "set", "https://district.example", "B" * 43])
    assert again.exit_code == 0
    assert (tmp_path / "config.py").read_text().count("UPSTREAM_URL") == 1


def test_sync_without_upstream_and_status(app, runner, db, site):
    r = runner.invoke(args=["sync"], env={"LANG": "zh_CN.UTF-8"})
    assert r.exit_code != 0 and "fieldapp upstream set" in r.output
    with db:
        peers.create(db, "instance", "office-3")
    shown = runner.invoke(args=["sync", "--status"], env={"LANG": "en_US.UTF-8"})
    assert "central" in shown.output and "office-3" in shown.output
    app.config["UPSTREAM_URL"] = "http://127.0.0.1:9"
    app.config["UPSTREAM_TOKEN"] = "T" * 43
    from fieldapp import records

    with app.test_request_context():
        records.save(db, [entry(site, i) for i in range(3)], source="gate")
    failed = runner.invoke(args=["sync"], env={"LANG": "en_US.UTF-8"})
    assert failed.exit_code != 0 and "Sync failed" in failed.output
    with app.app_context():
        info = sync_status.status(db)
    assert info["upstream"]["waiting"] == 3 and info["upstream"]["last_error"]
    assert info["downstream"][0]["name"] == "office-3"


def test_a_downstream_halves_its_batches_for_an_upstream_with_lower_limits(
    app, db, site, downstream
):
    """The round itself (sync.push_pending) against this app as upstream, through its client."""
    from fieldapp import records

    peer, token = downstream
    app.config["SYNC_BATCH_SIZE"] = 4  # the upstream takes at most 4 records a batch
    client = app.test_client()

    class Transport:
        def cursor(self):
            return client.get("/sync/v1/cursor", headers={"Authorization": f"Bearer {token}"}).json

        def push(self, body):
            r = push(client, token, body)
            if r.status_code != 200:
                raise sync.SyncError(r.json["message"], r.status_code, r.json["error"])
            return r.json

        def pull(self, since):
            raise AssertionError("not used")

    # The same database plays the downstream: its change log holds 10 entries made here.
    with app.test_request_context():
        records.save(db, [entry(site, i) for i in range(10)], source="gate")
    with app.app_context():
        report = sync.push_pending(
            db, app.extensions["fieldapp.records"], Transport(), batch_size=500
        )
    assert report.sent == 10 and report.cursor == 10
    assert (
        db.execute("SELECT seq FROM sync_cursors WHERE source = ?", (peer.id,)).fetchone()[0] == 10
    )


def test_tokens_can_be_pasted_into_a_shell_command(db):
    with db:
        tokens = [peers.create(db, "instance", f"office-{i}")[1] for i in range(300)]
    assert not [t for t in tokens if t.startswith("-")]


def test_a_record_past_the_retention_horizon_is_acknowledged_and_dropped(
    client, db, site, downstream
):
    from sync_helpers import stamp

    peer, token = downstream
    old = dict(entry(site, 1), recorded_at=stamp(minutes_ago=30 * 24 * 60))  # retention is 21 days
    fresh = entry(site, 2)
    r = push(client, token, {"source": peer.id, "records": numbered([old, fresh])})
    assert [x["status"] for x in r.json["results"]] == ["expired", "applied"]
    assert r.json["cursor"] == 2  # acknowledged: a purge is never undone by a late sync
    assert [x[0] for x in db.execute("SELECT uuid FROM entries")] == [fresh["uuid"]]


def test_concurrent_pushes_share_commits_and_keep_the_change_log_whole(app, db, site):
    """Eight downstreams push at once, and half their records are pushed twice (a resend after a
    lost answer, racing the original): each record is stored once, every push gets its own
    answer, the change log's hash chain is unbroken and each cursor is where its sender is."""
    import threading

    senders = []
    with db:
        for i in range(8):
            senders.append(peers.create(db, "instance", f"office-{i}"))
    work = {peer.id: numbered([entry(site, j) for j in range(120)]) for peer, _ in senders}
    answers: list[list[str]] = []

    def pusher(peer, token):
        client = app.test_client()
        wire = work[peer.id]
        batches = [(0, wire[:60]), (60, wire[60:]), (0, wire[:60])]  # the resend
        for since, chunk in batches:
            body = {"source": peer.id, "since": since, "records": chunk}
            r = push(client, token, body)
            assert r.status_code == 200, r.json
            answers.append([x["status"] for x in r.json["results"]])

    threads = [threading.Thread(target=pusher, args=s) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(answers) == 24
    for statuses in answers:
        assert set(statuses) <= {"applied", "duplicate"} and len(statuses) == 60
    every = {r["uuid"] for wire in work.values() for r in wire}
    rows = [r[0] for r in db.execute("SELECT uuid FROM entries")]
    assert len(rows) == len(every) == 960 and set(rows) == every
    log = db.execute("SELECT uuid, chain FROM changes WHERE kind = 'entry' ORDER BY seq").fetchall()
    assert sorted(u for u, _c in log) == sorted(every)
    chain = ""
    for uuid, link in log:
        chain = sync.store.chain_next(chain, uuid)
        assert link == chain, "the change log's hash chain is broken"
    cursors = dict(db.execute("SELECT source, seq FROM sync_cursors").fetchall())
    assert cursors == {peer.id: 120 for peer, _ in senders}


def test_watch_outlives_a_database_error_here_and_a_single_round_says_what_it_was(
    app, runner, db, monkeypatch
):
    """`sync --watch` on a site office: its own database busy past the busy timeout (a long
    purge), or a PostgreSQL server failing over, fails one round; the next one runs."""
    app.config["UPSTREAM_URL"] = "http://127.0.0.1:9"
    app.config["UPSTREAM_TOKEN"] = "T" * 43
    rounds: list[int] = []

    def round_(app, **_kw):
        rounds.append(1)
        if len(rounds) == 1:
            raise sqlite3.OperationalError("database is locked")
        return {
            "pushed": 0,
            "applied": 0,
            "refused": 0,
            "held": 0,
            "pulled": {"sites": 0, "roster": 0},
        }

    class Stop(Exception):
        pass

    def sleep(seconds):
        if len(rounds) >= 2:
            raise Stop

    monkeypatch.setattr(syncing, "sync_round", round_)
    monkeypatch.setattr("fieldapp.syncing.cli.time.sleep", sleep)

    watched = runner.invoke(args=["sync", "--watch"], env={"FIELDAPP_LANG": "zh_CN.UTF-8"})
    assert isinstance(watched.exception, Stop) and len(rounds) == 2
    assert "同步失败：本实例的数据库：database is locked" in watched.output
    assert "已推送 0 条记录" in watched.output

    rounds.clear()
    once = runner.invoke(args=["sync"], env={"FIELDAPP_LANG": "zh_CN.UTF-8"})
    assert once.exit_code == 1 and not isinstance(once.exception, sqlite3.Error)
    assert "本实例的数据库：database is locked" in once.output
