"""A phone sends what its pages make (entries, daily reports, screening answers). A coordinator's
corrections and fever follow-ups come from the console, or relayed by an instance: a phone that
sends one, pushed or in an exported file, has it refused and kept for review."""

from __future__ import annotations

import json

import pytest
from console_support import save, wire_entry
from gate_helpers import EN, make_site

from fieldapp.console import cases, corrections
from fieldapp.phones import devices
from sync import peers


@pytest.fixture
def world(app, db):
    """A site with a plain entry and a fever (an open case), and a phone enrolled there."""
    with app.app_context():
        site = dict(make_site(db))
    plain, hot = save(
        app,
        wire_entry(site["id"], name="王大锤"),
        wire_entry(site["id"], name="发烧者", temperature=38.6, fever_action="clinic"),
    )
    phone, token = peers.create(db, "device", "东门1号", site["id"])
    return site, plain, hot, phone, token


def console_records(app, plain, hot):
    """What only a coordinator makes: a void of an entry and the close of a fever case."""
    with app.test_request_context():
        void = corrections.wire(plain, "王协调", "重复登记", void=True)
        close = cases.wire(hot, "王协调", "close", outcome="normal", note="")
    return void, close


def untouched(db, hot):
    """Nothing of the two was stored: no correction, no action, the case still open."""
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM case_actions").fetchone()[0] == 0
    assert db.execute("SELECT closed FROM fever_cases WHERE uuid = ?", (hot,)).fetchone()[0] == 0


def test_a_phone_pushing_a_correction_or_a_case_action_has_them_refused(app, client, db, world):
    site, plain, hot, phone, token = world
    client.set_cookie(devices.COOKIE, token)
    void, close = console_records(app, plain, hot)
    mine = wire_entry(site["id"], name="门岗登记")
    body = {"source": phone.id, "records": [void, close, mine]}
    r = client.post(
        "/sync/v1/push", data=json.dumps(body), headers=EN, content_type="application/json"
    )
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == ["rejected", "rejected", "applied"]
    assert results[0]["reason"] == (
        "A phone does not make records of this kind: they come from the console."
    )
    untouched(db, hot)
    kept = db.execute("SELECT kind FROM sync_rejects ORDER BY kind").fetchall()
    assert [k[0] for k in kept] == ["case_action", "correction"]  # for review


def test_an_exported_phone_file_with_them_has_them_refused(app, runner, db, world, tmp_path):
    _site, plain, hot, phone, _token = world
    void, close = console_records(app, plain, hot)
    path = tmp_path / "outbox.json"
    doc = {"format": "fieldapp-outbox", "version": 1, "device": phone.id, "records": [void, close]}
    path.write_text(json.dumps(doc), "utf-8")
    result = runner.invoke(args=["import-outbox", str(path)])
    assert result.exit_code == 0, result.output
    assert "被拒收 2 条" in result.output
    untouched(db, hot)


def test_an_instance_relays_them_as_ever(app, client, db, world):
    """A site instance pushes up what its coordinators did: stored, the case closed."""
    _site, plain, hot, _phone, _token = world
    instance, token = peers.create(db, "instance", "东门办公室")
    void, close = console_records(app, plain, hot)
    body = {"source": instance.id, "records": [{**void, "seq": 1}, {**close, "seq": 2}]}
    r = client.post(
        "/sync/v1/push",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}"},
        content_type="application/json",
    )
    assert [x["status"] for x in r.get_json()["results"]] == ["applied", "applied"]
    assert db.execute("SELECT closed FROM fever_cases WHERE uuid = ?", (hot,)).fetchone()[0] == 1
