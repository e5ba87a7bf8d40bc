"""Helpers for the gate tests: a site, an enrolled phone, and filling the real form."""

from __future__ import annotations

import re

from fieldapp.gate import roster, sites
from sync import peers

EN = {"Accept-Language": "en"}

# What a free-text field holding a control character or an invisible mark is told, beside it.
ONE_LINE = "Must be one line, without tabs or invisible characters."

# The gate form's validation table: changes to a good entry, the field whose message it is, and
# the message.
# The instance (tests/test_gate_form.py) and the phone, online and offline
# (tests/browser/test_phone_rules.py), must each answer every row with the same message.
VALIDATION_TABLE = [
    ({"direction": ""}, "direction", "Choose in or out."),
    ({"person_type": "boss"}, "person_type", "Choose one of the answers."),
    ({"name": "  "}, "name", "Fill this in."),
    ({"name": "张" * 51}, "name", "At most 50 characters."),
    ({"phone": ""}, "phone", "Fill this in."),
    ({"phone": "12345678901"}, "phone", "Must be 11 digits starting with 1"),
    ({"phone": "1381234567"}, "phone", "Must be 11 digits starting with 1"),
    ({"phone": "１３８１２３４５６７"}, "phone", "Must be 11 digits starting with 1"),
    ({"id_number": "11010519491231002"}, "id_number", "Must be 18 characters: 17 digits"),
    ({"id_number": "110105194912310021"}, "id_number", "The check digit is wrong"),
    ({"temperature": ""}, "temperature", "Fill this in."),
    ({"temperature": "hot"}, "temperature", "Enter a number, e.g. 36.5."),
    ({"temperature": "36.5°F"}, "temperature", "Enter a number, e.g. 36.5."),
    ({"temperature": "365"}, "temperature", "Put in the decimal point: is it 36.5?"),
    ({"temperature": "４５℃"}, "temperature", "45 °C is impossible"),
    ({"temperature": "36.5.1"}, "temperature", "Enter a number, e.g. 36.5."),
    ({"temperature": "33.9"}, "temperature", "33.9 °C is impossible: accept 34.0 to 43.0 °C"),
    ({"temperature": "43.1"}, "temperature", "43.1 °C is impossible"),
    (
        {"temperature": "37.3"},
        "fever_action",
        "37.3 °C is a fever: choose one before saving.",
    ),
    ({"temperature": "38.2", "fever_action": "shrug"}, "fever_action", "38.2 °C is a fever"),
    ({"health_code": ""}, "health_code", "Choose the colour it shows."),
    ({"health_code": "purple"}, "health_code", "Choose the colour it shows."),
    ({"travel": "true", "travel_where": ""}, "travel_where", "Say which city or area."),
    ({"travel": "maybe"}, "travel", "Choose yes or no."),
    ({"plate": "ABC123"}, "plate", "Wrong format, e.g. 苏D12345."),
    ({"destination": "x" * 51}, "destination", "At most 50 characters."),
    ({"note": "x" * 201}, "note", "At most 200 characters."),
    # Free text on one line: no control character (a terminal's escape, a tab, a bell, C1's
    # NEL), no mark that reorders what follows. (A line break is no row here: a browser's
    # input drops it from what is typed; tests/test_entry_text.py posts one.)
    ({"name": "张三\x1b[31m"}, "name", ONE_LINE),
    ({"name": "张\t三"}, "name", ONE_LINE),
    ({"destination": "3号楼\u202e105"}, "destination", ONE_LINE),
    ({"note": "\u2066迟到\u2069"}, "note", ONE_LINE),
    ({"volunteer": "李四\x07"}, "volunteer", ONE_LINE),
    ({"travel": "true", "travel_where": "武\x85汉"}, "travel_where", ONE_LINE),
    # Nor a line separator or a deprecated format control. (The invisible marks a paste brings,
    # a zero-width space, a direction mark, a BOM, are removed, not refused: tests/
    # test_entry_text.py, and test_phone_rules.py for the phone.)
    ({"destination": "3号楼\u2028501"}, "destination", ONE_LINE),
    ({"note": "\ufeff迟到\u206a"}, "note", ONE_LINE),
]
HX = {"HX-Request": "true"}


def make_site(db, name="阳光花园小区", kind="residential", **kwargs):
    """A site row made through the domain function."""
    return sites.add_site(db, name, kind, district="金坛区", contact="物业 0519-82800000", **kwargs)


def site_with_roster(app, db, people):
    """A site (as a dict) with these people on its roster."""
    with app.app_context():
        made = make_site(db)
        roster.import_rows(db, made["id"], people)
    return dict(made)


def enrol(client, db, site=None):
    """Make this client an enrolled gate phone (a phone that is not gets the visitor form)."""
    from fieldapp.phones import devices

    _peer, token = peers.create(db, "device", "门岗1号", site["id"] if site else None)
    client.set_cookie(devices.COOKIE, token)
    return client


def hidden(html: str, name: str) -> str:
    """The value of a hidden input of a page."""
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def good_entry(**changes) -> dict[str, str]:
    """Form values of an ordinary entry, as a browser would send them."""
    data = {
        "direction": "in",
        "person_type": "resident",
        "name": "张建国",
        "phone": "13812345678",
        "id_number": "",
        "temperature": "36.5",
        "health_code": "green",
        "travel": "false",
        "travel_where": "",
        "plate": "",
        "destination": "3-2-501",
        "note": "",
        "volunteer": "李四",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def submit(client, site, headers=None, html=None, **changes):
    """Open the gate page (unless given), fill the form, post it; return (response, uuid)."""
    headers = headers or {}
    if html is None:
        page = client.get(
            f"/s/{site['code']}", headers={k: v for k, v in headers.items() if k != "HX-Request"}
        )
        assert page.status_code == 200
        html = page.get_data(as_text=True)
    data = good_entry(**changes)
    data.update(
        csrf_token=hidden(html, "csrf_token"),
        site_id=hidden(html, "site_id"),
        uuid=changes.get("uuid") or hidden(html, "uuid"),
        recorded_at=changes.get("recorded_at", ""),
    )
    response = client.post(f"/s/{site['code']}/entries", data=data, headers=headers)
    return response, data["uuid"]


def count(db, sql="SELECT count(*) FROM entries", params=()):
    return db.execute(sql, params).fetchone()[0]
