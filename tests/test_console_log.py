"""The log: filters, keyset pagination, masking by default, deliberate and audited unmasking."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from console_support import csrf, login, make_site, make_user, save, wire_entry

from fieldapp import records
from fieldapp.db import connect


def ts(days_ago=0, minutes=0):
    t = datetime.now(UTC) - timedelta(days=days_ago, minutes=minutes)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def world(app):
    a = make_site(app, "阳光花园小区", "金坛区")
    b = make_site(app, "人民医院扩建工地", "金坛区", "construction")
    ids = save(
        app,
        wire_entry(
            a["id"],
            name="张建国",
            phone="13812345678",
            id_number="11010519491231002X",
            recorded_at=ts(0, 5),
        ),
        wire_entry(
            a["id"],
            name="李秀英",
            phone="13951234567",
            direction="out",
            temperature=38.1,
            fever_action="clinic",
            recorded_at=ts(0, 4),
        ),
        wire_entry(
            b["id"],
            name="赵志强",
            phone="13770001234",
            person_type="worker",
            plate="苏D12345",
            health_code="yellow",
            recorded_at=ts(0, 3),
        ),
        wire_entry(
            b["id"],
            name="孙海波",
            phone="",
            person_type="worker",
            travel=True,
            travel_where="武汉",
            recorded_at=ts(0, 2),
        ),
        wire_entry(a["id"], name="王磊", phone="15861234567", recorded_at=ts(3)),
    )
    make_user(app, "coord", "coordinator", districts=["金坛区"])
    make_user(app, "viewer", "viewer")
    return {"a": a, "b": b, "ids": ids}


def names(html):
    return re.findall(r'<strong class="name">([^<]+)</strong>', html)


def page(client, query=""):
    """The log for those query arguments (a text search, q, is sent on to its token URL)."""
    r = client.get("/console/log" + query, follow_redirects=True)
    assert r.status_code == 200
    return r.get_data(as_text=True)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", ["孙海波", "赵志强", "李秀英", "张建国", "王磊"]),
        ("?direction=out", ["李秀英"]),
        ("?person_type=worker", ["孙海波", "赵志强"]),
        ("?fever=1", ["李秀英"]),
        ("?travel=1", ["孙海波"]),
        ("?health_code=yellow", ["赵志强"]),
        ("?q=苏D123", ["赵志强"]),
        ("?q=5678", ["张建国"]),
        ("?q=建", ["张建国"]),
        ("?q=100%25", []),
    ],
)
def test_filters(app, world, query, expected):
    client = app.test_client()
    login(client, "coord")
    assert names(page(client, query)) == expected


def test_site_and_date_filters(app, world):
    client = app.test_client()
    login(client, "coord")
    assert names(page(client, f"?site={world['b']['id']}")) == ["孙海波", "赵志强"]
    old = (datetime.now(UTC) - timedelta(days=3)).astimezone().date()
    # Local (Asia/Shanghai) days: the entry of 3 days ago is on that local date or the next.
    found = names(
        page(client, f"?date_from={old - timedelta(days=1)}&date_to={old + timedelta(days=1)}")
    )
    assert found == ["王磊"]


def test_days_typed_with_full_width_digits_filter_as_typed_in_ascii(app, world):
    """A Chinese input method in full-width mode types "２０２６－１２－０７": the log reads it
    as 2026-12-07, and the fever cases (which count local days from it) too."""
    client = app.test_client()
    login(client, "coord")
    old = (datetime.now(UTC) - timedelta(days=3)).astimezone().date()
    wide = str.maketrans("0123456789-", "０１２３４５６７８９－")
    first, last = (
        str(d).translate(wide) for d in (old - timedelta(days=1), old + timedelta(days=1))
    )
    html = page(client, f"?date_from={first}&date_to={last}")
    assert names(html) == ["王磊"]
    assert f'value="{old - timedelta(days=1)}"' in html  # the filter shown as it was read
    cases = client.get(f"/console/cases?status=all&date_from={first}&date_to={last}")
    assert cases.status_code == 200 and "日期格式" not in cases.text


def test_bad_filters_say_what_is_wrong(app, world):
    client = app.test_client()
    login(client, "coord")
    html = page(client, "?date_from=15/02/2020&direction=sideways")
    assert "日期格式应为 2020-02-15" in html
    assert "筛选条件的选项无效" in html
    assert len(names(html)) == 5  # the bad filters are dropped, the log still shows
    # The last day there is: its end is beyond what a date can hold (was a 500).
    html = page(client, "?date_from=9999-12-31&date_to=9999-12-31")
    assert "日期 9999-12-31 超出范围" in html
    assert len(names(html)) == 5
    assert client.get("/console/cases?date_to=9999-12-31").status_code == 200


@pytest.mark.parametrize("rid", ["99999999999999999999999", "9223372036854775808", "%C2%B2"])
def test_a_tampered_cursor_lists_from_the_top(app, world, rid):
    """An id beyond SQL's integers, or a digit that is not ASCII ("²"), was a 500."""
    client = app.test_client()
    login(client, "coord")
    html = page(client, f"?after=2026-12-07T00:00:00.000Z~{rid}")
    assert names(html) == ["孙海波", "赵志强", "李秀英", "张建国", "王磊"]


def test_a_site_filter_outside_the_scope_lists_nothing_and_exports_nothing(app, world, db):
    other = make_site(app, "丙小区", "溧阳市")
    save(app, wire_entry(other["id"], name="周德才"))
    visitor = {"site_id": world["a"]["id"], "direction": "in", "name": "钱访客"}
    visitor.update(health_code="green", travel=False, temperature=None)
    save(app, records.new("registration", visitor))  # never checked at the gate
    client = app.test_client()
    login(client, "coord")
    assert "钱访客" in page(client)
    for site in (other["id"], "no-such-site"):
        html = page(client, f"?site={site}")
        assert "您无权查看该场所" in html and "没有符合条件的登记" in html
        assert names(html) == [] and "钱访客" not in html and "周德才" not in html
        assert "（不在您的场所范围内）</option>" in html  # not "All sites"
        token = csrf(client, "/console/login")
        r = client.post(
            "/console/export", data={"csrf_token": token, "format": "csv", "site": site}
        )
        assert r.status_code == 302 and f"site={site}" in r.headers["Location"]
        assert "您无权查看该场所" in client.get(r.headers["Location"]).get_data(as_text=True)
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'export'").fetchone()[0] == 0


def test_a_first_day_after_the_last_says_so(app, world, db):
    client = app.test_client()
    login(client, "coord")
    today = datetime.now(UTC).date()
    query = f"?date_from={today + timedelta(days=1)}&date_to={today - timedelta(days=1)}"
    html = page(client, query)
    assert "开始日期晚于结束日期，因此没有符合条件的记录。" in html and names(html) == []
    token = csrf(client, "/console/login")
    form = {"csrf_token": token, "format": "csv", "date_from": str(today + timedelta(days=1))}
    r = client.post("/console/export", data={**form, "date_to": str(today)})
    assert r.status_code == 302  # refused with the message, no empty file
    said = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "开始日期晚于结束日期" in said
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'export'").fetchone()[0] == 0
    # The same day at both ends is one day, not a contradiction.
    html = page(client, f"?date_from={today}&date_to={today}")
    assert "开始日期晚于" not in html
    traditional = page(client, query + "&lang=zh_Hant")
    assert "開始日期晚於結束日期，因此沒有符合條件的記錄。" in traditional


def test_htmx_gets_only_the_fragment(app, world):
    client = app.test_client()
    login(client, "coord")
    r = client.get("/console/log?fever=1", headers={"HX-Request": "true"})
    assert "HX-Request" in r.headers["Vary"]
    html = r.get_data(as_text=True)
    assert "<html" not in html and names(html) == ["李秀英"]
    full = client.get("/console/log?fever=1")
    assert "<html" in full.get_data(as_text=True) and "HX-Request" in full.headers["Vary"]


def test_keyset_pages_cover_everything_once(app, monkeypatch):
    from fieldapp.console import logbook

    monkeypatch.setattr(logbook, "PAGE_SIZE", 7)
    site = make_site(app)
    # Several share the same recorded_at: the id breaks the tie, nothing is skipped or repeated.
    same = ts(0, 30)
    save(
        app,
        *[
            wire_entry(site["id"], name=f"人{i:02d}", recorded_at=same if i % 3 == 0 else ts(0, i))
            for i in range(25)
        ],
    )
    make_user(app, "root", "admin")
    client = app.test_client()
    login(client, "root")
    seen, path = [], "/console/log"
    while path:
        html = page(client, path.removeprefix("/console/log"))
        seen += names(html)
        m = re.search(r'rel="next" href="([^"]+)"', html)
        path = m.group(1).replace("&amp;", "&") if m else None
    assert sorted(seen) == [f"人{i:02d}" for i in range(25)]
    assert len(seen) == 25


def test_personal_data_masked_by_default(app, world):
    client = app.test_client()
    login(client, "coord")
    html = page(client)
    assert "138****5678" in html and "13812345678" not in html
    entry = client.get(f"/console/entry/{world['ids'][0]}").get_data(as_text=True)
    assert "110105********002X" in entry
    assert "11010519491231002X" not in entry and "13812345678" not in entry


def test_viewer_sees_masked_names_and_cannot_unmask(app, world, db):
    client = app.test_client()
    login(client, "viewer")
    html = page(client)
    assert "张**" in html and "张建国" not in html and "13812345678" not in html
    entry = client.get(f"/console/entry/{world['ids'][0]}").get_data(as_text=True)
    assert "显示完整手机号" not in entry
    token = csrf(client, "/console/login")
    r = client.post(f"/console/entry/{world['ids'][0]}/unmask", data={"csrf_token": token})
    assert r.status_code == 403
    assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'unmask'").fetchone()[0] == 0


def test_unmask_is_a_post_and_is_audited(app, world, db):
    client = app.test_client()
    login(client, "coord")
    uuid = world["ids"][0]
    token = csrf(client, f"/console/entry/{uuid}")
    r = client.post(f"/console/entry/{uuid}/unmask", data={"csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/console/entry/{uuid}")
    html = client.get(f"/console/entry/{uuid}").get_data(as_text=True)
    assert "13812345678" in html and "11010519491231002X" in html
    row = db.execute(
        "SELECT actor, action, target FROM audit_log WHERE action = 'unmask'"
    ).fetchone()
    assert tuple(row) == ("coord", "unmask", uuid)
    # Only that entry, and the list stays masked.
    assert "13812345678" not in page(client)
    other = client.get(f"/console/entry/{world['ids'][1]}").get_data(as_text=True)
    assert "显示完整手机号" in other


def test_viewer_search_does_not_reach_names_or_phones(app, world):
    client = app.test_client()
    login(client, "viewer")
    assert names(page(client, "?q=13812345678")) == []
    assert names(page(client, "?q=张建国")) == []
    assert names(page(client, "?q=苏D123")) == ["赵**"]
    coord = app.test_client()
    login(coord, "coord")
    assert names(page(coord, "?q=13812345678")) == ["张建国"]


def test_fever_and_travel_filters_follow_the_corrections(app, monkeypatch):
    """The filters "fever only" and "travel only" list the entries whose current value is one
    (a voided entry never): the fever cases, page after page, and the travel answers as
    corrected."""
    from console_support import hours_of, save_corrected_day

    from fieldapp import days
    from fieldapp.console import cases, logbook

    monkeypatch.setattr(logbook, "PAGE_SIZE", 2)  # the fevers over two pages
    site = make_site(app, "改正小区", "金坛区")
    day = days.today("Asia/Shanghai") - timedelta(days=2)
    at = hours_of(day)
    expected = save_corrected_day(app, site["id"], at)
    # Answers stored as yes around the one a correction turned to yes: pages of two merge them.
    save(
        app,
        *(
            wire_entry(site["id"], name=name, travel=True, travel_where="武汉", recorded_at=at(h))
            for name, h in (("早出行", 7), ("午出行", 14.5), ("晚出行", 18))
        ),
    )
    make_user(app, "coord", "coordinator", districts=["金坛区"])
    client = app.test_client()
    login(client, "coord")

    def listed(query):
        seen, path = [], f"/console/log?site={site['id']}&{query}"
        while path:
            html = page(client, path.removeprefix("/console/log"))
            seen += names(html)
            m = re.search(r'rel="next" href="([^"]+)"', html)
            path = m.group(1).replace("&amp;", "&") if m else None
        return seen

    assert listed("fever=1") == expected["fever_names"]
    assert listed(f"fever=1&date_from={day}&date_to={day}") == expected["fever_names"]
    assert listed(f"fever=1&date_from={day + timedelta(days=1)}") == []
    assert listed("fever=1&person_type=visitor") == ["真发烧"]
    travel = ["晚出行", "午出行", *expected["travel_names"], "早出行"]
    assert listed("travel=1") == travel
    assert listed(f"travel=1&date_to={day}") == travel
    assert listed("travel=1&fever=1") == []
    assert listed("") == [
        "晚出行",
        *expected["names"][:2],
        "午出行",
        *expected["names"][2:],
        "早出行",
    ]
    conn = connect(app.config["DATABASE"])
    try:
        fever_cases = cases.listing(conn, [site["id"]], datetime.now(UTC), "all")
    finally:
        conn.close()
    assert sorted(c["entry"]["name"] for c in fever_cases) == sorted(expected["fever_names"])


def test_every_filter_and_the_search_follow_the_corrections(app):
    """A health code, a direction, a person type or a name a coordinator corrected is found
    by its current value, in the log and the export; the value it was recorded
    with no longer finds it."""
    from fieldapp.console import corrections

    def wire_correction(entry_uuid, **changes):
        return corrections.wire(entry_uuid, "王协调", "登记时点错", changes)

    site = make_site(app, "改正小区", "金坛区")
    greened, reddened, red, turned = save(
        app,
        wire_entry(site["id"], name="转绿", health_code="red", recorded_at=ts(minutes=40)),
        wire_entry(site["id"], name="李四", health_code="green", recorded_at=ts(minutes=30)),
        wire_entry(site["id"], name="本是红码", health_code="red", recorded_at=ts(minutes=20)),
        wire_entry(site["id"], name="其实出门", direction="in", recorded_at=ts(minutes=10)),
    )
    save(
        app,
        wire_correction(greened, health_code="green"),
        wire_correction(reddened, health_code="red", name="李思", person_type="visitor"),
        wire_correction(turned, direction="out"),
    )
    make_user(app, "coord", "coordinator", districts=["金坛区"])
    client = app.test_client()
    login(client, "coord")
    assert names(page(client, "?health_code=red")) == ["本是红码", "李思"]
    assert names(page(client, "?health_code=green")) == ["其实出门", "转绿"]
    assert names(page(client, "?direction=out")) == ["其实出门"]
    assert names(page(client, "?direction=in&person_type=visitor")) == ["李思"]
    assert names(page(client, "?q=李思")) == ["李思"]
    assert names(page(client, "?q=李四")) == []
    token = csrf(client, "/console/login")
    body = client.post(
        "/console/export", data={"csrf_token": token, "format": "csv", "health_code": "red"}
    ).get_data(as_text=True)
    assert reddened in body and red in body and greened not in body


def search(client, **form):
    """The filters form as posted: the answer, not followed."""
    token = csrf(client, "/console/log")
    return client.post("/console/log", data={"csrf_token": token, **form})


def test_a_searched_name_never_goes_in_a_url(app, world):
    """Not the redirect, nor the links of the page it leads to (pages, export): access logs,
    the browser's history and a Referer keep URLs. The pages still page through the search."""
    from fieldapp.console.logbook import PAGE_SIZE

    more = [f"张建{i:02d}" for i in range(PAGE_SIZE)]  # newer than 张建国: he is on page 2
    save(app, *(wire_entry(world["a"]["id"], name=n, recorded_at=ts(0, 1)) for n in more))
    client = app.test_client()
    login(client, "coord")
    r = search(client, q="张建", fever="")
    assert r.status_code == 303
    url = r.headers["Location"]
    assert "张" not in url and "%E5%BC%A0" not in url.upper() and "q=" not in url
    first = client.get(url).get_data(as_text=True)
    assert sorted(names(first)) == more
    hrefs = re.findall(r'href="([^"]+)"', first) + re.findall(r'action="([^"]+)"', first)
    assert not [h for h in hrefs if "%E5%BC%A0" in h.upper() or "q=" in h]
    older = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    assert names(second) == ["张建国"]  # the search goes on
    assert 'value="张建"' in second  # the search box still says what was searched
    assert not re.search(r'rel="next"', second)


def test_a_search_with_other_filters_keeps_them_in_the_url(app, world):
    client = app.test_client()
    login(client, "coord")
    r = search(client, q="李秀英", fever="1", direction="out")
    url = r.headers["Location"]
    assert "fever=1" in url and "direction=out" in url and "李" not in url
    assert names(client.get(url).get_data(as_text=True)) == ["李秀英"]


def test_htmx_posts_the_search_and_gets_the_fragment(app, world):
    client = app.test_client()
    login(client, "coord")
    token = csrf(client, "/console/log")
    r = client.post(
        "/console/log",
        data={"csrf_token": token, "q": "5678"},
        headers={"HX-Request": "true"},
        follow_redirects=True,
    )
    html = r.get_data(as_text=True)
    assert "<html" not in html and names(html) == ["张建国"]
    assert "5678" not in r.request.url


def test_the_search_form_is_posted_with_its_token(app, world):
    client = app.test_client()
    login(client, "coord")
    html = page(client)
    form = re.search(
        r'<form method="post" action="/console/log" class="filters".*?</form>', html, re.S
    )
    assert form and 'hx-post="/console/log"' in form.group(0)
    assert 'name="csrf_token"' in form.group(0) and 'name="q"' in form.group(0)
    r = client.post("/console/log", data={"q": "张建国"})  # no CSRF token: refused
    assert r.status_code == 400


def test_a_url_with_a_search_is_sent_to_its_token(app, world):
    """A bookmark from before: the same search, under a URL without the name."""
    client = app.test_client()
    login(client, "coord")
    r = client.get("/console/log?q=张建国&fever=")
    assert r.status_code == 303 and "q=" not in r.headers["Location"]
    assert names(client.get(r.headers["Location"]).get_data(as_text=True)) == ["张建国"]


def test_a_search_another_session_made_lists_nothing_and_says_so(app, world):
    """A token is this session's: elsewhere (another browser, signed in again) the link
    does not list the whole log as if it matched."""
    client = app.test_client()
    login(client, "coord")
    url = search(client, q="张建国").headers["Location"]
    other = app.test_client()
    login(other, "coord")
    html = other.get(url).get_data(as_text=True)
    assert "此搜索已不再保留，请重新输入。" in html
    assert names(html) == []


def test_a_refused_search_says_why_without_a_redirect(app, world):
    client = app.test_client()
    login(client, "coord")
    r = search(client, q="张" * 51)
    assert r.status_code == 200
    assert "搜索内容超过 50 个字符。" in r.get_data(as_text=True)


def test_a_refused_export_goes_back_to_the_log_without_the_name(app, world):
    client = app.test_client()
    login(client, "coord")
    token = csrf(client, "/console/log")
    r = client.post("/console/export", data={"csrf_token": token, "format": "pdf", "q": "张建国"})
    url = r.headers["Location"]
    assert "q=" not in url and "%E5%BC%A0" not in url.upper()
    assert names(client.get(url).get_data(as_text=True)) == ["张建国"]
