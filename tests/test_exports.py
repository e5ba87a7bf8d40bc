"""Exports: CSV (UTF-8 with BOM) and XLSX parsed back and compared with the database."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from console_support import csrf, login, make_site, make_user, save, wire_entry

from fieldapp import days, tables
from fieldapp import db as fdb
from fieldapp.console import exports

ID = "11010519491231002X"


@pytest.fixture
def world(app):
    a = make_site(app, "阳光花园小区", "金坛区")
    b = make_site(app, "丙小区", "溧阳市")
    ids = save(
        app,
        wire_entry(a["id"], name="张建国", phone="13812345678", id_number=ID),
        wire_entry(
            a["id"],
            name="=HYPERLINK(1)",
            phone="",
            direction="out",
            temperature=38.0,
            fever_action="clinic",
            travel=True,
            travel_where="武汉",
        ),
        wire_entry(b["id"], name="周德才", phone="18651234567"),
    )
    make_user(app, "coord", "coordinator", sites=[a["code"]])
    make_user(app, "viewer", "viewer")
    make_user(app, "root", "admin")
    return {"a": a, "b": b, "ids": ids}


def export(client, **form):
    token = csrf(client, "/console/login")
    return client.post("/console/export", data={"csrf_token": token, **form})


def parse_csv(response):
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def db_entries(db, site_id=None):
    sql = "SELECT * FROM entries" + (" WHERE site_id = ?" if site_id else "")
    return {r["uuid"]: r for r in db.execute(sql, (site_id,) if site_id else ())}


def test_csv_matches_the_database_and_is_scoped(app, world, db):
    client = app.test_client()
    login(client, "coord")
    r = export(client, format="csv")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"  # the charset once
    assert "attachment" in r.headers["Content-Disposition"]
    rows = parse_csv(r)
    header, body = rows[0], rows[1:]
    assert header[:5] == ["时间", "场所", "进出", "人员类别", "姓名"]
    expected = db_entries(db, world["a"]["id"])
    assert {row[-1] for row in body} == set(expected)  # only the coordinator's site
    by_uuid = {row[-1]: dict(zip(header, row, strict=True)) for row in body}
    first = by_uuid[world["ids"][0]]
    db_row = expected[world["ids"][0]]
    assert first["姓名"] == db_row["name"] == "张建国"
    assert first["手机号"] == "138****5678"  # masked by default
    assert first["身份证号"] == db_row["id_masked"] == "110105********002X"
    assert float(first["体温"]) == db_row["temperature"]
    assert first["场所"] == "阳光花园小区" and first["进出"] == "进" and first["健康码"] == "绿码"
    second = by_uuid[world["ids"][1]]
    assert second["姓名"] == "'=HYPERLINK(1)"  # never a formula in Excel
    assert second["到过风险地区"] and second["地点"] == "武汉"


def test_full_data_export_is_audited(app, world, db):
    client = app.test_client()
    login(client, "coord")
    rows = parse_csv(export(client, format="csv", full="1"))
    header = rows[0]
    first = next(dict(zip(header, r, strict=True)) for r in rows[1:] if r[-1] == world["ids"][0])
    assert first["手机号"] == "13812345678" and first["身份证号"] == ID
    row = db.execute("SELECT actor, detail FROM audit_log WHERE action = 'export'").fetchone()
    assert row["actor"] == "coord" and "full=1" in row["detail"]


def test_a_text_search_is_audited_without_what_was_searched_for(app, world, db):
    """An export narrowed to a phone number: the audit log, kept past the entries' retention,
    says a text search narrowed it, not whose number it was."""
    client = app.test_client()
    login(client, "coord")
    rows = parse_csv(export(client, format="csv", q="13812345678"))
    assert len(rows) > 1
    detail = db.execute("SELECT detail FROM audit_log WHERE action = 'export'").fetchone()[0]
    assert "q=…" in detail and "13812345678" not in detail


def test_viewer_export_stays_masked_even_when_asking_for_full(app, world, db):
    client = app.test_client()
    login(client, "viewer")
    rows = parse_csv(export(client, format="csv", full="1"))
    text = "\n".join(",".join(r) for r in rows)
    assert "13812345678" not in text and ID not in text and "张建国" not in text
    assert "张**" in text
    assert (
        "full=0" in db.execute("SELECT detail FROM audit_log WHERE action = 'export'").fetchone()[0]
    )


def test_export_follows_filters(app, world, db):
    client = app.test_client()
    login(client, "root")
    rows = parse_csv(export(client, format="csv", fever="1"))
    assert [r[-1] for r in rows[1:]] == [world["ids"][1]]


def test_export_shows_corrected_values(app, world, db):
    client = app.test_client()
    login(client, "root")
    uuid = world["ids"][0]
    token = csrf(client, "/console/login")
    client.post(f"/console/entry/{uuid}/void", data={"csrf_token": token, "reason": "重复登记"})
    rows = parse_csv(export(client, format="csv"))
    row = next(dict(zip(rows[0], r, strict=True)) for r in rows[1:] if r[-1] == uuid)
    assert row["已作废"] == "重复登记"


@pytest.mark.parametrize(("user", "full"), [("root", ""), ("root", "1"), ("viewer", "")])
def test_a_site_name_and_a_void_reason_never_run_as_formulas(app, world, db, user, full):
    """Every text cell is quoted, whichever way the rows are made (SQL for a coordinator's
    masked export, Python for a full one or a viewer's)."""
    site = make_site(app, "=cmd|' /C calc'!A0", "金坛区")
    (voided, other) = save(
        app, wire_entry(site["id"], name="李四"), wire_entry(site["id"], name="王五")
    )
    client = app.test_client()
    login(client, "root")
    token = csrf(client, "/console/login")
    client.post(f"/console/entry/{voided}/void", data={"csrf_token": token, "reason": "-1+1"})
    login(client, user)
    rows = parse_csv(export(client, format="csv", full=full))
    by_uuid = {r[-1]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert by_uuid[voided]["已作废"] == "'-1+1"
    assert by_uuid[voided]["场所"] == by_uuid[other]["场所"] == "'=cmd|' /C calc'!A0"
    # The workbook holds the text as entered, in string cells: never a formula, no '.
    header, *body = xlsx_cells(export(client, format="xlsx", full=full))
    cells = {row[-1].value: dict(zip([h.value for h in header], row, strict=True)) for row in body}
    assert cells[voided]["已作废"].value == "-1+1"
    for uuid in (voided, other):
        assert cells[uuid]["场所"].value == "=cmd|' /C calc'!A0"
        assert cells[uuid]["场所"].data_type == "s"


def digits_id() -> str:
    """A valid 18-digit ID number that is digits only (no X): what Excel would round."""
    from fieldapp import rules

    return next(n for d in "0123456789" if rules.valid_resident_id(n := "32048219800101123" + d))


@pytest.mark.parametrize(("user", "full"), [("root", ""), ("root", "1"), ("viewer", "")])
def test_digits_excel_would_change_open_as_text(app, world, db, user, full):
    """Excel and WPS open a CSV cell of 12+ digits as a number (18 digits keep 15: the ID
    number is lost) and drop a leading 0: such cells are led by a tab, so they open as text with
    every digit. A mobile number (11 digits), the masked ID and other text stay as they are;
    the database and the workbook hold the text as entered."""
    full_id = digits_id()
    (uuid,) = save(
        app,
        wire_entry(
            world["a"]["id"],
            phone="13912345678",
            id_number=full_id,
            destination="0501",
            note="123456789012",
            volunteer="12345678901",
        ),
    )
    client = app.test_client()
    login(client, user)
    rows = parse_csv(export(client, format="csv", full=full))
    by_uuid = {r[-1]: r for r in rows[1:]}  # 5 phone, 6 ID, 13 unit, 14 note, 15 on duty
    row = by_uuid[uuid]
    if full:
        assert row[6] == "\t" + full_id and row[6].strip() == full_id
        assert row[5] == "13912345678"  # 11 digits: Excel shows it whole
        assert by_uuid[world["ids"][0]][6] == ID  # ends in X: text already
    else:
        assert row[6] == "320482********" + full_id[-4:]
        assert row[5] == "139****5678"
    assert row[13] == "\t0501" and row[14] == "\t123456789012"
    assert row[15] == "12345678901"
    assert by_uuid[world["ids"][0]][13] == "3-2-501"
    stored = db.execute(
        "SELECT destination, note, id_masked FROM entries WHERE uuid = ?", (uuid,)
    ).fetchone()
    assert (stored["destination"], stored["note"]) == ("0501", "123456789012")
    assert stored["id_masked"] == "320482********" + full_id[-4:]
    header, *body = xlsx_cells(export(client, format="xlsx", full=full))
    cells = {r[-1].value: r for r in body}
    assert cells[uuid][13].value == "0501" and cells[uuid][14].value == "123456789012"
    if full:
        assert cells[uuid][6].value == full_id
        assert cells[uuid][6].data_type == "s"


@pytest.mark.parametrize(
    "text",
    ["0501", "123456789012", "12345678901", "0", "01", "1234567890123456789", "0x12", "-0123"],
)
def test_the_sql_and_python_csv_cells_lead_the_same_digits_with_a_tab(text):
    import sqlite3

    expected = (
        "\t" + text if text in ("0501", "123456789012", "01", "1234567890123456789") else text
    )
    expected = "'" + text if text == "-0123" else expected
    assert tables.csv_cell(text) == expected
    conn = sqlite3.connect(":memory:")
    (in_sql,) = conn.execute(
        f"SELECT {exports._quoted('v')} FROM (SELECT ? AS v)", (text,)
    ).fetchone()
    assert in_sql == expected


def xlsx_cells(response) -> list[list]:
    """The first sheet's cells, row by row (openpyxl: .value, .data_type, .number_format)."""
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    return [list(row) for row in book.worksheets[0].iter_rows()]


@pytest.mark.parametrize("full", ["", "1"])  # the rows made in SQL, and in Python
def test_xlsx_matches_the_database(app, world, db, full):
    client = app.test_client()
    login(client, "root")
    cells = xlsx_cells(export(client, format="xlsx", full=full))
    header, body = [c.value for c in cells[0]], cells[1:]
    assert header[0] == "时间"
    expected = db_entries(db)
    assert {row[-1].value for row in body} == set(expected)
    tz = days.zone("Asia/Shanghai")
    for row in body:
        record = dict(zip(header, row, strict=True))
        db_row = expected[row[-1].value]
        # The text as entered ("=HYPERLINK(1)" too), in a string cell: never a formula.
        assert record["姓名"].value == db_row["name"] and record["姓名"].data_type == "s"
        assert record["体温"].value == db_row["temperature"]
        if not full:
            assert (record["身份证号"].value or "") == db_row["id_masked"]
        # The time: a date-time cell (Excel sorts and filters it) in the gates' local time.
        when = record["时间"]
        assert when.is_date and when.number_format == "yyyy-mm-dd hh:mm:ss"
        local = days.local(db_row["recorded_at"], tz).replace(tzinfo=None, microsecond=0)
        assert when.value == local


def test_cli_export_with_progress_bar(app, runner, world, db, tmp_path):
    out = tmp_path / "all.csv"
    result = runner.invoke(args=["export", "-o", str(out), "--full"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert {r[-1] for r in rows[1:]} == set(db_entries(db))
    assert any(ID in r for r in rows)
    row = db.execute("SELECT actor, detail FROM audit_log WHERE action = 'export'").fetchone()
    assert row["actor"].startswith("cli:") and "full=1" in row["detail"]
    xlsx = tmp_path / "site.xlsx"
    result = runner.invoke(
        args=["export", "--format", "xlsx", "-o", str(xlsx), "--site", world["b"]["code"]]
    )
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(xlsx, read_only=True)
    values = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()  # read-only workbooks keep the file open until closed
    assert [r[-1] for r in values[1:]] == [world["ids"][2]]
    assert isinstance(values[1][0], datetime)
    # The command's CSV quotes a name that would start a formula; its XLSX holds it as entered.
    result = runner.invoke(args=["export", "--format", "xlsx", "-o", str(xlsx)])
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(xlsx, read_only=True)
    names = {r[-1]: r[4] for r in book.worksheets[0].iter_rows(min_row=2, values_only=True)}
    book.close()
    assert names[world["ids"][1]] == "=HYPERLINK(1)"
    assert [r[4] for r in rows[1:] if r[-1] == world["ids"][1]] == ["'=HYPERLINK(1)"]


def sheets(path_or_file) -> list[tuple[str, list[tuple]]]:
    """Each sheet's name and rows (header first), read back with openpyxl."""
    book = openpyxl.load_workbook(path_or_file, read_only=True)
    found = [(s.title, list(s.iter_rows(values_only=True))) for s in book.worksheets]
    book.close()
    return found


@pytest.mark.parametrize(("given", "per_sheet"), [(8, [3, 3, 2]), (6, [3, 3]), (3, [3])])
def test_a_workbook_longer_than_a_sheet_goes_on_in_the_next_sheet(
    app, monkeypatch, given, per_sheet
):
    """XlsxWriter drops rows past Excel's last without a word: they go on in another sheet with
    the same header, named as the export's continuation, and every row is there once, in
    order. (A sheet of 4 rows, header included, stands for Excel's 1,048,576.)"""
    monkeypatch.setattr(exports, "SHEET_ROWS", 4)
    given_rows = [
        [f"2020-02-15 08:00:{i:02d}", "丙小区", "进", "居民", f"人{i}", *[""] * 13, f"u{i}"]
        for i in range(given)
    ]
    buf = io.BytesIO()
    with app.test_request_context():
        n = exports.write_xlsx([given_rows[:5], given_rows[5:]], buf)
        header = tuple(exports.headers())
    assert n == given
    found = sheets(buf)
    assert [name for name, _ in found] == [
        "登记记录",
        "登记记录（续，第2表）",
        "登记记录（续，第3表）",
    ][: len(per_sheet)]
    assert [len(rows) - 1 for _, rows in found] == per_sheet
    assert all(rows[0] == header for _, rows in found)
    written = [row for _, rows in found for row in rows[1:]]
    assert [r[-1] for r in written] == [f"u{i}" for i in range(given)]  # each once, in order
    assert written[-1][0] == datetime(2020, 2, 15, 8, 0, given - 1)


def test_cli_xlsx_export_says_the_rows_the_file_holds(
    app, runner, world, db, tmp_path, monkeypatch
):
    monkeypatch.setattr(exports, "SHEET_ROWS", 3)  # 2 entries a sheet: 3 entries take 2 sheets
    out = tmp_path / "all.xlsx"
    result = runner.invoke(args=["export", "--format", "xlsx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    found = sheets(out)
    assert [len(rows) - 1 for _, rows in found] == [2, 1]
    uuids = [row[-1] for _, rows in found for row in rows[1:]]
    assert sorted(uuids) == sorted(db_entries(db)) and len(uuids) == 3
    assert f"已将 3 条登记写入 {out}" in result.output  # what the file holds
    detail = db.execute("SELECT detail FROM audit_log WHERE action = 'export'").fetchone()[0]
    assert "rows=3" in detail


def test_cli_export_refuses_bad_arguments(runner, world, tmp_path):
    out = tmp_path / "x.csv"
    result = runner.invoke(args=["export", "-o", str(out), "--site", "nope"])
    assert result.exit_code != 0 and "nope" in result.output
    result = runner.invoke(args=["export", "-o", str(out), "--from", "yesterday"])
    assert result.exit_code != 0
    assert not out.exists()


def test_sql_formatted_rows_equal_the_python_ones(app, world, db):
    """The fast path (formatted in SQLite) gives exactly what row_maker gives, corrections too."""
    from fieldapp import records
    from fieldapp.console import corrections, exports, logbook

    site = world["a"]["id"]
    day = (datetime.now(UTC) - timedelta(days=2)).date()
    save(
        app,
        wire_entry(
            site,
            name="-1+2",
            note="@note",
            volunteer="+志愿者",
            destination="=A1",
            person_type="delivery",
            health_code="none",
            plate="苏D12345",
            recorded_at=f"{day}T16:30:05.000Z",
        ),
        wire_entry(
            site,
            name="赵六",
            phone="",
            direction="out",
            temperature=37.3,
            fever_action="remeasured",
            travel=True,
            travel_where="\t武汉",
        ),
    )
    fix = corrections.wire(world["ids"][0], "coord", "改名", {"name": "张建华", "phone": ""})
    with app.test_request_context():
        assert records.save(db, [fix], source="test")[0].status == "applied"
        tz = days.zone("Asia/Shanghai")
        filters, _ = logbook.parse_filters({}, None)
        fast = [tuple(r) for part in exports.rows(db, filters, None, tz, "admin") for r in part]
        make = exports.row_maker(tz, "admin", False, None, logbook.site_names(db))
        slow = [tuple(make(e)) for part in logbook.iterate(db, filters, None, tz) for e in part]
    assert fast == slow
    assert len(fast) == 5
    by_uuid = {r[-1]: r for r in fast}
    assert by_uuid[world["ids"][0]][4] == "张建华" and by_uuid[world["ids"][0]][16] == "是"
    assert any(r[0] == f"{day + timedelta(days=1)} 00:30:05" and r[4] == "'-1+2" for r in fast)
    # For a workbook (guard=False) both give the text as entered.
    with app.test_request_context():
        fast = [
            tuple(r) for p in exports.rows(db, filters, None, tz, "admin", guard=False) for r in p
        ]
        make = exports.row_maker(tz, "admin", False, None, logbook.site_names(db), guard=False)
        slow = [tuple(make(e)) for part in logbook.iterate(db, filters, None, tz) for e in part]
    assert fast == slow
    raw = next(r for r in fast if r[0] == f"{day + timedelta(days=1)} 00:30:05")
    assert (raw[4], raw[11], raw[13], raw[14], raw[15]) == ("-1+2", "", "=A1", "@note", "+志愿者")


def test_rows_are_read_in_parts_never_all_at_once(world, db):
    # Exports read the log through db.stream: on PostgreSQL a server-side cursor, since a
    # client-side one receives every row before handing out the first.
    sql = "SELECT uuid, name FROM entries ORDER BY uuid"
    whole = [tuple(r) for r in db.execute(sql)]
    parts = []
    for part in fdb.stream(db, sql, size=2):
        parts.append(part)
        if fdb.dialect(db) == "postgresql":  # the rows still to come wait on the server
            assert db.execute("SELECT count(*) FROM pg_cursors").fetchone()[0] == 1
    assert [len(p) for p in parts] == [2, 1]
    assert [tuple(r) for p in parts for r in p] == whole
    assert not db.in_transaction  # its own read transaction ended with the last row

    reader = fdb.stream(db, sql, size=1)
    assert [tuple(r) for r in next(reader)] == whole[:1]
    reader.close()  # a reader that stops early (a download cut short) ends it too
    assert not db.in_transaction


@pytest.mark.parametrize(
    "text", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "张三", "1-2", ""]
)
def test_the_log_export_and_the_console_tables_quote_the_same_cells(text):
    """One rule for a cell a spreadsheet would run as a formula: the console tables' (Python)
    and the log export's (SQL, so the export streams) quote the same texts."""
    import sqlite3

    from fieldapp.console import exports
    from fieldapp.tables import safe_cell

    expected = "'" + text if text[:1] in "=+-@\t\r" and text else text
    assert safe_cell(text) == expected
    conn = sqlite3.connect(":memory:")
    (in_sql,) = conn.execute(
        f"SELECT {exports._quoted('v')} FROM (SELECT ? AS v)", (text,)
    ).fetchone()
    assert in_sql == expected


def test_fever_and_travel_exports_follow_the_corrections(app, runner, db, tmp_path):
    """The fever-only and travel-only exports, web (each path: SQL-formatted, viewer, full)
    and `fieldapp export --fever/--travel`, hold the entries whose current value is one: the
    fever cases, not a voided duplicate nor a reading corrected below 37.3 °C."""
    from console_support import hours_of, save_corrected_day

    from fieldapp.console import cases

    site = make_site(app, "改正小区", "金坛区")
    day = days.today("Asia/Shanghai") - timedelta(days=2)
    start, end = days.bounds(day, "Asia/Shanghai")
    at = hours_of(day)
    expected = save_corrected_day(app, site["id"], at)
    make_user(app, "root", "admin")
    make_user(app, "viewer", "viewer")
    fever_cases = cases.listing(db, None, datetime.now(UTC), "all", since=start, until=end)
    assert sorted(c["entry"]["name"] for c in fever_cases) == sorted(expected["fever_names"])
    uuids = {c["entry"]["name"]: c["entry"]["uuid"] for c in fever_cases}

    def web(user, **form):
        client = app.test_client()
        login(client, user)
        return parse_csv(export(client, format="csv", site=site["id"], **form))

    for user, full in (("root", ""), ("root", "1"), ("viewer", "")):
        rows = web(user, fever="1", full=full)
        assert [r[-1] for r in rows[1:]] == [uuids[n] for n in expected["fever_names"]], user
        rows = web(user, travel="1", full=full)
        assert [r[rows[0].index("到过风险地区")] for r in rows[1:]] == ["是"], user
        assert len(rows) == 1 + len(expected["travel_names"])
    for flag, names in (
        ("--fever", expected["fever_names"]),
        ("--travel", expected["travel_names"]),
    ):
        out = tmp_path / f"{flag[2:]}.csv"
        result = runner.invoke(args=["export", "-o", str(out), flag, "--site", site["code"]])
        assert result.exit_code == 0, result.output
        rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
        assert [r[rows[0].index("姓名")] for r in rows[1:]] == names, flag


def test_the_hour_the_clocks_show_twice_keeps_its_two_readings_apart(app, tmp_path):
    """New York, 1 November 2026: at 06:00 UTC the clocks go back from 02:00 EDT to 01:00
    EST, so 01:30 happens twice. The CSV's and the XLSX's time say which 01:30 it was; every
    other time reads as before, without an offset."""
    tz = days.zone("America/New_York")
    local = exports.local_times(tz)
    stored = ["2026-11-01T05:30:15.000Z", "2026-11-01T06:30:15.000Z", "2026-11-01T07:30:15.000Z"]
    assert [local(ts) for ts in stored] == [
        "2026-11-01 01:30:15-04:00",
        "2026-11-01 01:30:15-05:00",
        "2026-11-01 02:30:15",
    ]
    assert local("2026-07-01T12:00:00.000Z") == "2026-07-01 08:00:00"
    path = tmp_path / "entries.xlsx"
    rows = [[local(ts), "阳光花园小区"] for ts in stored]
    with app.test_request_context():
        assert exports.write_xlsx([rows], str(path)) == 3
    sheet = openpyxl.load_workbook(path).worksheets[0]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    # Date-time cells still (they sort and filter), the offset in the cell's format.
    assert [c.value for c in cells] == [
        datetime(2026, 11, 1, 1, 30, 15),
        datetime(2026, 11, 1, 1, 30, 15),
        datetime(2026, 11, 1, 2, 30, 15),
    ]
    assert all(c.is_date for c in cells)
    assert [c.number_format for c in cells] == [
        'yyyy-mm-dd hh:mm:ss "-04:00"',
        'yyyy-mm-dd hh:mm:ss "-05:00"',
        "yyyy-mm-dd hh:mm:ss",
    ]
