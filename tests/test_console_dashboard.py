"""Today's dashboard: counts per site, people inside, fevers, silent sites, sync, SVG charts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from console_support import login, make_site, make_user, save, wire_entry
from gate_helpers import HX, enrol, submit

import sync.peers
from fieldapp.db import transaction


@pytest.fixture
def world(app, db):
    a = make_site(app, "阳光花园小区", "金坛区")
    b = make_site(app, "人民医院扩建工地", "金坛区", "construction")
    c = make_site(app, "丙小区", "溧阳市")
    yesterday = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    save(
        app,
        wire_entry(a["id"], name="张建国"),
        wire_entry(a["id"], name="李秀英"),
        wire_entry(a["id"], name="王磊", direction="out"),
        wire_entry(a["id"], name="陈晓梅", temperature=38.4, fever_action="clinic"),
        wire_entry(b["id"], name="赵志强", person_type="worker", travel=True, travel_where="武汉"),
        wire_entry(c["id"], name="周德才"),
        wire_entry(b["id"], name="昨天的人", recorded_at=yesterday),
    )
    with transaction(db):
        phone, _token = sync.peers.create(db, "device", "1号门岗手机", a["id"])
        just_now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        db.execute("UPDATE peers SET last_push_at = ? WHERE id = ?", (just_now, phone.id))
        sync.peers.create(db, "device", "丙小区手机", c["id"])
        sync.peers.create(db, "instance", "金坛区服务器")
    make_user(app, "coord", "coordinator", districts=["金坛区"])
    return {"a": a, "b": b, "c": c}


def row_of(html, site):
    m = re.search(r"<tr[^>]*>\s*<td><a[^>]*>" + site + r"</a>.*?</tr>", html, re.S)
    assert m, site
    return [int(x) for x in re.findall(r"<td>(?:<a[^>]*>)?(\d+)(?:</a>)?</td>", m.group(0))]


def test_a_sites_links_open_its_log_and_its_fevers(app, world):
    """The fever count of a site's row is today's, and so is what its link lists."""
    before = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    save(
        app,
        wire_entry(
            world["a"]["id"],
            name="前天发烧",
            temperature=38.9,
            recorded_at=before,
            fever_action="clinic",
        ),
    )
    client = app.test_client()
    login(client, "coord")
    html = client.get("/console/").get_data(as_text=True)
    row = re.search(r"<tr[^>]*>\s*<td><a[^>]*>阳光花园小区</a>.*?</tr>", html, re.S).group(0)
    site_link, fever_link = (
        href.replace("&amp;", "&") for href in re.findall(r'href="([^"]+)"', row)
    )
    site_log = client.get(site_link).get_data(as_text=True)
    assert all(name in site_log for name in ("张建国", "李秀英", "王磊", "陈晓梅"))
    assert "赵志强" not in site_log  # another site
    fever_log = client.get(fever_link).get_data(as_text=True)
    assert "陈晓梅" in fever_log and "张建国" not in fever_log
    assert "前天发烧" not in fever_log and "前天发烧" in site_log


def test_dashboard_counts_today_in_scope(app, world):
    client = app.test_client()
    login(client, "coord")
    r = client.get("/console/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    # in, out, inside now, fevers, travel
    assert row_of(html, "阳光花园小区") == [3, 1, 2, 1, 0]
    assert row_of(html, "人民医院扩建工地") == [1, 0, 1, 0, 1]
    assert "丙小区" not in html and "周德才" not in html  # another district
    assert '<strong id="open-cases">1</strong>' in html
    assert "<svg" in html and html.count('class="bar"') == 24
    assert "1号门岗手机" in html and "金坛区服务器" in html and "丙小区手机" not in html
    assert re.search(r"1号门岗手机 <span class=\"muted\">阳光花园小区</span>", html)
    # The phone pushed a moment ago; the instance never has: only it is flagged.
    assert html.count("超过 2 小时未同步") == 1
    assert re.search(r"金坛区服务器.*?超过 2 小时未同步", html, re.S)
    assert 'hx-trigger="every 30s"' in html


def test_silent_sites_listed(app, world):
    quiet = make_site(app, "新建小区", "金坛区")
    client = app.test_client()
    login(client, "coord")
    html = client.get("/console/").get_data(as_text=True)
    silent = html[html.index("今日尚无登记的场所") :]
    assert quiet["name"] in silent
    assert "阳光花园小区" not in silent.split("</ul>")[0]


def test_polling_gets_the_fragment(app, world):
    client = app.test_client()
    login(client, "coord")
    r = client.get("/console/", headers={"HX-Request": "true"})
    html = r.get_data(as_text=True)
    assert "<html" not in html and 'id="open-cases"' in html
    assert "HX-Request" in r.headers["Vary"]


def test_upstream_waiting_records_shown(app, world):
    app.config.update(UPSTREAM_URL="http://city.test", UPSTREAM_TOKEN="t0ken")
    client = app.test_client()
    login(client, "coord")
    html = client.get("/console/").get_data(as_text=True)
    assert "http://city.test" in html
    # Seven entries were stored here and none has been pushed yet.
    assert '<strong id="upstream-waiting">7</strong>' in html


def test_a_phone_saving_online_through_the_gate_form_has_synced(app, db):
    """Three entries saved online by an enrolled phone: the dashboard lists it as a phone
    (手机, not 手机号) that synced just now, with 3 records, not as never synced."""
    site = make_site(app, "阳光花园小区", "金坛区")
    gate = enrol(app.test_client(), db, site)
    for name in ("张建国", "李秀英", "王磊"):
        response, uid = submit(gate, site, headers=HX, name=name)
        assert response.status_code == 200
        assert response.headers["X-Outbox-Stored"] == uid  # the phone counts it as sent
    again, _uid = submit(gate, site, headers=HX, uuid=uid)  # a retry stores nothing new
    assert again.status_code == 200
    phone = db.execute(
        "SELECT last_push_at, last_seen_at, records_in FROM peers WHERE kind = 'device'"
    ).fetchone()
    saved_at = db.execute("SELECT max(received_at) FROM entries").fetchone()[0]
    assert tuple(phone) == (saved_at, saved_at, 3)

    make_user(app, "coord", "coordinator", districts=["金坛区"])
    client = app.test_client()
    login(client, "coord")
    html = client.get("/console/").get_data(as_text=True)
    row = re.search(r"<tr><td>门岗1号.*?</tr>", html, re.S).group(0)
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    assert cells[1] == "手机"
    assert "从未" not in row and "超过 2 小时未同步" not in row
    assert cells[3] == "3"
    english = client.get("/console/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<td>Gate phone</td>" in english


def test_a_city_of_sites_and_phones_is_shown_in_part_with_where_to_see_all(app, db, monkeypatch):
    """Past dashboard.SHOWN rows (lowered to 3 here) a table shows the sites with fevers first,
    then the busiest, and says how many there are and where every one is listed."""
    monkeypatch.setattr("fieldapp.console.dashboard.SHOWN", 3)
    made = [make_site(app, f"场所{i}", "金坛区") for i in range(8)]
    save(
        app,
        wire_entry(made[5]["id"], name="甲", temperature=38.1, fever_action="clinic"),
        *(wire_entry(made[4]["id"], name=f"乙{i}") for i in range(3)),
        *(wire_entry(made[0]["id"], name=f"丙{i}") for i in range(2)),
        wire_entry(made[1]["id"], name="丁"),
    )
    with transaction(db):
        for i in range(5):
            sync.peers.create(db, "device", f"手机{i}", made[i]["id"])
        phone = sync.peers.create(db, "device", "刚同步的手机", made[5]["id"])[0]
        just_now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        db.execute("UPDATE peers SET last_push_at = ? WHERE id = ?", (just_now, phone.id))
    make_user(app, "root", "admin")
    client = app.test_client()
    login(client, "root")
    html = client.get("/console/").get_data(as_text=True)
    table = html[html.index('<table class="sites">') : html.index("</table>")]
    assert re.findall(r"<td><a[^>]*>(场所\d)</a>", table) == ["场所5", "场所4", "场所0"]
    assert "显示 8 个场所中的 3 个" in html
    silent = html[html.index("今日尚无登记的场所") :]
    assert len(re.findall(r"<li>场所[2367]", silent)) == 3 and "另有 1 个：见每日点名" in silent
    peers = html[html.index("显示 6 个中的 3 个") - 3000 : html.index("显示 6 个中的 3 个")]
    assert "刚同步的手机" not in peers and peers.count("超过 2 小时未同步") == 3


def closed_long_ago(db, site) -> None:
    """site closed in 2020, as the console's close does it (its closing kept)."""
    with transaction(db):
        db.execute(
            "UPDATE sites SET active = 0, closed_at = ? WHERE id = ?",
            ("2020-01-01T00:00:00.000Z", site["id"]),
        )
        db.execute(
            "INSERT INTO site_closures (site_id, closed_at) VALUES (?, ?)",
            (site["id"], "2020-01-01T00:00:00.000Z"),
        )


def test_a_site_closed_today_keeps_its_entries_and_fevers_on_todays_dashboard(app, db, world):
    """阳光花园小区 closes at noon after a morning of entries, a fever among them: today's
    figures still count them, as today's roll-call still lists the site and the log its fever;
    a site closed before today is not listed."""
    runner = app.test_cli_runner()
    assert runner.invoke(args=["site", "deactivate", world["a"]["code"]]).exit_code == 0
    gone = make_site(app, "去年的小区", "金坛区")
    closed_long_ago(db, gone)
    client = app.test_client()
    login(client, "coord")
    html = client.get("/console/").get_data(as_text=True)
    assert row_of(html, "阳光花园小区") == [3, 1, 2, 1, 0]
    tiles = html[: html.index("</ul>")]
    assert "<strong>4</strong>" in tiles  # in: 3 here and 1 at the building site
    assert re.search(r"<strong>1</strong> 今日发热", tiles)  # the closed site's fever
    assert "去年的小区" not in html


def test_entries_of_today_at_a_site_closed_before_today_are_counted(app, db, world):
    """A phone kept entries offline at a site that was closed before today and pushes them:
    the log lists today's fever there and so does the fever cases' count, so the dashboard's
    tiles, its site table and its hour chart count them too."""
    gone = make_site(app, "已关闭小区", "金坛区")
    closed_long_ago(db, gone)
    save(app, wire_entry(gone["id"], name="晚到发烧", temperature=38.6, fever_action="clinic"))
    client = app.test_client()
    login(client, "coord")
    html = client.get("/console/").get_data(as_text=True)
    assert row_of(html, "已关闭小区") == [1, 0, 1, 1, 0]
    tiles = html[: html.index("</ul>")]
    assert re.search(r"<strong>2</strong> 今日发热", tiles)  # 阳光花园小区's and this one
    assert "<strong>5</strong> 进" in tiles  # 3 + 1 + this one
    hours = [int(n) for n in re.findall(r"<title>\d+:00 · (\d+)</title>", html)]
    assert sum(hours) == 6  # every entry of today in the district: the tiles' in and out
    fevers = client.get(
        re.search(r'href="([^"]+)"><strong>2</strong> 今日发热', tiles)
        .group(1)
        .replace("&amp;", "&")
    ).get_data(as_text=True)
    assert "晚到发烧" in fevers and "陈晓梅" in fevers
