"""What crosses the wire: answers compressed when the browser accepts it, static files under
hashed names cached for a year, the service worker's list naming those files, and the gate's
last entries by gate.js (fieldapp/assets.py)."""

from __future__ import annotations

import gzip
import json
import re

import brotli
import pytest
from console_support import csrf, login, make_user, save, wire_entry
from gate_helpers import HX, enrol, make_site

from fieldapp import assets

GZIP = {"Accept-Encoding": "gzip"}
ASSET = re.compile(r'<(?:link[^>]+href|script[^>]+src)="(/static/[^"]+)"')


@pytest.fixture
def site(db):
    return make_site(db)


@pytest.fixture
def phone(client, db, site):
    """The client as an enrolled gate phone of the site, with a few entries there."""
    return enrol(client, db, site)


def page_assets(phone, site) -> list[str]:
    """The static files the gate page and the outbox page link (the gate page's styles are in
    the page itself; /outbox links them)."""
    return [
        u for path in (f"/s/{site['code']}", "/outbox") for u in ASSET.findall(phone.get(path).text)
    ]


def test_the_gate_page_carries_its_styles_allowed_by_their_hash(phone, site):
    import base64
    import hashlib

    page = phone.get(f"/s/{site['code']}")
    style = re.search(r"<style>(.*?)</style>", page.text, re.S)[1]
    assert ".entry-form" in style and "&gt;" not in style  # the CSS as written, not escaped
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'self' 'sha256-{digest}'" in page.headers["Content-Security-Policy"]
    assert 'rel="stylesheet"' not in page.text
    # What gate.js loads once the form is usable: hashed names, as the page's own scripts.
    later = re.search(r'data-later="([^"]+)"', page.text)[1].split()
    assert [assets.HASHED.sub(r"\1", u) for u in later] == [
        f"/static/js/{name}.js" for name in ("outbox", "last", "roster", "status", "pwa")
    ]


def varies(response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("Vary", "").split(",")}


def test_html_json_css_and_js_are_compressed_when_the_browser_accepts_it(phone, site):
    plain = phone.get(f"/s/{site['code']}")
    assert "Content-Encoding" not in plain.headers
    packed = phone.get(f"/s/{site['code']}", headers=GZIP)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "accept-encoding" in varies(packed) and "accept-encoding" in varies(plain)
    html = gzip.decompress(packed.data).decode()
    assert 'id="entry-form"' in html and len(packed.data) < len(plain.data) / 2

    for path in ("/manifest.webmanifest", "/sw.js"):  # JSON (the manifest) and JavaScript
        r = phone.get(path, headers=GZIP)
        assert r.headers["Content-Encoding"] == "gzip", path
        assert gzip.decompress(r.data) == phone.get(path).data
    assert json.loads(gzip.decompress(phone.get("/manifest.webmanifest", headers=GZIP).data))

    urls = page_assets(phone, site)
    for ext in (".css", ".js"):
        url = next(u for u in urls if u.endswith(ext))
        r = phone.get(url, headers=GZIP)
        assert r.headers["Content-Encoding"] == "gzip", url
        assert "accept-encoding" in varies(r)
        original = phone.get(url)
        assert "Content-Encoding" not in original.headers
        assert gzip.decompress(r.data) == original.data
        best = phone.get(url, headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
        assert best.headers["Content-Encoding"] == "br"  # what Chromium asks for
        assert brotli.decompress(best.data) == original.data
        for response in (r, original, best):
            response.close()


def test_a_json_answer_is_compressed(app, client, db, site):
    from fieldapp.phones import devices
    from sync import peers

    _peer, token = peers.create(db, "device", "门岗2号", site["id"])
    client.set_cookie(devices.COOKIE, token)
    with app.app_context():
        records = [wire_entry(site["id"], name=f"压缩{i}") for i in range(20)]
    body = json.dumps({"source": _peer.id, "records": records})
    r = client.post("/sync/v1/push", data=body, content_type="application/json", headers=GZIP)
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.headers["Content-Encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(r.data))["results"]) == 20


def test_images_pdfs_and_tiny_answers_are_not_compressed(app, phone, site):
    icon = next(u for u in re.findall(r'"(/static/icons/[^"]+\.png)"', phone.get("/sw.js").text))
    for path in (icon, f"/s/{site['code']}/qr.png", "/ping"):
        r = phone.get(path, headers=GZIP)
        assert r.status_code == 200 and "Content-Encoding" not in r.headers, path
        r.close()
    make_user(app, "zhang", "coordinator", sites=[site["code"]])
    login(phone, "zhang")
    pdf = phone.get("/console/posters.pdf", headers=GZIP)
    assert pdf.mimetype in ("application/pdf", "text/plain")  # text/plain: no font installed
    if pdf.mimetype == "application/pdf":
        assert pdf.data.startswith(b"%PDF") and "Content-Encoding" not in pdf.headers
    xlsx = phone.post(
        "/console/export",
        data={"csrf_token": csrf(phone, "/console/log"), "format": "xlsx"},
        headers=GZIP,
    )
    assert xlsx.status_code == 200 and "Content-Encoding" not in xlsx.headers
    assert xlsx.get_data().startswith(b"PK")  # a zip, compressed already


def test_the_csv_export_is_compressed_as_it_streams(app, client, site):
    with app.app_context():
        save(app, *[wire_entry(site["id"], name=f"导出{i}") for i in range(300)])
    make_user(app, "root", "admin")
    login(client, "root")
    form = {"csrf_token": csrf(client, "/console/log"), "format": "csv"}
    plain = client.post("/console/export", data=form)
    packed = client.post("/console/export", data=form, headers=GZIP)
    assert packed.headers["Content-Encoding"] == "gzip" and packed.mimetype == "text/csv"
    # Streamed: no length known in advance, the body made as it is read.
    assert packed.is_streamed and "Content-Length" not in packed.headers
    assert gzip.decompress(packed.get_data()) == plain.get_data()
    assert plain.get_data().count(b"\n") == 301


def test_static_files_have_hashed_names_cached_for_a_year(phone, site):
    urls = page_assets(phone, site)
    assert any(u.endswith(".css") for u in urls) and any(u.endswith(".js") for u in urls)
    for url in urls:
        assert assets.HASHED.search(url), url
        r = phone.get(url)
        assert r.status_code == 200, url
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        plain = phone.get(assets.HASHED.sub(r"\1", url))  # pages kept by older versions
        assert plain.status_code == 200 and plain.data == r.data
        assert plain.headers["Cache-Control"] == "no-cache"
        r.close()
        plain.close()


def test_every_answer_of_the_instance_is_marked_as_its_own(phone, site):
    """The service worker keeps a file or takes a save as done only from an answer with this
    mark: a captive portal's page answering in its place has none (static/sw.js, fromUs)."""
    shell = json.loads(re.search(r"const SHELL_URLS = (\[.*?\]);", phone.get("/sw.js").text)[1])
    static = next(u for u in shell if u.startswith("/static/"))
    answers = [phone.get(static), phone.get(f"/s/{site['code']}"), phone.get("/no/such/page")]
    assert [r.headers.get("X-Fieldapp") for r in answers] == ["1", "1", "1"]
    assert [r.status_code for r in answers] == [200, 200, 404]
    for r in answers:
        r.close()


def test_the_service_worker_and_the_gate_page_are_never_kept_stale(phone, site):
    assert phone.get("/sw.js").headers["Cache-Control"] == "no-cache"
    page = phone.get(f"/s/{site['code']}")
    directives = {d.strip() for d in page.headers["Cache-Control"].split(",")}
    assert "private" in directives and "no-cache" in directives  # never in a shared cache
    assert "public" not in directives and "max-age" not in page.headers["Cache-Control"]


def test_the_shell_list_names_hashed_files_that_exist(phone):
    sw = phone.get("/sw.js").text
    shell = json.loads(re.search(r"const SHELL_URLS = (\[.*?\]);", sw).group(1))
    lazy = json.loads(re.search(r"const LAZY_URLS = (\[.*?\]);", sw).group(1))
    imported = re.findall(r'"(/static/[^"]+)"', re.search(r"importScripts\((.*?)\);", sw)[1])
    assert [assets.HASHED.sub(r"\1", u) for u in imported] == [
        "/static/js/outbox.js",
        "/static/js/rules.js",
    ]
    files = [u for u in shell + lazy + imported if u.startswith("/static/")]
    assert len(files) > 10
    for url in files:
        assert assets.HASHED.search(url), url
        r = phone.get(url)
        source = assets.STATIC / assets.HASHED.sub(r"\1", url).removeprefix("/static/")
        assert r.status_code == 200 and r.data == source.read_bytes(), url
        r.close()


def test_the_last_entries_follow_with_a_fresh_token(app, client, db, site):
    with app.app_context():
        save(app, wire_entry(site["id"], name="最近一位"))
    url = f"/s/{site['code']}/last"
    assert client.get(url, headers=HX).status_code == 401  # a visitor sees nobody's entries
    enrol(client, db, site)
    page = client.get(f"/s/{site['code']}").text
    assert f'data-last-url="{url}"' in page  # asked for by gate.js on a kept page
    r = client.get(url, headers=HX)
    assert r.status_code == 200 and "最近一位" in r.text
    assert 'class="last-entries"' in r.text
    assert re.search(r'<input id="csrf_token"[^>]+hx-swap-oob="true"', r.text)
    assert "no-store" in r.headers["Cache-Control"] and "HX-Request" in r.headers["Vary"]
    assert client.get(url).status_code == 302  # not asked for a fragment: the page itself


def test_build_names_files_by_content_and_keeps_the_plain_name_current(tmp_path):
    source, out = tmp_path / "static", tmp_path / "build"
    (source / "js").mkdir(parents=True)
    (source / "js" / "a.js").write_text("let a = 1;\n" * 200)
    (source / "logo.png").write_bytes(b"\x89PNG not really")
    first = assets.build(source, out)
    assert re.fullmatch(r"js/a\.[0-9a-f]{12}\.js", first["js/a.js"])
    assert (out / (first["js/a.js"] + ".br")).exists() and (out / "js/a.js.gz").exists()
    assert not (out / (first["logo.png"] + ".gz")).exists()  # an image is compressed already
    (source / "js" / "a.js").write_text("let a = 2;\n")  # too short to pay for compressing
    second = assets.build(source, out)
    assert second["js/a.js"] != first["js/a.js"]
    assert (out / first["js/a.js"]).exists()  # an older page's file is still there
    assert (out / "js/a.js").read_text() == "let a = 2;\n"
    assert not (out / "js/a.js.br").exists() and not (out / "js/a.js.gz").exists()
