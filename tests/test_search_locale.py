"""Text search on a central whose PostgreSQL database was made with a UTF-8 locale (what a plain
`createdb` gives on a host whose locale is C.UTF-8 or en_US.UTF-8), against SQLite.

The columns sort and fold by code point (COLLATE "C"), as SQLite's: lower() of a column folds
ASCII letters only, on both engines. What is searched for must be folded the same way, not by
the database's own locale, or a name typed as it was written (Émile, with its capital É) finds
nothing on such a central but does on SQLite.
"""

from __future__ import annotations

import pytest
from console_support import csrf, login, make_site, make_user, save, wire_entry
from gate_helpers import HX, enrol

from fieldapp.console.cases import ensure as ensure_cases
from fieldapp.db import connect, migrate
from fieldapp.gate import roster
from fieldapp.gate.counts import ensure as ensure_counts
from fieldapp.instance import ensure_identity


@pytest.fixture
def database(engine, request, database):
    """The conftest's database on SQLite; on PostgreSQL, one made with the C.UTF-8 locale."""
    if engine != "postgresql":
        return database
    url = request.getfixturevalue("make_pg_database")(prefix="utf8", locale="C.UTF-8")
    conn = connect(url)
    migrate(conn)
    ensure_counts(conn, "Asia/Shanghai")
    ensure_cases(conn)
    ensure_identity(conn)
    conn.close()
    return url


@pytest.fixture
def signed_in(app, client):
    site = make_site(app)
    save(
        app,
        wire_entry(site["id"], name="Émile Zola", destination="Öffice", plate="苏D12345"),
        wire_entry(site["id"], name="张建国", destination="3-2-501"),
    )
    make_user(app, "admin", "admin")
    assert login(client, "admin").status_code == 302
    return site


@pytest.mark.parametrize("q", ["Émile", "mile zo", "Öffice", "苏d1"])
def test_the_log_finds_what_was_written_as_it_was_written(client, signed_in, q):
    html = client.get("/console/log", query_string={"q": q}, follow_redirects=True).text
    assert "Émile Zola" in html
    assert "张建国" not in html


def test_the_export_of_a_search_holds_the_same_entries(client, signed_in):
    token = csrf(client, "/console/log")
    body = client.post(
        "/console/export", data={"csrf_token": token, "format": "csv", "q": "Émile"}
    ).text
    assert "Émile Zola" in body
    assert "张建国" not in body


def test_a_search_folds_ascii_letters_only_on_both(client, signed_in):
    """SQLite's lower() folds A-Z alone: émile is not Émile there, nor on PostgreSQL."""
    assert (
        "Émile Zola"
        not in client.get("/console/log", query_string={"q": "émile"}, follow_redirects=True).text
    )
    assert (
        "Émile Zola"
        in client.get("/console/log", query_string={"q": "ZOLA"}, follow_redirects=True).text
    )


def test_the_gate_roster_search_finds_a_name_with_a_capital_letter_not_ascii(app, client, db):
    site = make_site(app)
    with app.app_context():
        roster.import_rows(
            db,
            site["id"],
            [
                {"name": "Ölmez Ayşe", "phone": "13800000001", "unit": "Ä-1", "person_type": ""},
                {"name": "张建国", "phone": "13800000002", "unit": "3-2-501", "person_type": ""},
            ],
        )
    enrol(client, db, site)
    for q in ("Ölmez", "lmez AY", "Ä-1"):
        html = client.get(f"/s/{site['code']}/roster", query_string={"q": q}, headers=HX).text
        assert "Ölmez Ayşe" in html, q
        assert "张建国" not in html
    assert (
        db.execute("SELECT count(*) FROM roster WHERE site_id = ?", (site["id"],)).fetchone()[0]
        == 2
    )
