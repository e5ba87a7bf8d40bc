"""A visitor's pass the gate staff can trust: the visitor registers without a temperature and
gets a pass on their screen; the gate phone scans it, reads the registration and saves the entry
that names it; a registration nobody checked shows as such in the console's log. At a
self-service site the visitor takes their own temperature and a fever shows on the pass."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from console_support import csrf, login, make_user, wire_entry
from gate_helpers import enrol, make_site
from reports_support import purge_past_a_week

from fieldapp import records
from fieldapp.gate import passes, selfreg, sites
from sync.store import iso

VISITOR = {
    "name": "赵小明",
    "phone": "13912345678",
    "direction": "in",
    "health_code": "yellow",
    "travel": "y",
    "travel_where": "上海市浦东新区",
    "destination": "3-2-501",
    "consent": "y",
}


@pytest.fixture
def site(app, db):
    with app.app_context():
        return dict(make_site(db))


def shown_form(client, site) -> dict[str, str]:
    """The hidden fields of the visitor's form as a page shows it: its CSRF token and its
    registration's uuid."""
    html = client.get(f"/s/{site['code']}/register").get_data(as_text=True)
    found = dict(re.findall(r'name="(csrf_token|uuid)" type="hidden" value="([^"]*)"', html))
    assert set(found) == {"csrf_token", "uuid"}, html
    return found


def register(client, site, **changes):
    """The visitor's form posted; the registration's uuid (from the pass's address)."""
    data = {**VISITOR, **changes, **shown_form(client, site)}
    done = client.post(f"/s/{site['code']}/register", data=data)
    assert done.status_code == 303, done.get_data(as_text=True)
    match = re.search(r"/pass/([0-9a-f-]{36})$", done.headers["Location"])
    assert match, done.headers["Location"]
    return match.group(1)


def registration_record(site_id, at, name="钱访客"):
    return records.new(
        "registration",
        {
            "site_id": site_id,
            "direction": "in",
            "name": name,
            "health_code": "green",
            "travel": False,
            "temperature": None,
        },
        recorded_at=at,
    )


def test_the_visitor_gets_a_pass_not_a_green_screen(app, client, db, site):
    form = client.get(f"/s/{site['code']}").get_data(as_text=True)
    assert 'id="self-register"' in form and 'name="temperature"' not in form
    registration = register(client, site)
    stored = db.execute("SELECT * FROM registrations").fetchone()
    assert stored["uuid"] == registration and stored["temperature"] is None
    assert (stored["name"], stored["health_code"], stored["travel"]) == ("赵小明", "yellow", 1)
    assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 0

    shown = client.get(f"/s/{site['code']}/pass/{registration}")
    assert shown.headers["Cache-Control"] == "no-store"
    html = shown.get_data(as_text=True)
    assert "阳光花园小区" in html and "访客凭证" in html
    assert "赵*明" in html and "赵小明" not in html  # masked: over a shoulder, no whole name
    assert "黄码" in html and "上海市浦东新区" in html
    assert "data-pass-clock" in html and "pass-sweep" in html
    assert re.search(r'src="/static/js/pass\.[0-9a-f]{12}\.js"', html)  # hashed, kept a year
    assert "13912345678" not in html
    # Its QR code says which site and which registration, nothing about the person.
    assert re.search(r"<svg[^>]*viewBox=\"0 0 \d+ \d+\"", html)
    assert selfreg.pass_text(site["id"], registration) == (
        f"{passes.VISIT_PREFIX}{site['id']}:{registration}"
    )
    # Opened again from the poster, the same phone is offered its pass.
    again = client.get(f"/s/{site['code']}").get_data(as_text=True)
    assert f"/s/{site['code']}/pass/{registration}" in again


def test_the_pass_shows_only_on_the_phone_that_registered(app, client, db, site):
    registration = register(client, site)
    other = app.test_client()
    seen = other.get(f"/s/{site['code']}/pass/{registration}")
    assert seen.status_code == 404
    text = seen.get_data(as_text=True)
    assert "只在登记时用的手机上显示" in text and "赵" not in text


def test_htmx_registration_gets_the_pass_fragment(app, client, db, site):
    token = csrf(client, f"/s/{site['code']}/register")
    done = client.post(
        f"/s/{site['code']}/register",
        data={**VISITOR, "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert done.status_code == 200
    html = done.get_data(as_text=True)
    assert '<div id="self-register">' in html and "data-pass" in html and "<html" not in html


def test_self_service_takes_the_visitors_temperature_and_shows_a_fever(
    app, client, db, site, runner
):
    assert runner.invoke(args=["site", "self-service", site["code"], "--on"]).exit_code == 0
    form = client.get(f"/s/{site['code']}").get_data(as_text=True)
    assert 'name="temperature"' in form
    token = csrf(client, f"/s/{site['code']}/register")
    refused = client.post(f"/s/{site['code']}/register", data={**VISITOR, "csrf_token": token})
    assert refused.status_code == 422 and "请填写此项" in refused.get_data(as_text=True)
    registration = register(client, site, temperature="38,1")
    html = client.get(f"/s/{site['code']}/pass/{registration}").get_data(as_text=True)
    fever = re.search(
        r'<div class="pass-fever" role="alert" data-pass-fever>(.*?)</div>', html, re.S
    )
    assert fever, html
    assert "38.1 °C，发热" in fever.group(1) and "请不要进入" in fever.group(1)
    assert "物业 0519-82800000" in fever.group(1)  # who to tell
    # Nobody keeps this gate: the registration comes with its entry, linked, both or neither.
    entry = db.execute(
        "SELECT temperature, fever_action, self_registered, registration_uuid, person_type"
        " FROM entries"
    ).fetchone()
    assert tuple(entry) == (38.1, "other", 1, registration, "visitor")
    assert db.execute("SELECT temperature FROM registrations").fetchone()[0] == 38.1
    assert runner.invoke(args=["site", "self-service", site["code"], "--off"]).exit_code == 0
    assert 'name="temperature"' not in client.get(f"/s/{site['code']}").get_data(as_text=True)


def checked_at_the_gate(app, db, site, name: str, registration: str) -> None:
    """The visitor's entry saved by the gate phone that scanned their pass: it names the
    registration."""
    with app.test_request_context():
        records.save(
            db,
            [
                wire_entry(
                    site["id"], name=name, person_type="visitor", registration_uuid=registration
                )
            ],
            source="test",
        )


def test_the_gate_phone_reads_the_registration_it_scanned(app, client, db, site):
    visitor = app.test_client()
    registration = register(visitor, site)
    url = f"/s/{site['code']}/registrations/{registration}"
    assert client.get(url).status_code == 401  # not a gate phone: nobody's registration
    enrol(client, db, site)
    got = client.get(url)
    assert got.status_code == 200 and got.headers["Cache-Control"] == "no-store"
    body = got.get_json()
    assert body["name"] == "赵小明" and body["health_code"] == "yellow"
    assert body["travel"] is True and body["travel_where"] == "上海市浦东新区"
    assert body["checked"] == [] and body["temperature"] is None

    # Saved at the gate with the link: the next scan says it was checked already.
    checked_at_the_gate(app, db, site, "赵小明", registration)
    assert len(client.get(url).get_json()["checked"]) == 1

    other = make_site(db, "城东工地", "construction")
    missing = client.get(f"/s/{other['code']}/registrations/{registration}")
    assert missing.status_code == 404 and "另一台服务器" in missing.get_json()["error"]
    assert client.get(f"/s/{site['code']}/registrations/nonsense").status_code == 404


def test_a_pass_of_an_earlier_day_is_no_longer_valid(app, client, db, site):
    old = registration_record(site["id"], iso(datetime.now(UTC) - timedelta(days=2)))
    with app.test_request_context():
        assert records.save(db, [old], source="test")[0].status == "applied"
    enrol(client, db, site)
    got = client.get(f"/s/{site['code']}/registrations/{old['uuid']}")
    assert got.status_code == 410 and "已失效" in got.get_json()["error"]


def test_the_log_shows_who_was_never_checked_at_the_gate(app, client, db, site):
    visitor = app.test_client()
    checked = register(visitor, site, name="孙已查")
    unchecked = register(visitor, site, name="周未查")
    checked_at_the_gate(app, db, site, "孙已查", checked)
    make_user(app, "admin", "admin")
    make_user(app, "guest", "viewer")
    login(client, "admin")
    html = client.get("/console/log").get_data(as_text=True)
    section = re.search(r'<section class="unchecked".*?</section>', html, re.S)
    assert section, html
    assert "自行登记但未在门岗核验的访客（1）" in section.group(0)
    assert "周未查" in section.group(0) and "未在门岗核验" in section.group(0)
    assert "孙已查" not in section.group(0)
    assert "已核验访客凭证" in html  # the entry that checked the other one says so
    assert unchecked not in html

    viewer = app.test_client()
    login(viewer, "guest")
    masked = viewer.get("/console/log").get_data(as_text=True)
    assert "周**" in masked and "周未查" not in masked


def test_registrations_expire_with_the_entries(app, db, site):
    now = datetime.now(UTC)
    old = registration_record(site["id"], iso(now - timedelta(days=10)))
    fresh = registration_record(site["id"], iso(now - timedelta(days=1)))
    with app.test_request_context():
        assert [r.status for r in records.save(db, [old, fresh], source="t")] == ["applied"] * 2
    purge_past_a_week(app, db, now=now)
    assert [r[0] for r in db.execute("SELECT uuid FROM registrations")] == [fresh["uuid"]]
    assert old["uuid"] not in {r[0] for r in db.execute("SELECT uuid FROM changes")}
    db.execute("INSERT INTO settings (name, value) VALUES ('retention_days', '7')")
    with app.test_request_context():  # sent again later: acknowledged, not stored again
        assert records.save(db, [old], source="t")[0].status == "expired"


def test_a_registration_is_checked_like_any_record(app, db, site):
    bad = registration_record(site["id"], iso(datetime.now(UTC)))
    bad["data"]["health_code"] = "purple"
    worse = registration_record(site["id"], iso(datetime.now(UTC)))
    worse["data"]["temperature"] = "51"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        results = records.save(db, [bad, worse], source="t")
    assert [r.status for r in results] == ["rejected", "rejected"]
    assert "Choose the colour it shows." in results[0].reason
    assert "51 °C is impossible" in results[1].reason


def test_the_same_form_sent_again_after_its_answer_was_lost_is_one_visit(
    app, client, db, site, runner
):
    """The bar dropped after the instance stored the registration: the visitor read "not sent"
    and tapped Register again. That is the same registration: one registration, one entry,
    and the answer is the pass the first tap would have shown."""
    assert runner.invoke(args=["site", "self-service", site["code"], "--on"]).exit_code == 0
    form = {**VISITOR, "temperature": "36.6", **shown_form(client, site)}
    before = client.get_cookie("session").value  # what the phone holds: the answer never came
    first = client.post(f"/s/{site['code']}/register", data=form)
    assert first.status_code == 303
    client.set_cookie("session", before)
    again = client.post(f"/s/{site['code']}/register", data=form)
    assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Location"].endswith(f"/pass/{form['uuid']}")
    client.set_cookie("session", before)
    fragment = client.post(f"/s/{site['code']}/register", data=form, headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "data-pass-qr" in html and "赵*明" in html
    assert "36.6 °C" in html and "flash-error" not in html
    assert [tuple(r) for r in db.execute("SELECT uuid, name FROM registrations")] == [
        (form["uuid"], "赵小明")
    ]
    entries = db.execute("SELECT registration_uuid FROM entries").fetchall()
    assert [r[0] for r in entries] == [form["uuid"]]  # counted once
    assert db.execute("SELECT count(*) FROM changes").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM sync_rejects").fetchone()[0] == 0
    # The phone that sent it opens its pass again.
    assert client.get(f"/s/{site['code']}/pass/{form['uuid']}").status_code == 200
    # "Register another person": a new form, a new registration.
    assert shown_form(client, site)["uuid"] != form["uuid"]


@pytest.mark.parametrize(
    "sent",
    [
        "nonsense",
        "",
        "6F1C0B5E-1D2A-4C3B-9E8F-7A6B5C4D3E2F",  # no form of ours writes capitals
        "00000000-0000-0000-0000-000000000000",  # not a random id
        "6f1c0b5e-1d2a-1c3b-9e8f-7a6b5c4d3e2f",  # a time-based one
        "6f1c0b5e1d2a4c3b9e8f7a6b5c4d3e2f",
    ],
)
def test_a_form_with_an_id_no_page_gives_is_refused_and_saves_nothing(app, client, db, site, sent):
    form = {**VISITOR, **shown_form(client, site), "uuid": sent}
    refused = client.post(f"/s/{site['code']}/register", data=form)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "这张表格在传送中损坏，本次未保存" in html
    assert db.execute("SELECT count(*) FROM registrations").fetchone()[0] == 0
    # What was typed stays, with an id a page gives: the next tap registers.
    renewed = re.search(r'name="uuid" type="hidden" value="([^"]*)"', html).group(1)
    assert selfreg.is_form_id(renewed) and 'value="赵小明"' in html
    done = client.post(f"/s/{site['code']}/register", data={**form, "uuid": renewed})
    assert done.status_code == 303
    assert [r[0] for r in db.execute("SELECT uuid FROM registrations")] == [renewed]


def test_anothers_registration_id_is_a_conflict_not_a_way_to_their_pass(app, client, db, site):
    """A pass's QR code says its registration's uuid. Sent in a form with other details, it
    neither changes that registration nor shows it: it is refused, and nothing is kept."""
    theirs = register(app.test_client(), site)  # 赵小明's, on his own phone
    form = {**VISITOR, "name": "钱多多", "health_code": "green", **shown_form(client, site)}
    refused = client.post(f"/s/{site['code']}/register", data={**form, "uuid": theirs})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "这张表格之前已用其他内容登记过" in html
    assert "赵小明" not in html and "赵*明" not in html and "data-pass" not in html
    stored = db.execute("SELECT uuid, name, health_code FROM registrations").fetchall()
    assert [tuple(r) for r in stored] == [(theirs, "赵小明", "yellow")]
    assert db.execute("SELECT count(*) FROM sync_rejects").fetchone()[0] == 0
    assert client.get(f"/s/{site['code']}/pass/{theirs}").status_code == 404
    # The same at another site, with the very same details: still someone else's.
    other = make_site(db, "城东工地", "construction")
    elsewhere = client.post(
        f"/s/{other['code']}/register",
        data={**VISITOR, **shown_form(client, other), "uuid": theirs},
    )
    assert elsewhere.status_code == 422 and "data-pass" not in elsewhere.get_data(as_text=True)
    # The form now carries a new id: tapping again registers these details as a new visit.
    renewed = re.search(r'name="uuid" type="hidden" value="([^"]*)"', html).group(1)
    assert renewed not in (theirs, form["uuid"]) and selfreg.is_form_id(renewed)
    done = client.post(f"/s/{site['code']}/register", data={**form, "uuid": renewed})
    assert done.status_code == 303
    names = [r[0] for r in db.execute("SELECT name FROM registrations ORDER BY id")]
    assert names == ["赵小明", "钱多多"]


def test_a_pass_opens_again_after_the_sites_code_changed(app, client, db, site):
    """The visitor reloads their pass after the coordinator changed the poster's code: the pass
    is theirs (this browser's registration), not the poster's."""
    registration = register(client, site)
    with app.app_context():
        sites.rotate_code(db, site["id"])
    again = client.get(f"/s/{site['code']}/pass/{registration}")
    assert again.status_code == 200 and "访客凭证" in again.text and "赵*明" in again.text


def test_a_form_opened_before_the_code_changed_is_saved_and_an_old_poster_opens_none(
    app, client, db, site
):
    form = {**VISITOR, **shown_form(client, site)}
    with app.app_context():
        sites.rotate_code(db, site["id"])
    done = client.post(f"/s/{site['code']}/register", data=form)
    assert done.status_code == 303
    assert client.get(done.headers["Location"]).status_code == 200  # the pass
    assert [tuple(r) for r in db.execute("SELECT name FROM registrations")] == [("赵小明",)]
    # The old poster scanned now: no new form.
    assert client.get(f"/s/{site['code']}/register").status_code == 404


def test_an_entry_at_another_site_does_not_check_a_registration(app, client, db, site):
    registration = register(client, site)
    with app.app_context():
        other = dict(make_site(db, "城东工地", "construction"))
    checked_at_the_gate(app, db, other, VISITOR["name"], registration)
    assert "在门岗核验" not in client.get(f"/s/{site['code']}/pass/{registration}").text
    make_user(app, "admin", "admin")
    console = app.test_client()
    login(console, "admin")
    log = console.get("/console/log").text
    section = re.search(r'<section class="unchecked".*?</section>', log, re.S)
    assert section and "赵小明" in section.group(0)  # still never checked at its own gate
    checked_at_the_gate(app, db, site, VISITOR["name"], registration)
    assert "在门岗核验" in client.get(f"/s/{site['code']}/pass/{registration}").text


def test_a_registration_whose_answer_was_lost_is_offered_on_reload_not_made_again(
    app, client, db, site
):
    """The bar dropped after the instance stored the registration: the visitor's phone never
    got the answer (nor the cookie that remembers the pass) and the visitor reloads the gate
    page. It says they registered and shows that pass, rather than an empty form that makes a
    second registration (one of them then "never checked at the gate" in the console)."""
    form = {**VISITOR, **shown_form(client, site)}
    before = client.get_cookie("session").value
    assert client.post(f"/s/{site['code']}/register", data=form).status_code == 303
    client.set_cookie("session", before)  # the answer never came
    again = client.get(f"/s/{site['code']}").get_data(as_text=True)
    assert "您已于" in again and f"/s/{site['code']}/pass/{form['uuid']}" in again
    shown = client.get(f"/s/{site['code']}/pass/{form['uuid']}")
    assert shown.status_code == 200 and "赵*明" in shown.get_data(as_text=True)
    assert [r[0] for r in db.execute("SELECT uuid FROM registrations")] == [form["uuid"]]
    # Only ids this instance gave this browser: another's pass id sent in a refused form (no
    # consent: the form comes back with it) is not taken for this browser's.
    theirs = register(app.test_client(), site, name="钱多多")
    nosy = app.test_client()
    refused = nosy.post(
        f"/s/{site['code']}/register",
        data={**VISITOR, **shown_form(nosy, site), "uuid": theirs, "consent": ""},
    )
    assert refused.status_code == 422
    assert theirs not in nosy.get(f"/s/{site['code']}").get_data(as_text=True)
    assert nosy.get(f"/s/{site['code']}/pass/{theirs}").status_code == 404


@pytest.mark.parametrize("htmx", [False, True])
def test_a_visitor_form_whose_page_expired_comes_back_with_what_was_typed(
    app, client, db, site, htmx
):
    """The phone's browser lost its session (restarted, cookies cleared) while the form was
    open: the form's token is stale. The visitor got a bare "page expired" page (or, with
    htmx, "the instance answered with an error (400)") and lost what they typed. Now the form
    comes back with it and a new token, saying nothing was saved; the next tap registers."""
    form = {**VISITOR, **shown_form(client, site)}
    client.delete_cookie("session")  # the browser restarted: the session cookie is gone
    headers = {"HX-Request": "true"} if htmx else {}
    refused = client.post(f"/s/{site['code']}/register", data=form, headers=headers)
    html = refused.get_data(as_text=True)
    assert refused.status_code == (200 if htmx else 400)
    assert "页面已过期，本次未保存" in html and "允许本网站使用 Cookie" in html
    assert 'value="赵小明"' in html and 'value="上海市浦东新区"' in html
    assert ("<html" in html) is not htmx
    assert db.execute("SELECT count(*) FROM registrations").fetchone()[0] == 0
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]*)"', html).group(1)
    done = client.post(f"/s/{site['code']}/register", data={**form, "csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"].endswith(form["uuid"])
    assert [r[0] for r in db.execute("SELECT uuid FROM registrations")] == [form["uuid"]]
    # A stale token with the session still there says nothing of cookies.
    stale = client.post(f"/s/{site['code']}/register", data={**form, "csrf_token": "stale"})
    assert stale.status_code == 400 and "页面已过期" in stale.text and "Cookie" not in stale.text


def test_the_logs_unchecked_visitors_follow_its_filters(app, client, db, site):
    """The coordinator narrows the log (red codes, a name, fevers, residents): the visitors
    "never checked at the gate" above it were every one of the dates all the same, under a
    heading that counted them as if they matched."""
    visitor = app.test_client()
    register(visitor, site, name="周红码", health_code="red", travel="", travel_where="")
    register(visitor, site, name="吴绿码", health_code="green", direction="out")
    make_user(app, "admin", "admin")
    login(client, "admin")

    def unchecked(**args) -> str:
        # A text search (q) is put under a token of the session first (opslow): followed.
        page = client.get("/console/log", query_string=args, follow_redirects=True)
        html = page.get_data(as_text=True)
        found = re.search(r'<section class="unchecked".*?</section>', html, re.S)
        return found.group(0) if found else ""

    everyone = unchecked()
    assert "（2）" in everyone and "周红码" in everyone and "吴绿码" in everyone
    for args, shown in [
        ({"health_code": "red"}, "周红码"),
        ({"q": "绿码"}, "吴绿码"),
        ({"q": "3-2-501", "travel": "1"}, "吴绿码"),
        ({"direction": "out"}, "吴绿码"),
        ({"person_type": "visitor", "direction": "in"}, "周红码"),
    ]:
        section = unchecked(**args)
        assert "（1）" in section and shown in section, (args, section)
    for args in [{"fever": "1"}, {"person_type": "resident"}, {"health_code": "yellow"}]:
        assert unchecked(**args) == "", args


def test_a_phone_that_registered_several_people_offers_each_pass(app, client, db, site):
    """A parent registers themself, then their child ("Register another person"): the gate
    page offered only the newest pass, and the parent's own was out of reach. Now each of
    today's passes of this phone is offered, by its masked name."""
    parent = register(client, site, name="赵小明")
    child = register(client, site, name="赵小宝")
    page = client.get(f"/s/{site['code']}").get_data(as_text=True)
    for registration, masked in ((parent, "赵*明"), (child, "赵*宝")):
        link = re.search(
            rf'<a [^>]*href="/s/{site["code"]}/pass/{registration}"[^>]*>([^<]*)</a>', page
        )
        assert link and masked in link.group(1), page
    assert "赵小明" not in page and "赵小宝" not in page
    assert page.index(child) < page.index(parent)  # the newest first


def test_an_entry_voided_in_the_console_no_longer_checks_the_registration(app, client, db, site):
    """The entry the gate saved for a scanned pass, voided as a mistake, checked nobody: the
    visitor is 'never checked' again (in the log, on the pass, to the next scan). A correction
    that keeps the entry keeps it checked."""
    visitor = app.test_client()
    registration = register(visitor, site)
    checked_at_the_gate(app, db, site, VISITOR["name"], registration)
    entry = db.execute(
        "SELECT uuid FROM entries WHERE registration_uuid = ?", (registration,)
    ).fetchone()[0]
    make_user(app, "admin", "admin")
    login(client, "admin")
    token = csrf(client, f"/console/entry/{entry}")

    def never_checked() -> bool:
        log = client.get("/console/log").text
        section = re.search(r'<section class="unchecked".*?</section>', log, re.S)
        return bool(section) and VISITOR["name"] in section.group(0)

    def scanned() -> list:
        phone = app.test_client()
        enrol(phone, db, site)
        return phone.get(f"/s/{site['code']}/registrations/{registration}").get_json()["checked"]

    pass_page = f"/s/{site['code']}/pass/{registration}"
    corrected = client.post(
        f"/console/entry/{entry}/correct",
        data={"csrf_token": token, "temperature": "36.8", "reason": "体温抄错"},
    )
    assert corrected.status_code == 302
    assert [tuple(r) for r in db.execute("SELECT void FROM corrections")] == [(0,)]
    assert not never_checked() and "在门岗核验" in visitor.get(pass_page).text
    assert len(scanned()) == 1

    voided = client.post(
        f"/console/entry/{entry}/void", data={"csrf_token": token, "reason": "扫错了人"}
    )
    assert voided.status_code == 302
    assert sorted(tuple(r) for r in db.execute("SELECT void FROM corrections")) == [(0,), (1,)]
    assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == 1  # the entry stays
    assert never_checked()
    assert "在门岗核验" not in visitor.get(pass_page).text
    assert scanned() == []


def test_an_old_or_closed_posters_form_says_what_is_wrong_as_its_gate_page_does(
    app, client, db, site
):
    """The poster's form address (/s/<code>/register) under a code changed since the poster was
    printed, or of a site closed since, says what /s/<code> says (the poster is out of date, the
    site is closed), not a bare 'not found'; and no registration is made from it."""
    old = site["code"]
    with app.app_context():
        sites.rotate_code(db, site["id"])
    gate, form = client.get(f"/s/{old}"), client.get(f"/s/{old}/register")
    assert gate.status_code == form.status_code == 404
    assert "此二维码已过期" in gate.text and "此二维码已过期" in form.text
    assert site["name"] in form.text

    with app.app_context():
        new = sites.get_site(db, site["id"])["code"]
        sites.set_active(db, site["id"], False)
    gate, form = client.get(f"/s/{new}"), client.get(f"/s/{new}/register")
    assert gate.status_code == form.status_code == 404
    assert "此场所已停用" in gate.text and "此场所已停用" in form.text
    assert db.execute("SELECT count(*) FROM registrations").fetchone()[0] == 0


def test_a_pass_scanned_at_a_site_closed_since_says_the_site_is_closed(app, client, db, site):
    """The gate phone's page, kept open, scans the pass of a visitor who registered before the
    site was closed: the lookup answers in JSON, as the scanner reads it, that the site is
    closed and its passes no longer valid (it got the poster's page, and the scanner said 'not
    a pass QR code'). The registration stays as it was."""
    visitor = app.test_client()
    registration = register(visitor, site)
    enrol(client, db, site)
    with app.app_context():
        sites.set_active(db, site["id"], False)
    url = f"/s/{site['code']}/registrations/{registration}"
    got = client.get(url)
    assert got.status_code == 410 and got.headers["X-Fieldapp"] == "1"
    assert got.get_json() == {"error": f"{site['name']}已停用：其访客凭证均已失效。"}
    hant = client.get(url, headers={"Accept-Language": "zh-TW"}).get_json()["error"]
    assert hant == f"{site['name']}已停用：其訪客憑證均已失效。"
    assert app.test_client().get(url).status_code == 401  # not a gate phone: told nothing
    assert [tuple(r) for r in db.execute("SELECT uuid, name FROM registrations")] == [
        (registration, VISITOR["name"])
    ]
