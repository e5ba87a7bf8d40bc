"""Rosters: CSV import (all or nothing, every bad line reported), search as you type, filling the form."""

from __future__ import annotations

import pytest
from gate_helpers import EN, HX, enrol, make_site

from fieldapp.gate import roster
from sync import config as sync_config

GOOD = "name,phone,unit,person_type\n张建国,138 1234 5678,3-2-501,resident\n李秀英,13951234567,3-1-202,居民\n赵志强,,钢筋班组,worker\n"


@pytest.fixture
def site(db):
    return make_site(db)


@pytest.fixture(autouse=True)
def english(monkeypatch):
    monkeypatch.setenv("FIELDAPP_LANG", "en")


def write(tmp_path, text: str | bytes, name="roster.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def people(db):
    return [
        tuple(r)
        for r in db.execute("SELECT name, phone, unit, person_type FROM roster ORDER BY name")
    ]


def test_import_a_good_file_with_a_bom(runner, db, site, tmp_path):
    version = sync_config.current_version(db)
    result = runner.invoke(
        args=["roster", "import", site["code"], write(tmp_path, "\ufeff" + GOOD)]
    )
    assert result.exit_code == 0, result.output
    assert "3 added, 0 updated, 0 unchanged" in result.output
    assert sorted(people(db)) == sorted([
        ("张建国", "13812345678", "3-2-501", "resident"),
        ("李秀英", "13951234567", "3-1-202", "resident"),
        ("赵志强", "", "钢筋班组", "worker"),
    ])  # fmt: skip
    assert {r[0] for r in db.execute("SELECT version FROM roster")} == {version + 1}


def test_a_roster_kept_in_chinese_is_read_by_its_chinese_headers(runner, db, site, tmp_path):
    """The committee's spreadsheet, saved as CSV from Excel: its headers are in Chinese."""
    text = "姓名,手机号码,房号,人员类型\r\n张建国,138 1234 5678,3-2-501,居民\r\n赵志强,,钢筋班组,工人\r\n"
    result = runner.invoke(args=["roster", "import", site["code"], write(tmp_path, text)])
    assert result.exit_code == 0, result.output
    assert sorted(people(db)) == [
        ("张建国", "13812345678", "3-2-501", "resident"),
        ("赵志强", "", "钢筋班组", "worker"),
    ]


def test_a_header_naming_no_roster_column_says_both_ways_to_name_them(
    runner, db, site, tmp_path, monkeypatch
):
    monkeypatch.setenv("FIELDAPP_LANG", "zh_Hans")
    text = "名称,手机,单元\r\n张建国,13812345678,3-2-501\r\n"
    result = runner.invoke(args=["roster", "import", site["code"], write(tmp_path, text)])
    assert result.exit_code != 0
    assert "（或 姓名,手机,单元[,类型]）；缺少：name" in result.output
    assert people(db) == []


def test_import_without_person_type_uses_the_sites_kind(runner, db, tmp_path):
    site = make_site(db, "金坛区人民医院扩建工地", "construction")
    text = "name,phone,unit\r\n孙海波,15052345678,木工班组\r\n"
    assert (
        runner.invoke(args=["roster", "import", site["id"], write(tmp_path, text)]).exit_code == 0
    )
    assert people(db) == [("孙海波", "15052345678", "木工班组", "worker")]


def test_reimport_changes_only_what_changed(runner, db, site, tmp_path):
    runner.invoke(args=["roster", "import", site["code"], write(tmp_path, GOOD)])
    version = sync_config.current_version(db)
    same = runner.invoke(args=["roster", "import", site["code"], write(tmp_path, GOOD)])
    assert "0 added, 0 updated, 3 unchanged" in same.output
    assert sync_config.current_version(db) == version
    moved = GOOD.replace("3-2-501", "9-9-909")
    result = runner.invoke(args=["roster", "import", site["code"], write(tmp_path, moved)])
    assert "0 added, 1 updated, 2 unchanged" in result.output
    assert ("张建国", "13812345678", "9-9-909", "resident") in people(db)
    assert sync_config.current_version(db) == version + 1


def test_a_bad_file_reports_every_bad_line_and_imports_nothing(runner, db, site, tmp_path):
    text = (
        "name,phone,unit,person_type\n"
        "张建国,13812345678,3-2-501,resident\n"  # line 2: good
        ",13951234567,3-1-202,resident\n"  # line 3: no name
        "王磊,12345,5-1-1102,resident\n"  # line 4: bad phone
        "陈晓梅,18912345678,7-2-301,landlord\n"  # line 5: bad type
        "张建国,13812345678,3-2-502,resident\n"  # line 6: same person as line 2
        "周德才,18651234567\n"  # line 7: too few columns
    )
    result = runner.invoke(args=["roster", "import", site["code"], write(tmp_path, text)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "Nothing imported" in out
    assert "Line 3: the name is empty" in out
    assert "Line 4: 12345 is not an 11-digit mobile number" in out
    assert "Line 5: person type landlord is not one of" in out
    assert "Line 6: the same person as line 2" in out
    assert "Line 7: 2 columns, the header has 4." in out
    assert "Line 2" not in out
    assert people(db) == []
    assert sync_config.current_version(db) == 1  # only the site itself


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (GOOD.encode("gbk"), "not UTF-8"),
        (b"", "The file is empty."),
        ("姓名,电话\n张三,13812345678\n", "Line 1: the header must name the columns"),
        ("name,phone,unit\n", "header but nobody in it"),
        ("name,phone,unit\n张\x00三,13812345678,1-1\n", "NUL"),  # PostgreSQL cannot store it
    ],
)
def test_unreadable_files_are_refused(runner, db, site, tmp_path, content, message):
    result = runner.invoke(args=["roster", "import", site["code"], write(tmp_path, content)])
    assert result.exit_code == 1
    assert message in result.output
    assert people(db) == []


def test_import_into_an_unknown_site(runner, tmp_path):
    result = runner.invoke(args=["roster", "import", "nope", write(tmp_path, GOOD)])
    assert result.exit_code != 0 and "No site has the code nope." in result.output


def test_search_by_name_phone_or_unit(db, site):
    roster.import_rows(db, site["id"], roster.parse_csv(GOOD.encode()))
    names = lambda q: [r["name"] for r in roster.search(db, site, q)]  # noqa: E731
    assert names("张建") == ["张建国"]
    assert names("1395") == ["李秀英"]
    assert names("3-") == sorted(["张建国", "李秀英"])
    assert names("张") == []  # one character is not enough
    assert names("%%") == [] and names("__") == []  # wildcards mean themselves
    other = make_site(db, "别的小区")
    assert roster.search(db, other, "张建") == []


def test_where_the_gate_asks_no_phone_the_search_neither_finds_nor_shows_one(client, db, site):
    """As on the phone's own copy of the roster (passes.for_phone): minimum collection."""
    roster.import_rows(db, site["id"], roster.parse_csv(GOOD.encode()))
    db.execute("UPDATE sites SET optional_fields = 'destination' WHERE id = ?", (site["id"],))
    site = db.execute("SELECT * FROM sites WHERE id = ?", (site["id"],)).fetchone()
    assert roster.search(db, site, "1395") == []
    (found,) = roster.search(db, site, "李秀")
    assert found["name"] == "李秀英" and found["phone"] == ""
    gate = enrol(client, db, site)
    html = gate.get(f"/s/{site['code']}/roster?q=3-1", headers={**EN, **HX}).get_data(as_text=True)
    assert 'data-name="李秀英"' in html and 'data-phone=""' in html
    assert "1395" not in html and "****" not in html


def test_search_as_you_type_and_tapping_a_match(client, db, site):
    roster.import_rows(db, site["id"], roster.parse_csv(GOOD.encode()))
    gate = enrol(client, db, site)
    response = gate.get(f"/s/{site['code']}/roster?q=3-2", headers={**EN, **HX})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert html.lstrip().startswith('<ul id="roster-results"')
    assert 'data-name="张建国"' in html and 'data-phone="13812345678"' in html
    assert 'data-unit="3-2-501"' in html and 'data-person-type="resident"' in html
    assert "138****5678" in html  # shown masked; the full number only fills the form
    none = gate.get(f"/s/{site['code']}/roster?q=xyz", headers={**EN, **HX}).get_data(as_text=True)
    assert "Nobody on the roster matches" in none
    # Without JavaScript: the search redirects to the page, and a match's link fills the form.
    plain = gate.get(f"/s/{site['code']}/roster?q=3-2")
    assert plain.status_code == 302 and plain.headers["Location"].endswith("?q=3-2")
    page = gate.get(plain.headers["Location"]).get_data(as_text=True)
    person = db.execute("SELECT id FROM roster WHERE name = '张建国'").fetchone()[0]
    assert f"person={person}" in page
    filled = gate.get(f"/s/{site['code']}?person={person}").get_data(as_text=True)
    assert 'name="name" type="text" value="张建国"' in filled
    assert 'value="13812345678"' in filled and 'value="3-2-501"' in filled
    assert 'checked id="person_type-0" name="person_type" type="radio" value="resident"' in filled
