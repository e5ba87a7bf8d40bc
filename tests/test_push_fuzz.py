"""Any JSON in any field of any record kind gets an answer of its own, never a 500.

A batch of [good, mutated, good] is pushed by a downstream instance and by a phone, where the
mutated record has one key of its envelope or of its data replaced by arbitrary JSON (lists,
objects, huge and negative numbers, NaN, lone surrogates, deep nesting, long strings) or
removed. The good records are stored exactly once; the mutated one is stored or refused with a
sentence in the sender's language; a refusal of the whole batch stores nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sync_helpers import add_site, entry, stamp

from fieldapp.reports import daily as reports
from fieldapp.screening import campaigns
from sync import peers


def record(kind: str, data: dict) -> dict:
    """A record of that kind as it crosses the wire: an id of its own, a few minutes old."""
    return {"uuid": str(uuid.uuid4()), "kind": kind, "recorded_at": stamp(), "data": data}


# The screening campaign the world below makes (its id set, so the samples can name it).
CAMPAIGN = "00000000-0000-4000-8000-000000000019"
# A valid record of every kind; a kind added later must add its own here (checked below).
SAMPLES = {
    "entry": lambda site: entry(site, 1),
    "correction": lambda site: record(
        "correction",
        {
            "entry_uuid": str(uuid.uuid4()),
            "changes": {"name": "张建华", "temperature": "37.5"},
            "void": False,
            "reason": "名字写错",
            "author": "wang",
        },
    ),
    "case_action": lambda site: record(
        "case_action",
        {
            "entry_uuid": str(uuid.uuid4()),
            "action": "remeasure",
            "temperature": "37.1",
            "note": "",
            "author": "wang",
        },
    ),
    "daily_report": lambda site: record(
        "daily_report",
        {
            **dict.fromkeys(reports.COUNT_KEYS, 0),
            "site_id": site,
            "day": datetime.now(UTC).date().isoformat(),
            "zero": True,
            "reporter": "李",
        },
    ),
    "registration": lambda site: record(
        "registration",
        {
            "site_id": site,
            "direction": "in",
            "name": "钱访客",
            "phone": "13912345678",
            "health_code": "green",
            "travel": False,
            "travel_where": "",
            "destination": "3-2-501",
            "temperature": None,
        },
    ),
    "screening": lambda site: record(
        "screening",
        {
            "campaign_id": CAMPAIGN,
            "site_id": site,
            "person_id": str(uuid.uuid4()),
            "day": datetime.now(UTC).date().isoformat(),
            "added": True,
            "name": "刘新来",
            "phone": "13900001111",
            "unit": "临时工棚",
            "person_type": "worker",
            "whereabouts": "other_province",
            "whereabouts_where": "湖北",
            "contact": "no",
            "status": "home_isolation",
            "nat_result": "negative",
            "nat_date": datetime.now(UTC).date().isoformat(),
            "vaccine_doses": "2",
            "screener": "值班员",
            "note": "",
        },
    ),
    "screening_action": lambda site: record(
        "screening_action",
        {
            "campaign_id": CAMPAIGN,
            "site_id": site,
            "person_id": str(uuid.uuid4()),
            "action": "check",
            "temperature": "36.8",
            "outcome": "",
            "note": "",
            "author": "wang",
        },
    ),
}
DEEP = "\x00deep:"  # a placeholder the body text replaces with that many nested lists
UNCHECKED = "这条记录无法检查，已留待核查。"

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**30, -1, 0])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.text(st.characters(codec="utf-16", categories=["Cs", "Lo", "Nd"]), max_size=5)
    | st.sampled_from(["\ud800", "a\udfffb", "x" * 5000, "36.5", "in", "green", "true", ""])
    | st.sampled_from([DEEP + "40", DEEP + "1200", DEEP + "5000"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
REMOVE = object()


def body_text(body) -> str:
    """The push body as JSON text, lone surrogates escaped, deep placeholders expanded."""
    text = json.dumps(body)  # ensure_ascii: a lone surrogate goes as \ud800, as a bug would send it
    for depth in (40, 1200, 5000):
        marker = json.dumps(DEEP + str(depth))
        text = text.replace(marker, "[" * depth + "]" * depth)
    return text


@pytest.fixture
def world(app, db):
    site = add_site(app.config["DATABASE"])
    with db:
        instance, instance_token = peers.create(db, "instance", "district")
        phone, phone_token = peers.create(db, "device", "东门 1 号机", site)
    with app.app_context():
        made = campaigns.add(
            db, app.config, "复工人员排查", start=date.today() - timedelta(days=7), all_sites=True
        )
    with db:
        db.execute("UPDATE screening_campaigns SET id = ? WHERE id = ?", (CAMPAIGN, made.id))
    return site, {"instance": (instance, instance_token), "phone": (phone, phone_token)}


def test_every_kind_has_a_sample(app):
    assert set(app.extensions["fieldapp.records"].names()) == set(SAMPLES)


def stored(db, registry, record) -> int:
    table = registry.get(record["kind"]).table
    return db.execute(f"SELECT count(*) FROM {table} WHERE uuid = ?", (record["uuid"],)).fetchone()[
        0
    ]


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(sorted(SAMPLES)),
    sender=st.sampled_from(["instance", "phone"]),
    where=st.sampled_from(["envelope", "data"]),
    key=st.data(),
    value=json_values | st.just(REMOVE),
)
def test_a_mutated_record_never_breaks_its_batch(
    app, client, db, world, kind, sender, where, key, value
):
    site, senders = world
    peer, token = senders[sender]
    registry = app.extensions["fieldapp.records"]
    # A phone sends only the kinds its pages make (test_phone_kinds.py: the others refused).
    assume(sender == "instance" or registry.get(kind).from_phones)
    good = [SAMPLES["entry"](site), SAMPLES[kind](site)]
    bad = SAMPLES[kind](site)
    batch = [good[0], bad, good[1]]
    if sender == "instance":
        for i, record in enumerate(batch, start=1):
            record["seq"] = i
    target = bad if where == "envelope" else bad["data"]
    names = sorted(target) + ["seq", "extra"] if where == "envelope" else sorted(target) + ["extra"]
    name = key.draw(st.sampled_from(names))
    if value is REMOVE:
        target.pop(name, None)
    else:
        target[name] = value
    before = db.execute("SELECT count(*) FROM changes").fetchone()[0]
    response = client.post(
        "/sync/v1/push",
        data=body_text({"source": peer.id, "records": batch}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"},
    )
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code != 200:  # the whole batch refused: nothing of it stored
        assert db.execute("SELECT count(*) FROM changes").fetchone()[0] == before
        assert any("\u4e00" <= c <= "\u9fff" for c in response.json["message"])
        return
    results = response.json["results"]
    assert [r["status"] for r in (results[0], results[2])] == ["applied", "applied"]
    assert [stored(db, registry, r) for r in good] == [1, 1]
    status = results[1]["status"]
    assert status in ("applied", "rejected", "held", "expired", "duplicate", "conflict")
    if status in ("rejected", "held"):
        reason = results[1]["reason"]
        assert reason and reason != UNCHECKED
        assert any("\u4e00" <= c <= "\u9fff" for c in reason), reason  # a sentence in Chinese
        uid, kind = bad.get("uuid"), registry.get(bad.get("kind"))
        if isinstance(uid, str) and uid.isprintable() and kind is not None:  # else not storable
            found = db.execute(f"SELECT count(*) FROM {kind.table} WHERE uuid = ?", (uid,))
            assert found.fetchone()[0] == 0
    elif status == "applied":
        assert stored(db, registry, bad) == 1
        if sender == "phone":  # the first instance to accept a phone's record sets its origin
            table = registry.get(bad["kind"]).table
            origin = db.execute(f"SELECT origin FROM {table} WHERE uuid = ?", (bad["uuid"],))
            here = db.execute("SELECT value FROM settings WHERE name = 'instance_id'").fetchone()
            assert origin.fetchone()[0] == here[0]


@pytest.mark.parametrize("field", ["seq", "upto"])
def test_a_sequence_number_beyond_64_bits_is_a_clear_400(client, db, world, field):
    site, senders = world
    peer, token = senders["instance"]
    record = dict(entry(site, 1), seq=1)
    body = {"source": peer.id, "records": [record]}
    if field == "seq":
        record["seq"] = 2**63
    else:
        body["upto"] = 2**63
    response = client.post(
        "/sync/v1/push",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 0


def test_a_phone_cannot_choose_the_origin_of_its_records(client, db, world):
    site, senders = world
    peer, token = senders["phone"]
    record = dict(entry(site, 1), origin="x" * 5000)
    response = client.post(
        "/sync/v1/push",
        data=json.dumps({"source": peer.id, "records": [record]}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json["results"][0]["status"] == "applied"
    here = db.execute("SELECT value FROM settings WHERE name = 'instance_id'").fetchone()[0]
    origin = db.execute("SELECT origin FROM entries WHERE uuid = ?", (record["uuid"],)).fetchone()
    assert origin[0] == here


@pytest.mark.parametrize(
    ("kind", "where", "name"),
    [
        ("entry", "envelope", "uuid"),  # the record at the top seq: the cursor names it
        ("correction", "envelope", "kind"),
        ("entry", "envelope", "device"),
        ("entry", "envelope", "origin"),
        ("entry", "data", "site_id"),
        ("screening", "data", "campaign_id"),
        ("daily_report", "data", "day"),  # its refusal's reason quotes the value
    ],
)
def test_a_nul_in_an_id_or_a_quoted_value_costs_its_record_alone(
    app, client, db, world, kind, where, name
):
    """PostgreSQL's text holds no U+0000. A record with one where it is stored or looked up as
    it came (its id, kind, device, origin, site, campaign; a reason quoting it) is refused
    alone, on both engines alike: not the whole batch with a 500 on PostgreSQL (the sender
    retrying it for ever), nor stored on SQLite to be passed up to a central that cannot."""
    site, senders = world
    peer, token = senders["instance"]
    good, bad = SAMPLES["entry"](site), SAMPLES[kind](site)
    (bad if where == "envelope" else bad["data"])[name] = "a\x00b"
    response = client.post(
        "/sync/v1/push",
        data=body_text({"source": peer.id, "records": [dict(good, seq=1), dict(bad, seq=2)]}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.json["results"]
    assert [r["status"] for r in results] == ["applied", "rejected"]
    assert results[1]["reason"] != UNCHECKED
    assert "\x00" not in results[1]["reason"]
    assert (
        db.execute("SELECT count(*) FROM entries WHERE uuid = ?", (good["uuid"],)).fetchone()[0]
        == 1
    )
    table = app.extensions["fieldapp.records"].get(SAMPLES[kind](site)["kind"]).table
    assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == (kind == "entry")  # noqa: S608
    kept = db.execute("SELECT uuid, kind, reason, body FROM sync_rejects").fetchall()
    assert len(kept) == 1 and not any("\x00" in str(v) for v in kept[0])
    assert db.execute("SELECT count(*) FROM sync_cursors").fetchone()[0] == 1
