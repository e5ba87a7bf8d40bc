"""Posters: one A4 page per site, Chinese text, a QR code that decodes to the site's URL."""

from __future__ import annotations

import io
import subprocess
from datetime import date

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from fieldapp.gate import sites
from fieldapp.reports import posters

NAMES = [("阳光花园小区", "金坛区"), ("城东工地", "金坛区"), ("河西小区", "溧阳市")]


@pytest.fixture
def made(app, db):
    with app.app_context():
        return [
            dict(
                sites.add_site(db, name, "residential", district=d, contact="社区居委会 0519-8000")
            )
            for name, d in NAMES
        ]


def pdf_text(pdf: bytes, tmp_path) -> list[str]:
    """Each page's text as pdftotext (poppler) reads it."""
    path = tmp_path / "p.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True
    ).stdout.decode()
    return out.split("\f")[:-1]


def qr_codes(pdf: bytes, tmp_path) -> list[str]:
    """Print each page (poppler's pdftoppm, 50 dpi, as a phone camera would see it) and
    decode the one QR code on it."""
    folder = tmp_path / "pages"
    folder.mkdir(exist_ok=True)
    (folder / "p.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "50", "-gray", "-png", str(folder / "p.pdf"), str(folder / "page")],
        check=True,
    )
    found = []
    for png in sorted(folder.glob("page-*.png")):
        (code,) = zxingcpp.read_barcodes(Image.open(png))
        found.append(code.text)
    return found


def test_cli_posters_one_page_per_site_with_name_and_qr(runner, app, made, tmp_path):
    out = tmp_path / "posters.pdf"
    r = runner.invoke(args=["posters", "--out", str(out)])
    assert r.exit_code == 0, r.output
    pdf = out.read_bytes()
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 3
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    texts = pdf_text(pdf, tmp_path)
    by_name = {}
    for text, url in zip(texts, qr_codes(pdf, tmp_path), strict=True):
        name = next(n for n, _d in NAMES if n in text.replace(" ", ""))
        by_name[name] = (text, url)
    for site in made:
        text, url = by_name[site["name"]]
        assert url == f"http://gate.test/s/{site['code']}"
        assert "扫码" in text and "健康码" in text and "零报告" in text  # instructions in Chinese
        assert "打印日期" in text and "社区居委会" in text
    assert "STSong-Light" in pdf.decode("latin-1")  # the built-in CID font, nothing embedded


def test_posters_for_a_district_only(runner, app, made, tmp_path):
    out = tmp_path / "jt.pdf"
    r = runner.invoke(args=["posters", "--out", str(out), "--district", "金坛区"])
    assert r.exit_code == 0, r.output
    assert len(PdfReader(str(out)).pages) == 2
    none = runner.invoke(args=["posters", "--out", str(out), "--district", "无此区"])
    assert none.exit_code != 0


def test_traditional_characters_print_with_the_same_cid_font(app, made, tmp_path):
    with app.app_context():
        pdf = posters.render(
            [made[0]], base_url="http://gate.test", printed=date(2020, 2, 15), language="zh_Hant"
        )
    assert "STSong-Light" in pdf.decode("latin-1")
    (text,) = pdf_text(pdf, tmp_path)
    assert "掃碼" in text and "2020-02-15" in text


def test_old_poster_after_rotation_says_out_of_date_and_who_to_ask(client, app, db, made):
    old = made[0]["code"]
    with app.app_context():
        new = sites.rotate_code(db, made[0]["id"])
    page = client.get(f"/s/{old}")
    assert page.status_code in (404, 410)
    assert "过期" in page.text or "已更换" in page.text or "out of date" in page.text
    assert "社区居委会 0519-8000" in page.text
    assert client.get(f"/s/{new}").status_code == 200
    # The old poster's report link also leads there rather than to a report form.
    r = client.get(f"/s/{old}/report")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/s/{old}")


def test_console_posters_pdf_needs_login_and_covers_the_scope(app, made, tmp_path):
    from console_support import login, make_user

    make_user(app, "liyang", "coordinator", districts=["溧阳市"])
    client = app.test_client()
    assert client.get("/console/posters.pdf").status_code in (302, 303)
    login(client, "liyang")
    r = client.get("/console/posters.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(r.data))
    assert len(reader.pages) == 1
    assert qr_codes(r.data, tmp_path) == [f"http://gate.test/s/{made[2]['code']}"]


def test_console_sites_page_lists_fields_and_prints_one_poster(app, db, made, tmp_path):
    from console_support import login, make_user

    make_user(app, "jt", "coordinator", districts=["金坛区"])
    client = app.test_client()
    login(client, "jt")
    with app.app_context():
        sites.set_optional_fields(db, app.config, made[0]["code"], "phone,plate")
    page = client.get("/console/sites")
    assert page.status_code == 200
    assert "阳光花园小区" in page.text and "城东工地" in page.text and "河西小区" not in page.text
    assert "手机号、车牌号" in page.text  # the first site's chosen fields
    assert f"/console/sites/{made[0]['id']}/fields" in page.text
    one = client.get(f"/console/posters.pdf?site={made[1]['id']}")
    reader = PdfReader(io.BytesIO(one.data))
    assert len(reader.pages) == 1
    assert qr_codes(one.data, tmp_path) == [f"http://gate.test/s/{made[1]['code']}"]
    assert client.get(f"/console/posters.pdf?site={made[2]['id']}").status_code == 404  # not theirs
