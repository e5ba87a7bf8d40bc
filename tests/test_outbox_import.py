"""Importing a phone's exported outbox: the same idempotent path as a push, all or nothing."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC, datetime

import pytest

from fieldapp.gate import sites
from fieldapp.phones import devices, outbox_import
from sync import peers

NOW = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def site(db):
    return sites.add_site(db, "幸福小区", "residential")


def record(site, name="张三", **data):
    return {
        "uuid": str(uuid.uuid4()),
        "kind": "entry",
        "recorded_at": NOW,
        "data": {
            "site_id": site["id"],
            "direction": "in",
            "person_type": "resident",
            "name": name,
            "phone": "",
            "temperature": "36.5",
            "health_code": "green",
            "travel": False,
            **data,
        },
    }


def export(records, device=None) -> dict:
    return {"format": "fieldapp-outbox", "version": 1, "device": device, "records": records}


def names(db):
    return [r[0] for r in db.execute("SELECT name FROM entries ORDER BY name")]


def test_cli_import_is_idempotent(runner, db, site, tmp_path):
    path = tmp_path / "outbox.json"
    path.write_text(json.dumps(export([record(site, "甲"), record(site, "乙")])), "utf-8")
    first = runner.invoke(args=["import-outbox", str(path)])
    assert first.exit_code == 0, first.output
    assert "新增 2 条" in first.output
    again = runner.invoke(args=["import-outbox", str(path)])
    assert "新增 0 条，已存在 2 条" in again.output
    assert names(db) == ["乙", "甲"]


def test_import_after_the_phone_pushed_the_same_records_counts_them_once(
    client, db, site, runner, tmp_path
):
    peer, token = peers.create(db, "device", "东门", site["id"])
    client.set_cookie(devices.COOKIE, token)
    rec = record(site, "甲")
    pushed = client.post("/sync/v1/push", json={"source": peer.id, "records": [rec]}).get_json()[
        "results"
    ]
    assert pushed[0]["status"] == "applied"
    path = tmp_path / "outbox.json"
    path.write_text(json.dumps(export([rec], device=peer.id)), "utf-8")
    result = runner.invoke(args=["import-outbox", str(path)])
    assert "已存在 1 条" in result.output  # a duplicate, not a conflict
    assert names(db) == ["甲"]


def test_a_refused_record_is_reported_and_the_rest_imported(runner, db, site, tmp_path):
    path = tmp_path / "outbox.json"
    bad = record(site, "坏", temperature="99")
    path.write_text(json.dumps(export([record(site, "好"), bad])), "utf-8")
    result = runner.invoke(args=["import-outbox", str(path)])
    assert result.exit_code == 0
    assert "被拒收 1 条" in result.output and bad["uuid"] in result.output
    assert names(db) == ["好"]
    assert db.execute("SELECT COUNT(*) FROM sync_rejects").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json at all", "不是 JSON"),
        (json.dumps({"format": "other"}).encode(), "不是从门岗手机导出"),
        (json.dumps({"format": "fieldapp-outbox", "version": 9, "records": []}).encode(), "版本"),
        (json.dumps({"format": "fieldapp-outbox", "version": 1, "records": {}}).encode(), "列表"),
        (b"\xff\xfe not UTF-8", "不是 JSON"),
        (b'{"format": "fieldapp-outbox", "n": ' + b"9" * 5000 + b"}", "不是 JSON"),
    ],
)
def test_a_bad_file_is_refused_with_a_clear_message(runner, db, tmp_path, content, message):
    path = tmp_path / "outbox.json"
    path.write_bytes(content)
    result = runner.invoke(args=["import-outbox", str(path)])
    assert result.exit_code != 0
    assert message in result.output
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0


def test_a_record_nested_too_deep_is_refused_alone(runner, db, site, tmp_path):
    """json.loads gives up near a thousand levels (a traceback, a 500 on the web): the file is
    read as a push is, and only the record holding it is refused."""
    deep = record(site, "深")
    deep["data"]["note"] = "NESTED"
    text = json.dumps(
        {"format": "fieldapp-outbox", "version": 1, "records": [record(site, "好"), deep]}
    ).replace('"NESTED"', "[" * 2000 + "]" * 2000)
    path = tmp_path / "outbox.json"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(args=["import-outbox", str(path)])
    assert result.exit_code == 0, result.output
    assert "被拒收 1 条" in result.output
    assert names(db) == ["好"]


def test_nothing_is_half_written_when_the_import_fails(app, db, site, monkeypatch):
    from fieldapp import records

    calls = []
    real = records.save

    def failing_save(conn, items, **kw):
        calls.append(len(items))
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(conn, items, **kw)

    monkeypatch.setattr(records, "save", failing_save)
    items = [record(site, f"人{i}") for i in range(outbox_import.BATCH + 1)]
    with app.app_context(), pytest.raises(RuntimeError):
        outbox_import.import_records(db, items, source="test")
    assert calls == [outbox_import.BATCH, 1]
    assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 0


def test_upload_page_needs_an_enrolled_phone_and_imports(client, db, site):
    assert client.get("/outbox/import").status_code == 403
    _peer, token = peers.create(db, "device", "办公室电脑", site["id"])
    client.set_cookie(devices.COOKIE, token)
    page = client.get("/outbox/import")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    data = json.dumps(export([record(site, "上传")])).encode()
    response = client.post(
        "/outbox/import",
        data={"csrf_token": csrf, "file": (io.BytesIO(data), "outbox.json")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "新增 1 条" in response.text
    assert names(db) == ["上传"]
    bad = client.post(
        "/outbox/import",
        data={"csrf_token": csrf, "file": (io.BytesIO(b"{}"), "x.json")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 400 and "不是从门岗手机导出" in bad.text
