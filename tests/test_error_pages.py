"""Error answers in the user's language from every area: pages (the console's with its menu),
a short fragment for htmx, JSON where the sync endpoints and the phones' API answer."""

from __future__ import annotations

import uuid

import pytest
from console_support import csrf, login, make_site, make_user

ENGLISH = ("Forbidden", "Not Found", "Method Not Allowed", "Internal Server Error", "Werkzeug")


def english_free(text: str) -> bool:
    return not any(word in text for word in ENGLISH)


@pytest.fixture
def world(app):
    site = make_site(app)
    make_user(app, "guest", "viewer")
    make_user(app, "coord", "coordinator", sites=[site["code"]])
    return {"site": site}


def signed_in(app, name):
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


def test_a_refusal_outside_the_console_blueprint_is_the_consoles_page(app, world):
    """The privacy and gate areas' console pages answered Werkzeug's English 403."""
    viewer = signed_in(app, "guest")
    site_id = world["site"]["id"]
    token = csrf(viewer, "/console/login")
    for r in (
        viewer.get(f"/console/sites/{site_id}/fields"),
        viewer.get(f"/console/sites/{site_id}/passes.pdf"),
        viewer.post(f"/console/sites/{site_id}/self-service", data={"csrf_token": token}),
        viewer.get("/console/audit"),  # the console's own, as before
    ):
        html = r.get_data(as_text=True)
        assert r.status_code == 403
        assert "<h1>无权操作</h1>" in html and "您的账号无权打开此页面" in html
        assert "guest" in html and 'href="/console/"' in html  # the console's menu
        assert english_free(html)
    html = viewer.get(f"/console/sites/{site_id}/fields?lang=zh_Hant").get_data(as_text=True)
    assert "無權操作" in html


def test_not_found_is_said_in_the_users_language(app, world):
    coord = signed_in(app, "coord")
    for path in (f"/console/entry/{uuid.uuid4()}", "/console/sites/nope/gate", "/console/nope"):
        r = coord.get(path)
        html = r.get_data(as_text=True)
        assert r.status_code == 404, path
        assert "<h1>页面不存在</h1>" in html and "coord" in html and english_free(html), path
    r = app.test_client().get("/no-such-page")  # anyone, anywhere: the plain page
    html = r.get_data(as_text=True)
    assert r.status_code == 404 and "页面不存在" in html and english_free(html)
    assert "console-nav" not in html
    r = app.test_client().get("/no-such-page?lang=en")
    assert r.status_code == 404 and "Page not found" in r.get_data(as_text=True)


def test_htmx_gets_a_short_fragment_with_the_status(app, world):
    coord = signed_in(app, "coord")
    r = coord.get(f"/console/entry/{uuid.uuid4()}", headers={"HX-Request": "true"})
    html = r.get_data(as_text=True)
    assert r.status_code == 404 and "HX-Request" in r.headers["Vary"]
    assert (
        html.strip()
        == '<p class="error" role="alert">此地址没有内容。请检查链接，或从菜单重新开始。</p>'
    )


def test_a_method_an_address_does_not_take(app, world):
    r = app.test_client().delete("/console/login")
    html = r.get_data(as_text=True)
    assert r.status_code == 405 and "无法在此操作" in html and english_free(html)
    assert set(r.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_too_large_a_form(app, world):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    r = app.test_client().post("/console/login", data={"name": "x" * 2000})
    assert r.status_code == 413 and "内容过大" in r.get_data(as_text=True)


def test_json_endpoints_answer_json_errors_as_the_sync_endpoints_do(app, world):
    client = app.test_client()
    r = client.get("/sync/v1/nope")
    assert r.status_code == 404 and r.json["error"] == "not_found"
    assert r.json["message"] == "此地址没有内容。请检查链接，或从菜单重新开始。 (HTTP 404)"
    r = client.get("/sync/v1/push")
    assert r.status_code == 405 and r.json["error"] == "method_not_allowed"
    assert "POST" in r.headers["Allow"]
    r = client.post("/pwa/device")
    assert r.status_code == 405 and r.json["error"] == "method_not_allowed"
    # The endpoints' own errors are as they were.
    r = client.get("/sync/v1/cursor")
    assert r.status_code == 401 and r.json["error"] == "unauthorised"
    assert r.json["message"] == "令牌缺失、错误或已吊销。"


def test_a_failure_is_a_page_in_the_users_language(app, world):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as when served

    def boom():
        raise RuntimeError("a bug")

    app.add_url_rule("/console/boom", view_func=boom)
    app.add_url_rule("/sync/v1/boom", view_func=boom)
    coord = signed_in(app, "coord")
    r = coord.get("/console/boom")
    html = r.get_data(as_text=True)
    assert r.status_code == 500 and "<h1>出错了</h1>" in html and english_free(html)
    assert "a bug" not in html
    r = coord.get("/sync/v1/boom")
    assert r.status_code == 500 and r.json["error"] == "server_error"
    assert "(HTTP 500)" in r.json["message"]
