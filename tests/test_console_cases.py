"""Fever follow-up: a case for every temperature ≥ 37.3 °C, acknowledged, acted on, closed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from console_support import csrf, login, make_site, make_user, save, wire_entry

from fieldapp import records
from fieldapp.console import cases


@pytest.fixture
def world(app):
    site = make_site(app)
    old = (datetime.now(UTC) - timedelta(hours=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    fever, normal, overdue = save(
        app,
        wire_entry(site["id"], name="李秀英", temperature=38.2, fever_action="clinic"),
        wire_entry(site["id"], name="张建国", temperature=37.2),
        wire_entry(
            site["id"], name="王磊", temperature=37.3, fever_action="remeasured", recorded_at=old
        ),
    )
    make_user(app, "coord", "coordinator", sites=[site["code"]])
    make_user(app, "viewer", "viewer")
    client = app.test_client()
    login(client, "coord")
    return {"fever": fever, "normal": normal, "overdue": overdue, "client": client}


def act(client, uuid, **form):
    token = csrf(client, "/console/login")
    return client.post(f"/console/cases/{uuid}/action", data={"csrf_token": token, **form})


def test_every_fever_opens_a_case_without_a_record(world, db):
    html = world["client"].get("/console/cases").get_data(as_text=True)
    assert "李秀英" in html and "王磊" in html and "张建国" not in html  # 37.2 is no fever
    assert db.execute("SELECT count(*) FROM case_actions").fetchone()[0] == 0
    # Oldest first; the one open for 30 hours is highlighted.
    assert html.index("王磊") < html.index("李秀英")
    assert html.count('class="case overdue') == 1 and "超时未结案" in html
    assert world["client"].get(f"/console/cases/{world['normal']}").status_code == 404


def test_case_life_cycle(world, db):
    client, uuid = world["client"], world["fever"]
    assert "未接报确认" in client.get(f"/console/cases/{uuid}").get_data(as_text=True)
    assert act(client, uuid, action="acknowledge").status_code == 302
    act(client, uuid, action="remeasure", temperature="37.9", note="十分钟后复测")
    act(client, uuid, action="clinic")
    act(client, uuid, action="home_isolation")
    assert "已测 0 次，应测 2 次" in client.get(f"/console/cases/{uuid}").get_data(as_text=True)
    act(client, uuid, action="check", temperature="37.1")
    act(client, uuid, action="report", note="已报社区卫生服务中心")
    html = client.get(f"/console/cases/{uuid}").get_data(as_text=True)
    assert "已测 1 次，应测 2 次" in html
    for shown in (
        "coord",
        "37.9 °C",
        "十分钟后复测",
        "居家隔离（每日两次测体温）",
        "已上报卫生健康部门",
    ):
        assert shown in html
    assert "未结案" in html
    # The page's close form: an outcome to choose, then 结案; no reopen while open.
    close = re.search(
        r'<form[^>]*>(?:(?!</form>).)*name="action" value="close".*?</form>', html, re.S
    )
    assert (
        close and 'name="outcome" required' in close.group(0) and "结案</button>" in close.group(0)
    )
    assert 'value="reopen"' not in html
    # Closing needs an outcome; without one nothing is stored.
    r = act(client, uuid, action="close")
    assert r.status_code == 422 and "结案前请选择处理结果" in r.get_data(as_text=True)
    act(client, uuid, action="close", outcome="normal")
    html = client.get(f"/console/cases/{uuid}").get_data(as_text=True)
    assert "已结案" in html and "体温恢复正常" in html
    assert 'value="reopen"' in html and "重新打开</button>" in html and 'value="close"' not in html
    rows = db.execute(
        "SELECT action, temperature, outcome, author FROM case_actions WHERE entry_uuid = ?"
        " ORDER BY recorded_at, id",
        (uuid,),
    ).fetchall()
    assert [r["action"] for r in rows] == [
        "acknowledge",
        "remeasure",
        "clinic",
        "home_isolation",
        "check",
        "report",
        "close",
    ]
    assert rows[1]["temperature"] == 37.9 and rows[-1]["outcome"] == "normal"
    assert {r["author"] for r in rows} == {"coord"}
    # Case actions are records: they are in the change log and go upstream.
    assert db.execute("SELECT count(*) FROM changes WHERE kind = 'case_action'").fetchone()[0] == 7
    # Closed cases leave the default (open) list and show under "closed".
    page = client.get("/console/cases").get_data(as_text=True)
    assert "李秀英" not in page and 'value="open" checked' in page
    page = client.get("/console/cases?status=closed").get_data(as_text=True)
    assert (
        "李秀英" in page and 'value="closed" checked' in page and 'value="open" checked' not in page
    )
    act(client, uuid, action="reopen")
    assert "李秀英" in client.get("/console/cases").get_data(as_text=True)


def test_bad_action_input_is_refused(world, db):
    client, uuid = world["client"], world["fever"]
    r = act(client, uuid, action="remeasure", temperature="hot")
    assert r.status_code == 422 and "请填数字" in r.get_data(as_text=True)
    r = act(client, uuid, action="dance")
    assert r.status_code == 422 and "请选择采取了什么措施" in r.get_data(as_text=True)
    assert db.execute("SELECT count(*) FROM case_actions").fetchone()[0] == 0


def _form(html, marker):
    """The form on the page that holds marker."""
    for form in re.findall(r"<form.*?</form>", html, re.S):
        if marker in form:
            return form
    raise AssertionError(html)


def test_a_refused_step_shows_the_page_again_with_what_was_typed(world, db):
    client, uuid = world["client"], world["fever"]
    r = act(client, uuid, action="remeasure", temperature="99", note="十分钟后复测，仍发热")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "体温（°C）：" in html and "尚无记录。" in html  # why, on the case's page
    step = _form(html, "保存措施")
    assert 'value="remeasure" required checked' in step
    assert 'name="temperature" value="99"' in step
    assert 'name="note" value="十分钟后复测，仍发热"' in step
    assert "十分钟后复测" not in _form(html, 'value="close"')
    # A refused close: its own form keeps the note, and the step form stays empty.
    r = act(client, uuid, action="close", outcome="", note="已联系家属")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "结案前请选择处理结果" in html
    assert 'name="note" value="已联系家属"' in _form(html, 'value="close"')
    step = _form(html, "保存措施")
    assert "已联系家属" not in step and " checked" not in step
    assert db.execute("SELECT count(*) FROM case_actions").fetchone()[0] == 0
    assert (
        db.execute("SELECT count(*) FROM audit_log WHERE action = 'case_action'").fetchone()[0] == 0
    )
    # The page opened again afterwards: no error, empty forms.
    again = client.get(f"/console/cases/{uuid}").get_data(as_text=True)
    assert "结案前请选择处理结果" not in again and 'value="99"' not in again
    assert "已联系家属" not in again


def test_re_measure_reads_temperatures_as_the_gate_does(world, db):
    client, uuid = world["client"], world["fever"]
    act(client, uuid, action="remeasure", temperature="nan")
    assert db.execute("SELECT count(*) FROM case_actions").fetchone()[0] == 0
    act(client, uuid, action="remeasure", temperature="37,5")  # a comma keypad's decimal
    rows = db.execute("SELECT action, temperature FROM case_actions").fetchall()
    assert [tuple(r) for r in rows] == [("remeasure", 37.5)]


def test_case_filters(world):
    client = world["client"]
    act(client, world["fever"], action="acknowledge")
    unack = client.get("/console/cases?status=unacknowledged").get_data(as_text=True)
    assert "王磊" in unack and "李秀英" not in unack
    overdue = client.get("/console/cases?status=overdue").get_data(as_text=True)
    assert "王磊" in overdue and "李秀英" not in overdue


def test_viewer_sees_cases_but_cannot_act(app, world, db):
    coordinator_page = (
        world["client"].get(f"/console/cases/{world['fever']}").get_data(as_text=True)
    )
    assert ">确认接报</button>" in coordinator_page
    viewer = app.test_client()
    login(viewer, "viewer")
    html = viewer.get(f"/console/cases/{world['fever']}").get_data(as_text=True)
    assert "李**" in html and ">确认接报</button>" not in html and "结案</button>" not in html
    assert act(viewer, world["fever"], action="acknowledge").status_code == 403
    assert db.execute("SELECT count(*) FROM case_actions").fetchone()[0] == 0


def test_voided_fever_has_no_case(world):
    client, uuid = world["client"], world["fever"]
    token = csrf(client, "/console/login")
    client.post(f"/console/entry/{uuid}/void", data={"csrf_token": token, "reason": "测试数据"})
    assert "李秀英" not in client.get("/console/cases?status=all").get_data(as_text=True)
    assert client.get(f"/console/cases/{uuid}").status_code == 404


def test_open_count_agrees_with_the_list(app, world, db):
    """The dashboard's fast count and the cases list are the same, whatever happened."""
    from datetime import UTC, datetime

    from fieldapp.console import cases

    client = world["client"]
    act(client, world["fever"], action="acknowledge")
    site = db.execute("SELECT site_id FROM entries WHERE uuid = ?", (world["fever"],)).fetchone()[0]
    closed, voided, down, up = save(
        app,
        wire_entry(site, name="甲", temperature=38.0, fever_action="clinic"),
        wire_entry(site, name="乙", temperature=38.0, fever_action="clinic"),
        wire_entry(site, name="丙", temperature=38.0, fever_action="clinic"),
        wire_entry(site, name="丁", temperature=36.0),
    )
    act(client, closed, action="close", outcome="normal")
    token = csrf(client, "/console/login")
    client.post(f"/console/entry/{voided}/void", data={"csrf_token": token, "reason": "测试"})
    base = {
        "name": "丙",
        "direction": "in",
        "person_type": "resident",
        "health_code": "green",
        "destination": "3-2-501",
        "reason": "误录",
    }
    client.post(
        f"/console/entry/{down}/correct", data={"csrf_token": token, **base, "temperature": "36.5"}
    )
    client.post(
        f"/console/entry/{up}/correct",
        data={"csrf_token": token, **base, "name": "丁", "temperature": "37.9"},
    )
    now = datetime.now(UTC)
    with app.test_request_context():
        listed = cases.listing(db, None, now, "open")
        counted = cases.open_count(db, None, now)
    assert counted == {
        "open": len(listed),
        "overdue": sum(c["overdue"] for c in listed),
        "unacknowledged": sum(not c["acknowledged_at"] for c in listed),
    }
    assert sorted(c["entry"]["name"] for c in listed) == ["丁", "李秀英", "王磊"]


def test_case_date_and_site_filters(app, world):
    from datetime import UTC, datetime, timedelta

    client = world["client"]
    today = datetime.now(UTC).astimezone().date()
    # 王磊's fever is 30 hours old: outside a filter starting tomorrow-in-Shanghai at the latest.
    later = client.get(f"/console/cases?date_from={today + timedelta(days=2)}").get_data(
        as_text=True
    )
    assert "李秀英" not in later and "王磊" not in later
    wide = client.get(
        f"/console/cases?date_from={today - timedelta(days=3)}&date_to={today + timedelta(days=1)}"
    ).get_data(as_text=True)
    assert "李秀英" in wide and "王磊" in wide
    bad = client.get("/console/cases?date_from=yesterday&site=elsewhere").get_data(as_text=True)
    assert "日期格式应为 2020-02-15" in bad and "您无权查看该场所" in bad
    # A site refused lists none of the scope's cases, which would read as that site's.
    assert "李秀英" not in bad and "王磊" not in bad and "没有符合条件的发热人员" in bad
    other = make_site(app, "丙小区", "溧阳市")
    save(app, wire_entry(other["id"], name="周德才", temperature=38.9, fever_action="clinic"))
    elsewhere = client.get(f"/console/cases?site={other['id']}").get_data(as_text=True)
    assert "您无权查看该场所" in elsewhere
    assert not [n for n in ("李秀英", "王磊", "周德才") if n in elsewhere]
    later = f"date_from={today + timedelta(days=1)}&date_to={today - timedelta(days=1)}"
    backwards = client.get(f"/console/cases?{later}").get_data(as_text=True)
    assert "开始日期晚于结束日期，因此没有符合条件的记录。" in backwards
    assert "李秀英" not in backwards


def test_long_list_says_it_is_cut(app, world, monkeypatch):
    from fieldapp.console import views as console

    monkeypatch.setattr(console, "CASES_SHOWN", 1)
    html = world["client"].get("/console/cases").get_data(as_text=True)
    assert html.count('<li class="case') == 1 and "仅显示最早的 1 条" in html
    assert "王磊" in html  # the oldest


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"author": ""}, "记录人：请填写此项。"),
        ({"author": "x" * 41}, "记录人：最多 40 个字。"),
        ({"note": 5}, "备注：请在此填写文字。"),
        ({"note": "x" * 201}, "备注：最多 200 个字。"),
        ({"action": "close"}, "结案前请选择处理结果。"),
        ({"action": "check", "temperature": "hot"}, "体温（°C）：请填数字"),
    ],
)
def test_a_case_step_from_anywhere_is_refused_with_a_worded_reason(app, world, db, change, reason):
    record = cases.wire(world["fever"], "district-coord", "acknowledge", note="")
    record["data"].update(change)
    with app.test_request_context():
        (result,) = records.save(db, [record], source="downstream")
    assert result.status == "rejected"
    assert result.reason.startswith(reason)
    assert db.execute("SELECT count(*) FROM case_actions").fetchone()[0] == 0


def test_a_step_sent_twice_is_recorded_once(world, db):
    """A double click (or a retry after a lost answer) sends a form of the case's page twice:
    each step is stored and audited once, and the second answer says it was saved already."""
    client, uuid = world["client"], world["fever"]
    url = f"/console/cases/{uuid}"
    steps = (
        ("acknowledge", "确认接报</button>", {}),
        ("remeasure", "保存措施", {"action": "remeasure", "temperature": "37.9"}),
        ("close", 'value="close"', {"outcome": "normal"}),
        ("reopen", 'value="reopen"', {}),
    )
    for _action, marker, typed in steps:
        form = _form(client.get(url).get_data(as_text=True), marker)
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
        assert "uuid" in fields, form
        for _ in range(2):
            r = client.post(url + "/action", data={**fields, **typed})
            assert r.status_code == 302, r.get_data(as_text=True)
        assert "已经保存过了" in client.get(url).get_data(as_text=True)
    rows = db.execute("SELECT action FROM case_actions ORDER BY recorded_at, id").fetchall()
    assert [r[0] for r in rows] == [a for a, _m, _t in steps]
    audit = db.execute(
        "SELECT detail FROM audit_log WHERE action = 'case_action' ORDER BY id"
    ).fetchall()
    assert [r[0] for r in audit] == [a for a, _m, _t in steps]
    assert "未结案" in client.get(url).get_data(as_text=True)  # reopened once: open
