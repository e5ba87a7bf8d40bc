"""Minimum collection: no full ID number in clear in the database file; sites choose their
optional fields; the self-registration form says why and for how long."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from fieldapp import records, rules
from fieldapp.gate import sites
from sync import config as sync_config
from sync.store import iso


def resident_id(body17: str) -> str:
    """A resident ID with a correct GB 11643 check digit."""
    total = sum(int(d) * w for d, w in zip(body17, rules.ID_WEIGHTS, strict=True))
    return body17 + rules.ID_CHECK[total % 11]


FULL_ID = resident_id("32048219850612301")  # a made-up Changzhou (常州金坛) number


@pytest.fixture
def site(app, db):
    with app.app_context():
        return dict(
            sites.add_site(db, "阳光花园小区", "residential", district="金坛区", contact="王主任")
        )


def raw_database(app) -> bytes:
    """The database file and its write-ahead log, byte for byte."""
    raw = b""
    for suffix in ("", "-wal", "-journal"):
        try:
            with open(app.config["DATABASE"] + suffix, "rb") as f:
                raw += f.read()
        except FileNotFoundError:
            pass
    return raw


def id_entry(site_id: str, **extra) -> dict:
    data = {
        "site_id": site_id,
        "direction": "in",
        "person_type": "visitor",
        "name": "赵六",
        "phone": "13912345678",
        "id_number": FULL_ID,
        "temperature": 36.4,
        "health_code": "green",
    }
    data.update(extra)
    return {
        "uuid": str(uuid.uuid4()),
        "kind": "entry",
        "recorded_at": iso(datetime.now(UTC)),
        "data": data,
    }


@pytest.mark.sqlite_only  # the bytes of SQLite's files; PostgreSQL's are VACUUM's (docs/postgresql.md)
def test_full_id_number_is_nowhere_in_the_database_file(app, db, site, client):
    assert rules.valid_resident_id(FULL_ID)
    # Through records.save (what sync and the phones use) ...
    with app.test_request_context():
        assert records.save(db, [id_entry(site["id"])], source="test")[0].status == "applied"
    # ... and through the gate form, from an enrolled phone.
    app.config["WTF_CSRF_ENABLED"] = False
    from gate_helpers import enrol

    enrol(client, db, site)
    r = client.post(
        f"/s/{site['code']}/entries",
        data={
            "uuid": str(uuid.uuid4()),
            "recorded_at": "",
            "site_id": site["id"],
            "direction": "in",
            "person_type": "visitor",
            "name": "钱七",
            "phone": "13912345679",
            "id_number": FULL_ID,
            "temperature": "36.5",
            "health_code": "green",
            "travel": "false",
        },
    )
    assert r.status_code in (302, 303), r.text
    rows = db.execute("SELECT id_masked, id_hash, id_cipher FROM entries").fetchall()
    assert len(rows) == 2
    assert {r["id_masked"] for r in rows} == {FULL_ID[:6] + "********" + FULL_ID[-4:]}
    assert all(r["id_cipher"] and FULL_ID not in r["id_cipher"] for r in rows)
    raw = raw_database(app)
    assert FULL_ID.encode() not in raw
    assert FULL_ID[:6].encode() in raw  # the masked form is there: the search itself works
    # The number can still be looked up by its keyed hash.
    from fieldapp.privacy.ids import IdVault

    digest = IdVault(app.config["ID_KEY"]).hash(FULL_ID)
    assert (
        db.execute("SELECT count(*) FROM entries WHERE id_hash = ?", (digest,)).fetchone()[0] == 2
    )


def test_a_refused_record_does_not_keep_the_full_id_number_in_clear(app, db, site):
    """A record refused by sync is kept for review; its body must not expose the ID number."""
    bad = id_entry(site["id"], temperature=99)  # refused: impossible temperature
    with app.test_request_context():
        assert records.save(db, [bad], source="phone")[0].status == "rejected"
    # Refused twice (the phone retries): one row for review, with the masked number.
    with app.test_request_context():
        assert records.save(db, [bad], source="phone")[0].status == "rejected"
    (body,) = db.execute("SELECT body FROM sync_rejects").fetchone()
    assert FULL_ID[:6] + "********" + FULL_ID[-4:] in body and "赵六" in body
    assert FULL_ID.encode() not in raw_database(app)
    # A conflict (same uuid, other content) is kept masked too.
    good = id_entry(site["id"])
    other = {**good, "data": {**good["data"], "name": "孙八"}}
    with app.test_request_context():
        assert [r.status for r in records.save(db, [good, other], source="phone")] == [
            "applied",
            "conflict",
        ]
    assert db.execute("SELECT count(*) FROM sync_rejects").fetchone()[0] == 2
    assert FULL_ID.encode() not in raw_database(app)


@pytest.mark.parametrize("short", ["E1234567", "G12345678", "3204821985", "12*45"])
def test_a_refused_record_masks_a_short_id_number_too(app, db, site, short):
    """A passport number or a partial ID (10 characters or fewer) is kept masked as well."""
    bad = id_entry(site["id"], temperature=99, id_number=short)  # refused: impossible temperature
    with app.test_request_context():
        assert records.save(db, [bad], source="phone")[0].status == "rejected"
    (body,) = db.execute("SELECT body FROM sync_rejects").fetchone()
    assert short not in body and "赵六" in body
    assert f'"id_number": "{"*" * len(short)}"' in body  # rules.mask_id's form for a short one


def test_site_field_choices_change_the_gate_form(app, db, site, client, runner):
    from gate_helpers import enrol

    enrol(client, db, site)  # the volunteer's phone (a visitor gets the self-registration form)
    page = client.get(f"/s/{site['code']}")
    assert all(f'name="{f}"' in page.text for f in ("id_number", "phone", "plate", "destination"))
    r = runner.invoke(args=["site", "fields", site["code"], "--set", "phone"])
    assert r.exit_code == 0, r.output
    assert "phone" in r.output
    page = client.get(f"/s/{site['code']}")
    assert 'name="phone"' in page.text
    for gone in ("id_number", "plate", "destination"):
        assert f'name="{gone}"' not in page.text
    row = db.execute("SELECT optional_fields, version FROM sites WHERE id = ?", (site["id"],))
    fields, version = row.fetchone()
    assert fields == "phone" and version > site["version"]  # a configuration change flows down
    none = runner.invoke(args=["site", "fields", site["code"], "--set", ""])
    assert none.exit_code == 0, none.output
    assert 'name="phone"' not in client.get(f"/s/{site['code']}").text
    bad = runner.invoke(
        args=["site", "fields", site["code"], "--set", "religion"], env={"LANG": "en_US"}
    )
    assert bad.exit_code != 0 and "religion" in bad.output
    assert db.execute("SELECT optional_fields FROM sites").fetchone()[0] == ""


def test_console_form_sets_the_fields_and_a_viewer_cannot(app, db, site):
    from console_support import csrf, login, make_user

    make_user(app, "coord", "coordinator", districts=["金坛区"])
    make_user(app, "look", "viewer")
    client = app.test_client()
    login(client, "coord")
    path = f"/console/sites/{site['id']}/fields"
    page = client.get(path)
    assert page.status_code == 200 and "身份证号" in page.text and "21" in page.text
    r = client.post(path, data={"csrf_token": csrf(client, path), "fields": ["id_number", "plate"]})
    assert r.status_code == 303
    assert db.execute("SELECT optional_fields FROM sites").fetchone()[0] == "id_number,plate"
    audit = db.execute(
        "SELECT actor, detail FROM audit_log WHERE action = 'site_change'"
    ).fetchall()
    assert [tuple(a) for a in audit] == [("coord", "optional_fields=id_number,plate")]
    viewer = app.test_client()
    login(viewer, "look")
    assert viewer.get(path).status_code == 403
    # A downstream instance does not edit configuration it pulls from upstream.
    app.config["UPSTREAM_URL"] = "https://city.example"
    r = client.post(path, data={"csrf_token": csrf(client, path), "fields": ["phone"]})
    assert r.status_code == 422 and "https://city.example" in r.text
    assert db.execute("SELECT optional_fields FROM sites").fetchone()[0] == "id_number,plate"


def test_self_registration_shows_purpose_and_retention(app, site, client):
    page = client.get(f"/s/{site['code']}/register")
    assert page.status_code == 200
    notice = re.search(r'id="privacy".*?</div>', page.text, re.S)
    assert notice, page.text[:2000]
    assert "21" in notice.group(0)
    english = client.get(f"/s/{site['code']}/register", headers={"Accept-Language": "en"})
    assert "kept for 21 days" in english.text and "Purpose" in english.text


def test_site_field_choices_change_the_visitor_form_too(app, db, site, client, runner):
    page = client.get(f"/s/{site['code']}/register")
    assert 'name="phone"' in page.text and 'name="destination"' in page.text
    assert runner.invoke(args=["site", "fields", site["code"], "--set", ""]).exit_code == 0
    page = client.get(f"/s/{site['code']}/register")
    assert 'name="phone"' not in page.text and 'name="destination"' not in page.text
    assert 'name="temperature"' not in page.text  # the gate staff take it
    app.config["WTF_CSRF_ENABLED"] = False
    r = client.post(
        f"/s/{site['code']}/register",
        data={
            "name": "周九",
            "phone": "13912345678",  # sent anyway (an old page): not stored
            "direction": "in",
            "health_code": "green",
            "consent": "y",
        },
    )
    assert r.status_code == 303, r.text
    row = db.execute("SELECT name, phone, destination FROM registrations").fetchone()
    assert tuple(row) == ("周九", "", "")


def test_fields_saved_twice_are_one_change(app, db, site):
    """The same choice sent twice (a double click, a retry): one configuration version and one
    audit line; the second answer says what the first said."""
    from console_support import csrf, login, make_user

    make_user(app, "coord", "coordinator", districts=["金坛区"])
    client = app.test_client()
    login(client, "coord")
    path = f"/console/sites/{site['id']}/fields"
    version = sync_config.current_version(db)
    for _ in range(2):
        r = client.post(path, data={"csrf_token": csrf(client, path), "fields": ["plate"]})
        assert r.status_code == 303
        assert "的门岗登记表已按所选项目登记" in client.get(path).text
    assert db.execute("SELECT optional_fields FROM sites").fetchone()[0] == "plate"
    assert sync_config.current_version(db) == version + 1
    audit = db.execute("SELECT detail FROM audit_log WHERE action = 'site_change'").fetchall()
    assert [r[0] for r in audit] == ["optional_fields=plate"]
