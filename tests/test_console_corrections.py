"""Corrections and voids: new records (the original stays), current value and history shown."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from console_support import csrf, login, make_site, make_user, save, wire_entry
from werkzeug.datastructures import MultiDict

from fieldapp import records
from fieldapp.console import corrections, logbook
from fieldapp.db import connect, transaction


@pytest.fixture
def world(app):
    site = make_site(app)
    (uuid,) = save(app, wire_entry(site["id"], name="张建国", temperature=36.6, plate=""))
    make_user(app, "coord", "coordinator", sites=[site["code"]])
    client = app.test_client()
    login(client, "coord")
    return {"site": site, "uuid": uuid, "client": client}


def post(client, path, **form):
    token = csrf(client, "/console/login")
    return client.post(path, data={"csrf_token": token, **form})


def correct_form(**changes):
    """The correction form as the page sends it: the travel checkbox not ticked sends only the
    hidden 0 that follows it (ticked, its 1 comes first)."""
    form = {
        "travel": "0",
        "name": "张建国",
        "temperature": "36.6",
        "direction": "in",
        "person_type": "resident",
        "health_code": "green",
        "travel_where": "",
        "plate": "",
        "destination": "3-2-501",
        "note": "",
    }
    form.update(changes)
    return form


def test_correction_keeps_original_and_shows_current_and_history(world, db):
    client, uuid = world["client"], world["uuid"]
    r = post(
        client,
        f"/console/entry/{uuid}/correct",
        reason="登记时写错字",
        **correct_form(name="张建华", plate="苏D12345"),
    )
    assert r.status_code == 302
    entry = db.execute("SELECT name, plate FROM entries WHERE uuid = ?", (uuid,)).fetchone()
    assert tuple(entry) == ("张建国", "")  # the original row is never edited
    row = db.execute("SELECT * FROM corrections WHERE entry_uuid = ?", (uuid,)).fetchone()
    assert json.loads(row["changes"]) == {"name": "张建华", "plate": "苏D12345"}
    assert row["author"] == "coord" and row["reason"] == "登记时写错字" and row["void"] == 0
    # It is a record like any other: in the change log, so it syncs upstream.
    assert (
        db.execute(
            "SELECT count(*) FROM changes WHERE kind = 'correction' AND uuid = ?", (row["uuid"],)
        ).fetchone()[0]
        == 1
    )
    html = client.get(f"/console/entry/{uuid}").get_data(as_text=True)
    assert "<h1>张建华" in html and "更正已保存" in html
    assert "修改历史" in html and "登记时写错字" in html and "张建国" in html
    log = client.get("/console/log").get_data(as_text=True)
    assert "张建华" in log and "已更正" in log
    audit = db.execute("SELECT actor, target FROM audit_log WHERE action = 'correct'").fetchone()
    assert tuple(audit) == ("coord", uuid)


def test_correction_is_validated_and_nothing_saved_when_wrong(world, db):
    client, uuid = world["client"], world["uuid"]

    def refused(reason, form):
        r = post(client, f"/console/entry/{uuid}/correct", reason=reason, **form)
        assert r.status_code == 422
        return r.get_data(as_text=True)

    assert "体温：" in refused("x", correct_form(temperature="45"))
    assert "请说明更正或作废的原因" in refused("", correct_form(name="王磊"))
    assert "没有任何修改" in refused("无", correct_form())
    # The same values typed another way the gate's rules read alike are no change either.
    same = correct_form(temperature="36,6", phone="138 1234 5678", name=" 张建国 ")
    assert "没有任何修改" in refused("无", same)
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'correct'").fetchone()[0] == 0


def test_a_correction_cannot_empty_a_required_choice(app, world, db):
    """A tampered form (or a correction from another instance) that empties the direction, the
    person type or the health code is refused, as the gate refuses them empty."""
    client, uuid = world["client"], world["uuid"]
    tampered = correct_form(direction="", person_type="", health_code="", temperature="36.5")
    r = post(client, f"/console/entry/{uuid}/correct", reason="tamper", **tampered)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "请选择进或出。" in html
    for field in ("direction", "person_type", "health_code"):
        record = corrections.wire(uuid, "district-coord", "改", {field: ""})
        with app.test_request_context():
            (result,) = records.save(db, [record], source="downstream")
        assert result.status == "rejected", field
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0
    # A field that applies only after a yes (where the person travelled) may still be emptied.
    r = post(client, f"/console/entry/{uuid}/correct", reason="改", **correct_form(name="张建华"))
    assert r.status_code == 302
    log = client.get("/console/log").get_data(as_text=True)
    assert "张建华" in log


def test_two_corrections_apply_in_order(world):
    client, uuid = world["client"], world["uuid"]
    post(client, f"/console/entry/{uuid}/correct", reason="1", **correct_form(name="张建华"))
    post(
        client,
        f"/console/entry/{uuid}/correct",
        reason="2",
        **correct_form(name="张建民", temperature="37.0"),
    )
    html = client.get(f"/console/entry/{uuid}").get_data(as_text=True)
    assert "<h1>张建民" in html and "37.0 °C" in html


def test_void_with_reason(world, db):
    client, uuid = world["client"], world["uuid"]
    r = post(client, f"/console/entry/{uuid}/void", reason="")
    assert r.status_code == 422
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0
    post(client, f"/console/entry/{uuid}/void", reason="重复登记，与李四 13811112222 同一人")
    assert db.execute("SELECT count(*) FROM entries WHERE uuid = ?", (uuid,)).fetchone()[0] == 1
    # The audit log says who voided which entry; the reason (free text) stays with the
    # correction, purged with it: the audit log outlives the entries' retention.
    audited = db.execute("SELECT target, detail FROM audit_log WHERE action = 'void'").fetchall()
    assert [tuple(r) for r in audited] == [(uuid, "")]
    html = client.get(f"/console/entry/{uuid}").get_data(as_text=True)
    assert "已作废" in html and "重复登记" in html
    assert "is-void" in client.get("/console/log").get_data(as_text=True)


def test_correcting_a_fever_away_closes_nothing_but_removes_the_case(app, world):
    client = world["client"]
    (fever,) = save(
        app, wire_entry(world["site"]["id"], name="李秀英", temperature=38.3, fever_action="clinic")
    )
    assert "李秀英" in client.get("/console/cases").get_data(as_text=True)
    post(
        client,
        f"/console/entry/{fever}/correct",
        reason="体温枪读数错误",
        **correct_form(name="李秀英", temperature="36.3"),
    )
    assert "李秀英" not in client.get("/console/cases").get_data(as_text=True)
    # Its page leads to no case any more: the case's own page is gone.
    case_link = f'href="/console/cases/{fever}"'
    assert case_link not in client.get(f"/console/entry/{fever}").get_data(as_text=True)
    assert client.get(f"/console/cases/{fever}").status_code == 404
    # And the other way round: a corrected-up temperature opens a case.
    post(
        client,
        f"/console/entry/{world['uuid']}/correct",
        reason="漏记发热",
        **correct_form(temperature="37.8"),
    )
    assert "张建国" in client.get("/console/cases").get_data(as_text=True)
    page = client.get(f"/console/entry/{world['uuid']}").get_data(as_text=True)
    assert f'href="/console/cases/{world["uuid"]}"' in page
    assert client.get(f"/console/cases/{world['uuid']}").status_code == 200


def test_correction_records_from_a_downstream_merge_by_uuid(app, world, db):
    record = corrections.wire(world["uuid"], "district-coord", "改名", {"name": "张建华"})
    with app.test_request_context():
        first = records.save(db, [record], source="downstream")
        again = records.save(db, [record], source="downstream")
        other = dict(record, data={**record["data"], "reason": "不同内容"})
        clash = records.save(db, [other], source="downstream")
        bad = corrections.wire(world["uuid"], "x", "r", {"id_masked": "x"})
        nobody = corrections.wire(world["uuid"], " ", "改名", {"name": "张建华"})
        refused = records.save(db, [bad, nobody], source="downstream")
    assert [first[0].status, again[0].status, clash[0].status] == [
        "applied",
        "duplicate",
        "conflict",
    ]
    assert [r.status for r in refused] == ["rejected", "rejected"]
    assert refused[1].reason == "记录人：请填写此项。"
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 1


def _panel(html, summary):
    """The <details> panel whose summary is that text, with its form."""
    match = re.search(rf"<details[^>]*>\s*<summary>{summary}</summary>.*?</details>", html, re.S)
    assert match, html
    return match.group(0)


def test_a_refused_correction_shows_the_page_again_with_what_was_typed(world, db):
    client, uuid = world["client"], world["uuid"]
    typed = correct_form(
        name="张建华",
        temperature="abc",
        person_type="worker",
        health_code="yellow",
        travel="1",
        travel_where="武汉",
        note="门岗复核",
    )
    r = post(client, f"/console/entry/{uuid}/correct", reason="登记时写错字", **typed)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "体温：请填数字，例如 36.5。" in html
    assert "<h1>张建国" in html  # the entry as stored: nothing was saved
    panel = _panel(html, "更正此登记")
    assert panel.startswith('<details class="panel" open>')
    for shown in (
        'name="name" value="张建华"',
        'name="temperature" value="abc"',
        '<option value="worker" selected>',
        '<option value="yellow" selected>',
        'name="travel" value="1" checked',
        'name="travel_where" value="武汉"',
        'name="note" value="门岗复核"',
        'name="reason" value="登记时写错字"',
    ):
        assert shown in panel, shown
    assert '<details class="panel" open>' not in _panel(html, "标记作废")
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'correct'").fetchone()[0] == 0
    # The page opened again afterwards shows the entry as stored, the panel closed.
    again = client.get(f"/console/entry/{uuid}").get_data(as_text=True)
    panel = _panel(again, "更正此登记")
    assert panel.startswith('<details class="panel">') and 'value="张建国"' in panel
    assert "请填数字" not in again and 'name="travel" value="1" checked' not in again
    # Sent again with the temperature put right, it is saved as typed.
    r = post(
        client,
        f"/console/entry/{uuid}/correct",
        reason="登记时写错字",
        **dict(typed, temperature="36.6"),
    )
    assert r.status_code == 302
    row = db.execute("SELECT changes FROM corrections WHERE entry_uuid = ?", (uuid,)).fetchone()
    assert json.loads(row["changes"]) == {
        "name": "张建华",
        "person_type": "worker",
        "health_code": "yellow",
        "travel": True,
        "travel_where": "武汉",
        "note": "门岗复核",
    }


def test_a_refused_void_keeps_its_panel_open(world, db):
    client, uuid = world["client"], world["uuid"]
    r = post(client, f"/console/entry/{uuid}/void", reason="   ")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "请说明更正或作废的原因" in html
    assert _panel(html, "标记作废").startswith('<details class="panel" open>')
    assert _panel(html, "更正此登记").startswith('<details class="panel">')
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0


def _history(html):
    match = re.search(r'<ol class="history">.*?</ol>', html, re.S)
    assert match, html
    return re.sub(r"\s+", " ", match.group(0))


def test_history_names_values_as_the_log_does(app, world):
    client, uuid = world["client"], world["uuid"]
    changed = correct_form(
        direction="out", person_type="worker", health_code="yellow", travel="1", travel_where="武汉"
    )
    post(client, f"/console/entry/{uuid}/correct", reason="选错了", **changed)
    post(
        client,
        f"/console/entry/{uuid}/correct",
        reason="没去过",
        **correct_form(
            direction="out", person_type="worker", health_code="yellow", temperature="37.0"
        ),
    )
    history = _history(client.get(f"/console/entry/{uuid}").get_data(as_text=True))
    for shown in (
        "进出: 进",
        "人员类别: 居民",
        "健康码: 绿码",
        "体温: 36.6 °C",
        "进出 → 出",
        "人员类别 → 工人",
        "健康码 → 黄码",
        "到过风险地区 → 是",
        "地点 → 武汉",
        "到过风险地区 → 否",
        "地点 → —",
        "体温 → 37.0 °C",
    ):
        assert shown in history, shown
    for code in ("in", "out", "resident", "worker", "green", "yellow", "True", "False"):
        assert not re.search(rf"[:→] {code}\b", history), code
    # In the user's language.
    hant = _history(client.get(f"/console/entry/{uuid}?lang=zh_Hant").get_data(as_text=True))
    assert "人員類別 → 工人" in hant and "到過風險地區 → 是" in hant
    english = _history(client.get(f"/console/entry/{uuid}?lang=en").get_data(as_text=True))
    assert "Direction: In" in english and "Direction → Out" in english


def test_history_masks_phone_and_name_as_the_page_does(app, world):
    client, uuid = world["client"], world["uuid"]
    changed = correct_form(name="张建华", phone="13900001111")
    post(client, f"/console/entry/{uuid}/correct", reason="号码写错", **changed)
    make_user(app, "gv", "viewer", sites=[world["site"]["code"]])
    viewer = app.test_client()
    login(viewer, "gv")
    for who, name in ((client, "张建华"), (viewer, "张**")):
        html = who.get(f"/console/entry/{uuid}").get_data(as_text=True)
        history = _history(html)
        assert "手机号 → 139****1111" in history and f"姓名 → {name}" in history
        assert "13900001111" not in html
    assert "张建华" not in viewer.get(f"/console/entry/{uuid}").get_data(as_text=True)
    # Shown in full only after a deliberate (audited) unmask, as the entry's own phone is.
    post(client, f"/console/entry/{uuid}/unmask")
    history = _history(client.get(f"/console/entry/{uuid}").get_data(as_text=True))
    assert "手机号 → 13900001111" in history and "手机号: 13812345678" in history


def test_a_correction_to_travel_needs_where_as_the_gate_does(world, db):
    """Ticking "been to a risk area" without saying where is refused, as at the gate; where
    given, or already on the entry, it is saved."""
    client, uuid = world["client"], world["uuid"]
    r = post(client, f"/console/entry/{uuid}/correct", reason="漏登", **correct_form(travel="1"))
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "地点：请填写城市或地区。" in html
    assert 'name="travel" value="1" checked' in _panel(html, "更正此登记")
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0
    form = correct_form(travel="1", travel_where="武汉")
    assert post(client, f"/console/entry/{uuid}/correct", reason="漏登", **form).status_code == 302
    # Where is on the entry now: a later correction of another field keeps travel as it is.
    form = correct_form(travel="1", travel_where="武汉", name="张建华")
    assert post(client, f"/console/entry/{uuid}/correct", reason="错字", **form).status_code == 302
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 2


def test_what_was_done_for_a_fever_can_be_corrected(app, world, db):
    """A volunteer tapped the wrong fever action: the coordinator corrects it as any other
    field; the log, the entry's page and the export show the corrected one; a code no form
    offers is refused with why, and nothing is saved."""
    client = world["client"]
    (uuid,) = save(app, wire_entry(world["site"]["id"], temperature=38.2, fever_action="clinic"))
    path = f"/console/entry/{uuid}/correct"
    form = correct_form(temperature="38.2", fever_action="teleported")
    r = post(client, path, reason="点错了", **form)
    assert r.status_code == 422 and "发热处置" in r.get_data(as_text=True)
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0
    form = correct_form(temperature="38.2", fever_action="refused")
    assert post(client, path, reason="点错了", **form).status_code == 302
    row = db.execute("SELECT changes FROM corrections WHERE entry_uuid = ?", (uuid,)).fetchone()
    assert json.loads(row["changes"]) == {"fever_action": "refused"}
    stored = db.execute("SELECT fever_action FROM entries WHERE uuid = ?", (uuid,)).fetchone()
    assert stored[0] == "clinic"  # the original stays
    page = client.get(f"/console/entry/{uuid}").get_data(as_text=True)
    assert "<dd>劝返，不予进入</dd>" in page and "发热处置 → 劝返，不予进入" in page
    csv_text = post(client, "/console/export", format="csv").get_data(as_text=True)
    line = next(x for x in csv_text.splitlines() if uuid in x)
    assert "劝返，不予进入" in line and "送发热门诊" not in line


def drawn_form(html, action):
    """The fields of the entry page's form posting to action, as a browser sends them
    unchanged: inputs (a checkbox only when ticked) and each select's chosen option."""
    body = re.search(rf'<form method="post" action="[^"]*/{action}">(.*?)</form>', html, re.S)
    form = []
    for tag in re.findall(r"<input[^>]*>", body.group(1)):
        name, value = re.search(r'name="([^"]+)"', tag), re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag and "checked" not in tag:
            continue
        form.append((name.group(1), value.group(1) if value else ""))
    for name, options in re.findall(
        r'<select[^>]*name="([^"]+)">(.*?)</select>', body.group(1), re.S
    ):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        form.append((name, chosen.group(1) if chosen else ""))
    return form


def edited(form, **changes):
    """The drawn form with some fields typed over (a MultiDict's pairs, as a browser posts)."""
    return MultiDict([(k, changes.get(k, v)) for k, v in form])


def test_two_coordinators_correcting_at_once_keep_each_others_changes(app, world, db):
    """Two coordinators open the entry; one corrects the name, then the other, on the page
    drawn before, the temperature: the name the second form still holds is not a correction
    back to the old name."""
    uuid, first = world["uuid"], world["client"]
    site = world["site"]
    make_user(app, "coord2", "coordinator", sites=[site["code"]])
    second = app.test_client()
    login(second, "coord2")
    page = f"/console/entry/{uuid}"
    a = drawn_form(first.get(page).get_data(as_text=True), "correct")
    b = drawn_form(second.get(page).get_data(as_text=True), "correct")
    r = first.post(page + "/correct", data=edited(a, name="张建华", reason="名字写错"))
    assert r.status_code == 302
    r = second.post(page + "/correct", data=edited(b, temperature="38.0", reason="体温看错"))
    assert r.status_code == 302
    stored = [
        json.loads(row[0]) for row in db.execute("SELECT changes FROM corrections ORDER BY id")
    ]
    assert stored == [{"name": "张建华"}, {"temperature": 38.0}]
    html = second.get(page).get_data(as_text=True)
    assert "<h1>张建华" in html and "38.0 °C" in html


def test_a_form_sent_twice_saves_one_correction_and_one_void(world, db):
    """A double tap (or a retry after a lost answer) of the same form is one record, and the
    second answer says it was saved, not that nothing changed."""
    client, uuid = world["client"], world["uuid"]
    page = f"/console/entry/{uuid}"
    form = edited(
        drawn_form(client.get(page).get_data(as_text=True), "correct"), name="张建华", reason="写错"
    )
    assert client.post(page + "/correct", data=form).status_code == 302
    r = client.post(page + "/correct", data=form, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "已经保存过了" in html and "没有任何修改" not in html
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'correct'").fetchone()[0] == 1
    form = edited(drawn_form(client.get(page).get_data(as_text=True), "void"), reason="重复登记")
    assert client.post(page + "/void", data=form).status_code == 302
    html = client.post(page + "/void", data=form, follow_redirects=True).get_data(as_text=True)
    assert "已经保存过了" in html and html.count("<strong>已作废</strong>") == 1
    assert db.execute("SELECT count(*) FROM corrections WHERE void = 1").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'void'").fetchone()[0] == 1


def test_a_correction_then_a_void_from_one_drawn_page_are_two_records(world, db):
    """The page's two forms are two records: voiding from the page a correction was sent
    from (the back button) is not taken for the correction sent again."""
    client, uuid = world["client"], world["uuid"]
    page = f"/console/entry/{uuid}"
    html = client.get(page).get_data(as_text=True)
    fix = edited(drawn_form(html, "correct"), name="张建华", reason="写错")
    assert client.post(page + "/correct", data=fix).status_code == 302
    void = edited(drawn_form(html, "void"), reason="重复登记")
    html = client.post(page + "/void", data=void, follow_redirects=True).get_data(as_text=True)
    assert "已经保存过了" not in html and "<strong>已作废</strong>" in html
    assert db.execute("SELECT count(*) FROM corrections WHERE void = 1").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 2


def test_a_voided_entry_is_neither_voided_again_nor_corrected(app, world, db):
    """Another coordinator voided the entry while this one's page was open: a void from it
    adds nothing, a correction from it is refused with why (its form is no longer offered)."""
    uuid, first = world["uuid"], world["client"]
    make_user(app, "coord2", "coordinator", sites=[world["site"]["code"]])
    second = app.test_client()
    login(second, "coord2")
    page = f"/console/entry/{uuid}"
    late_void = drawn_form(second.get(page).get_data(as_text=True), "void")
    late_fix = drawn_form(second.get(page).get_data(as_text=True), "correct")
    void = drawn_form(first.get(page).get_data(as_text=True), "void")
    assert first.post(page + "/void", data=edited(void, reason="测试数据")).status_code == 302
    r = second.post(
        page + "/void", data=edited(late_void, reason="也是测试"), follow_redirects=True
    )
    assert "该登记已经作废" in r.get_data(as_text=True)
    r = second.post(page + "/correct", data=edited(late_fix, name="王磊", reason="改名"))
    assert r.status_code == 422 and "该登记已作废，不能再更正" in r.get_data(as_text=True)
    rows = db.execute("SELECT void, reason FROM corrections").fetchall()
    assert [tuple(row) for row in rows] == [(1, "测试数据")]


def test_a_post_without_the_travel_field_leaves_the_travel_answer(app, db):
    """A correction posted without the travel field (not from the page, whose checkbox is
    followed by a hidden 0) changes what it names, not the travel answer."""
    site = make_site(app, "乙小区")
    (uuid,) = save(app, wire_entry(site["id"], travel=True, travel_where="武汉"))
    make_user(app, "coord", "coordinator", sites=[site["code"]])
    client = app.test_client()
    login(client, "coord")
    r = post(client, f"/console/entry/{uuid}/correct", name="张建华", reason="名字写错")
    assert r.status_code == 302
    assert [json.loads(row[0]) for row in db.execute("SELECT changes FROM corrections")] == [
        {"name": "张建华"}
    ]
    html = client.get(f"/console/entry/{uuid}").get_data(as_text=True)
    assert "<dd>武汉</dd>" in html


def test_what_was_done_for_a_fever_is_for_a_fever_only(world, db):
    """The gate asks what was done only for a fever: a correction that gives it to a reading
    below 37.3 °C is refused with why, and nothing is saved; with the reading corrected to a
    fever in the same correction it is taken."""
    client, uuid = world["client"], world["uuid"]
    path = f"/console/entry/{uuid}/correct"
    r = post(client, path, reason="补处置", **correct_form(fever_action="clinic"))
    assert r.status_code == 422
    assert "发热处置：仅用于发热（37.3 °C 及以上）；此次体温为 36.6 °C。" in r.get_data(
        as_text=True
    )
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0
    form = correct_form(temperature="38.0", fever_action="clinic")
    assert post(client, path, reason="体温看错", **form).status_code == 302
    row = db.execute("SELECT changes FROM corrections").fetchone()
    assert json.loads(row[0]) == {"temperature": 38.0, "fever_action": "clinic"}


@pytest.mark.parametrize(
    "reason", ["重复\x07登记", "\x1b[31m重复登记\x1b[0m", "重复登记\u202e记登", "重复\n登记"]
)
def test_a_reason_with_a_control_character_is_refused_and_nothing_saved(world, db, reason):
    """A reason is shown on the entry's page, in its history and in exports: a bell, a
    terminal's escape, a mark that reverses the text after it or a line break is refused with
    why, in the coordinator's language, from the void form and from the correction form."""
    client, uuid = world["client"], world["uuid"]
    r = post(client, f"/console/entry/{uuid}/void", reason=reason)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "原因：须为一行，不能含制表符或不可见字符。" in html
    assert "原因：原因" not in html  # its name said once
    assert _panel(html, "标记作废").startswith('<details class="panel" open>')
    r = client.post(
        f"/console/entry/{uuid}/void",
        data={"csrf_token": csrf(client, "/console/login"), "reason": reason},
        headers={"Accept-Language": "zh-TW"},
    )
    assert r.status_code == 422 and "原因：須為一行，不能含定位字元或不可見字元。" in r.text
    r = post(client, f"/console/entry/{uuid}/correct", reason=reason, **correct_form(name="张建华"))
    assert r.status_code == 422 and "原因：须为一行，不能含制表符或不可见字符。" in r.text
    assert db.execute("SELECT count(*) FROM corrections").fetchone()[0] == 0
    assert (
        db.execute("SELECT count(*) FROM audit_log WHERE action IN ('void', 'correct')").fetchone()[
            0
        ]
        == 0
    )
    assert "已作废" not in client.get(f"/console/entry/{uuid}").text


@pytest.fixture
def void_from_another_connection(app, monkeypatch):
    """race(uuid): once the console has looked at the entry (is it there, void already?),
    another connection to the same database file tries at once to void it, as another
    coordinator's request or a record arriving by sync would; what it got ("applied", or
    "locked" while the console's write transaction holds the database) is appended to the
    list race returns."""
    other = connect(app.config["DATABASE"])
    other.execute("PRAGMA busy_timeout=0")  # no waiting: locked out now, or not at all
    looked = logbook.entry

    def race(uuid):
        raced: list[str] = []

        def look_then_void(conn, entry_uuid):
            found = looked(conn, entry_uuid)
            if not raced:
                record = corrections.wire(uuid, "coord2", "另一位协调员作废", void=True)
                try:
                    with transaction(other):
                        raced.append(records.save(other, [record], source="console")[0].status)
                except sqlite3.OperationalError as exc:
                    assert "locked" in str(exc)
                    raced.append("locked")
            return found

        monkeypatch.setattr(logbook, "entry", look_then_void)
        return raced

    yield race
    other.close()


@pytest.mark.sqlite_only  # two connections to one SQLite file
def test_a_void_cannot_land_between_the_look_and_the_save_of_another(
    world, db, void_from_another_connection
):
    """Two coordinators void the same entry at the same instant: the console looks and saves
    in one write transaction, so the other void waits for it, then finds the entry void."""
    client, uuid = world["client"], world["uuid"]
    page = f"/console/entry/{uuid}"
    form = edited(drawn_form(client.get(page).get_data(as_text=True), "void"), reason="测试数据")
    raced = void_from_another_connection(uuid)
    html = client.post(page + "/void", data=form, follow_redirects=True).get_data(as_text=True)
    assert "该登记已标记为作废。" in html and "测试数据" in html
    rows = db.execute("SELECT void, reason, author FROM corrections").fetchall()
    assert [tuple(row) for row in rows] == [(1, "测试数据", "coord")]
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'void'").fetchone()[0] == 1
    assert raced == ["locked"]  # the other void came while the console's transaction held


@pytest.mark.sqlite_only  # two connections to one SQLite file
def test_a_correction_cannot_land_on_an_entry_voided_the_same_instant(
    world, db, void_from_another_connection
):
    """A void arrives while the console saves a correction: it waits for the correction, so
    no correction is ever stored after the entry's void."""
    client, uuid = world["client"], world["uuid"]
    page = f"/console/entry/{uuid}"
    form = edited(drawn_form(client.get(page).get_data(as_text=True), "correct"), reason="改名")
    form["name"] = "王磊"
    raced = void_from_another_connection(uuid)
    html = client.post(page + "/correct", data=form, follow_redirects=True).get_data(as_text=True)
    assert "更正已保存" in html and "<h1>王磊" in html
    rows = db.execute("SELECT void, reason FROM corrections ORDER BY recorded_at, id").fetchall()
    assert [tuple(row) for row in rows] == [(0, "改名")]
    assert raced == ["locked"]  # the void came while the console's transaction held
