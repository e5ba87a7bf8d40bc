"""Every console page refuses whoever lacks the role: a matrix of pages × roles."""

from __future__ import annotations

import pytest
from console_support import csrf, login, make_site, make_user, save, wire_entry

from fieldapp.console import corrections
from fieldapp.gate import roster

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


def test_a_viewer_sees_people_masked_on_every_page_that_names_them(app, world, db):
    site = world["site"]
    with app.app_context():
        person = {"name": "陈晓梅", "phone": "13700001111", "unit": "7-2-301"}
        roster.import_rows(db, site["id"], [{**person, "person_type": "resident"}])
    # A correction of a name and a phone: its history on the entry page names both.
    changes = {"name": "张建华", "phone": "13900002222"}
    save(app, corrections.wire(world["normal"], "coordinator", "typo", changes))
    whole = ("陈晓梅", "张建华", "张建国", "李秀英", "13700001111", "13900002222", "13812345678")
    viewer = app.test_client()
    login(viewer, "viewer")
    token = csrf(viewer, "/console/login")
    gate = f"/console/sites/{site['id']}/gate"
    seen = {
        path: viewer.get(path).get_data(as_text=True)
        for path in (
            gate,
            "/console/log",
            f"/console/entry/{world['normal']}",
            "/console/cases",
            f"/console/cases/{world['fever']}",
        )
    }
    export = viewer.post("/console/export", data={"csrf_token": token, "format": "csv"})
    seen["export"] = export.get_data(as_text=True)
    for where, text in seen.items():
        assert not [w for w in whole if w in text], where
    assert "陈**" in seen[gate] and "7-2-301" in seen[gate]
    entry = seen[f"/console/entry/{world['normal']}"]
    assert "姓名 → 张**" in entry and "139****2222" in entry
    assert "李**" in seen["/console/cases"] and "张**" in seen["export"]

    # Coordinators see whole names as before; a phone stays masked until unmasked (audited).
    coordinator = app.test_client()
    login(coordinator, "coordinator")
    assert "陈晓梅" in coordinator.get(gate).get_data(as_text=True)
    entry = coordinator.get(f"/console/entry/{world['normal']}").get_data(as_text=True)
    assert "姓名 → 张建华" in entry and "139****2222" in entry and "13900002222" not in entry
    token = csrf(coordinator, f"/console/entry/{world['normal']}")
    coordinator.post(f"/console/entry/{world['normal']}/unmask", data={"csrf_token": token})
    entry = coordinator.get(f"/console/entry/{world['normal']}").get_data(as_text=True)
    assert "手机号 → 13900002222" in entry
