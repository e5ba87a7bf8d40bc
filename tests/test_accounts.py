"""Accounts: argon2 hashes, the CLI, login with CSRF and a rate limit, sessions, scopes."""

from __future__ import annotations

import pytest
from console_support import PASSWORD, csrf, login, make_site, make_user

from fieldapp.console import accounts
from fieldapp.db import connect


@pytest.fixture
def csrf_app(app):
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def test_user_add_from_the_cli_stores_an_argon2_hash(app, runner, db):
    site = make_site(app)
    result = runner.invoke(
        args=[
            "user",
            "add",
            "wang",
            "--role",
            "coordinator",
            "--sites",
            site["code"],
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env={"FIELDAPP_LANG": "zh_CN.UTF-8"},
    )
    assert result.exit_code == 0, result.output
    assert "账号 wang 已创建" in result.output  # zh-Hans unless LANG says otherwise
    row = db.execute("SELECT * FROM users WHERE name = 'wang'").fetchone()
    assert row["role"] == "coordinator"
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]
    scopes = db.execute("SELECT kind, value FROM user_scopes").fetchall()
    assert [tuple(s) for s in scopes] == [("site", site["id"])]
    assert db.execute("SELECT action, target FROM audit_log").fetchall()[-1][:] == (
        "user_add",
        "wang",
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--role", "coordinator"], "--sites"),
        (["--role", "coordinator", "--sites", "nope"], "nope"),
        (["--role", "boss"], "boss"),
        (["--role", "admin", "--districts", "金坛区"], "--districts"),
    ],
)
def test_user_add_refuses_bad_input_and_saves_nothing(app, runner, db, args, message):
    make_site(app)
    result = runner.invoke(
        args=["user", "add", "li", *args, "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code != 0
    assert message in result.output
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 0


def test_short_password_refused_in_chinese(app, runner, db):
    result = runner.invoke(
        args=["user", "add", "root", "--role", "admin", "--password-stdin"],
        input="short\n",
        env={"FIELDAPP_LANG": "zh_CN.UTF-8"},
    )
    assert result.exit_code != 0
    assert "密码" in result.output
    assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 0


def test_passwd_changes_password_and_ends_old_sessions(app, runner, client):
    make_user(app, "root", "admin")
    assert login(client, "root").status_code == 302
    assert client.get("/console/").status_code == 200
    result = runner.invoke(
        args=["user", "passwd", "root", "--password-stdin"], input="a new password 2\n"
    )
    assert result.exit_code == 0, result.output
    assert client.get("/console/").status_code == 302  # the old session is over
    assert login(client, "root").status_code == 401
    assert login(client, "root", "a new password 2").status_code == 302


def test_login_sets_a_safe_cookie_and_logout_is_a_post(csrf_app):
    csrf_app.config["SESSION_COOKIE_SECURE"] = True
    client = csrf_app.test_client()
    make_user(csrf_app, "root", "admin")
    r = login(client, "root")
    assert r.status_code == 302 and r.headers["Location"].endswith("/console/")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert client.get("/console/logout").status_code == 405
    assert client.post("/console/logout").status_code == 400  # no CSRF token
    assert client.get("/console/").status_code == 200
    token = csrf(client, "/console/")
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/console/").status_code == 302


def test_login_without_csrf_token_is_refused(csrf_app):
    client = csrf_app.test_client()
    make_user(csrf_app, "root", "admin")
    r = client.post("/console/login", data={"name": "root", "password": PASSWORD})
    assert r.status_code == 400
    assert client.get("/console/").status_code == 302


def test_login_next_stays_on_this_site(client, app):
    make_user(app, "root", "admin")
    r = client.get("/console/log?fever=1")
    assert r.status_code == 302 and "/console/login?next=" in r.headers["Location"]
    token = csrf(client, "/console/login")
    r = client.post(
        "/console/login?next=//evil.example/x",
        data={"csrf_token": token, "name": "root", "password": PASSWORD},
    )
    assert r.headers["Location"] == "/console/"
    client.post("/console/logout", data={"csrf_token": csrf(client, "/console/")})
    token = csrf(client, "/console/login")
    r = client.post(
        "/console/login?next=/console/log?fever%3D1",
        data={"csrf_token": token, "name": "root", "password": PASSWORD},
    )
    assert r.headers["Location"] == "/console/log?fever=1"


def test_rate_limit_per_account_holds_even_with_the_right_password(app, client, db):
    make_user(app, "root", "admin")
    for _ in range(accounts.ACCOUNT_LIMIT):
        r = login(client, "root", "wrong password")
        assert r.status_code == 401
        assert "用户名或密码错误" in r.get_data(as_text=True)
    r = login(client, "root")
    assert r.status_code == 429
    assert "登录失败次数过多" in r.get_data(as_text=True)
    assert client.get("/console/").status_code == 302
    # The count lives in the database: a second app (another process) sees it too.
    assert db.execute("SELECT count(*) FROM login_failures").fetchone()[0] == 5
    failed = db.execute("SELECT count(*) FROM audit_log WHERE action = 'login_failed'").fetchone()
    assert failed[0] == 6


def test_rate_limit_lifts_after_the_window(app, client, db):
    make_user(app, "root", "admin")
    for _ in range(accounts.ACCOUNT_LIMIT):
        login(client, "root", "wrong password")
    db.execute("UPDATE login_failures SET at = '2000-01-01T00:00:00.000Z'")
    assert login(client, "root").status_code == 302
    assert db.execute("SELECT count(*) FROM login_failures").fetchone()[0] == 0


def test_rate_limit_per_address_across_accounts(app, client, db):
    for i in range(accounts.IP_LIMIT):
        assert login(client, f"nobody{i}", "wrong password").status_code == 401
    make_user(app, "root", "admin")
    assert login(client, "root").status_code == 429
    other = app.test_client()
    token = csrf(other, "/console/login")
    r = other.post(
        "/console/login",
        data={"csrf_token": token, "name": "root", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert r.status_code == 302


def test_unknown_user_and_wrong_password_look_the_same(app, client):
    make_user(app, "root", "admin")
    a = login(client, "nobody", "whatever123")
    b = login(client, "root", "whatever123")
    assert a.status_code == b.status_code == 401
    assert "用户名或密码错误" in a.get_data(as_text=True)


def test_scope_of_coordinators_by_site_and_by_district(app):
    a = make_site(app, "甲小区", "金坛区")
    b = make_site(app, "乙工地", "金坛区", "construction")
    c = make_site(app, "丙小区", "溧阳市")
    by_site = make_user(app, "s", "coordinator", sites=[c["code"]])
    by_district = make_user(app, "d", "coordinator", districts=["金坛区"])
    admin = make_user(app, "root", "admin")
    viewer = make_user(app, "v", "viewer")
    conn = connect(app.config["DATABASE"])
    assert accounts.scope_site_ids(by_site, conn) == [c["id"]]
    assert accounts.scope_site_ids(by_district, conn) == sorted([a["id"], b["id"]])
    assert accounts.scope_site_ids(admin, conn) is None
    assert accounts.scope_site_ids(viewer, conn) is None
    conn.close()


def test_disable_ends_sessions_and_sign_in(app, runner, client, db):
    make_user(app, "wang", "admin")
    login(client, "wang")
    result = runner.invoke(args=["user", "disable", "wang"])
    assert result.exit_code == 0, result.output
    assert client.get("/console/").status_code == 302
    assert login(client, "wang").status_code == 401
    assert (
        db.execute("SELECT action FROM audit_log ORDER BY id DESC").fetchone()[0] == "login_failed"
    )
    assert runner.invoke(args=["user", "disable", "nobody"]).exit_code != 0


def signed_in(client, path="/console/audit"):
    """Whether this browser gets the page; otherwise it must be sent to the sign-in form."""
    r = client.get(path)
    if r.status_code == 200:
        return True
    assert r.status_code == 302 and "/console/login" in r.headers["Location"]
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="password"' in page  # the sign-in form
    return False


def test_sign_out_ends_every_copy_of_that_session_and_no_other(app, client, db):
    make_user(app, "root", "admin")
    office = app.test_client()  # the same account signed in on another device
    assert login(client, "root").status_code == 302
    assert login(office, "root").status_code == 302
    copy = app.test_client()  # a copy of this browser's cookie (a shared PC, a stolen cookie)
    copy.set_cookie("session", client.get_cookie("session").value)
    assert signed_in(copy) and signed_in(office)
    assert db.execute("SELECT count(*) FROM console_sessions").fetchone()[0] == 2

    r = client.post("/console/logout", data={"csrf_token": csrf(client, "/console/")})
    assert r.status_code == 302
    assert not signed_in(client)
    assert not signed_in(copy)  # the copy is signed out too, on the server
    assert signed_in(office)  # the other device is not
    assert db.execute("SELECT count(*) FROM console_sessions").fetchone()[0] == 1
    last = db.execute("SELECT actor, action FROM audit_log ORDER BY id DESC").fetchone()
    assert tuple(last) == ("root", "logout")

    assert login(client, "root").status_code == 302  # signing in again works
    assert signed_in(client) and not signed_in(copy)
    assert db.execute("SELECT count(*) FROM console_sessions").fetchone()[0] == 2


def test_a_session_from_before_sessions_were_kept_signs_in_again(app, client, db):
    make_user(app, "root", "admin")
    user_id, password_at = db.execute("SELECT id, password_at FROM users").fetchone()
    with client.session_transaction() as old:  # a cookie made before migration 0015
        old["user_id"] = user_id
        old["password_at"] = password_at
    assert not signed_in(client)  # asked to sign in, no error
    assert login(client, "root").status_code == 302
    assert signed_in(client)


def test_sessions_older_than_their_lifetime_end_and_are_purged(app, client, db):
    make_user(app, "root", "admin")
    office = app.test_client()
    login(office, "root")
    db.execute("UPDATE console_sessions SET started_at = '2000-01-01T00:00:00.000Z'")
    assert not signed_in(office)
    login(client, "root")  # a sign-in purges the sessions past the lifetime
    assert signed_in(client)
    assert db.execute("SELECT count(*) FROM console_sessions").fetchone()[0] == 1


def test_htmx_poll_after_the_session_ended_redirects_the_whole_page(client):
    r = client.get("/console/", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert r.headers["HX-Redirect"].startswith("/console/login?next=")
    assert r.get_data(as_text=True) == ""


def test_address_behind_a_trusted_proxy(app, client, db):
    make_user(app, "root", "admin")
    for i in range(3):
        login_from(client, f"10.0.0.{i}")
    # Without TRUSTED_PROXIES the header is ignored: all three count for the proxy's address.
    assert {r[0] for r in db.execute("SELECT ip FROM login_failures")} == {"127.0.0.1"}
    db.execute("DELETE FROM login_failures")
    app.config["TRUSTED_PROXIES"] = 1
    for i in range(3):
        login_from(client, f"10.0.0.{i}")
    ips = {r[0] for r in db.execute("SELECT ip FROM login_failures")}
    assert ips == {"10.0.0.0", "10.0.0.1", "10.0.0.2"}


def login_from(client, forwarded):
    token = csrf(client, "/console/login")
    r = client.post(
        "/console/login",
        data={"csrf_token": token, "name": "root", "password": "wrong password"},
        headers={"X-Forwarded-For": f"6.6.6.6, {forwarded}"},
    )
    assert r.status_code == 401


def test_a_nul_character_in_a_form_a_query_or_a_path_is_a_clear_400(client, app):
    """PostgreSQL's text cannot hold U+0000: the sign-in form with one in the name answered 500
    there. Refused before any view runs, on both engines, with a sentence."""
    make_user(app, "root", "admin")
    token = csrf(client, "/console/login")
    form = {"name": "ro\x00ot", "password": PASSWORD, "csrf_token": token}
    r = client.post("/console/login", data=form)
    assert r.status_code == 400
    assert r.get_data(as_text=True) == "请求中含有空字符（U+0000），未保存任何内容。"
    assert client.get("/console/login?next=/console/log%00").status_code == 400
    assert client.get("/s/AB%00CD").status_code == 400  # a site's code in the path
    r = client.post("/console/login", data=dict(form, name="root"))
    assert r.status_code == 302  # and nothing else was changed by the refusals
