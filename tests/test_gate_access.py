"""Who keeps a gate: an enrolled phone, or a console user who may write there. A visitor, a
viewer and a coordinator of another district get the visitor's form, and the roster's people
(names, phone numbers) stay with the site's own gate keepers, as roster.json has them."""

from __future__ import annotations

import pytest
from console_support import login, make_user, save, wire_entry
from gate_helpers import HX, enrol, good_entry, hidden, make_site

from fieldapp.gate import roster, sites

PEOPLE = "name,phone,unit,person_type\n张建国,138 1234 5678,3-2-501,resident\n"


@pytest.fixture
def two(app, db):
    """Site A (金坛区) and site B (溧阳市, with 张建国 on its roster and one entry)."""
    with app.app_context():
        a = dict(make_site(db, "甲小区"))
        b = dict(sites.add_site(db, "乙小区", "residential", district="溧阳市", contact="x"))
        roster.import_rows(db, b["id"], roster.parse_csv(PEOPLE.encode()))
    save(app, wire_entry(b["id"], name="王大锤", phone="13700001111"))
    return a, b


def post_entry(client, code: str, name: str):
    """Fill and save the gate form of that site as its page gives it."""
    html = client.get(f"/s/{code}").get_data(as_text=True)
    data = good_entry(name=name)
    data.update(
        csrf_token=hidden(html, "csrf_token"),
        site_id=hidden(html, "site_id"),
        uuid=hidden(html, "uuid"),
        recorded_at="",
    )
    return client.post(f"/s/{code}/entries", data=data)


def stored(db, name: str) -> int:
    return db.execute("SELECT count(*) FROM entries WHERE name = ?", (name,)).fetchone()[0]


def test_a_visitor_cannot_search_the_roster(client, two):
    _a, b = two
    r = client.get(f"/s/{b['code']}/roster?q=3-", headers=HX)
    assert r.status_code == 401
    assert "张建国" not in r.text and "13812345678" not in r.text


@pytest.mark.parametrize(
    "role, districts", [("viewer", None), ("coordinator", ["金坛区"])], ids=["viewer", "other"]
)
def test_a_console_user_who_may_not_write_there_gets_the_visitors_form(
    app, client, db, two, role, districts
):
    """A viewer (read-only), or a coordinator whose scope is another district: the gate page
    is the visitor's, the last entries and the roster are refused, and a post saves nothing."""
    _a, b = two
    make_user(app, "guest", role, districts=districts)
    login(client, "guest")
    page = client.get(f"/s/{b['code']}?q=3-")
    assert 'id="entry-form"' not in page.text
    assert "王大锤" not in page.text and "张建国" not in page.text
    assert client.get(f"/s/{b['code']}/last", headers=HX).status_code == 401
    assert client.get(f"/s/{b['code']}/roster?q=3-", headers=HX).status_code == 401
    token = hidden(page.text, "csrf_token")
    data = good_entry(name="越权登记")
    data.update(csrf_token=token, site_id=b["id"], uuid="", recorded_at="")
    assert client.post(f"/s/{b['code']}/entries", data=data).status_code == 401
    assert stored(db, "越权登记") == 0


def test_a_coordinator_keeps_the_gates_of_their_own_district(app, client, db, two):
    a, _b = two
    make_user(app, "wang", "coordinator", districts=["金坛区"])
    login(client, "wang")
    assert post_entry(client, a["code"], "本区登记").status_code == 303
    assert stored(db, "本区登记") == 1


def test_a_phone_of_another_site_records_here_without_reading_its_roster(client, db, two):
    """A volunteer whose phone is enrolled at A helps at B's gate: it saves there, but B's
    people are not shown to it (a card scanned, a search), as roster.json refuses it."""
    a, b = two
    enrol(client, db, a)
    person = db.execute("SELECT id FROM roster WHERE name = '张建国'").fetchone()[0]
    page = client.get(f"/s/{b['code']}?person={person}&q=3-")
    assert 'id="entry-form"' in page.text
    assert "13812345678" not in page.text and "张建国" not in page.text
    search = client.get(f"/s/{b['code']}/roster?q=3-", headers=HX)
    assert search.status_code == 200 and "张建国" not in search.text
    assert post_entry(client, b["code"], "帮忙登记").status_code == 303
    assert stored(db, "帮忙登记") == 1


def test_a_phone_of_the_site_reads_its_roster(client, db, two):
    _a, b = two
    enrol(client, db, b)
    person = db.execute("SELECT id FROM roster WHERE name = '张建国'").fetchone()[0]
    assert 'value="13812345678"' in client.get(f"/s/{b['code']}?person={person}").text
    assert "张建国" in client.get(f"/s/{b['code']}/roster?q=3-", headers=HX).text
