"""Every console page refuses whoever lacks the role: a matrix of pages × roles."""

from __future__ import annotations

import pytest
from console_support import csrf, login, make_site, make_user, save, wire_entry

ROLES = ("anonymous", "viewer", "coordinator", "admin")


@pytest.fixture
def world(app):
    site = make_site(app)
    fever, normal = save(
        app,
        wire_entry(site["id"], temperature=38.2, fever_action="clinic", name="李秀英"),
        wire_entry(site["id"]),
    )
    make_user(app, "viewer", "viewer")
    make_user(app, "coordinator", "coordinator", sites=[site["code"]])
    make_user(app, "admin", "admin")
    return {"site": site, "fever": fever, "normal": normal}


def pages(w):
    """(method, path, form, roles allowed)."""
    everyone = {"viewer", "coordinator", "admin"}
    writers = {"coordinator", "admin"}
    return [
        ("GET", "/console/", None, everyone),
        ("GET", "/console/log", None, everyone),
        ("GET", "/console/log?fever=1", None, everyone),
        ("GET", f"/console/entry/{w['normal']}", None, everyone),
        ("GET", "/console/cases", None, everyone),
        ("GET", f"/console/cases/{w['fever']}", None, everyone),
        ("GET", "/console/audit", None, {"admin"}),
        ("GET", "/console/users", None, {"admin"}),
        ("POST", "/console/users/viewer/disable", {}, {"admin"}),
        ("POST", "/console/export", {"format": "csv"}, everyone),
        ("POST", f"/console/entry/{w['normal']}/unmask", {}, writers),
        (
            "POST",
            f"/console/entry/{w['normal']}/correct",
            {"name": "张建华", "reason": "typo"},
            writers,
        ),
        ("POST", f"/console/entry/{w['normal']}/void", {"reason": "test"}, writers),
        ("POST", f"/console/cases/{w['fever']}/action", {"action": "acknowledge"}, writers),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_role_page_matrix(app, world, role):
    client = app.test_client()
    if role != "anonymous":
        assert login(client, role).status_code == 302
    token = csrf(client, "/console/login")
    for method, path, form, allowed in pages(world):
        if method == "GET":
            r = client.get(path)
        else:
            r = client.post(path, data={**form, "csrf_token": token})
        if role == "anonymous":
            assert r.status_code == 302, (method, path)
            assert "/console/login" in r.headers["Location"]
        elif role in allowed:
            assert r.status_code in (200, 302), (method, path, r.status_code)
            if r.status_code == 302:
                assert "/console/login" not in r.headers["Location"]
        else:
            assert r.status_code == 403, (method, path, role, r.status_code)


def test_writes_of_refused_roles_leave_no_record(app, world, db):
    client = app.test_client()
    login(client, "viewer")
    token = csrf(client, "/console/login")
    for method, path, form, allowed in pages(world):
        if method == "POST" and "viewer" not in allowed:
            assert client.post(path, data={**form, "csrf_token": token}).status_code == 403
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM case_actions").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'unmask'").fetchone()[0] == 0


def test_coordinator_sees_only_their_sites(app, world):
    other = make_site(app, "丙小区", "溧阳市")
    (hidden,) = save(
        app, wire_entry(other["id"], name="周德才", temperature=38.9, fever_action="clinic")
    )
    client = app.test_client()
    login(client, "coordinator")
    log = client.get("/console/log").get_data(as_text=True)
    assert "张建国" in log and "周德才" not in log
    assert client.get(f"/console/entry/{hidden}").status_code == 404
    assert client.get(f"/console/cases/{hidden}").status_code == 404
    assert client.get(f"/console/log?site={other['id']}").status_code == 200
    assert "周德才" not in client.get(f"/console/log?site={other['id']}").get_data(as_text=True)
    assert "周德才" not in client.get("/console/cases").get_data(as_text=True)
    admin = app.test_client()
    login(admin, "admin")
    assert "周德才" in admin.get("/console/log").get_data(as_text=True)


def test_refusal_says_so_in_the_users_language(app, world):
    client = app.test_client()
    login(client, "viewer")
    r = client.get("/console/audit")
    assert r.status_code == 403
    assert "无权操作" in r.get_data(as_text=True)
    r = client.get("/console/audit?lang=zh_Hant")
    assert "無權操作" in r.get_data(as_text=True)
