"""The audit log page: what was done, by whom, from where; admins only."""

from __future__ import annotations

from console_support import csrf, login, make_site, make_user, save, wire_entry


def test_admin_reads_the_audit_log_with_a_filter(app):
    site = make_site(app)
    (uuid,) = save(app, wire_entry(site["id"]))
    make_user(app, "coord", "coordinator", sites=[site["code"]])
    make_user(app, "root", "admin")
    coord = app.test_client()
    login(coord, "coord", "wrong password")
    login(coord, "coord")
    token = csrf(coord, "/console/login")
    coord.post(f"/console/entry/{uuid}/unmask", data={"csrf_token": token})
    coord.post("/console/export", data={"csrf_token": token, "format": "csv", "fever": "1"})

    admin = app.test_client()
    login(admin, "root")
    html = admin.get("/console/audit").get_data(as_text=True)
    for label in ("登录失败", "登录", "查看了个人信息", "导出", "创建账号"):
        assert label in html, label
    assert uuid in html and "127.0.0.1" in html
    # The actor's column is the account's name (the gate's "Who" is the person type).
    assert "<th>时间</th><th>用户名</th><th>操作</th>" in html and "人员类型" not in html
    only = admin.get("/console/audit?action=unmask").get_data(as_text=True)
    assert 'class="audit-unmask"' in only and 'class="audit-export"' not in only
    assert admin.get("/console/audit?action=nonsense").status_code == 200


def test_an_audit_page_cursor_no_database_holds_is_the_first_page(client, app):
    """?before= is a row id: one beyond 64 bits answered 500 (neither engine binds it)."""
    make_user(app, "root", "admin")
    login(client, "root")
    for value in ("99999999999999999999", "-99999999999999999999", "x"):
        assert client.get(f"/console/audit?before={value}").status_code == 200
