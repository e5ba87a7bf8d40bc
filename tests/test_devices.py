"""Enrolling phones: one-time links, the device cookie, revoking; visitor vs volunteer pages."""

from __future__ import annotations

import json
import re

import pytest

from fieldapp.gate import sites
from fieldapp.phones import devices


@pytest.fixture
def site(db):
    return sites.add_site(db, "幸福小区", "residential")


def enrol_link(runner, site, name="东门 1 号机") -> str:
    result = runner.invoke(args=["device", "enrol", "--site", site["code"], "--name", name])
    assert result.exit_code == 0, result.output
    return re.search(r"http://gate\.test(/enrol/\S+)", result.output).group(1)


def csrf(client, path) -> str:
    """The CSRF token of the form on a page."""
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(path).text).group(1)


def enrol(client, runner, site, name="东门 1 号机"):
    path = enrol_link(runner, site, name)
    return client.post(path, data={"csrf_token": csrf(client, path)})


def test_enrol_link_is_one_time_and_sets_a_strict_cookie(client, runner, site, db):
    path = enrol_link(runner, site)
    page = client.get(path)  # a link preview must not use it up
    assert page.status_code == 200
    assert "东门 1 号机" in page.text and "幸福小区" in page.text
    token = csrf(client, path)
    response = client.post(path, data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/enrolled/{site['code']}"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(devices.COOKIE + "=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=34560000" in cookie
    rows = db.execute("SELECT kind, name, site_id, revoked_at FROM peers").fetchall()
    assert [tuple(r) for r in rows] == [("device", "东门 1 号机", site["id"], None)]
    other = client.application.test_client()  # another phone
    again = other.get(path)
    assert again.status_code == 410
    assert "已被使用" in again.text
    assert db.execute("SELECT COUNT(*) FROM peers").fetchone()[0] == 1


def test_the_phone_that_used_a_link_opening_it_again_is_told_it_is_enrolled(
    client, runner, site, db
):
    # The volunteer taps the link in the chat again the next day, or taps the button twice:
    # the phone is enrolled, and "ask your coordinator for a new link" would be wrong.
    path = enrol_link(runner, site)
    token = csrf(client, path)
    assert client.post(path, data={"csrf_token": token}).status_code == 303
    for again in (client.get(path), client.post(path, data={"csrf_token": token})):
        assert again.status_code == 303
        assert again.headers["Location"] == f"/enrolled/{site['code']}"
    page = client.get(path, follow_redirects=True)
    assert "这部手机已登记用于 幸福小区" in page.text and f'href="/s/{site["code"]}"' in page.text
    assert db.execute("SELECT COUNT(*) FROM peers").fetchone()[0] == 1
    # Revoked, it is told what anyone else is: the link has been used.
    assert runner.invoke(args=["device", "revoke", "东门 1 号机"]).exit_code == 0
    revoked = client.get(path)
    assert revoked.status_code == 410 and "已被使用" in revoked.text


def test_a_phone_enrolled_again_is_one_live_phone(client, runner, site, db):
    """The coordinator sends a new link to a phone that was enrolled (moved to another gate,
    or renamed): the new enrolment replaces the old one, which the console no longer lists as
    live (its token left the phone with the new cookie)."""
    assert enrol(client, runner, site, "东门 1 号机").status_code == 303
    other = client.application.test_client()  # another phone, enrolled before: untouched
    assert enrol(other, runner, site, "西门").status_code == 303
    assert enrol(client, runner, site, "东门 2 号机").status_code == 303
    rows = db.execute("SELECT name, revoked_at IS NULL FROM peers ORDER BY name").fetchall()
    assert [tuple(r) for r in rows] == [("东门 1 号机", 0), ("东门 2 号机", 1), ("西门", 1)]
    assert client.get("/pwa/device").get_json()["name"] == "东门 2 号机"
    assert other.get("/pwa/device").get_json()["name"] == "西门"


def test_expired_or_unknown_link_is_refused(client, runner, site, db):
    path = enrol_link(runner, site)
    token = csrf(client, path)
    db.execute("UPDATE device_enrolments SET expires_at = '2020-01-01T00:00:00.000Z'")
    response = client.post(path, data={"csrf_token": token})
    assert response.status_code == 410
    assert "已过期" in response.text
    assert client.get("/enrol/nonsense").status_code == 410
    assert db.execute("SELECT COUNT(*) FROM peers").fetchone()[0] == 0


def test_enrol_command_checks_its_arguments(runner, site, db, tmp_path):
    bad = runner.invoke(args=["device", "enrol", "--site", "nope", "--name", "x"])
    assert bad.exit_code != 0
    assert "nope" in bad.output
    old = site["code"]
    new = sites.rotate_code(db, site["id"])
    moved = runner.invoke(args=["device", "enrol", "--site", old, "--name", "x"])
    assert moved.exit_code != 0
    assert f"{old} 是幸福小区的旧场所码，现在的场所码是 {new}" in moved.output
    assert db.execute("SELECT COUNT(*) FROM device_enrolments").fetchone()[0] == 0
    site = sites.get_site(db, site["id"])
    qr = tmp_path / "enrol.svg"
    ok = runner.invoke(
        args=["device", "enrol", "--site", site["code"], "--name", "西门", "--qr", str(qr)]
    )
    assert ok.exit_code == 0, ok.output
    assert qr.read_text().startswith("<?xml")


def test_visitor_gets_self_registration_and_enrolled_phone_the_gate(client, runner, site):
    visitor = client.get(f"/s/{site['code']}")
    assert visitor.status_code == 200
    assert 'id="self-register"' in visitor.text and "entry-form" not in visitor.text
    assert "21 天" in visitor.text  # the privacy notice says how long it is kept
    assert "X-Fieldapp-Page" not in visitor.headers
    enrol(client, runner, site)
    volunteer = client.get(f"/s/{site['code']}")
    assert 'id="entry-form"' in volunteer.text and 'id="outbox-status"' in volunteer.text
    assert volunteer.headers["X-Fieldapp-Page"] == "gate"


def test_revoked_phone_is_a_visitor_again_and_its_pushes_get_401(client, runner, site, db):
    enrol(client, runner, site)
    listed = runner.invoke(args=["device", "list"])
    assert "东门 1 号机" in listed.output and "active" in listed.output
    assert client.get("/pwa/device").status_code == 200
    result = runner.invoke(args=["device", "revoke", "东门 1 号机"])
    assert result.exit_code == 0, result.output
    assert db.execute("SELECT revoked_at IS NOT NULL FROM peers").fetchone()[0] == 1
    assert "entry-form" not in client.get(f"/s/{site['code']}").text
    assert client.get("/pwa/device").status_code == 401
    push = client.post(
        "/sync/v1/push",
        data=json.dumps({"source": "x", "records": []}),
        content_type="application/json",
    )
    assert push.status_code == 401
    assert runner.invoke(args=["device", "revoke", "东门 1 号机"]).exit_code != 0


def test_revoking_a_name_two_sites_share_stops_neither_until_the_site_is_named(app, runner, db):
    # Every site has its 东门 1 号机: revoking the one that was lost must not stop the others.
    east = sites.add_site(db, "幸福小区", "residential")
    west = sites.add_site(db, "阳光小区", "residential")
    lost, other = app.test_client(), app.test_client()
    enrol(lost, runner, east)
    enrol(other, runner, west)
    refused = runner.invoke(args=["device", "revoke", "东门 1 号机"])
    assert refused.exit_code != 0
    assert "2 个场所都有名为 东门 1 号机 的手机" in refused.output and "--site" in refused.output
    assert "幸福小区" in refused.output and "阳光小区" in refused.output
    assert db.execute("SELECT COUNT(*) FROM peers WHERE revoked_at IS NULL").fetchone()[0] == 2
    result = runner.invoke(args=["device", "revoke", "东门 1 号机", "--site", east["code"]])
    assert result.exit_code == 0, result.output
    assert "1" in result.output
    assert lost.get("/pwa/device").status_code == 401
    assert other.get("/pwa/device").status_code == 200  # the other site's phone still syncs
    live = db.execute("SELECT site_id FROM peers WHERE revoked_at IS NULL").fetchall()
    assert [r[0] for r in live] == [west["id"]]
    # By its id (as `device list` shows it), a phone needs no site.
    phone_id = db.execute("SELECT id FROM peers WHERE site_id = ?", (west["id"],)).fetchone()[0]
    assert runner.invoke(args=["device", "revoke", phone_id]).exit_code == 0
    assert other.get("/pwa/device").status_code == 401


def test_revoking_a_name_cancels_its_unused_enrolment_link(client, runner, site, db):
    # A link sent to the wrong chat, or a phone lost before it was enrolled: revoking the
    # phone's name is what the coordinator does, and the link must then enrol nobody.
    path = enrol_link(runner, site)
    token = csrf(client, path)
    result = runner.invoke(args=["device", "revoke", "东门 1 号机"])
    assert result.exit_code == 0, result.output
    assert "作废了 1 个未使用的登记链接" in result.output
    response = client.post(path, data={"csrf_token": token})
    assert response.status_code == 410
    assert "已过期" in response.text
    assert db.execute("SELECT COUNT(*) FROM peers").fetchone()[0] == 0
    assert client.get("/pwa/device").status_code == 401
    # A phone enrolled later by a new link of that name is not touched by the old revoke.
    assert enrol(client, runner, site).status_code == 303
    assert client.get("/pwa/device").status_code == 200


def test_self_registration_saves_only_the_visitors_own_registration(client, site, db):
    form = {
        "name": "李四",
        "phone": "13800138000",
        "direction": "in",
        "temperature": "36.6",  # sent anyway (an old page): the gate staff take it here
        "health_code": "green",
        "destination": "3-2-501",
        "consent": "y",
    }
    form["csrf_token"] = csrf(client, f"/s/{site['code']}/register")
    missing = client.post(f"/s/{site['code']}/register", data={**form, "consent": ""})
    assert missing.status_code == 422
    assert "请阅读" in missing.text
    assert db.execute("SELECT COUNT(*) FROM registrations").fetchone()[0] == 0
    done = client.post(f"/s/{site['code']}/register", data=form)
    assert done.status_code == 303
    shown = client.get(done.headers["Location"]).text
    assert "访客凭证" in shown and "李*" in shown and "李四" not in shown
    row = db.execute(
        "SELECT name, phone, health_code, destination, temperature, device FROM registrations"
    ).fetchone()
    assert tuple(row) == ("李四", "13800138000", "green", "3-2-501", None, None)
    # No entry until the gate staff scan the pass and take the temperature.
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0


def test_self_registration_htmx_gets_the_fragment(client, site):
    response = client.get(f"/s/{site['code']}/register", headers={"HX-Request": "true"})
    assert response.text.lstrip().startswith('<div id="self-register">')
    assert "HX-Request" in response.headers["Vary"]


def test_service_worker_and_manifest(client):
    sw = client.get("/sw.js")
    assert sw.headers["Service-Worker-Allowed"] == "/"
    assert sw.headers["Cache-Control"] == "no-cache"
    assert "__VERSION__" not in sw.text and "__SHELL__" not in sw.text
    assert re.search(r'"/static/js/outbox\.[0-9a-f]{12}\.js"', sw.text)  # by hashed name
    assert re.search(r'"/static/vendor/htmx\.min\.[0-9a-f]{12}\.js"', sw.text)  # lazy
    manifest = client.get("/manifest.webmanifest").get_json(force=True)
    assert manifest["display"] == "standalone" and manifest["name"] == "门岗登记"
    for icon in manifest["icons"]:
        response = client.get(icon["src"])
        assert response.status_code == 200 and response.data.startswith(b"\x89PNG")
        response.close()


def test_the_manifest_says_the_language_its_names_are_in(client):
    """The phone shows the installed app's name with the manifest's lang (a Traditional name
    drawn as Simplified otherwise): the chosen language, not the browser's first wish."""
    asked = {"Accept-Language": "fr-FR,zh-CN;q=0.5"}
    manifest = client.get("/manifest.webmanifest", headers=asked).get_json(force=True)
    assert (manifest["name"], manifest["lang"]) == ("门岗登记", "zh-Hans")
    client.get("/lang/zh_Hant")
    manifest = client.get("/manifest.webmanifest", headers=asked).get_json(force=True)
    assert (manifest["name"], manifest["lang"]) == ("門崗登記", "zh-Hant")
    client.get("/lang/en")
    manifest = client.get("/manifest.webmanifest", headers=asked).get_json(force=True)
    assert (manifest["name"], manifest["lang"]) == ("Gate register", "en")


def test_app_version_changes_the_service_worker(app, client):
    first = client.get("/sw.js").text
    app.config["APP_VERSION"] = "2"
    assert client.get("/sw.js").text != first


def test_gate_entries_only_from_an_enrolled_phone(client, runner, site, db):
    form = {
        "site_id": site["id"],
        "direction": "in",
        "person_type": "resident",
        "name": "王五",
        "phone": "13800138000",
        "temperature": "36.5",
        "health_code": "green",
        "travel": "false",
    }
    form["csrf_token"] = csrf(client, f"/s/{site['code']}")  # the visitor's page has one
    refused = client.post(f"/s/{site['code']}/entries", data=form)
    assert refused.status_code == 401
    assert "尚未登记" in refused.text
    enrol(client, runner, site)
    page = client.get(f"/s/{site['code']}").text
    form["csrf_token"] = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    form["uuid"] = re.search(r'name="uuid"[^>]*value="([^"]+)"', page).group(1)
    assert client.post(f"/s/{site['code']}/entries", data=form).status_code == 303
    runner.invoke(args=["device", "revoke", "东门 1 号机"])
    form["uuid"] = "6a0f7a1e-6f0a-4c71-9d38-5f0c8a3b7e21"
    assert client.post(f"/s/{site['code']}/entries", data=form).status_code == 401
    rows = db.execute("SELECT name, device FROM entries").fetchall()
    assert [(r[0], r[1] is not None) for r in rows] == [("王五", True)]


@pytest.mark.parametrize(
    "typed",
    [
        "{code}",
        " {code} ",
        "http://gate.test/s/{code}",
        "/s/{code}?x=1",
        "https://c.test/s/{code}#x",
    ],
)
def test_typed_or_scanned_site_code_opens_the_gate(client, site, typed):
    response = client.get("/go", query_string={"code": typed.format(code=site["code"])})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/s/{site['code']}"


def test_unknown_site_code_says_so(client):
    response = client.get("/go?code=nope", follow_redirects=True)
    assert "没有这个编码的场所" in response.text


def test_an_old_or_closed_sites_code_typed_says_what_the_poster_says(client, db, site):
    # Typed without JavaScript (what the scanner does opens /s/<code> itself): an old poster
    # is out of date, and who to ask; "no such site" was wrong.
    old = site["code"]
    sites.rotate_code(db, site["id"])
    response = client.get("/go", query_string={"code": f"http://gate.test/s/{old}"})
    assert response.status_code == 303 and response.headers["Location"] == f"/s/{old}"
    page = client.get(response.headers["Location"])
    assert page.status_code == 404 and "此二维码已过期" in page.text
    sites.set_active(db, site["id"], False)
    closed = client.get("/go", query_string={"code": sites.get_site(db, site["id"])["code"]})
    assert "此场所已停用" in client.get(closed.headers["Location"]).text


def test_the_installed_app_starts_on_the_phones_own_gate(client, runner, site):
    assert client.get("/start").headers["Location"] == "/outbox"
    enrol(client, runner, site)
    assert client.get("/start").headers["Location"] == f"/s/{site['code']}"


def test_a_signed_in_coordinator_gets_the_gate_page_without_enrolling(app, client, site):
    from console_support import login, make_user

    make_user(app, "zhang", "coordinator", sites=[site["code"]])
    login(client, "zhang")
    assert 'id="entry-form"' in client.get(f"/s/{site['code']}").text


def test_first_visit_precaches_only_what_the_gate_needs(client):
    """The scanner's jsQR fallback and console styles are cached on first use, not at install."""
    import json
    import re

    from fieldapp.assets import HASHED

    sw = client.get("/sw.js").text
    shell = json.loads(re.search(r"const SHELL_URLS = (\[.*?\]);", sw).group(1))
    lazy = json.loads(re.search(r"const LAZY_URLS = (\[.*?\]);", sw).group(1))
    shell, lazy = ([HASHED.sub(r"\1", u) for u in urls] for urls in (shell, lazy))
    for needed in ("/static/js/gate.js", "/static/js/outbox.js", "/static/css/gate.css"):
        assert needed in shell
    # No page kept for offline use has hx- attributes: htmx is kept once a page uses it.
    assert "/static/vendor/htmx.min.js" in lazy and "/static/vendor/htmx.min.js" not in shell
    assert "/static/vendor/jsQR.js" in lazy and "/static/vendor/jsQR.js" not in shell
    assert "/static/css/console.css" in lazy and "/static/css/console.css" not in shell
    assert "__LAZY__" not in sw
