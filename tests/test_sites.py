"""Sites: the CLI, codes and their rotation, configuration versions, QR posters, the demo."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
import zxingcpp
from gate_helpers import EN, count, enrol, make_site, submit
from PIL import Image, ImageDraw
from sync_helpers import entry

from fieldapp import create_app, days, records
from fieldapp.gate import sites
from fieldapp.reports import rollcall
from fieldapp.syncing import configuration
from sync import config as sync_config


def decode_png(data: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]


def decode_svg(svg: str) -> list[str]:
    """Draw the SVG's path of unit squares (qrcode's SvgPathImage) and decode the picture."""
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).group(1))
    scale = 8
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    squares = re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H(\d+)z", svg)
    assert squares
    for x, y, x2, y2, _x in squares:
        x, y, x2, y2 = (int(v) * scale for v in (x, y, x2, y2))
        draw.rectangle([x, y, x2 - 1, y2 - 1], fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return decode_png(out.getvalue())


def test_site_add_and_list(runner, db):
    before = sync_config.current_version(db)
    result = runner.invoke(
        args=["site", "add", "--name", "阳光花园小区", "--kind", "residential", "--district", "金坛区",
              "--contact", "物业 0519-82800000", "--fields", "phone,destination"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = db.execute("SELECT * FROM sites").fetchone()
    assert (row["name"], row["kind"], row["district"], row["active"]) == (
        "阳光花园小区",
        "residential",
        "金坛区",
        1,
    )
    assert row["optional_fields"] == "phone,destination"
    assert len(row["code"]) >= 10 and re.fullmatch(r"[A-Za-z0-9_-]+", row["code"])
    assert row["version"] == before + 1 == sync_config.current_version(db)
    assert f"http://gate.test/s/{row['code']}" in result.output
    listed = runner.invoke(args=["site", "list"])
    assert row["code"] in listed.output and "阳光花园小区" in listed.output


def test_codes_are_unguessable_and_distinct(db):
    codes = {make_site(db, f"小区{i}")["code"] for i in range(20)}
    assert len(codes) == 20


def test_codes_never_look_like_command_line_options():
    # About 1 in 16 raw token_urlsafe codes starts or ends with "-" or "_"; 2000 draws show it.
    codes = [sites.new_code() for _ in range(2000)]
    assert all(c[0].isalnum() and c[-1].isalnum() and len(c) == 16 for c in codes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", " "], "Site name is required."),
        (["--name", "x" * 101], "longer than 100 characters"),
        (["--name", "工地", "--fields", "phone,shoe_size"], "Unknown optional field shoe_size"),
        (["--name", "工地", "--kind", "castle"], "Invalid value for '--kind'"),
    ],
)
def test_site_add_refuses_bad_input(runner, db, monkeypatch, args, message):
    monkeypatch.setenv("FIELDAPP_LANG", "en")
    result = runner.invoke(args=["site", "add", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert db.execute("SELECT count(*) FROM sites").fetchone()[0] == 0
    assert sync_config.current_version(db) == 0


def test_cli_messages_follow_the_users_language(runner, db, monkeypatch):
    monkeypatch.setenv("FIELDAPP_LANG", "zh_CN")
    result = runner.invoke(args=["site", "add", "--name", ""])
    assert "请填写场所名称。" in result.output


def test_rotate_code_keeps_the_old_code_as_out_of_date(runner, db, client, monkeypatch):
    monkeypatch.setenv("FIELDAPP_LANG", "en")
    site = make_site(db)
    old = site["code"]
    version = sync_config.current_version(db)
    result = runner.invoke(args=["site", "rotate-code", old])
    assert result.exit_code == 0, result.output
    new = db.execute("SELECT code, version FROM sites WHERE id = ?", (site["id"],)).fetchone()
    assert new["code"] != old and new["code"] in result.output
    assert new["version"] == version + 1
    assert (
        db.execute("SELECT site_id FROM site_old_codes WHERE code = ?", (old,)).fetchone()[0]
        == site["id"]
    )
    assert sites.by_code(db, old)[0] == "old"
    page = client.get(f"/s/{old}", headers=EN)
    assert page.status_code == 404
    assert "This poster is out of date" in page.get_data(as_text=True)
    again = runner.invoke(args=["site", "rotate-code", old])
    assert again.exit_code != 0 and "old code" in again.output


def test_a_closed_site_leaves_the_roll_call_from_the_next_day_keeps_its_records_and_can_reopen(
    app, runner, db, client, monkeypatch
):
    monkeypatch.setenv("FIELDAPP_LANG", "en")
    site, other = make_site(db), make_site(db, "建业工地", "construction")
    code = site["code"]
    version = sync_config.current_version(db)
    today = days.today("Asia/Shanghai")
    tomorrow = today + timedelta(days=1)

    def in_roll_call(day: date = today) -> list[str]:
        rc = rollcall.build(db, day, tz_name="Asia/Shanghai", cutoff="20:00")
        return [row.site_id for row in rc.rows]

    assert set(in_roll_call()) == {site["id"], other["id"]}
    response, _uuid = submit(enrol(client, db, site), site, headers=EN)
    assert response.status_code in (200, 303)
    result = runner.invoke(args=["site", "deactivate", code])
    assert result.exit_code == 0, result.output
    assert "阳光花园小区 is closed" in result.output and "records are kept" in result.output
    row = db.execute(
        "SELECT active, version, code FROM sites WHERE id = ?", (site["id"],)
    ).fetchone()
    assert (row["active"], row["version"], row["code"]) == (0, version + 1, code)
    # It was open today: today's roll-call keeps it; tomorrow's does not.
    assert set(in_roll_call()) == {site["id"], other["id"]}
    assert in_roll_call(tomorrow) == [other["id"]]
    page = client.get(f"/s/{code}", headers=EN)
    assert page.status_code == 404 and "This site is closed" in page.get_data(as_text=True)
    listed = runner.invoke(args=["site", "list"]).output
    lines = {line.split("\t")[0]: line for line in listed.splitlines()}
    assert lines[code].endswith("\t(closed)") and "(closed)" not in lines[other["code"]]
    # A downstream gets the change with its next pull.
    with app.app_context():
        pulled = configuration.export_config(db, version)
    closed_at = db.execute("SELECT closed_at FROM sites WHERE id = ?", (site["id"],)).fetchone()[0]
    assert days.local(closed_at, "Asia/Shanghai").date() == today
    assert [(s["id"], s["active"], s["closed_at"]) for s in pulled["sites"]] == [
        (site["id"], 0, closed_at)
    ]

    # What a phone registered before it heard of the closing still arrives: nothing is lost.
    with app.app_context():
        late = records.save(db, [entry(site["id"])], source="phone")
    assert [r.status for r in late] == ["applied"]
    assert count(db, "SELECT count(*) FROM entries WHERE site_id = ?", (site["id"],)) == 2

    again = runner.invoke(args=["site", "deactivate", code])
    assert again.exit_code == 0 and "already closed" in again.output
    assert sync_config.current_version(db) == version + 1

    reopened = runner.invoke(args=["site", "activate", code])
    assert reopened.exit_code == 0 and "active again" in reopened.output
    assert tuple(
        db.execute("SELECT active, closed_at FROM sites WHERE id = ?", (site["id"],)).fetchone()
    ) == (1, None)
    assert set(in_roll_call(tomorrow)) == {site["id"], other["id"]}
    assert client.get(f"/s/{code}", headers=EN).status_code == 200


def test_closing_a_site_speaks_the_users_language_and_refuses_bad_codes(runner, db, monkeypatch):
    site = make_site(db)
    result = runner.invoke(args=["site", "deactivate", site["code"]])
    assert result.exit_code == 0 and "阳光花园小区 已停用" in result.output
    assert "（已停用）" in runner.invoke(args=["site", "list"]).output
    monkeypatch.setenv("FIELDAPP_LANG", "en")
    bad = runner.invoke(args=["site", "activate", "nope"])
    assert bad.exit_code != 0 and "No site has the code nope." in bad.output
    assert db.execute("SELECT active FROM sites").fetchone()[0] == 0


def test_unknown_code_on_the_command_line(runner, db, monkeypatch):
    monkeypatch.setenv("FIELDAPP_LANG", "en")
    result = runner.invoke(args=["site", "rotate-code", "nope"])
    assert result.exit_code != 0 and "No site has the code nope." in result.output


def test_qr_png_and_svg_decode_to_the_site_url(client, db):
    site = make_site(db)
    url = f"http://gate.test/s/{site['code']}"
    png = client.get(f"/s/{site['code']}/qr.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert decode_png(png.data) == [url]
    svg = client.get(f"/s/{site['code']}/qr.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert decode_svg(svg.get_data(as_text=True)) == [url]
    assert client.get("/s/unknown/qr.svg").status_code == 404


def test_site_qr_command_writes_the_file(runner, db, tmp_path):
    site = make_site(db)
    out = tmp_path / "poster.png"
    result = runner.invoke(args=["site", "qr", site["code"], "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert decode_png(out.read_bytes()) == [f"http://gate.test/s/{site['code']}"]
    svg = tmp_path / "poster.svg"
    assert runner.invoke(args=["site", "qr", site["code"], "--out", str(svg)]).exit_code == 0
    assert decode_svg(svg.read_text()) == [f"http://gate.test/s/{site['code']}"]
    bad = runner.invoke(args=["site", "qr", site["code"], "--out", str(tmp_path / "x.gif")])
    assert bad.exit_code != 0 and not (tmp_path / "x.gif").exists()


def test_demo_seeds_once_and_prints_gate_urls(runner, db):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    rows = db.execute("SELECT name, kind, code FROM sites ORDER BY kind DESC").fetchall()
    assert [(r["name"], r["kind"]) for r in rows] == [
        ("阳光花园小区", "residential"),
        ("金坛区人民医院扩建工地", "construction"),
    ]
    for r in rows:
        assert f"http://gate.test/s/{r['code']}" in first.output
    people = db.execute("SELECT count(*) FROM roster").fetchone()[0]
    assert people >= 5
    version = sync_config.current_version(db)
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0
    assert db.execute("SELECT count(*) FROM sites").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM roster").fetchone()[0] == people
    assert sync_config.current_version(db) == version
    assert f"http://gate.test/s/{rows[0]['code']}" in second.output


def test_an_instance_with_an_upstream_does_not_edit_sites(app, monkeypatch):
    monkeypatch.setenv("FIELDAPP_LANG", "en")
    downstream = create_app({**app.config, "UPSTREAM_URL": "https://city.example"})
    runner = downstream.test_cli_runner()
    result = runner.invoke(args=["site", "add", "--name", "阳光花园小区"])
    assert result.exit_code != 0
    assert "This instance has an upstream (https://city.example)" in result.output
    closing = runner.invoke(args=["site", "deactivate", "any"])
    assert closing.exit_code != 0
    assert "This instance has an upstream (https://city.example)" in closing.output
    demo = runner.invoke(args=["demo"])
    assert demo.exit_code == 0 and "no demo seeded" in demo.output
    from fieldapp.db import connect

    conn = connect(app.config["DATABASE"])
    assert conn.execute("SELECT count(*) FROM sites").fetchone()[0] == 0
    conn.close()
