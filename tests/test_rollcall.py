"""Roll-call: reported / zero / late / missing across a district whose sites report to two
downstream instances, after their records are pushed up through the sync protocol."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from console_support import corrected_day
from instances_support import make_instance, sync_up
from reports_support import TZ, added_on, entry, local

import sync
from fieldapp import days, records
from fieldapp.console import cases, corrections
from fieldapp.db import connect, transaction
from fieldapp.gate import sites
from fieldapp.reports import daily as reports
from fieldapp.reports import rollcall
from sync.store import iso

CUTOFF = "20:00"


def store(app, recs):
    conn = connect(app.config["DATABASE"])
    try:
        with app.test_request_context():
            results = records.save(conn, recs, source="gate")
    finally:
        conn.close()
    assert {r.status for r in results} == {"applied"}, results


def report_at(app, site_id, day, at, **extra):
    """The gate's report of that day, counts from the instance's own entries."""
    conn = connect(app.config["DATABASE"])
    try:
        with app.test_request_context():
            data = reports.draft(conn, site_id, day, TZ)
            data.update(extra)
            result = reports.submit(conn, data, recorded_at=at)
    finally:
        conn.close()
    assert result.status == "applied", result
    return result.uuid


@pytest.fixture
def world(tmp_path):
    """A city instance with six sites, two district offices that pulled its configuration."""
    central = make_instance(tmp_path, "city")
    conn = connect(central.config["DATABASE"])
    made = {}
    with central.app_context():
        for key, name, district in [
            ("s1", "阳光花园小区", "金坛区"),
            ("s2", "幸福里小区", "金坛区"),
            ("s3", "城东工地", "金坛区"),
            ("s4", "南门小区", "金坛区"),
            ("s5", "河西小区", "溧阳市"),
            ("s6", "停用小区", "金坛区"),
        ]:
            made[key] = dict(sites.add_site(conn, name, "residential", district=district))
        added_on(conn, days.today(TZ) - timedelta(days=30))  # the days the tests look at had them
        with transaction(conn):
            conn.execute("UPDATE sites SET active = 0 WHERE id = ?", (made["s6"]["id"],))
        tokens = {}
        with transaction(conn):
            for name in ("office-a", "office-b"):
                _peer, tokens[name] = sync.peers.create(conn, "instance", name)
    conn.close()
    downs = {}
    for name in ("office-a", "office-b"):
        downs[name] = make_instance(tmp_path, name)
        sync_up(downs[name], central, tokens[name])  # nothing to push yet: pulls the sites
    return central, downs, tokens, made


def test_rollcall_states_across_two_instances_after_sync(world):
    central, downs, tokens, s = world
    a, b = downs["office-a"], downs["office-b"]
    day = days.today(TZ) - timedelta(days=2)
    # Office A keeps the gates of s1 (busy) and s2 (nobody came); office B those of s3 and s4.
    store(
        a,
        [
            entry(s["s1"]["id"], local(day, 8)),
            entry(s["s1"]["id"], local(day, 9), direction="out"),
            entry(s["s1"]["id"], local(day, 10), person_type="visitor", plate="苏D12345"),
            entry(s["s1"]["id"], local(day, 11), temperature=37.9, fever_action="clinic"),
        ],
    )
    report_at(a, s["s1"]["id"], day, local(day, 18), remarks="一切正常")
    report_at(a, s["s2"]["id"], day, local(day, 17))
    report_at(b, s["s3"]["id"], day, local(day + timedelta(days=1), 9))  # next morning: late
    # s4 never reports. s5 (another district) reports at the city itself.
    report_at(central, s["s5"]["id"], day, local(day, 12))

    # Before sync the city sees only its own report.
    conn = connect(central.config["DATABASE"])
    before = rollcall.build(conn, day, tz_name=TZ, cutoff=CUTOFF, district="金坛区")
    assert {r.state for r in before.rows} == {"missing"}

    for name, down in downs.items():
        sync_up(down, central, tokens[name])
    rc = rollcall.build(conn, day, tz_name=TZ, cutoff=CUTOFF, district="金坛区")
    states = {r.name: r.state for r in rc.rows}
    assert states == {
        "阳光花园小区": "reported",
        "幸福里小区": "zero",
        "城东工地": "late",
        "南门小区": "missing",
    }
    busy = next(r for r in rc.rows if r.site_id == s["s1"]["id"])
    assert busy.figures["in"] == 3 and busy.figures["out"] == 1 and busy.figures["fevers"] == 1
    assert busy.figures["visitors"] == 1 and busy.figures["vehicles"] == 1
    assert busy.submitted_at == "18:00" and busy.remarks == "一切正常"
    late = next(r for r in rc.rows if r.state == "late")
    assert late.submitted_at == f"{(day + timedelta(days=1)).isoformat()} 09:00"
    # The report's counts equal the entries that synced up with it.
    assert reports.compute_counts(conn, s["s1"]["id"], day, TZ) == {
        k: reports.current_report(conn, s["s1"]["id"], day).counts[k] for k in reports.COUNT_KEYS
    }
    assert rc.total.sites == 4  # the inactive site is not called
    assert rc.total.states == {"reported": 1, "zero": 1, "late": 1, "missing": 1}
    assert rc.total.reported == 3 and rc.total.figures["in"] == 3

    city = rollcall.build(conn, day, tz_name=TZ, cutoff=CUTOFF)
    assert [t.name for t in city.districts] == ["溧阳市", "金坛区"]
    assert city.districts[0].states["zero"] == 1 and city.total.sites == 5

    # Pushing again changes nothing: the union is idempotent.
    for name, down in downs.items():
        sync_up(down, central, tokens[name])
    again = rollcall.build(conn, day, tz_name=TZ, cutoff=CUTOFF, district="金坛区")
    assert [(r.name, r.state) for r in again.rows] == [(r.name, r.state) for r in rc.rows]
    assert conn.execute("SELECT count(*) FROM daily_reports").fetchone()[0] == 4
    conn.close()


def test_a_zero_report_is_in_doubt_where_the_day_has_entries(world):
    """Office A reports zero for s2; office B (another gate of the site) registered two people
    that day, one with a fever. The city's roll-call still says zero report, and says what
    contradicts it, on the page and in the exports; a zero report nothing contradicts says
    nothing more."""
    central, downs, tokens, s = world
    a, b = downs["office-a"], downs["office-b"]
    day = days.today(TZ) - timedelta(days=1)
    report_at(a, s["s2"]["id"], day, local(day, 17))
    store(
        b,
        [
            entry(s["s2"]["id"], local(day, 18)),
            entry(s["s2"]["id"], local(day, 19), temperature=38.2, fever_action="clinic"),
        ],
    )
    report_at(b, s["s3"]["id"], day, local(day, 17))  # a true zero: nobody at s3
    for name, down in downs.items():
        sync_up(down, central, tokens[name])
    conn = connect(central.config["DATABASE"])
    try:
        rc = rollcall.build(conn, day, tz_name=TZ, cutoff=CUTOFF, district="金坛区")
    finally:
        conn.close()
    doubted = next(r for r in rc.rows if r.site_id == s["s2"]["id"])
    true_zero = next(r for r in rc.rows if r.site_id == s["s3"]["id"])
    assert (doubted.state, doubted.registered) == ("zero", (2, 1))
    assert (true_zero.state, true_zero.registered) == ("zero", (0, 0))
    with central.test_request_context(headers={"Accept-Language": "zh-CN"}):
        lines = str(rollcall.html_lines(rc, [])["金坛区"])
        table = rollcall.table(rc)
    doubt = "但当天已有 2 条登记（其中发热 1 人）"
    assert lines.count(doubt) == 1
    assert [line[3] for line in table if line[1] == "幸福里小区"] == [f"是, {doubt}"]
    assert [line[3] for line in table if line[1] == "城东工地"] == ["是"]


def test_a_correction_on_another_instance_supersedes_and_is_not_late_again(world):
    central, downs, tokens, s = world
    a = downs["office-a"]
    day = days.today(TZ) - timedelta(days=2)
    first = report_at(a, s["s1"]["id"], day, local(day, 10))
    sync_up(a, central, tokens["office-a"])
    # The coordinator at the city corrects it after the cut-off: a new report, nothing edited.
    store(central, [entry(s["s1"]["id"], local(day, 9))])
    second = report_at(central, s["s1"]["id"], day, local(day, 21), remarks="补登")
    conn = connect(central.config["DATABASE"])
    rc = rollcall.build(conn, day, tz_name=TZ, cutoff=CUTOFF, district="金坛区")
    row = next(r for r in rc.rows if r.site_id == s["s1"]["id"])
    assert row.state == "reported" and row.figures["in"] == 1 and row.remarks == "补登"
    assert row.submitted_at == "10:00"  # on time: the first submission counts
    got = {r[0]: r[1] for r in conn.execute("SELECT uuid, supersedes FROM daily_reports")}
    assert got == {first: "", second: first}
    conn.close()


def test_exports_csv_with_bom_and_xlsx(world):
    import openpyxl

    central, downs, tokens, s = world
    day = days.today(TZ) - timedelta(days=1)
    report_at(central, s["s2"]["id"], day, local(day, 8), remarks="=HYPERLINK(1)")
    conn = connect(central.config["DATABASE"])
    with central.test_request_context():
        rc = rollcall.build(conn, day, tz_name=TZ, cutoff=CUTOFF, district="金坛区")
        body = rollcall.to_csv(rc)
        xlsx = rollcall.to_xlsx(rc)
    conn.close()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["区", "场所", "状态"]
    by_site = {r[1]: r for r in rows[1:5]}
    assert by_site["幸福里小区"][2] == "零报告" and by_site["南门小区"][2] == "未报"
    assert by_site["幸福里小区"][-1] == "'=HYPERLINK(1)"  # no formula injection
    assert rows[-1][0] == "合计" and "4 个场所中已报告 1 个" in rows[-1][1]
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[1][:3] == ["区", "场所", "状态"]
    assert any(v[1] == "幸福里小区" and v[2] == "零报告" for v in values[2:])
    # In the workbook the text is a string cell, as entered: no ' (never run as a formula).
    assert any(v[1] == "幸福里小区" and v[-1] == "=HYPERLINK(1)" for v in values[2:])
    assert values[-1][0] == "合计"


# ---- the console pages ----------------------------------------------------------------------


@pytest.fixture
def console(world):
    from console_support import login, make_user

    central, downs, tokens, s = world
    make_user(central, "jintan", "coordinator", districts=["金坛区"])
    client = central.test_client()
    assert login(client, "jintan").status_code in (302, 303)
    return central, client, s


def test_console_rollcall_needs_login_and_shows_only_the_scope(world, console):
    central, client, s = console
    anonymous = central.test_client().get("/console/rollcall")
    assert anonymous.status_code in (302, 303) and "/console/login" in anonymous.headers["Location"]
    day = days.today(TZ) - timedelta(days=1)
    report_at(central, s["s2"]["id"], day, local(day, 8))
    report_at(central, s["s5"]["id"], day, local(day, 8))
    page = client.get(f"/console/rollcall?day={day.isoformat()}")
    assert page.status_code == 200
    assert "幸福里小区" in page.text and "零报告" in page.text and "未报" in page.text
    assert "河西小区" not in page.text  # another district: not this coordinator's
    assert "4 个场所中已报告 1 个" in page.text
    # The day and district to show: a form htmx sends for the table alone.
    assert 'hx-target="#rollcall"' in page.text and f'value="{day.isoformat()}"' in page.text
    assert '<option value="金坛区"' in page.text and '<option value="溧阳市"' not in page.text
    frag = client.get(f"/console/rollcall?day={day.isoformat()}", headers={"HX-Request": "true"})
    assert "<html" not in frag.text and 'id="rollcall"' in frag.text
    assert "HX-Request" in frag.headers["Vary"]
    printed = client.get(f"/console/rollcall?day={day.isoformat()}&print=1")
    assert "print-view" in printed.text and "幸福里小区" in printed.text
    bad = client.get("/console/rollcall?day=2026-02-30")
    assert bad.status_code == 400 and "2020-02-15" in bad.text
    # A day to come: no site could have reported, so none is listed as missing.
    later = (days.today(TZ) + timedelta(days=1)).isoformat()
    ahead = client.get(f"/console/rollcall?day={later}")
    assert ahead.status_code == 400 and f"{later} 还没有到" in ahead.text
    assert "个场所中已报告" not in ahead.text  # no table of sites all "missing"
    assert client.get(f"/console/rollcall.csv?day={later}").status_code == 400
    central.config["REPORT_CUTOFF"] = "8pm"
    wrong = client.get("/console/rollcall")
    assert wrong.status_code == 400 and "REPORT_CUTOFF" in wrong.text and "8pm" in wrong.text


def test_console_exports_are_scoped_and_audited(world, console):
    central, client, s = console
    day = days.today(TZ)
    r = client.get(f"/console/rollcall.csv?day={day.isoformat()}")
    assert r.status_code == 200 and r.data.startswith(b"\xef\xbb\xbf")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"  # the charset once
    assert "attachment" in r.headers["Content-Disposition"]
    text = r.data.decode("utf-8-sig")
    assert "南门小区" in text and "河西小区" not in text
    assert r.headers["Cache-Control"] == "no-store"
    # A district in the file's name: the header stays Latin-1, as a server must send it (waitress
    # answered 500), and the browser saves it under its own name.
    by_district = client.get(f"/console/rollcall.csv?day={day.isoformat()}&district=金坛区")
    header = by_district.headers["Content-Disposition"]
    header.encode("latin-1")
    assert f"filename*=UTF-8''{quote(f'rollcall-{day.isoformat()}-金坛区.csv')}" in header
    # Behind the README's proxy the audit names the coordinator's address, not the proxy's.
    central.config["TRUSTED_PROXIES"] = 1
    x = client.get(
        f"/console/rollcall.xlsx?day={day.isoformat()}",
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    assert x.status_code == 200 and x.data[:2] == b"PK"
    conn = connect(central.config["DATABASE"])
    audited = conn.execute(
        "SELECT actor, target, ip FROM audit_log WHERE action = 'export' ORDER BY id"
    ).fetchall()
    conn.close()
    assert [tuple(a)[:2] for a in audited] == [
        ("jintan", "rollcall.csv"),
        ("jintan", "rollcall.csv"),
        ("jintan", "rollcall.xlsx"),
    ]
    assert audited[2]["ip"] == "203.0.113.7"


def test_cli_report_daily_csv_matches_the_console(world):
    central, downs, tokens, s = world
    day = days.today(TZ) - timedelta(days=1)
    report_at(central, s["s1"]["id"], day, local(day, 21))
    runner = central.test_cli_runner()
    r = runner.invoke(
        args=[
            "report",
            "daily",
            "--date",
            day.isoformat(),
            "--district",
            "金坛区",
            "--format",
            "csv",
        ],
        env={"LANG": "zh_CN.UTF-8"},
    )
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(r.output)))
    assert {row[1]: row[2] for row in rows[1:5]} == {
        "阳光花园小区": "迟报",
        "幸福里小区": "未报",
        "城东工地": "未报",
        "南门小区": "未报",
    }
    assert json.dumps(rows)  # plain strings all the way


# ---- the submission time of 5,000 sites, read with the zone looked up once ----------------


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        ("Asia/Shanghai", date(2026, 12, 5)),
        ("Asia/Kolkata", date(2026, 12, 5)),  # +05:30
        ("America/New_York", date(2026, 3, 8)),  # 23 hours: clocks go forward
        ("America/New_York", date(2026, 11, 1)),  # 25 hours: clocks go back
        ("Australia/Lord_Howe", date(2026, 10, 4)),  # half an hour forward
    ],
)
def test_submission_time_reads_as_one_by_one_conversion_would(tz, day):
    """The roll-call's 'submitted at' (HH:MM on the day, the date too on another) is what a
    conversion of each timestamp gives, every 7 minutes and 13 seconds from the day before to
    the day after, DST changes included."""
    read = days.clock(day, tz)
    at = datetime.combine(day - timedelta(days=1), time(0), tzinfo=UTC)
    while at < datetime.combine(day + timedelta(days=2), time(0), tzinfo=UTC):
        stored = iso(at)
        local_at = days.local(stored, tz)
        want = (
            local_at.strftime("%H:%M")
            if local_at.date() == day
            else local_at.strftime("%Y-%m-%d %H:%M")
        )
        assert read(stored) == want, stored
        at += timedelta(minutes=7, seconds=13)


# ---- the console's table, line by line, on either engine -------------------------------------


class _Table(HTMLParser):
    """The roll-call table's lines as a reader sees them: (the tr's attributes, cell texts)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[dict, list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append((dict(attrs), []))
        elif tag in ("td", "th") and self.rows:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_console_table_shows_each_site_line_and_totals(app, db):
    """Every site's line as the coordinator reads it (state, time, figures, remarks, all
    escaped), districts' totals, on SQLite and on PostgreSQL."""
    from console_support import login, make_site, make_user

    day = days.today(TZ) - timedelta(days=2)
    s = {
        key: make_site(app, name, district)
        for key, name, district in [
            ("busy", "阳光<花园>&小区", "金坛区"),
            ("zero", "幸福里小区", "金坛区"),
            ("late", "城东工地", "金坛区"),
            ("missing", "南门小区", "金坛区"),
            ("fixed", "河西小区", "溧阳市"),
        ]
    }
    added_on(db, day)
    with app.test_request_context():
        records.save(
            db,
            [
                entry(s["busy"]["id"], local(day, 8)),
                entry(s["busy"]["id"], local(day, 9), direction="out"),
                entry(s["busy"]["id"], local(day, 10), person_type="visitor", plate="苏D12345"),
                entry(s["busy"]["id"], local(day, 11), temperature=37.9, fever_action="clinic"),
                entry(s["fixed"]["id"], local(day, 9)),
            ],
            source="gate",
        )

        def report(key, at, **extra):
            data = reports.draft(db, s[key]["id"], day, TZ)
            data.update(extra)
            assert reports.submit(db, data, recorded_at=at).status == "applied"

        report("busy", local(day, 18, 5), remarks="<script>alert(1)</script> 一切正常")
        report("zero", local(day, 17))
        report("late", local(day + timedelta(days=1), 9, 30))  # next morning, nobody came
        report("fixed", local(day, 7), zero=False, remarks="先报")
        # A correction after the entry came in: its figures count, the first time stays.
        records.save(db, [entry(s["fixed"]["id"], local(day, 19))], source="gate")
        report("fixed", local(day, 21), remarks="补登")
    make_user(app, "boss", "admin")
    client = app.test_client()
    assert login(client, "boss").status_code in (302, 303)
    page = client.get(f"/console/rollcall?day={day.isoformat()}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "&lt;花园&gt;&amp;" in page.text
    table = _Table()
    table.feed(page.text)
    lines = {attrs["data-site"]: cells for attrs, cells in table.rows if "data-site" in attrs}
    by_key = {key: lines[site["id"]] for key, site in s.items()}
    # Site, state, submitted at, in, out, visitors, fevers, travel, red, yellow, vehicles, remarks
    assert by_key == {
        "busy": ["阳光<花园>&小区", "已报", "18:05", "3", "1", "1", "1", "0", "0", "0", "1"]
        + ["<script>alert(1)</script> 一切正常"],
        "zero": ["幸福里小区", "零报告", "17:00", *["0"] * 8, ""],
        "late": [
            "城东工地",
            "迟报 （零报告）",
            f"{(day + timedelta(days=1)).isoformat()} 09:30",
            *["0"] * 8,
            "",
        ],
        "missing": ["南门小区", "未报", "", *[""] * 8, ""],
        "fixed": ["河西小区", "已报", "07:00", "2", *["0"] * 7, "补登"],
    }
    states = {
        attrs["data-site"]: attrs["class"] for attrs, _cells in table.rows if "data-site" in attrs
    }
    assert {key: states[site["id"]] for key, site in s.items()} == {
        "busy": "state-reported",
        "zero": "state-zero",
        "late": "state-late",
        "missing": "state-missing",
        "fixed": "state-reported",
    }
    # District by district: its heading, its sites' lines, its total; then the scope's.
    order = [
        cells[0]
        if "data-site" in attrs or "total-row" in attrs.get("class", "")
        else f"# {cells[0]}"
        for attrs, cells in table.rows[1:]
    ]
    assert order == [
        "# 溧阳市",
        "河西小区",
        "合计 溧阳市",
        "# 金坛区",
        "南门小区",  # by name
        "城东工地",
        "幸福里小区",
        "阳光<花园>&小区",
        "合计 金坛区",
        "合计",
    ]
    totals = {
        cells[0]: cells[1:] for attrs, cells in table.rows if "total-row" in attrs.get("class", "")
    }
    assert totals == {
        "合计 溧阳市": ["已报 1，零报告 0，迟报 0，未报 0", "2", *["0"] * 7, ""],
        "合计 金坛区": [
            "已报 1，零报告 1，迟报 1，未报 1",
            "3",
            "1",
            "1",
            "1",
            "0",
            "0",
            "0",
            "1",
            "",
        ],
        "合计": ["5 个场所中已报告 4 个", "5", "1", "1", "1", "0", "0", "0", "1", ""],
    }


# ---- a past day's roll-call lists the sites of that day, whatever changed since ---------------


def _outputs(central, client, day, folder):
    """Every output of a day's roll-call of 金坛区 as its reader sees it: the console's lines
    (the screening column too) and totals, its CSV and XLSX downloads, and the command line's
    table in CSV and XLSX."""
    import openpyxl

    query = f"day={day.isoformat()}&district=金坛区"
    page = client.get(f"/console/rollcall?{query}")
    assert page.status_code == 200
    table = _Table()
    table.feed(page.text)
    lines = [cells for _attrs, cells in table.rows[1:]]
    csv_body = client.get(f"/console/rollcall.csv?{query}").data.decode("utf-8-sig")
    xlsx = client.get(f"/console/rollcall.xlsx?{query}").data
    sheet = [[c.value for c in row] for row in openpyxl.load_workbook(io.BytesIO(xlsx)).active]
    runner = central.test_cli_runner()
    args = ["report", "daily", "--date", day.isoformat(), "--district", "金坛区", "--format"]
    cli = runner.invoke(args=[*args, "csv"], env={"LANG": "zh_CN.UTF-8"})
    assert cli.exit_code == 0, cli.output
    out = folder / "rc.xlsx"
    made = runner.invoke(args=[*args, "xlsx", "--out", str(out)], env={"LANG": "zh_CN.UTF-8"})
    assert made.exit_code == 0, made.output
    cli_xlsx = [[c.value for c in row] for row in openpyxl.load_workbook(out).active]
    return {
        "page": lines,
        "csv": list(csv.reader(io.StringIO(csv_body))),
        "xlsx": sheet,
        "cli": list(csv.reader(io.StringIO(cli.output))),
        "cli_xlsx": cli_xlsx,
    }


def _listed(central, day) -> dict[str, str]:
    """A day's roll-call of every site at the city: each listed site's name and state."""
    conn = connect(central.config["DATABASE"])
    try:
        rc = rollcall.build(conn, day, tz_name=TZ, cutoff=CUTOFF)
    finally:
        conn.close()
    return {r.name: r.state for r in rc.rows}


def test_a_site_closed_today_keeps_its_report_and_fevers_on_yesterdays_roll_call(
    world, console, tmp_path
):
    """The audit's finding 3: 阳光花园小区 reported yesterday (two in, a fever) and is closed this
    morning; 南门小区, missing yesterday, too. Yesterday's roll-call, as the console, its
    downloads and the command line give it, is what it was before: the report, its fever and
    the district's totals are kept, 南门小区 is still missing, and the screening column still has
    the closed site's cell. They leave the roll-calls of the days after today."""
    from fieldapp.gate import roster
    from fieldapp.screening import campaigns

    central, client, s = console
    day = days.today(TZ) - timedelta(days=1)
    store(
        central,
        [
            entry(s["s1"]["id"], local(day, 8)),
            entry(s["s1"]["id"], local(day, 9), temperature=38.1, fever_action="clinic"),
        ],
    )
    report_at(central, s["s1"]["id"], day, local(day, 18))
    report_at(central, s["s2"]["id"], day, local(day, 21))  # late
    conn = connect(central.config["DATABASE"])
    with central.app_context():
        person = {
            "name": "张建国",
            "phone": "13812340000",
            "unit": "1-1-101",
            "person_type": "resident",
        }
        roster.import_rows(conn, s["s1"]["id"], [person])
        campaigns.add(conn, {}, "复工人员排查", start=day - timedelta(days=3), all_sites=True)
    with transaction(conn):  # on the roster since before yesterday: one to screen yesterday
        since = days.bounds(day - timedelta(days=3), TZ)[0]
        conn.execute("UPDATE roster SET created_at = ? WHERE site_id = ?", (since, s["s1"]["id"]))
    conn.close()
    before = _outputs(central, client, day, tmp_path)

    runner = central.test_cli_runner()
    for key in ("s1", "s4"):
        closed = runner.invoke(args=["site", "deactivate", s[key]["code"]])
        assert closed.exit_code == 0, closed.output
    after = _outputs(central, client, day, tmp_path)

    assert after == before
    rows = {row[1]: row for row in after["csv"][1:5]}
    assert set(rows) == {"阳光花园小区", "幸福里小区", "城东工地", "南门小区"}
    # District, site, state, zero, submitted, in, out, visitors, fevers, ...
    assert rows["阳光花园小区"][2:9] == ["已报", "", "18:00", "2", "0", "0", "1"]
    assert rows["南门小区"][2] == "未报" and rows["幸福里小区"][2] == "迟报"
    total = after["csv"][-1]
    assert "4 个场所中已报告 2 个" in total[1] and total[5] == "2" and total[8] == "1"
    assert "已报 1，零报告 0，迟报 1，未报 2" in total[2]
    assert after["xlsx"][-1][:2] == [total[0], total[1]] and after["cli"] == after["csv"]
    assert after["cli_xlsx"] == after["xlsx"]
    # The console's line of the closed site: its screening cell (0 of its 1 person) is there.
    line = next(cells for cells in after["page"] if cells and cells[0] == "阳光花园小区")
    assert line[1:5] == ["已报", "18:00", "0/1", "2"]
    # Today's roll-call keeps them (they were open today); tomorrow's has left them out.
    today = days.today(TZ)
    assert {"阳光花园小区", "南门小区"} <= set(_listed(central, today))
    assert not {"阳光花园小区", "南门小区"} & set(_listed(central, today + timedelta(days=1)))


def test_a_site_added_today_is_not_on_yesterdays_roll_call(world, console, tmp_path):
    """Sites added today are not missing on the days before they existed: yesterday's
    roll-call, its totals and the command line's are as before; today's lists them."""
    central, client, s = console
    day = days.today(TZ) - timedelta(days=1)
    report_at(central, s["s1"]["id"], day, local(day, 18))
    before = _outputs(central, client, day, tmp_path)
    runner = central.test_cli_runner()
    for name in ('新建"东门"/A,区', "新建工地"):
        added = runner.invoke(args=["site", "add", "--name", name, "--district", "金坛区"])
        assert added.exit_code == 0, added.output
    assert _outputs(central, client, day, tmp_path) == before
    assert "4 个场所中已报告 1 个" in before["csv"][-1][1]
    assert not {'新建"东门"/A,区', "新建工地"} & set(_listed(central, day))
    today = _listed(central, days.today(TZ))
    assert today['新建"东门"/A,区'] == "missing" and today["新建工地"] == "missing"
    # A district whose sites were all added today had none open yesterday: the command says so.
    for name in ("新区一号", "新区二号"):
        runner.invoke(args=["site", "add", "--name", name, "--district", "新区"])
    none = runner.invoke(
        args=["report", "daily", "--date", day.isoformat(), "--district", "新区"],
        env={"LANG": "en_US.UTF-8"},
    )
    assert none.exit_code != 0 and f"No site of district 新区 was open on {day}" in none.output
    shown = runner.invoke(args=["report", "daily", "--district", "新区", "--format", "csv"])
    assert shown.exit_code == 0 and shown.output.count("新区") >= 3


def test_a_site_closed_yesterday_and_open_again_today(world, monkeypatch):
    """Closed yesterday at noon: yesterday's roll-call keeps it (it was open that morning),
    today's leaves it out, unless it reports today anyway (a report always counts). Opened
    again today, it is on today's roll-call again and yesterday's is unchanged."""
    central, _downs, _tokens, s = world
    today = days.today(TZ)
    yesterday, before = today - timedelta(days=1), today - timedelta(days=2)
    site = s["s4"]
    noon = datetime.combine(yesterday, time(12), tzinfo=days.zone(TZ)).astimezone(UTC)
    report_at(central, site["id"], yesterday, local(yesterday, 11))
    conn = connect(central.config["DATABASE"])
    try:
        monkeypatch.setattr(sites, "utcnow", lambda: noon)
        assert sites.set_active(conn, site["id"], False)
        monkeypatch.undo()
        closed_at = conn.execute("SELECT closed_at FROM sites WHERE id = ?", (site["id"],))
        assert closed_at.fetchone()[0] == iso(noon)
    finally:
        conn.close()
    assert _listed(central, before)["南门小区"] == "missing"
    assert _listed(central, yesterday)["南门小区"] == "zero"
    assert "南门小区" not in _listed(central, today)
    # A report for today from the closed site (a phone's outbox, say) is shown all the same.
    report_at(central, site["id"], today, local(today, 0, 30))
    assert _listed(central, today)["南门小区"] == "zero"
    assert "南门小区" not in _listed(central, today + timedelta(days=1))

    opened = central.test_cli_runner().invoke(args=["site", "activate", site["code"]])
    assert opened.exit_code == 0, opened.output
    for day, state in ((yesterday, "zero"), (today + timedelta(days=1), "missing")):
        assert _listed(central, day)["南门小区"] == state
    assert _listed(central, today)["南门小区"] == "zero"


def test_the_closing_date_travels_down_to_a_site_instance(world):
    """The city closes 阳光花园小区 today, after office A sent its report of yesterday: with its
    next pull office A has the same closing time, and its own roll-call of yesterday still
    counts the report and its fever; opened again at the city, it is open at the office too."""
    central, downs, tokens, s = world
    a = downs["office-a"]
    day = days.today(TZ) - timedelta(days=1)
    store(a, [entry(s["s1"]["id"], local(day, 9), temperature=38.1, fever_action="clinic")])
    report_at(a, s["s1"]["id"], day, local(day, 18))
    sync_up(a, central, tokens["office-a"])
    runner = central.test_cli_runner()
    assert runner.invoke(args=["site", "deactivate", s["s1"]["code"]]).exit_code == 0
    sync_up(a, central, tokens["office-a"])

    def closing(app) -> tuple:
        conn = connect(app.config["DATABASE"])
        try:
            row = conn.execute(
                "SELECT active, closed_at FROM sites WHERE id = ?", (s["s1"]["id"],)
            ).fetchone()
            rc = rollcall.build(conn, day, tz_name=TZ, cutoff=CUTOFF, district="金坛区")
        finally:
            conn.close()
        return tuple(row), rc

    (active, closed_at), rc = closing(a)
    assert (active, closed_at) == closing(central)[0] and active == 0
    assert days.local(closed_at, TZ).date() == days.today(TZ)
    line = next(r for r in rc.rows if r.site_id == s["s1"]["id"])
    assert (line.state, line.figures["fevers"]) == ("reported", 1)
    assert rc.districts[0].figures["fevers"] == 1 and rc.total.sites == 4

    assert runner.invoke(args=["site", "activate", s["s1"]["code"]]).exit_code == 0
    sync_up(a, central, tokens["office-a"])
    assert closing(a)[0] == (1, None)


def test_the_roll_call_and_its_doubts_count_the_entries_as_corrected(world):
    """The coordinator corrects at the city what the gates' instances push later (a
    correction may come before its entry): the report made there, the roll-call's figures and
    its doubts about zero reports count each entry's current value."""
    central, downs, tokens, s = world
    a, b = downs["office-a"], downs["office-b"]
    day = days.today(TZ) - timedelta(days=1)
    (early, entries, then), expected = corrected_day(s["s1"]["id"], lambda hour: local(day, hour))
    store(central, early)  # before its entry, which office A pushes next
    store(a, entries)
    # Zero reports at office A; office B registered at those sites that day: at s2 a
    # duplicate the city voids, at s4 one reading the city corrects up to a fever.
    report_at(a, s["s2"]["id"], day, local(day, 17))
    report_at(a, s["s4"]["id"], day, local(day, 17))
    dup = entry(s["s2"]["id"], local(day, 18))
    hot = entry(s["s4"]["id"], local(day, 18), temperature=36.5)
    store(b, [dup, hot])
    store(
        central,
        [
            corrections.wire(dup["uuid"], "王协调", "重复登记", void=True),
            corrections.wire(hot["uuid"], "王协调", "重测", changes={"temperature": 38.3}),
        ],
    )
    for name, down in downs.items():
        sync_up(down, central, tokens[name])
    store(central, then)
    report_at(central, s["s1"]["id"], day, local(day, 19))
    conn = connect(central.config["DATABASE"])
    try:
        rc = rollcall.build(conn, day, tz_name=TZ, cutoff=CUTOFF, district="金坛区")
        start, end = days.bounds(day, TZ)
        now = datetime.now(UTC)
        fever_cases = cases.listing(conn, None, now, "all", since=start, until=end)
    finally:
        conn.close()
    row = {r.site_id: r for r in rc.rows}
    figures = row[s["s1"]["id"]].figures
    assert {k: figures[k] for k in ("in", "out", "visitors", "fevers", "travel")} == {
        "in": 7,
        "out": 0,
        "visitors": 1,
        "fevers": 3,
        "travel": 1,
    }
    at_s1 = [c["entry"]["name"] for c in fever_cases if c["entry"]["site_id"] == s["s1"]["id"]]
    assert sorted(at_s1) == sorted(expected["fever_names"])
    assert row[s["s2"]["id"]].registered == (0, 0)  # its one entry voided: a true zero
    assert row[s["s4"]["id"]].registered == (1, 1)  # one entry, a fever now
    assert [c["entry"]["site_id"] for c in fever_cases].count(s["s4"]["id"]) == 1
    assert rc.total.figures["fevers"] == 3


def test_a_site_closed_for_days_and_open_again_keeps_those_days_closed(world, monkeypatch):
    """南门小区 closed four days ago at noon (the Spring Festival) and opened again yesterday
    at nine: the days wholly between stay as they were (not on their roll-call), the day it
    closed and the day it opened list it; at the city and, after a pull, at office A."""
    central, downs, tokens, s = world
    today = days.today(TZ)
    site = s["s4"]
    closed = datetime.combine(today - timedelta(days=4), time(12), tzinfo=days.zone(TZ))
    opened = datetime.combine(today - timedelta(days=1), time(9), tzinfo=days.zone(TZ))
    conn = connect(central.config["DATABASE"])
    try:
        for at, active in ((closed, False), (opened, True)):
            monkeypatch.setattr(sites, "utcnow", lambda at=at: at.astimezone(UTC))
            assert sites.set_active(conn, site["id"], active)
        monkeypatch.undo()
        assert sites.closures(conn, site["id"]) == [
            {"closed_at": iso(closed), "opened_at": iso(opened)}
        ]
        row = conn.execute("SELECT active, closed_at FROM sites WHERE id = ?", (site["id"],))
        assert tuple(row.fetchone()) == (1, None)
    finally:
        conn.close()
    a = downs["office-a"]
    sync_up(a, central, tokens["office-a"])
    for app in (central, a):
        for ago, listed in ((5, True), (4, True), (3, False), (2, False), (1, True), (0, True)):
            day = today - timedelta(days=ago)
            assert ("南门小区" in _listed(app, day)) is listed, (app.config["DATABASE"], ago)


def test_a_roll_call_day_that_is_no_date_is_said_as_text_never_read_as_html(world, console):
    """?day= is shown back in the error: the exports say it as text/plain, the page escaped."""
    central, client, s = console
    typed = "<a href=//x.cn>点此</a>"
    for path in ("/console/rollcall.csv", "/console/rollcall.xlsx"):
        r = client.get(path, query_string={"day": typed})
        assert r.status_code == 400, path
        assert "2020-02-15" in r.text and "<a href=//x.cn>" in r.text, path
        assert r.mimetype == "text/plain", path
    for query in ({"day": typed}, {"day": typed, "print": "1"}):
        page = client.get("/console/rollcall", query_string=query)
        assert page.status_code == 400 and "2020-02-15" in page.text
        assert "<a href=//x.cn>" not in page.text and "&lt;a href=//x.cn&gt;" in page.text
    conn = connect(central.config["DATABASE"])  # nothing exported: no export audited
    try:
        n = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'export'").fetchone()[0]
    finally:
        conn.close()
    assert n == 0
