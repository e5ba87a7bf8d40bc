"""Posters: one A4 page per site, Chinese text, a QR code that decodes to the site's URL.

The Chinese font is embedded: a viewer with no fonts at all prints the page as this machine
does, and draws real glyphs (different characters leave different ink; tofu boxes would not).
"""

from __future__ import annotations

import io
import os
import subprocess
from datetime import date

import pytest
from flask_babel import force_locale
from PIL import Image, ImageChops
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reports_support import (
    Box,
    pdf_fonts,
    pdf_text,
    pdf_text_by_font,
    pdf_words,
    qr_boxes_by_page,
    qr_codes_by_page,
)

from fieldapp import pdffont
from fieldapp.gate import qr, sites
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


def page_texts(pdf: bytes, tmp_path) -> list[str]:
    """Each page's text as pdftotext (poppler) reads it."""
    return pdf_text(pdf, tmp_path).split("\f")[:-1]


def qr_codes(pdf: bytes, tmp_path) -> list[str]:
    """Print each page (50 dpi, as a phone camera would see it) and decode the one QR code on
    it."""
    found = []
    for codes in qr_codes_by_page(pdf, tmp_path, dpi=50):
        (code,) = codes
        found.append(code)
    return found


@pytest.fixture
def bare_viewer(tmp_path):
    """Environment for a poppler that finds no font on its machine (an empty fontconfig):
    only what the PDF embeds can be drawn, as on a print shop's computer without Chinese fonts."""
    folder = tmp_path / "bare"
    (folder / "fonts").mkdir(parents=True)
    conf = folder / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n'
        f"<fontconfig><dir>{folder / 'fonts'}</dir><cachedir>{folder / 'cache'}</cachedir>"
        "</fontconfig>\n"
    )
    return dict(os.environ, FONTCONFIG_FILE=str(conf))


def first_page(pdf: bytes, tmp_path, env=None) -> Image.Image:
    """Page 1 printed by pdftoppm at 50 dpi, in grey."""
    path = tmp_path / "first.pdf"
    path.write_bytes(pdf)
    stem = tmp_path / "first"
    subprocess.run(
        ["pdftoppm", "-r", "50", "-gray", "-png", "-f", "1", "-l", "1", "-singlefile"]
        + [str(path), str(stem)],
        check=True,
        capture_output=True,  # poppler complains on stderr about fonts it cannot find
        env=env,
    )
    with Image.open(f"{stem}.png") as image:
        return image.convert("L")


def ink(image: Image.Image) -> int:
    """How many pixels are dark."""
    return image.point(lambda v: 255 if v < 128 else 0).histogram()[255]


def test_cli_posters_one_page_per_site_with_name_and_qr(runner, app, made, tmp_path):
    out = tmp_path / "posters.pdf"
    r = runner.invoke(args=["posters", "--out", str(out)])
    assert r.exit_code == 0, r.output
    pdf = out.read_bytes()
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 3
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    texts = page_texts(pdf, tmp_path)
    by_name = {}
    for text, url in zip(texts, qr_codes(pdf, tmp_path), strict=True):
        name = next(n for n, _d in NAMES if n in text.replace(" ", ""))
        by_name[name] = (text, url)
    for site in made:
        text, url = by_name[site["name"]]
        assert url == f"http://gate.test/s/{site['code']}"
        assert "扫码" in text and "健康码" in text and "零报告" in text  # instructions in Chinese
        assert "打印日期" in text and "社区居委会" in text
    assert "STSong-Light" not in pdf.decode("latin-1")  # no font left to the viewer


def test_cli_posters_in_traditional_characters_in_either_spelling(runner, app, made, tmp_path):
    out = tmp_path / "posters.pdf"
    for lang, says in (("zh-Hant", "掃碼"), ("ZH_HANT", "掃碼"), ("zh-hans", "扫码")):
        r = runner.invoke(
            args=["posters", "--district", "溧阳市", "--out", str(out), "--lang", lang]
        )
        assert r.exit_code == 0, r.output
        (text,) = page_texts(out.read_bytes(), tmp_path)
        assert says in text, lang
    r = runner.invoke(args=["posters", "--out", str(out), "--lang", "en"])
    assert r.exit_code == 2 and "zh_Hans" in r.output and "zh_Hant" in r.output


def test_posters_for_a_district_only(runner, app, made, tmp_path):
    out = tmp_path / "jt.pdf"
    r = runner.invoke(args=["posters", "--out", str(out), "--district", "金坛区"])
    assert r.exit_code == 0, r.output
    assert len(PdfReader(str(out)).pages) == 2
    none = runner.invoke(args=["posters", "--out", str(out), "--district", "无此区"])
    assert none.exit_code != 0


def test_every_font_in_the_pdf_is_an_embedded_subset(app, made, tmp_path):
    with app.app_context():
        pdf = posters.render(made, base_url="http://gate.test", printed=date(2020, 2, 15))
    fonts = pdf_fonts(pdf, tmp_path)
    assert fonts, "pdffonts lists no font"
    for font in fonts:  # the URL too: no Helvetica left for the viewer to substitute
        assert font["name"].split("+", 1)[-1].startswith(pdffont.FONT_NAME), font
        assert (font["emb"], font["sub"]) == ("yes", "yes"), font
        assert font["name"][:7].endswith("+")  # ABCDEF+: a subset's tag


def test_chinese_title_is_drawn_where_the_viewer_has_no_font(app, made, tmp_path, bare_viewer):
    # The control: a font the PDF only names draws nothing in this viewer.
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    named = canvas.Canvas(buf)
    named.setFont("Helvetica", 40)
    named.drawString(72, 700, "HHHHHHHH")
    named.save()
    assert ink(first_page(buf.getvalue(), tmp_path, bare_viewer)) == 0

    def page(name: str, env=bare_viewer) -> Image.Image:
        with app.app_context():
            pdf = posters.render(
                [dict(made[0], name=name)], base_url="http://gate.test", printed=date(2020, 2, 15)
            )
        return first_page(pdf, tmp_path, env)

    plain, dense = page("一二三"), page("鑫森淼")
    # Only the title differs between the two pages, and it holds much more ink in dense
    # characters than in three strokes: boxes (or nothing) would leave the same ink.
    changed = ImageChops.difference(plain, dense).getbbox()
    assert changed is not None, "the two titles print the same: boxes, or nothing"
    assert changed[3] < plain.height / 4  # the title, at the top of the page
    assert ink(dense.crop(changed)) > 2 * ink(plain.crop(changed)) > 0
    # Every other line is drawn too, in the same glyphs as where the machine's fonts are seen.
    assert ImageChops.difference(dense, page("鑫森淼", env=None)).getbbox() is None


def test_traditional_characters_print_with_the_same_embedded_font(app, made, tmp_path, bare_viewer):
    with app.app_context():
        pdf = posters.render(
            [made[0]], base_url="http://gate.test", printed=date(2020, 2, 15), language="zh_Hant"
        )
        simplified = posters.render(
            [made[0]], base_url="http://gate.test", printed=date(2020, 2, 15)
        )
    assert {f["emb"] for f in pdf_fonts(pdf, tmp_path)} == {"yes"}
    (text,) = page_texts(pdf, tmp_path)
    assert "掃碼" in text and "2020-02-15" in text
    bare = first_page(pdf, tmp_path, bare_viewer)
    assert ImageChops.difference(bare, first_page(pdf, tmp_path)).getbbox() is None
    # The heading has as many characters in either script (门岗登记　请扫码, 門崗登記　請掃碼):
    # boxes would print the same; glyphs print 門 and 门.
    heading = (0, 0, bare.width, bare.height // 10)
    zh_hans = first_page(simplified, tmp_path, bare_viewer)
    assert ImageChops.difference(bare.crop(heading), zh_hans.crop(heading)).getbbox() is not None


def test_the_font_has_every_character_the_catalogs_and_both_scripts_need():
    """Every character a zh_Hans or zh_Hant string can put on a PDF, every GB2312 and Big5
    hanzi (site names in either script) and the symbols posters and passes use."""
    from babel.messages.pofile import read_po
    from reportlab.pdfbase import pdfmetrics

    from fieldapp.i18n import TRANSLATIONS

    glyphs = pdfmetrics.getFont(pdffont.pdf_font()).face.charToGlyph
    needed = set("°C≥≤·×—“”…　，。：；（）、")
    for po in TRANSLATIONS.glob("*/zh_Han[st]/LC_MESSAGES/messages.po"):
        with po.open("rb") as f:
            for message in read_po(f):
                strs = message.string if isinstance(message.string, tuple) else (message.string,)
                needed.update(c for s in strs for c in s if ord(c) > 0x7E)
    for encoding, first, last in (("gb2312", 0xB0, 0xF7), ("big5", 0xA4, 0xF9)):
        for b1 in range(first, last + 1):
            for b2 in (*range(0x40, 0x7F), *range(0xA1, 0xFF)):
                try:
                    ch = bytes((b1, b2)).decode(encoding)
                except UnicodeDecodeError:
                    continue
                if "\u4e00" <= ch <= "\u9fff":
                    needed.add(ch)
    assert len(needed) > 13_000
    assert sorted(c for c in needed if ord(c) not in glyphs) == []


def test_posters_without_the_font_fail_and_say_so_in_the_users_language(
    runner, app, made, tmp_path, monkeypatch
):
    from console_support import login, make_user

    monkeypatch.setattr(pdffont, "FONT_FILES", (tmp_path / "absent.ttc",))
    out = tmp_path / "posters.pdf"
    for lang, says in (
        ("zh_CN.UTF-8", "未安装"),
        ("zh_TW.UTF-8", "未安裝"),
        ("en_GB.UTF-8", "not installed"),
    ):
        r = runner.invoke(args=["posters", "--out", str(out)], env={"FIELDAPP_LANG": lang})
        assert r.exit_code != 0
        assert says in r.output and "fonts-wqy-microhei" in r.output, r.output
    assert not out.exists()  # no PDF of boxes
    make_user(app, "jt", "coordinator", districts=["金坛区"])
    client = app.test_client()
    login(client, "jt")
    r = client.get("/console/posters.pdf", headers={"Accept-Language": "zh-TW"})
    assert r.status_code == 503 and r.mimetype == "text/plain"
    assert "未安裝" in r.text and "fonts-wqy-microhei" in r.text


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


def test_a_poster_in_traditional_characters_is_asked_for_in_either_spelling(app, made, tmp_path):
    """?lang=zh-Hant (BCP 47) prints Traditional characters as ?lang=zh_Hant does."""
    from console_support import login, make_user

    make_user(app, "jt", "coordinator", districts=["金坛区"])
    client = app.test_client()
    login(client, "jt")
    for lang, says in (("zh-Hant", "掃碼"), ("ZH_HANT", "掃碼"), ("zh_Hant", "掃碼"), ("", "扫码")):
        r = client.get(f"/console/posters.pdf?site={made[0]['id']}&lang={lang}")
        assert r.status_code == 200 and r.mimetype == "application/pdf", lang
        (text,) = page_texts(r.data, tmp_path)
        assert says in text, lang


def at_most(text: str, limit: int) -> str:
    """text repeated up to exactly limit characters."""
    return (text * limit)[:limit]


# Every text a site may have at its longest: a Chinese one with no space to break at, and a
# Latin one that breaks at spaces only.
CHINESE = dict(
    name=at_most("江苏省常州市金坛区第一建筑工程有限公司第三项目部东门", sites.NAME_LIMIT),
    address=at_most("金坛区东门大街一百二十三号院内", sites.TEXT_LIMIT),
)
LATIN = dict(
    name=at_most("Jintan First Construction Company, Third Project, East Gate ", sites.NAME_LIMIT),
    address=at_most("No. 123 Dongmen Street, Jintan District, Changzhou ", sites.TEXT_LIMIT),
)
DISTRICT_AND_CONTACT = dict(
    district=at_most("常州市金坛区", sites.NAME_LIMIT),
    contact=at_most("项目部安全员值班电话 0519-82800000 ", sites.TEXT_LIMIT),
)


def squash(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("language", ["zh_Hans", "zh_Hant", "en"])
def test_the_longest_texts_stay_on_the_page_and_above_the_footer(app, db, tmp_path, language):
    """Every line of a poster lies within the margins, no two cross, none crosses the QR code
    (its white border included); the page reads top to bottom as it should, the footer (who to
    ask) last. Name and address at their longest keep the QR code at its 115 mm; with the
    district and the contact at their longest too, it may shrink, never under 85 mm."""
    with app.app_context():
        usual = dict(district="金坛区", contact="物业 0519-82800000")
        made = [
            dict(sites.add_site(db, kind="construction", **texts, **rest))
            for rest in (usual, DISTRICT_AND_CONTACT)
            for texts in (CHINESE, LATIN)
        ]
        pdf = posters.render(
            made, base_url="http://gate.test", printed=date(2020, 2, 15), language=language
        )
        with force_locale(language):
            said = [
                posters.texts(s, sites.gate_url("http://gate.test", s["code"]), date(2020, 2, 15))
                for s in made
            ]
    width, height = A4
    margin = 18 * mm
    inside = Box(margin, margin, width - margin, height - margin)
    pages, codes = pdf_words(pdf, tmp_path), qr_boxes_by_page(pdf, tmp_path)
    assert len(pages) == len(codes) == 4
    for n, (site, words, found, text) in enumerate(zip(made, pages, codes, said, strict=True)):
        url = sites.gate_url("http://gate.test", site["code"])
        ((decoded, symbol),) = found
        assert decoded == url
        # The square drawn: the symbol and its white border of 4 modules each side.
        modules = len(qr.matrix(url))
        side = (symbol.x1 - symbol.x0) * modules / (modules - 8)
        border = side * 4 / modules
        square = Box(
            symbol.x0 - border, symbol.top - border, symbol.x1 + border, symbol.bottom + border
        )
        if n < 2:  # name and address at their longest
            assert side == pytest.approx(115 * mm, abs=2)
        else:
            assert side >= 85 * mm - 2
        for i, (word, box) in enumerate(words):
            assert inside.x0 - 0.5 <= box.x0 and box.x1 <= inside.x1 + 0.5, (word, box)
            assert inside.top - 0.5 <= box.top and box.bottom <= inside.bottom + 0.5, (word, box)
            assert not box.overlaps(square), (word, box, square)
            for other, other_box in words[i + 1 :]:
                assert not box.overlaps(other_box), (word, box, other, other_box)
        # Read top to bottom, left to right: everything is there, in order, the footer last.
        in_order = sorted(words, key=lambda wb: (round(wb[1].top, 1), wb[1].x0))
        read = "".join(w for w, _box in in_order)
        blocks = "".join(title + body for title, body in text.blocks)
        expected = text.heading + text.name + text.place + url + blocks + text.newer + text.footer
        assert squash(read) == squash(expected)
        assert site["contact"] and squash(read).endswith(squash(site["contact"]))


@pytest.mark.parametrize("base", ["http://127.0.0.1:5000", "http://localhost:8000", "http://[::1]"])
def test_posters_for_an_address_only_this_computer_opens_say_so(app, made, tmp_path, base):
    """The default BASE_URL (or localhost) on a poster is a QR code no phone can open: the
    console's sites page and the commands that print codes for phones say so, and print."""
    from console_support import login, make_user

    app.config["BASE_URL"] = base
    make_user(app, "jt", "coordinator", districts=["金坛区"])
    client = app.test_client()
    login(client, "jt")
    warning = "只有这台电脑能打开"
    page = client.get("/console/sites")
    assert page.status_code == 200 and warning in page.text and base in page.text
    runner = app.test_cli_runner()
    for args in (
        ["posters", "--out", str(tmp_path / "p.pdf")],
        ["site", "qr", made[0]["code"], "--out", str(tmp_path / "q.png")],
        ["device", "enrol", "--site", made[0]["code"], "--name", "东门"],
    ):
        done = runner.invoke(args=args)
        assert done.exit_code == 0, done.output
        assert warning in done.output, args
    assert (tmp_path / "p.pdf").stat().st_size > 0  # printed all the same
    # An address phones open: no such word.
    app.config["BASE_URL"] = "http://192.168.1.5:8000"
    assert warning not in client.get("/console/sites").text
    done = runner.invoke(args=["posters", "--out", str(tmp_path / "p.pdf")])
    assert done.exit_code == 0 and warning not in done.output


# Place names' rare hanzi, which WenQuanYi Micro Hei lacks: Extension A (㙟, 䢺), B (𡌶) and E
# (𬒔), in Hanazono's HanaMinA; Extension D (𫟷), only in HanaMinB.
RARE_NAME, RARE_DISTRICT = "㙟䢺𡌶𬒔村", "𫟷溪镇"


def test_rare_characters_of_a_place_name_print_in_the_second_font(app, db, tmp_path, bare_viewer):
    """A rare character of a name prints in the second font, Hanazono Mincho (fonts-hanazono,
    which make install installs), embedded like the first; the rest of the page stays in
    WenQuanYi Micro Hei, and a poster without such a character embeds only that."""
    assert all(path.is_file() for _name, path in pdffont.RARE_FONTS), "make install installs it"
    with app.app_context():
        rare = dict(sites.add_site(db, RARE_NAME, "residential", district=RARE_DISTRICT))
        plain = dict(sites.add_site(db, "阳光花园小区", "residential", district="金坛区"))
        pdf = posters.render([rare], base_url="http://gate.test", printed=date(2020, 2, 15))
        other = posters.render(  # as many rare characters, other ones
            [dict(rare, name="𠮷䶮𤩽𦰡村")], base_url="http://gate.test", printed=date(2020, 2, 15)
        )
        plain_pdf = posters.render([plain], base_url="http://gate.test", printed=date(2020, 2, 15))
    (text,) = page_texts(pdf, tmp_path)
    assert RARE_NAME in squash(text) and RARE_DISTRICT in text  # copied and searched as they are
    fonts = pdf_fonts(pdf, tmp_path)
    assert all((f["emb"], f["sub"]) == ("yes", "yes") for f in fonts), fonts
    drawn = pdf_text_by_font(pdf)
    main = next(name for name in drawn if name.startswith(pdffont.FONT_NAME))
    assert sorted(drawn) == sorted([main, "HanaMinA", "HanaMinB"])
    assert drawn["HanaMinA"] == "㙟䢺𡌶𬒔" and drawn["HanaMinB"] == "𫟷"
    assert "村" in drawn[main] and "溪镇" in drawn[main] and "扫码" in drawn[main]
    # Glyphs, not boxes: other rare characters print other ink, with no font on the machine.
    name_band = (0, 0, 10_000, first_page(pdf, tmp_path).height // 6)
    assert ImageChops.difference(
        first_page(pdf, tmp_path, bare_viewer).crop(name_band),
        first_page(other, tmp_path, bare_viewer).crop(name_band),
    ).getbbox()
    # The same process, the second font loaded: a plain name embeds the first font only.
    assert [n.startswith(pdffont.FONT_NAME) for n in pdf_text_by_font(plain_pdf)] == [True]


def test_a_character_no_font_has_prints_as_a_mark_not_a_gap(app, db, tmp_path, monkeypatch):
    """A character neither font has (Extension G's 𰻞) prints as 〓, the typesetter's mark for a
    missing character, where the page had a blank that read as another name (𰻞 面馆 for
    𰻞𰻞面馆); the same width, so nothing else moves. Without fonts-hanazono, a rare character
    the first font lacks prints so too, and the poster is printed all the same."""
    with app.app_context():
        made = [dict(sites.add_site(db, "𰻞𰻞面馆", "residential", district="金坛区"))]
        pdf = posters.render(made, base_url="http://gate.test", printed=date(2020, 2, 15))
        monkeypatch.setattr(pdffont, "RARE_FONTS", (("Absent", tmp_path / "absent.ttf"),))
        rare = [dict(made[0], name=RARE_NAME, district=RARE_DISTRICT)]
        without = posters.render(rare, base_url="http://gate.test", printed=date(2020, 2, 15))
    (text,) = page_texts(pdf, tmp_path)
    assert "〓〓面馆" in squash(text)
    assert "金坛区" in text and "打印日期" in text
    (text,) = page_texts(without, tmp_path)
    assert "〓〓〓〓村" in squash(text) and "〓溪镇" in text and "打印日期" in text
    assert [n.startswith(pdffont.FONT_NAME) for n in pdf_text_by_font(without)] == [True]


def test_more_sites_than_one_pdf_takes_are_printed_a_district_at_a_time(
    app, made, tmp_path, monkeypatch
):
    """A province's tens of thousands of posters in one request outlast a serving process
    (7 ms a page): past the limit, the sites page says to print a district at a time, and
    offers each district's posters."""
    from console_support import login, make_user

    monkeypatch.setattr(posters, "SHEET_LIMIT", 2)
    make_user(app, "boss", "admin")
    client = app.test_client()
    login(client, "boss")
    r = client.get("/console/posters.pdf")
    assert r.status_code == 303 and r.headers["Location"] == "/console/sites"
    page = client.get("/console/sites")
    assert "3 个场所" in page.text and "按区" in page.text
    links = [f"/console/posters.pdf?district={d}" for d in ("%E9%87%91%E5%9D%9B%E5%8C%BA",)]
    assert all(link in page.text for link in links)
    one = client.get(links[0])  # 金坛区: two sites, within the limit
    assert one.status_code == 200 and len(PdfReader(io.BytesIO(one.data)).pages) == 2
    assert client.get(f"/console/posters.pdf?site={made[2]['id']}").status_code == 200
