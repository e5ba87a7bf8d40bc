"""The push endpoint as phones use it: the device cookie, idempotency, conflicts, bad batches."""

from __future__ import annotations

import json
import uuid

import pytest

from fieldapp.gate import sites
from fieldapp.phones import devices
from sync import peers


@pytest.fixture
def site(db):
    return sites.add_site(db, "幸福小区", "residential")


@pytest.fixture
def phone(client, db, site):
    """An enrolled phone: its peer, with the client holding its device cookie."""
    peer, token = peers.create(db, "device", "东门 1 号机", site["id"])
    client.set_cookie(devices.COOKIE, token)
    return peer


def record(site, name="张三", **data):
    return {
        "uuid": str(uuid.uuid4()),
        "kind": "entry",
        "recorded_at": "2026-11-23T08:30:00.000Z",
        "data": {
            "site_id": site["id"],
            "direction": "in",
            "person_type": "resident",
            "name": name,
            "phone": "13800138000",
            "temperature": 36.5,
            "health_code": "green",
            **data,
        },
    }


def push(client, source, records, **kw):
    body = kw.pop("body", None) or json.dumps({"source": source, "records": records})
    return client.post(
        "/sync/v1/push", data=body, content_type=kw.pop("content_type", "application/json")
    )


def count(db, sql="SELECT COUNT(*) FROM entries"):
    return db.execute(sql).fetchone()[0]


@pytest.fixture(autouse=True)
def _recent(monkeypatch):
    """Records recorded 'now' so that retention never expires them in these tests."""
    import sync.store

    monkeypatch.setattr(
        sync.store, "utcnow", lambda: sync.store.datetime(2026, 11, 23, 9, 0, tzinfo=sync.store.UTC)
    )


def test_same_batch_twice_is_applied_then_duplicate(client, db, site, phone):
    batch = [record(site, "甲"), record(site, "乙")]
    first = push(client, phone.id, batch)
    assert first.status_code == 200
    assert [r["status"] for r in first.get_json()["results"]] == ["applied", "applied"]
    again = push(client, phone.id, batch)
    assert [r["status"] for r in again.get_json()["results"]] == ["duplicate", "duplicate"]
    assert count(db) == 2
    devices_stamped = db.execute("SELECT DISTINCT device FROM entries").fetchall()
    assert [r[0] for r in devices_stamped] == [phone.id]


def test_same_uuid_other_content_is_a_conflict_and_the_first_is_kept(client, db, site, phone):
    first = record(site, "甲")
    push(client, phone.id, [first])
    changed = {**first, "data": {**first["data"], "name": "乙"}}
    answer = push(client, phone.id, [changed]).get_json()["results"]
    assert answer[0]["status"] == "conflict" and answer[0]["reason"]
    assert db.execute("SELECT name FROM entries").fetchall()[0][0] == "甲"
    assert count(db, "SELECT COUNT(*) FROM sync_rejects WHERE status = 'conflict'") == 1


def test_a_phone_enrolled_again_resends_what_it_sent_before_as_repeats(client, db, site, phone):
    """Revoked and enrolled again, a phone has a new device id, and its queue (the answer to its
    last push lost) goes again under it: repeats, not conflicts its volunteer would register
    again. A record whose content changed is still a conflict."""
    sent = [record(site, "甲"), record(site, "乙")]
    assert push(client, phone.id, sent).status_code == 200
    peers.revoke(db, "device", phone.id)
    again, token = peers.create(db, "device", "东门 1 号机", site["id"])
    client.set_cookie(devices.COOKIE, token)
    changed = {**sent[1], "data": {**sent[1]["data"], "name": "丙"}}
    results = push(client, again.id, [sent[0], changed]).get_json()["results"]
    assert [r["status"] for r in results] == ["duplicate", "conflict"]
    assert [tuple(r) for r in db.execute("SELECT name, device FROM entries ORDER BY name")] == [
        ("乙", phone.id),
        ("甲", phone.id),
    ]
    assert count(db, "SELECT COUNT(*) FROM sync_rejects WHERE status = 'conflict'") == 1


def test_an_invalid_record_is_rejected_with_a_reason_and_the_others_applied(
    client, db, site, phone
):
    bad = record(site, "坏", temperature=45)
    results = push(client, phone.id, [record(site, "好"), bad]).get_json()["results"]
    assert [r["status"] for r in results] == ["applied", "rejected"]
    assert "体温" in results[1]["reason"]
    assert count(db) == 1
    assert count(db, "SELECT COUNT(*) FROM sync_rejects WHERE status = 'rejected'") == 1


@pytest.mark.parametrize(
    ("kw", "status"),
    [
        ({"body": "{not json"}, 400),
        ({"body": json.dumps({"records": []})}, 400),
        ({"body": json.dumps(["a list"])}, 400),
        ({"content_type": "application/x-www-form-urlencoded"}, 415),
    ],
)
def test_bad_batches_get_a_clear_4xx_and_nothing_is_written(client, db, site, phone, kw, status):
    response = push(client, phone.id, [record(site)], **kw)
    assert response.status_code == status
    assert response.get_json()["message"]
    assert count(db) == 0


def test_a_batch_naming_another_source_is_refused_whole(client, db, site, phone):
    response = push(client, "someone-else", [record(site)])
    assert response.status_code == 403
    assert count(db) == 0


def test_too_many_records_in_one_batch(app, client, db, site, phone):
    app.config["SYNC_BATCH_SIZE"] = 3
    response = push(client, phone.id, [record(site) for _ in range(4)])
    assert response.status_code == 413
    assert count(db) == 0


def test_a_record_naming_another_device_is_rejected(client, db, site, phone):
    other = {**record(site), "device": str(uuid.uuid4())}
    results = push(client, phone.id, [other]).get_json()["results"]
    assert results[0]["status"] == "rejected"
    assert count(db) == 0


def test_no_cookie_or_a_revoked_phone_gets_401_and_nothing_is_written(client, db, site, phone):
    peers.revoke(db, "device", phone.id)
    response = push(client, phone.id, [record(site)])
    assert response.status_code == 401
    client.delete_cookie(devices.COOKIE)
    assert push(client, phone.id, [record(site)]).status_code == 401
    assert count(db) == 0
