"""The gate page and its entry form: fields, validation, one row per record id, HTMX and no-JS."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from gate_helpers import EN, HX, VALIDATION_TABLE, count, enrol, good_entry, make_site, submit

import sync
from fieldapp import days, records
from fieldapp.console import corrections
from fieldapp.gate import sites
from sync.store import iso, utcnow


@pytest.fixture
def site(db):
    return make_site(db)


@pytest.fixture
def gate(client, db, site):
    """A client that is an enrolled gate phone of the site."""
    return enrol(client, db, site)


def test_gate_page_has_the_form_with_wire_field_names(gate, site):
    html = gate.get(f"/s/{site['code']}", headers=EN).get_data(as_text=True)
    form = html[html.index('<form id="entry-form"') :]
    assert 'data-outbox-kind="entry"' in form
    assert f'action="/s/{site["code"]}/entries"' in form
    for key in (
        "site_id", "direction", "person_type", "name", "phone", "id_number", "temperature",
        "fever_action", "health_code", "travel", "travel_where", "plate", "destination", "note",
        "volunteer", "uuid", "recorded_at", "csrf_token",
    ):  # fmt: skip
        assert f'name="{key}"' in form, key
    assert re.search(r'id="temperature" inputmode="decimal"', form)
    assert "Nobody registered here yet." in html
    assert site["name"] in html


def test_each_visit_gets_a_new_record_id(gate, site):
    ids = {
        re.search(
            r'name="uuid" type="hidden" value="([^"]+)"',
            gate.get(f"/s/{site['code']}").get_data(as_text=True),
        ).group(1)
        for _ in range(2)
    }
    assert len(ids) == 2


ID_OK = "11010519491231002X"


@pytest.mark.parametrize(("changes", "field", "message"), VALIDATION_TABLE)
def test_bad_input_is_refused_beside_its_field_and_nothing_saved(
    gate, site, db, changes, field, message
):
    response, _ = submit(gate, site, headers=EN, **changes)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(f'class="error" id="{field}-error">[^<]*{re.escape(message)}', html)
    assert count(db) == 0
    # What was typed stays in the form.
    assert 'value="13812345678"' in html or changes.get("phone") is not None


def test_a_fever_is_shown_in_red_and_asks_what_was_done(gate, site, db):
    response, _ = submit(gate, site, headers=EN, temperature="37.8")
    html = response.get_data(as_text=True)
    assert 'class="field temperature fever' in html
    assert 'class="choices fever-action fever field-error"' in html
    assert count(db) == 0
    response, uid = submit(gate, site, headers=EN, temperature="37.8", fever_action="clinic")
    assert response.status_code == 303
    row = db.execute(
        "SELECT temperature, fever_action FROM entries WHERE uuid = ?", (uid,)
    ).fetchone()
    assert tuple(row) == (37.8, "clinic")


def test_no_js_saves_redirects_and_shows_the_entry(gate, site, db):
    response, uid = submit(gate, site, headers=EN)
    assert response.status_code == 303
    # saved=1: a page the phone's service worker asks of the instance, its confirmation in it.
    assert response.headers["Location"] == f"/s/{site['code']}?saved=1"
    page = gate.get(response.headers["Location"], headers=EN).get_data(as_text=True)
    assert "Saved: 张建国, In, 36.5 °C." in page
    fever, _ = submit(
        gate, site, headers=EN, name="王五", temperature="38.0", fever_action="refused"
    )
    page = gate.get(f"/s/{site['code']}", headers=EN).get_data(as_text=True)
    assert "Saved: 王五, In, 38.0 °C. Fever: Entry refused." in page
    last = page[page.index("Last entries here") :]
    assert "张建国" in last and "138****5678" in last and "13812345678" not in last
    row = db.execute("SELECT * FROM entries WHERE uuid = ?", (uid,)).fetchone()
    assert row["site_id"] == site["id"]
    assert (row["direction"], row["name"], row["phone"], row["temperature"]) == (
        "in", "张建国", "13812345678", 36.5,
    )  # fmt: skip
    assert row["recorded_at"].endswith("Z") and row["received_at"].endswith("Z")
    # Written through records.save: the change log has it too.
    assert count(db, "SELECT count(*) FROM changes WHERE uuid = ?", (uid,)) == 1


def test_the_same_record_id_twice_saves_one_row(gate, site, db):
    page = gate.get(f"/s/{site['code']}").get_data(as_text=True)
    first, uid = submit(
        gate, site, html=page, headers=EN, recorded_at=iso(utcnow() - timedelta(minutes=2))
    )
    second, uid2 = submit(
        gate, site, html=page, headers=EN, recorded_at=iso(utcnow() - timedelta(minutes=1))
    )
    assert uid == uid2
    assert first.status_code == second.status_code == 303
    assert count(db) == 1
    assert count(db, "SELECT count(*) FROM changes") == 1
    assert count(db, "SELECT count(*) FROM sync_rejects") == 0
    page = gate.get(f"/s/{site['code']}", headers=EN).get_data(as_text=True)
    assert "Already saved: 张建国" in page


def test_a_reading_and_a_number_typed_full_width_or_with_a_unit_are_saved(gate, site, db):
    """A keyboard in full-width mode, or a paste from a chat: the digits are read as digits and
    the unit after a reading is dropped; the form lets the whole of it be typed."""
    page = gate.get(f"/s/{site['code']}").get_data(as_text=True)
    maxlength = re.search(r'<input[^>]*name="temperature"[^>]*>', page).group(0)
    assert 'maxlength="8"' in maxlength  # "37.25 °C"
    done, _uid = submit(
        gate, site, html=page, temperature="３６．５℃", phone="１３８１２３４５６７８"
    )
    assert done.status_code == 303
    row = db.execute("SELECT temperature, phone FROM entries").fetchone()
    assert tuple(row) == (36.5, "13812345678")


def test_device_time_is_kept_and_a_bad_one_replaced(gate, site, db):
    device_time = iso(utcnow() - timedelta(minutes=10))  # filled in, then sent a little later
    _, uid = submit(gate, site, recorded_at=device_time)
    assert db.execute("SELECT recorded_at FROM entries WHERE uuid = ?", (uid,)).fetchone()[0] == (
        device_time
    )
    for wrong in ("2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"):  # a phone with a bad clock
        before = iso(utcnow())
        _, uid = submit(gate, site, recorded_at=wrong)
        row = db.execute(
            "SELECT recorded_at, received_at FROM entries WHERE uuid = ?", (uid,)
        ).fetchone()
        assert before <= row["recorded_at"] <= row["received_at"]
    before = iso(utcnow())
    _, uid = submit(gate, site, recorded_at="yesterday-ish")
    row = db.execute(
        "SELECT recorded_at, received_at FROM entries WHERE uuid = ?", (uid,)
    ).fetchone()
    assert before <= row["recorded_at"] <= row["received_at"]  # the server's own clock


def test_a_phone_hours_slow_is_timed_by_the_instance_clock_not_filed_the_day_before(
    gate, site, db, monkeypatch
):
    """Half past midnight, a phone whose clock is three hours slow (21:30 the day before)
    saves an entry filled in two minutes earlier: it is filed under today at 00:28, as the
    push of the same phone's outbox would time it, and the last entries say 00:28."""
    tz = "Asia/Shanghai"
    midnight = days.bounds(days.today(tz), tz)[0]
    now = datetime.fromisoformat(midnight.replace("Z", "+00:00")) + timedelta(minutes=30)
    monkeypatch.setattr(sync, "utcnow", lambda: now)
    phone = now - timedelta(hours=3)
    response, uid = submit(
        gate,
        site,
        headers={**HX, "X-Fieldapp-Sent-At": iso(phone)},
        recorded_at=iso(phone - timedelta(minutes=2)),
    )
    assert response.status_code == 200
    stored = db.execute("SELECT recorded_at FROM entries WHERE uuid = ?", (uid,)).fetchone()[0]
    assert stored == iso(now - timedelta(minutes=2))
    assert days.local(stored, tz).date() == days.today(tz)
    last = response.get_data(as_text=True).split('class="last-entries"')[1]
    assert '<span class="when">00:28</span>' in last
    # A clock that is right sends a time filled in ten minutes before: kept as it is.
    _response, uid = submit(
        gate,
        site,
        headers={"X-Fieldapp-Sent-At": iso(now)},
        recorded_at=iso(now - timedelta(minutes=10)),
    )
    stored = db.execute("SELECT recorded_at FROM entries WHERE uuid = ?", (uid,)).fetchone()[0]
    assert stored == iso(now - timedelta(minutes=10))


def test_the_last_entries_show_what_the_console_corrected(gate, site, db, app):
    """Two wrong taps at the gate: 39.0 typed for 36.9 and 进 for 出 (corrected in the
    console), and someone registered twice (the second voided). The gate's last entries
    show the corrected reading, no fever and 出, and the person once."""
    _r, typo = submit(gate, site, name="赵体温", temperature="39.0", fever_action="clinic")
    _r, twice = submit(gate, site, name="钱两次")
    _r, _once = submit(gate, site, name="钱两次")
    with app.test_request_context():
        fixes = [
            corrections.wire(typo, "王主任", "体温输错", {"temperature": 36.9, "direction": "out"}),
            corrections.wire(twice, "王主任", "重复登记", void=True),
        ]
        assert {r.status for r in records.save(db, fixes, source="console")} == {"applied"}
    page = gate.get(f"/s/{site['code']}", headers=EN).get_data(as_text=True)
    last = page.split('class="last-entries"')[1]
    assert last.count("钱两次") == 1
    line = re.search(r'<li class="([^"]*)" data-uuid="' + typo + r'">(.*?)</li>', last, re.S)
    assert line.group(1) == "entry"  # not entry-fever
    assert "36.9 °C" in line.group(2) and "Out" in line.group(2)
    assert "39.0" not in line.group(2) and "Sent to clinic" not in line.group(2)
    assert count(db) == 3  # the entries themselves are as recorded


def test_htmx_answers_a_fragment_with_a_fresh_form(gate, site, db):
    response, uid = submit(gate, site, headers={**EN, **HX}, name="王五", person_type="visitor")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert "<html" not in html and html.lstrip().startswith('<div id="gate">')
    assert "Saved: 王五, In, 36.5 °C." in html
    new_uid = re.search(r'name="uuid" type="hidden" value="([^"]+)"', html).group(1)
    assert new_uid != uid
    assert 'name="name" type="text" value=""' in html  # the fresh form is empty
    assert "王五" in html[html.index("Last entries here") :]
    assert count(db) == 1


def test_htmx_errors_come_back_in_the_fragment(gate, site, db):
    response, _ = submit(gate, site, headers={**EN, **HX}, temperature="50")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html
    assert "50 °C is impossible" in html
    assert 'value="张建国"' in html
    assert count(db) == 0


def test_full_page_varies_on_hx_request(gate, site):
    response = gate.get(f"/s/{site['code']}")
    assert "HX-Request" in response.headers["Vary"]
    fragment = gate.get(f"/s/{site['code']}", headers=HX).get_data(as_text=True)
    assert "<html" not in fragment and 'id="entry-form"' in fragment


def test_a_post_with_a_stale_csrf_token_is_refused_and_keeps_the_form(gate, site, db):
    from gate_helpers import good_entry

    data = {**good_entry(), "site_id": site["id"], "csrf_token": "stale"}
    response = gate.post(f"/s/{site['code']}/entries", data=data, headers=EN)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert count(db) == 0
    # Nothing saved, nothing lost: the form comes back as typed, with a fresh token.
    assert "This page had expired, so nothing was saved." in html
    assert 'value="张建国"' in html and 'value="stale"' not in html
    fragment = gate.post(f"/s/{site['code']}/entries", data=data, headers={**EN, **HX})
    assert fragment.status_code == 200 and "<html" not in fragment.get_data(as_text=True)
    assert count(db) == 0
    # The answer says its token is renewed: the phone sends the same record again with it
    # (static/js/gate.js), and it is stored.
    assert fragment.headers["X-Fieldapp-Token"] == "renewed"
    token = re.search(r'id="csrf_token"[^>]*value="([^"]+)"', fragment.text)[1]
    again = gate.post(
        f"/s/{site['code']}/entries", data={**data, "csrf_token": token}, headers={**EN, **HX}
    )
    assert "Saved: 张建国" in again.text and "X-Fieldapp-Token" not in again.headers
    assert count(db) == 1
    elsewhere = gate.post("/s/no-such-code/entries", data=data, headers=EN)
    assert elsewhere.status_code == 400
    assert "The page you sent from had expired" in elsewhere.get_data(as_text=True)


def test_id_number_is_only_ever_shown_masked(gate, site, db):
    response, uid = submit(gate, site, id_number=ID_OK.lower(), plate="苏d 12345")
    assert response.status_code == 303
    page = gate.get(f"/s/{site['code']}").get_data(as_text=True)
    assert "110105********002X" in page
    assert ID_OK not in page
    row = db.execute(
        "SELECT id_masked, id_cipher, plate FROM entries WHERE uuid = ?", (uid,)
    ).fetchone()
    assert row["id_masked"] == "110105********002X"
    assert ID_OK not in row["id_cipher"]
    assert row["plate"] == "苏D12345"


def test_travel_with_where_is_saved(gate, site, db):
    _, uid = submit(gate, site, travel="true", travel_where="湖北省武汉市")
    row = db.execute("SELECT travel, travel_where FROM entries WHERE uuid = ?", (uid,)).fetchone()
    assert tuple(row) == (1, "湖北省武汉市")


def test_site_optional_fields_decide_what_is_shown(client, db):
    site = make_site(db, "金坛区人民医院扩建工地", "construction", optional_fields="phone")
    gate = enrol(client, db, site)
    html = gate.get(f"/s/{site['code']}").get_data(as_text=True)
    assert 'name="phone"' in html
    for key in ("id_number", "plate", "destination"):
        assert f'name="{key}"' not in html
    response, uid = submit(gate, site, id_number=None, plate=None, destination=None)
    assert response.status_code == 303
    assert count(db, "SELECT count(*) FROM entries WHERE uuid = ?", (uid,)) == 1


def test_no_phone_asked_means_none_required(client, db):
    site = make_site(db, "小工地", "construction", optional_fields="")
    gate = enrol(client, db, site)
    response, _ = submit(gate, site, phone=None, id_number=None, plate=None, destination=None)
    assert response.status_code == 303
    assert count(db) == 1


@pytest.mark.parametrize(
    ("lang", "texts"),
    [
        ("zh_Hans", ["保存登记", "体温", "最近登记"]),
        ("zh_Hant", ["保存登記", "體溫", "最近登記"]),
        ("en", ["Save entry", "Temperature (°C)", "Last entries here"]),
    ],
)
def test_each_language_renders(gate, site, lang, texts):
    html = gate.get(f"/s/{site['code']}?lang={lang}").get_data(as_text=True)
    for text in texts:
        assert text in html


def test_chinese_is_the_default_for_messages(gate, site, db):
    response, _ = submit(gate, site, temperature="37.5")
    html = response.get_data(as_text=True)
    assert "37.5 °C 属于发热" in html
    assert count(db) == 0


def test_unknown_and_old_codes_answer_404_pages(client, db, site):
    response = client.get("/s/not-a-code", headers=EN)
    assert response.status_code == 404
    assert "This poster is unknown" in response.get_data(as_text=True)
    old = site["code"]
    sites.rotate_code(db, site["id"])
    response = client.get(f"/s/{old}", headers=EN)
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "This poster is out of date" in html
    assert "物业 0519-82800000" in html  # who to ask
    assert client.post(f"/s/{old}/entries", data={}).status_code in (400, 404)
    assert client.get(f"/s/{old}/qr.png").status_code == 404


def test_a_phone_enrolled_at_the_site_follows_its_new_code(gate, client, app, db, site):
    """After the code changes, the site's own phones are sent from the old code's page to the
    new one (their kept page, and its list of last entries, say where it went); a phone of
    another site, and a visitor, still get the "out of date" page, and a closed site moves
    nobody."""
    old = site["code"]
    new = sites.rotate_code(db, site["id"])
    response = gate.get(f"/s/{old}?saved=outbox")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/s/{new}?saved=outbox"
    assert "no-cache" in response.headers["Cache-Control"]
    last = gate.get(f"/s/{old}/last", headers=HX)
    assert last.status_code == 200 and last.headers["X-Fieldapp-Gate"] == f"/s/{new}"
    assert "X-Fieldapp-Gate" not in gate.get(f"/s/{new}/last", headers=HX).headers
    visitor = app.test_client()
    assert visitor.get(f"/s/{old}", headers=EN).status_code == 404
    other = enrol(app.test_client(), db, make_site(db, name="别的工地", kind="construction"))
    response = other.get(f"/s/{old}", headers=EN)
    assert response.status_code == 404 and "This poster is out of date" in response.text
    assert "X-Fieldapp-Gate" not in other.get(f"/s/{old}/last", headers=HX).headers
    sites.set_active(db, site["id"], False)
    assert gate.get(f"/s/{old}", headers=EN).status_code == 404
    assert "X-Fieldapp-Gate" not in gate.get(f"/s/{old}/last", headers=HX).headers


def test_an_entry_typed_before_the_code_changed_or_the_site_closed_is_saved(gate, site, db):
    """The page was open when the coordinator rotated the poster's code, then closed the site:
    the person in front of the volunteer passed all the same. The entry names its site, as an
    entry sent later from the phone's outbox does, and is stored, not lost to a 404 page."""
    page = gate.get(f"/s/{site['code']}").get_data(as_text=True)
    new = sites.rotate_code(db, site["id"])
    response, uid = submit(gate, site, html=page, headers={**EN, **HX}, name="王改码")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Saved: 王改码, In, 36.5 °C." in html
    assert f'action="/s/{new}/entries"' in html  # the next entry goes to the current code
    sites.set_active(db, site["id"], False)
    response, uid2 = submit(gate, site, html=html, headers=EN, name="李关门")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/s/{new}?saved=1"  # which says the site is closed
    rows = db.execute("SELECT uuid, name, site_id FROM entries ORDER BY name").fetchall()
    assert [tuple(r) for r in rows] == [(uid2, "李关门", site["id"]), (uid, "王改码", site["id"])]
    assert count(db, "SELECT count(*) FROM changes") == 2
    # The session was lost meanwhile: the form comes back as typed, and the page's list of
    # the last entries gives it a fresh token, as at a current code.
    stale = {**good_entry(name="赵过期"), "site_id": site["id"], "csrf_token": "stale"}
    fragment = gate.post(f"/s/{site['code']}/entries", data=stale, headers={**EN, **HX})
    assert fragment.status_code == 200 and "This page had expired" in fragment.text
    assert 'value="赵过期"' in fragment.text
    last = gate.get(f"/s/{site['code']}/last", headers=HX)
    assert last.status_code == 200 and 'id="csrf_token"' in last.text and "李关门" in last.text
