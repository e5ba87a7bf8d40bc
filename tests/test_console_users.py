"""Accounts in the console: admins list, create and disable them; every change is audited."""

from __future__ import annotations

from console_support import PASSWORD, csrf, login, make_site, make_user


def admin_on_accounts_page(app):
    """The admin root signed in on the accounts page: the client and the page's CSRF token."""
    make_user(app, "root", "admin")
    admin = app.test_client()
    login(admin, "root")
    return admin, csrf(admin, "/console/users")


def test_admin_creates_a_coordinator_who_can_then_sign_in(app, db):
    site = make_site(app)
    admin, token = admin_on_accounts_page(app)
    r = admin.post(
        "/console/users",
        data={
            "csrf_token": token,
            "name": "wang",
            "role": "coordinator",
            "sites": [site["id"]],
            "districts": "",
            "password": PASSWORD,
        },
    )
    assert r.status_code == 302
    html = admin.get("/console/users").get_data(as_text=True)
    assert "账号 wang 已创建" in html and "阳光花园小区" in html
    audit = db.execute(
        "SELECT actor, target FROM audit_log WHERE action = 'user_add' AND target = 'wang'"
    ).fetchone()
    assert tuple(audit) == ("root", "wang")
    wang = app.test_client()
    assert login(wang, "wang").status_code == 302


def test_bad_account_form_saves_nothing(app, db):
    admin, token = admin_on_accounts_page(app)
    r = admin.post(
        "/console/users",
        data={"csrf_token": token, "name": "li", "role": "coordinator", "password": PASSWORD},
    )
    assert r.status_code == 400
    assert "协调员需要指定" in r.get_data(as_text=True)
    r = admin.post(
        "/console/users",
        data={
            "csrf_token": token,
            "name": "li",
            "role": "viewer",
            "sites": ["not-a-site"],
            "password": PASSWORD,
        },
    )
    assert r.status_code == 400
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 1


def test_admin_disables_an_account_but_not_their_own(app, db):
    admin, token = admin_on_accounts_page(app)
    make_user(app, "guest", "viewer")
    guest = app.test_client()
    login(guest, "guest")
    admin.post("/console/users/guest/disable", data={"csrf_token": token})
    assert guest.get("/console/").status_code == 302
    admin.post("/console/users/root/disable", data={"csrf_token": token})
    assert "不能停用自己的账号" in admin.get("/console/users").get_data(as_text=True)
    assert db.execute("SELECT name FROM users WHERE active = 1").fetchall()[0][0] == "root"
