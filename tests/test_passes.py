"""Resident passes: a token per roster person, printed on a card (A4 PDF, the Chinese font
embedded), reissued to revoke the old card, handed to the site's phones with the roster; and the
entry's link to the roster person it was filled from."""

from __future__ import annotations

import io
import json
import re

import pytest
from console_support import csrf, login, make_user, wire_entry
from gate_helpers import enrol, make_site, site_with_roster, submit
from pypdf import PdfReader
from reports_support import pdf_fonts, pdf_text, pdf_text_by_font, qr_codes_by_page

import sync
from fieldapp.gate import passes, roster
from sync import config as sync_config

PEOPLE = [
    {"name": "张建国", "phone": "13812345678", "unit": "3-2-501", "person_type": "resident"},
    {"name": "李秀英", "phone": "13951234567", "unit": "3-1-202", "person_type": "resident"},
    {"name": "王磊", "phone": "15861234567", "unit": "5-1-1102", "person_type": "resident"},
]


@pytest.fixture
def site(app, db):
    return site_with_roster(app, db, PEOPLE)


def tokens(db, site_id=None):
    """name -> pass token."""
    sql = "SELECT name, pass_token FROM roster"
    rows = db.execute(sql + " WHERE site_id = ?", (site_id,)) if site_id else db.execute(sql)
    return dict(rows.fetchall())


def card_codes(pdf: bytes, tmp_path) -> list[str]:
    """Print the PDF as a phone's camera would see it (150 dpi, grey) and decode every QR."""
    return [code for page in qr_codes_by_page(pdf, tmp_path, dpi=150) for code in page]


def test_every_newcomer_gets_a_pass_token_of_its_own(db, site):
    got = tokens(db)
    assert set(got) == {"张建国", "李秀英", "王磊"}
    assert len(set(got.values())) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", t) for t in got.values())
    issued = db.execute("SELECT pass_issued_at FROM roster").fetchall()
    assert all(r[0] for r in issued)


def test_rows_from_before_passes_get_one_when_printed(app, db, site):
    db.execute("UPDATE roster SET pass_token = '', pass_issued_at = '' WHERE name = '王磊'")
    version = sync_config.current_version(db)
    with app.app_context():
        assert passes.issue_missing(db, site["id"]) == 1
        assert passes.issue_missing(db, site["id"]) == 0
    assert tokens(db)["王磊"]
    assert sync_config.current_version(db) == version + 1  # it flows down like any change


def test_reissuing_replaces_the_token_and_the_phone_copy(app, db, site):
    before = tokens(db)
    with app.test_request_context():
        old_copy = passes.for_phone(db, site)
        (wang,) = passes.find_people(db, site["id"], ["王磊"])
        assert passes.reissue(db, site["id"], [wang], actor="admin") == 1
        new_copy = passes.for_phone(db, site)
    after = tokens(db)
    assert after["王磊"] != before["王磊"]
    assert {k: v for k, v in after.items() if k != "王磊"} == {
        k: v for k, v in before.items() if k != "王磊"
    }
    assert new_copy["version"] != old_copy["version"]  # phones fetch the roster again
    column = new_copy["fields"].index("pass")
    held = {row[column] for row in new_copy["people"]}
    assert before["王磊"] not in held and after["王磊"] in held
    audit = db.execute("SELECT actor, action, detail FROM audit_log").fetchall()
    assert [tuple(r) for r in audit] == [("admin", "pass_reissue", wang)]


def test_the_phone_gets_the_phone_number_only_where_the_form_asks_it(app, db, site, runner):
    with app.app_context():
        with_phone = passes.for_phone(db, site)
    assert with_phone["fields"] == ["id", "name", "unit", "person_type", "pass", "phone"]
    assert (
        runner.invoke(args=["site", "fields", site["code"], "--set", "destination"]).exit_code == 0
    )
    fresh = dict(db.execute("SELECT * FROM sites WHERE id = ?", (site["id"],)).fetchone())
    with app.app_context():
        without = passes.for_phone(db, fresh)
    assert without["fields"] == ["id", "name", "unit", "person_type", "pass"]
    assert "13812345678" not in json.dumps(without)
    assert without["version"] != with_phone["version"]


def test_roster_json_only_for_this_sites_phones(app, client, db, site):
    url = f"/s/{site['code']}/roster.json"
    assert client.get(url).status_code == 403  # a visitor's phone: nobody's roster
    other = make_site(db, "城东工地", "construction")
    enrol(client, db, other)
    assert client.get(url).status_code == 403  # another site's phone
    enrol(client, db, site)
    got = client.get(url)
    assert got.status_code == 200
    assert got.headers["Cache-Control"] == "no-store"
    body = got.get_json()
    names = [row[body["fields"].index("name")] for row in body["people"]]
    assert names == ["张建国", "李秀英", "王磊"]  # by name, as the search lists them
    current = client.get(url + "?have=" + body["version"])
    assert current.status_code == 204 and current.data == b""
    page = client.get(f"/s/{site['code']}").get_data(as_text=True)
    assert f'data-roster-version="{body["version"]}"' in page


def test_pass_pdf_one_card_per_person_font_embedded_no_phone(app, db, site, tmp_path):
    from datetime import date

    with app.test_request_context():
        people = passes.people(db, site["id"])
        pdf = passes.render(site, people, printed=date(2020, 2, 15), tz_name=app.config["TIMEZONE"])
    codes = card_codes(pdf, tmp_path)
    assert sorted(codes) == sorted(passes.pass_text(t) for t in tokens(db).values())
    text = pdf_text(pdf, tmp_path)
    for person in PEOPLE:
        assert person["name"] in text and person["unit"] in text
        assert person["phone"] not in text and person["phone"][-4:] not in text
    assert "阳光花园小区" in text and "出入证" in text
    fonts = pdf_fonts(pdf, tmp_path)
    assert fonts, "pdffonts lists no font"
    for font in fonts:  # every font the card uses travels with the PDF
        assert font["name"].split("+", 1)[-1].startswith("WenQuanYiMicroHei"), font["name"]
        assert (font["emb"], font["sub"]) == ("yes", "yes"), font["name"]


def test_a_name_with_a_rare_character_prints_it_in_the_second_font(app, db, tmp_path):
    """䶮 (Extension A), which WenQuanYi Micro Hei lacks, prints in Hanazono Mincho; 𰻞
    (Extension G), which neither font has, as 〓: a gap would read as another name (刘)."""
    from datetime import date

    rare = [
        {"name": "刘䶮", "phone": "13812345670", "unit": "1-1-101", "person_type": "resident"},
        {"name": "𰻞", "phone": "13812345671", "unit": "1-1-102", "person_type": "resident"},
    ]
    site = site_with_roster(app, db, rare)
    with app.test_request_context():
        pdf = passes.render(
            site, passes.people(db, site["id"]), printed=date(2020, 2, 15), tz_name="Asia/Shanghai"
        )
    text = pdf_text(pdf, tmp_path)
    assert "刘䶮" in text and "〓" in text and "1-1-101" in text and "1-1-102" in text
    drawn = pdf_text_by_font(pdf)
    assert drawn["HanaMinA"] == "䶮"
    assert {(f["emb"], f["sub"]) for f in pdf_fonts(pdf, tmp_path)} == {("yes", "yes")}


def test_many_people_fill_pages_of_ten(app, db, site, tmp_path):
    from datetime import date

    more = [
        {"name": f"住户{i:02d}", "phone": "", "unit": f"9-{i}", "person_type": "resident"}
        for i in range(20)
    ]
    with app.test_request_context():
        roster.import_rows(db, site["id"], more)
        pdf = passes.render(
            site,
            passes.people(db, site["id"]),
            printed=date(2020, 2, 15),
            tz_name=app.config["TIMEZONE"],
        )
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 3
    assert len(card_codes(pdf, tmp_path)) == 23


def test_cli_prints_and_reissues(runner, app, db, site, tmp_path, monkeypatch):
    monkeypatch.setenv("FIELDAPP_LANG", "en")
    out = tmp_path / "passes.pdf"
    done = runner.invoke(args=["roster", "passes", site["code"], "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "3 passes of 阳光花园小区" in done.output
    assert out.read_bytes().startswith(b"%PDF")
    one = tmp_path / "one.pdf"
    done = runner.invoke(
        args=["roster", "passes", site["code"], "--out", str(one), "--person", "李秀英"]
    )
    assert done.exit_code == 0, done.output
    assert card_codes(one.read_bytes(), tmp_path) == [passes.pass_text(tokens(db)["李秀英"])]
    printed = db.execute("SELECT action, detail FROM audit_log ORDER BY id").fetchall()
    assert [tuple(r) for r in printed] == [("pass_print", "cards=3"), ("pass_print", "cards=1")]

    before = tokens(db)
    done = runner.invoke(args=["roster", "reissue", site["code"], "--person", "张建国"])
    assert done.exit_code == 0, done.output
    assert "1 passes of 阳光花园小区 reissued" in done.output
    assert tokens(db)["张建国"] != before["张建国"]
    assert tokens(db)["李秀英"] == before["李秀英"]
    done = runner.invoke(args=["roster", "reissue", site["code"], "--all"])
    assert done.exit_code == 0 and not set(tokens(db).values()) & set(before.values())

    unknown = runner.invoke(args=["roster", "reissue", site["code"], "--person", "无名氏"])
    assert (
        unknown.exit_code != 0 and "Nobody on this site's roster is called 无名氏" in unknown.output
    )
    neither = runner.invoke(args=["roster", "reissue", site["code"]])
    assert neither.exit_code != 0 and "--person" in neither.output
    listed = runner.invoke(args=["roster", "list", site["code"]])
    assert listed.exit_code == 0 and "张建国\t3-2-501\tresident" in listed.output

    app.config["UPSTREAM_URL"] = "https://city.example"
    refused = runner.invoke(args=["roster", "reissue", site["code"], "--all"])
    assert refused.exit_code != 0 and "https://city.example" in refused.output


def test_console_prints_reissues_and_sets_self_service(app, client, db, site):
    make_user(app, "admin", "admin")
    make_user(app, "guest", "viewer")
    login(client, "admin")
    page = client.get(f"/console/sites/{site['id']}/gate")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "张建国" in html and "3-2-501" in html and "13812345678" not in html
    assert f"/console/sites/{site['id']}/gate" in client.get("/console/sites").get_data(
        as_text=True
    )

    pdf = client.get(f"/console/sites/{site['id']}/passes.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Cache-Control"] == "no-store"

    path = f"/console/sites/{site['id']}/gate"
    wang = db.execute("SELECT id, pass_token FROM roster WHERE name = '王磊'").fetchone()
    done = client.post(
        f"/console/sites/{site['id']}/passes/reissue",
        data={"csrf_token": csrf(client, path), "person": wang["id"]},
    )
    assert done.status_code == 303
    assert tokens(db)["王磊"] != wang["pass_token"]
    everyone = client.post(
        f"/console/sites/{site['id']}/passes/reissue",
        data={"csrf_token": csrf(client, path), "all": "1"},  # not confirmed
    )
    assert everyone.status_code == 303
    assert "请勾选" in client.get(path).get_data(as_text=True)

    done = client.post(
        f"/console/sites/{site['id']}/self-service",
        data={"csrf_token": csrf(client, path), "self_service": "1"},
    )
    assert done.status_code == 303
    assert db.execute("SELECT self_service FROM sites").fetchone()[0] == 1
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log WHERE actor = 'admin'")]
    assert actions.count("pass_print") == 1 and "pass_reissue" in actions
    assert "site_change" in actions

    client.post("/console/logout", data={"csrf_token": csrf(client, path)})
    login(client, "guest")
    assert client.get(f"/console/sites/{site['id']}/passes.pdf").status_code == 403
    assert client.get(path).status_code == 200  # a viewer reads, and prints nothing


def test_an_entry_names_its_roster_person(app, client, db, site):
    enrol(client, db, site)
    person = db.execute("SELECT id FROM roster WHERE name = '张建国'").fetchone()[0]
    page = client.get(f"/s/{site['code']}?person={person}").get_data(as_text=True)
    assert f'name="roster_id" type="hidden" value="{person}"' in page
    response, uuid = submit(client, site, html=page, roster_id=person.upper())
    assert response.status_code == 303, response.get_data(as_text=True)
    stored = db.execute("SELECT roster_id, registration_uuid FROM entries").fetchone()
    assert tuple(stored) == (person, "")  # its one form, lower case
    bad, _uuid = submit(client, site, roster_id="not-a-uuid")
    assert bad.status_code == 400
    assert "编号无效。" in bad.get_data(as_text=True)


def test_an_entry_without_links_hashes_as_before_they_existed(app, db, site):
    """A record stored before the links existed and sent again now is a duplicate."""
    from fieldapp.gate import entries

    wire = wire_entry(site["id"])["data"]  # what the form sent before the links existed
    with app.test_request_context():
        clean = entries.validate(db, dict(wire))
        linked = entries.validate(db, {**wire, "roster_id": "0b0e6a52-3f5d-4d6c-9a59-2f1d6f4e0d11"})
    assert clean == wire  # no key the old form did not have
    when, rid = "2020-02-15T01:00:00.000Z", "0b0e6a52-3f5d-4d6c-9a59-2f1d6f4e0d12"
    assert sync.content_hash("entry", rid, when, None, clean) == sync.content_hash(
        "entry", rid, when, None, wire
    )
    assert linked["roster_id"] == "0b0e6a52-3f5d-4d6c-9a59-2f1d6f4e0d11"


def test_cli_speaks_chinese(runner, app, db, site, tmp_path):
    zh = {"FIELDAPP_LANG": "zh_CN.UTF-8"}
    out = tmp_path / "出入证.pdf"
    done = runner.invoke(args=["roster", "passes", site["code"], "--out", str(out)], env=zh)
    assert done.exit_code == 0, done.output
    assert done.output == f"{out}：阳光花园小区 的出入证 3 张。\n"
    assert sorted(card_codes(out.read_bytes(), tmp_path)) == sorted(
        passes.pass_text(t) for t in tokens(db).values()
    )
    old = tokens(db)["王磊"]
    done = runner.invoke(args=["roster", "reissue", site["code"], "--person", "王磊"], env=zh)
    assert done.exit_code == 0, done.output
    assert done.output.startswith("已为阳光花园小区补发 1 张出入证")
    assert tokens(db)["王磊"] != old  # the old card's code names nobody any more
    again = runner.invoke(args=["roster", "passes", site["code"], "--out", str(out)], env=zh)
    assert again.exit_code == 0, again.output
    codes = card_codes(out.read_bytes(), tmp_path)
    assert passes.pass_text(tokens(db)["王磊"]) in codes and passes.pass_text(old) not in codes
    unknown = runner.invoke(
        args=["roster", "passes", site["code"], "--out", str(out), "--person", "无名氏"], env=zh
    )
    assert unknown.exit_code != 0 and "本场所名册中没有叫无名氏的人" in unknown.output
    neither = runner.invoke(args=["roster", "reissue", site["code"]], env=zh)
    assert (
        neither.exit_code != 0 and "请用 --person 指定人员，或用 --all 表示全部" in neither.output
    )


def test_self_service_saved_twice_is_one_change(app, client, db, site):
    """A double click on 保存 (or a retry) with the value already set writes no configuration
    version and no audit line more; the page says what it says after a save."""
    make_user(app, "admin", "admin")
    login(client, "admin")
    path = f"/console/sites/{site['id']}/gate"
    url = f"/console/sites/{site['id']}/self-service"
    version = sync_config.current_version(db)
    for _ in range(2):
        done = client.post(url, data={"csrf_token": csrf(client, path), "self_service": "1"})
        assert done.status_code == 303
        assert "已设为无人值守（自助）" in client.get(path).get_data(as_text=True)
    assert db.execute("SELECT self_service FROM sites").fetchone()[0] == 1
    assert sync_config.current_version(db) == version + 1
    audit = db.execute("SELECT detail FROM audit_log WHERE action = 'site_change'").fetchall()
    assert [r[0] for r in audit] == ["self_service=1"]


def test_a_reissue_sent_twice_reissues_once(app, client, db, site):
    """A double click on 补发 (or a retry after a lost answer) sends the form twice: the pass is
    reissued once, so a card printed after the first click still opens the gate, and the second
    answer says it was reissued already. The same for every pass of the site."""
    make_user(app, "admin", "admin")
    login(client, "admin")
    path = f"/console/sites/{site['id']}/gate"
    url = f"/console/sites/{site['id']}/passes/reissue"
    wang = db.execute("SELECT id, pass_token FROM roster WHERE name = '王磊'").fetchone()

    def form_of(marker):
        html = client.get(path).get_data(as_text=True)
        forms = re.findall(r"<form .*?</form>", html, re.S)
        (form,) = [f for f in forms if marker in f and 'name="uuid"' in f]
        return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))

    fields = form_of(f'value="{wang["id"]}"')
    assert fields["person"] == wang["id"]
    assert client.post(url, data=fields).status_code == 303
    assert f"已为{site['name']}补发 1 张出入证" in client.get(path).get_data(as_text=True)
    printed = tokens(db)["王磊"]
    assert printed != wang["pass_token"]
    assert client.post(url, data=fields).status_code == 303
    assert "这些出入证已经补发过了" in client.get(path).get_data(as_text=True)
    assert tokens(db)["王磊"] == printed  # the card printed in between still works

    before = tokens(db)
    everyone = {**form_of('name="all"'), "confirm": "1"}
    assert client.post(url, data=everyone).status_code == 303
    after = tokens(db)
    assert all(after[name] != before[name] for name in before)
    assert client.post(url, data=everyone).status_code == 303
    assert "这些出入证已经补发过了" in client.get(path).get_data(as_text=True)
    assert tokens(db) == after
    audit = db.execute("SELECT detail FROM audit_log WHERE action = 'pass_reissue'").fetchall()
    assert [r[0].split()[0] for r in audit] == [wang["id"], "all"]
