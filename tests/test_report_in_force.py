"""The report in force when a stale report made offline arrives after a later one: every
reader (the gate's page, the console's roll-call and its CSV, `fieldapp report daily`) shows
the later one, and the database keeps both, on both engines."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest
from console_support import login, make_user
from reports_support import DAY, added_on, entry, local, save

import sync
from fieldapp.gate import sites
from fieldapp.phones import devices
from fieldapp.reports import daily as reports
from sync import peers, server


@pytest.fixture
def clock(monkeypatch):
    """Set the instance's time (its stamps, its receipts, a push's clock check): clock(t)."""

    def at(when: str) -> datetime:
        now = datetime.fromisoformat(when.replace("Z", "+00:00"))
        for module, name in ((sync, "utcnow"), (sync.store, "utcnow"), (server, "utcnow")):
            monkeypatch.setattr(module, name, lambda: now)
        return now

    return at


def hidden_fields(page: str) -> dict[str, str]:
    form = re.search(r'<form[^>]*class="report-form".*?</form>', page, re.S).group(0)
    return dict(
        re.findall(r'<input type="hidden" (?:id="\w+" )?name="(\w+)" value="([^"]*)"', form)
    )


def test_a_stale_offline_report_pushed_late_does_not_replace_a_later_one(app, db, clock):
    """18:00: a phone, offline, files A (nobody came yet). 18:30: one person in. 19:00: the site
    office files B (one in, a correction). 20:00: the phone is online again and pushes A."""
    with app.app_context():
        site = dict(sites.add_site(db, "阳光花园小区", "residential", district="金坛区"))
    added_on(db, DAY)
    phone_peer, phone_token = peers.create(db, "device", "东门 1 号机", site["id"])
    _office_id, office_token = peers.create(db, "device", "门卫室电脑", site["id"])
    app.config["WTF_CSRF_ENABLED"] = False
    url = f"/s/{site['code']}/report?day={DAY.isoformat()}"

    phone = app.test_client()
    phone.set_cookie(devices.COOKIE, phone_token)
    clock(local(DAY, 17, 50))
    drawn = hidden_fields(phone.get(url).text)
    assert (drawn["zero"], drawn["supersedes"]) == ("true", "")
    fields = {**drawn, "remarks": "手机离线填报", "reporter": "王五"}
    a = {
        "uuid": fields.pop("uuid"),
        "kind": "daily_report",
        "recorded_at": local(DAY, 18),  # what the phone stamped as it kept it
        "data": {k: v for k, v in fields.items() if k not in ("csrf_token", "recorded_at")},
    }

    clock(local(DAY, 18, 30))
    assert save(app, db, [entry(site["id"], local(DAY, 18, 30))]) == ["applied"]

    office = app.test_client()
    office.set_cookie(devices.COOKIE, office_token)
    clock(local(DAY, 19))
    form = {**hidden_fields(office.get(url).text), "remarks": "办公室更正", "reporter": "李四"}
    assert form["in_resident"] == "1"
    assert office.post(url, data=form).status_code == 303

    now = clock(local(DAY, 20))
    pushed = phone.post(
        "/sync/v1/push",
        data=json.dumps({"source": phone_peer.id, "records": [a], "sent_at": local(DAY, 20)}),
        content_type="application/json",
    )
    assert pushed.json["results"] == [{"uuid": a["uuid"], "status": "applied"}], pushed.text

    # Both kept as they were made; B is in force.
    rows = db.execute(
        "SELECT remarks, in_resident, recorded_at, received_at FROM daily_reports ORDER BY id"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        ("办公室更正", 1, local(DAY, 19), local(DAY, 19)),
        ("手机离线填报", 0, local(DAY, 18), sync.store.iso(now)),
    ]
    b = reports.current_report(db, site["id"], DAY)
    assert (b.remarks, b.counts["in_resident"]) == ("办公室更正", 1)

    # The gate's page: B's time, and the next correction supersedes B.
    page = phone.get(url).text
    assert f"{DAY.isoformat()} 的日报告已于 19:00 提交" in page
    assert hidden_fields(page)["supersedes"] == b.uuid

    # The console's roll-call, its CSV, the command line: B's figures and remarks.
    clock(sync.store.iso(datetime.now(UTC)))  # a coordinator signs in now, with a form
    app.config["WTF_CSRF_ENABLED"] = True
    make_user(app, "jt", "coordinator", districts=["金坛区"])
    coordinator = app.test_client()
    login(coordinator, "jt")
    rollcall = coordinator.get(f"/console/rollcall?day={DAY.isoformat()}").text
    line = re.search(r'<tr class="state-\w+" data-site="[^"]+">.*?</tr>', rollcall, re.S).group(0)
    assert "办公室更正" in line and "手机离线填报" not in line
    assert re.findall(r"<td>(\d+)</td>", line)[:2] == ["1", "0"]  # in, out
    exported = coordinator.get(f"/console/rollcall.csv?day={DAY.isoformat()}")
    lines = list(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    header, first = lines[0], lines[1]
    assert (first[header.index("进")], first[header.index("备注")]) == ("1", "办公室更正")
    out = app.test_cli_runner().invoke(
        args=["report", "daily", "--date", DAY.isoformat(), "--format", "csv"],
        env={"LANG": "zh_CN.UTF-8"},
    )
    assert out.exit_code == 0, out.output
    cli = list(csv.reader(io.StringIO(out.output)))
    assert cli[1][header.index("进")] == "1" and cli[1][header.index("备注")] == "办公室更正"
