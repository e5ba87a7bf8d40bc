"""Accounts in the console: admins list, create and disable them; every change is audited."""

from __future__ import annotations

import re

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
    html = r.get_data(as_text=True)
    # Worded for the form it came from, not the command's flags (the CLI keeps those).
    assert "协调员须指定场所或辖区：请勾选场所或填写辖区。" in html and "--sites" not in html
    r = admin.post(
        "/console/users",
        data={
            "csrf_token": token,
            "name": "li",
            "role": "admin",
            "districts": "金坛区",
            "password": PASSWORD,
        },
    )
    assert r.status_code == 400
    html = r.get_data(as_text=True)
    assert "管理员可查看所有场所，请勿勾选场所或填写辖区。" in html and "--districts" not in html
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


def test_a_user_name_that_would_break_its_pages_or_the_command_is_refused(app, db):
    """A name with "/" was created, and its disable button then answered 404."""
    admin, token = admin_on_accounts_page(app)
    for name in ("a/b", "a\\b", "-x", "a?b", "a%2Fb"):
        r = admin.post(
            "/console/users",
            data={"csrf_token": token, "name": name, "role": "viewer", "password": PASSWORD},
        )
        assert r.status_code == 400, name
        assert "用户名为 1 到 40 个字母、数字、汉字或 . _ - @，不能以 - 开头。" in r.get_data(
            as_text=True
        )
    assert [row[0] for row in db.execute("SELECT name FROM users")] == ["root"]
    for name in ("王小明", "li.na_2-x@jt"):  # letters of any script, and a few marks, are fine
        r = admin.post(
            "/console/users",
            data={"csrf_token": token, "name": name, "role": "viewer", "password": PASSWORD},
        )
        assert r.status_code == 302, name


def test_an_account_named_with_a_slash_before_the_rule_can_be_disabled(app, db):
    admin, token = admin_on_accounts_page(app)
    with db:  # made before names were checked
        db.execute(
            "INSERT INTO users (name, role, password_hash, created_at, password_at)"
            " VALUES ('a/b', 'viewer', 'x', '2020-01-01', '2020-01-01')"
        )
    html = admin.get("/console/users").get_data(as_text=True)
    assert 'action="/console/users/a/b/disable"' in html
    r = admin.post("/console/users/a/b/disable", data={"csrf_token": token})
    assert r.status_code == 302
    assert "账号 a/b 已停用" in admin.get("/console/users").get_data(as_text=True)
    assert db.execute("SELECT active FROM users WHERE name = 'a/b'").fetchone()[0] == 0


def test_the_account_form_sent_twice_makes_one_account_and_says_so(app, db):
    """A double click on 创建账号 (or a retry after a lost answer) sends the same form twice: one
    account, one audit line, and the second answer says it is created, not that it exists. Another
    form naming that user is still refused."""
    site = make_site(app)
    make_user(app, "root", "admin")
    admin = app.test_client()
    login(admin, "root")
    html = admin.get("/console/users").get_data(as_text=True)
    fields = dict(re.findall(r'<input[^>]*name="(csrf_token|uuid)"[^>]*value="([^"]*)"', html))
    assert set(fields) == {"csrf_token", "uuid"}, html
    form = {
        **fields,
        "name": "wang",
        "role": "coordinator",
        "sites": [site["id"]],
        "districts": "",
        "password": PASSWORD,
    }
    for _ in range(2):
        r = admin.post("/console/users", data=form)
        assert r.status_code == 302, r.get_data(as_text=True)
        html = admin.get("/console/users").get_data(as_text=True)
        assert "账号 wang 已创建" in html and "已存在" not in html
    assert db.execute("SELECT count(*) FROM users WHERE name = 'wang'").fetchone()[0] == 1
    audit = "SELECT actor FROM audit_log WHERE action = 'user_add' AND target = 'wang'"
    assert [r[0] for r in db.execute(audit)] == ["root"]

    html = admin.get("/console/users").get_data(as_text=True)
    again = dict(re.findall(r'<input[^>]*name="(csrf_token|uuid)"[^>]*value="([^"]*)"', html))
    assert again["uuid"] != fields["uuid"]
    r = admin.post("/console/users", data={**form, **again})
    assert r.status_code == 400 and "用户 wang 已存在。" in r.get_data(as_text=True)
    r = admin.post("/console/users", data={**form, "uuid": "not a uuid"})
    assert r.status_code == 400 and "用户 wang 已存在。" in r.get_data(as_text=True)
    assert db.execute("SELECT count(*) FROM users WHERE name = 'wang'").fetchone()[0] == 1
    assert [r[0] for r in db.execute(audit)] == ["root"]

    # The admin's audit page shows the line as a person reads it: the form's uuid, kept in the
    # database to tell a repeat, is not on it.
    (detail,) = db.execute(
        "SELECT detail FROM audit_log WHERE action = 'user_add' AND target = 'wang'"
    ).fetchone()
    assert detail.endswith(f"form={fields['uuid']}")
    page = admin.get("/console/audit?action=user_add").get_data(as_text=True)
    assert "wang" in page and fields["uuid"] not in page and "form=" not in page
