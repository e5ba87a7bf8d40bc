"""People taken off a roster and the days before: a past day's screening figures count the roster
of that day (who left since still counts), and an import that names someone taken off puts
the same person back on the roster, with their id and pass."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from console_support import login, make_user
from reports_support import added_on
from screening_support import TZ, answer, local, make_campaign, make_sites, save, today

from fieldapp import days
from fieldapp.db import transaction
from fieldapp.syncing import configuration
from sync import config as sync_config

ZH = {"LANG": "zh_CN.UTF-8"}


def cli(runner, *args):
    result = runner.invoke(args=list(args), env=ZH)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def world(app, db):
    with app.app_context():
        made = make_sites(db)
    added_on(db, today() - timedelta(days=5))  # the sites were open on the days looked at
    campaign = make_campaign(app, db)  # daily, over 金坛区, since a week ago
    person = dict(db.execute("SELECT name, id FROM roster").fetchall())
    return {"jintan": made[0], "campaign": campaign, "person": person}


# ---- a past day's figures --------------------------------------------------------------------


def test_a_past_days_coverage_counts_who_was_on_the_roster_that_day(app, db, world, runner):
    """阳光花园小区 (金坛区) had 4 people; 张建国 is taken off today, 李秀英 was at 10:00 the
    day before, 王磊 at the very midnight that began that day. Each day's page, summary,
    roll-call cell, export, CLI and site list count those on the roster that day, before and
    after the departures were made."""
    site, campaign, person = world["jintan"], world["campaign"], world["person"]
    cid = campaign.id
    d1, d2 = today() - timedelta(days=1), today() - timedelta(days=2)
    recs = [answer(cid, site["id"], person["张建国"], day=d) for d in (d1, d2)]
    assert {r.status for r in save(app, db, recs)} == {"applied"}

    make_user(app, "jintan", "coordinator", districts=["金坛区"])
    console = app.test_client()
    assert login(console, "jintan").status_code in (302, 303)

    def shown(day):
        q = f"?day={day.isoformat()}"
        page = console.get(f"/console/screening/{cid}{q}").text
        summary = re.search(r"data-summary>(.*?)</p>", page, re.S).group(1)
        rc = console.get(f"/console/rollcall{q}").text
        row = re.search(f'data-site="{site["id"]}">(.*?)</tr>', rc, re.S).group(1)
        csv = console.get(f"/console/screening/{cid}/coverage.csv{q}").data.decode("utf-8-sig")
        printed = cli(runner, "screening", "coverage", cid, "--date", day.isoformat())
        listed = console.get(f"/console/screening/{cid}/sites/{site['id']}{q}").text
        names = [n for n in site_names if n in listed]
        return summary, re.findall(r"\b\d+/\d+\b", row), csv.splitlines()[0], printed, names

    site_names = ["张建国", "李秀英", "王磊", "陈晓梅"]
    # 人民医院扩建工地 (3 people) is in 金坛区 too: 4 + 3 to screen on every day before.
    before = {day: shown(day) for day in (d2, d1, today())}
    for day, (summary, cell, csv, printed, names) in before.items():
        screened = 0 if day == today() else 1
        said = f"应排查 7 人，已排查 {screened} 人"
        assert said in summary and said in csv and said in printed, day
        assert cell == [f"{screened}/4"], day
        assert names == site_names, day

    code = site["code"]
    assert "1 人已移出名册" in cli(runner, "roster", "deactivate", code, "张建国")
    assert "2 人已移出名册" in cli(runner, "roster", "deactivate", code, "李秀英", "王磊")
    d1_start = days.bounds(d1, TZ)[0]
    with transaction(db):
        db.execute(
            "UPDATE roster SET deactivated_at = ? WHERE id = ?", (local(d1, 10), person["李秀英"])
        )
        db.execute("UPDATE roster SET deactivated_at = ? WHERE id = ?", (d1_start, person["王磊"]))
    held = db.execute(
        "SELECT name, active, deactivated_at FROM roster WHERE site_id = ? ORDER BY name",
        (site["id"],),
    ).fetchall()
    off = {r[0]: r[2] for r in held if not r[1]}
    assert set(off) == {"张建国", "李秀英", "王磊"} and off["张建国"] >= days.bounds(today(), TZ)[0]
    assert [r[0] for r in held if r[1]] == ["陈晓梅"]

    want = {
        d2: (7, 1, ["1/4"], site_names),  # all four were on it until d2 ended
        d1: (5, 1, ["1/2"], ["张建国", "陈晓梅"]),  # 张建国 left today: on it all of d1
        today(): (4, 0, ["0/1"], ["陈晓梅"]),  # today: those on it now
    }
    for day, (to_screen, screened, cell, names) in want.items():
        summary, shown_cell, csv, printed, listed = shown(day)
        said = f"应排查 {to_screen} 人，已排查 {screened} 人，未排查 {to_screen - screened} 人"
        assert said in summary and said in csv and said in printed, (day, summary)
        assert shown_cell == cell, day
        assert listed == names, day
    # The day before anyone left reads as it did before they left.
    assert shown(d2) == before[d2]


# ---- an import that names someone taken off --------------------------------------------------


def test_an_import_puts_someone_taken_off_back_with_their_id_and_pass(
    app, db, world, runner, tmp_path
):
    """张建国 moved out and was taken off; he comes back and the next roster file names him
    (the same name and phone, a new unit). The import puts his own row back on the roster, his
    id, pass and answers still his, as a configuration change that flows down, and says so."""
    site, person = world["jintan"], world["person"]
    code, his = site["code"], person["张建国"]
    phone = db.execute("SELECT phone FROM roster WHERE id = ?", (his,)).fetchone()[0]
    assert "1 人已移出名册" in cli(runner, "roster", "deactivate", code, "张建国")
    left = db.execute("SELECT pass_token, pass_issued_at, version FROM roster WHERE id = ?", (his,))
    token, issued, version = left.fetchone()
    since = sync_config.current_version(db)

    roster_file = tmp_path / "back.csv"
    roster_file.write_text(
        f"name,phone,unit\n张建国,{phone},9-9-909\n新住户,13900002222,3-1-101\n", encoding="utf-8"
    )
    out = cli(runner, "roster", "import", code, str(roster_file))
    assert "新增 1 人，更新 0 人，未变 0 人" in out
    assert "1 名已移出名册的人员重新列入名册" in out
    held = db.execute(
        "SELECT id, active, deactivated_at, unit, pass_token, pass_issued_at, version"
        " FROM roster WHERE site_id = ? AND name = '张建国'",
        (site["id"],),
    ).fetchall()
    assert [tuple(r[:6]) for r in held] == [(his, 1, None, "9-9-909", token, issued)]
    assert held[0][6] > version
    audit = db.execute(
        "SELECT action, detail FROM audit_log WHERE action LIKE 'roster_%' ORDER BY id"
    ).fetchall()
    assert [tuple(r) for r in audit] == [("roster_deactivate", his), ("roster_activate", his)]
    # It flows down: a pull since the departure gets his row, on the roster again.
    with app.app_context():
        pulled = {r["id"]: r for r in configuration.export_config(db, since)["roster"]}
    assert (pulled[his]["active"], pulled[his]["deactivated_at"]) == (1, None)
    assert "张建国" in cli(runner, "roster", "list", code)

    # The same file again changes nothing.
    out = cli(runner, "roster", "import", code, str(roster_file))
    assert "新增 0 人，更新 0 人，未变 2 人" in out and "重新列入" not in out
    assert db.execute("SELECT count(*) FROM roster WHERE name = '张建国'").fetchone()[0] == 1
