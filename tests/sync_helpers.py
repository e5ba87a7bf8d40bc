"""Helpers for the sync tests: wire records, sites, real instances in their own processes."""

from __future__ import annotations

import glob
import json
import runpy
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console_support import wire_entry

import sync
from fieldapp import days, records
from fieldapp.db import connect

NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄强")


def stamp(minutes_ago: float = 5) -> str:
    """A recorded_at a few minutes ago, as the wire carries it."""
    dt = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def entry(site_id: str, i: int = 0, **data: Any) -> dict[str, Any]:
    """A valid entry wire record at site_id, a few minutes old, its person varied by i
    (override data fields with keywords)."""
    varied = {
        "direction": "in" if i % 2 == 0 else "out",
        "name": NAMES[i % len(NAMES)],
        "phone": f"138{i % 100_000_000:08d}",
        "destination": f"{i % 9 + 1}-{i % 4 + 1}-{i % 30 + 101}",
    }
    return wire_entry(site_id, recorded_at=stamp(), **{**varied, **data})


def add_site(database: str | Path, name: str = "幸福里小区") -> str:
    """Create a site (the way `fieldapp site add` does) and return its id."""
    from fieldapp.gate import sites

    conn = connect(database)
    try:
        return sites.add_site(conn, name, "residential")["id"]
    finally:
        conn.close()


def instance_app(folder: Path):
    """A Flask app over a served instance's folder (its own keys), for writing records in-process."""
    from fieldapp import create_app

    keys = runpy.run_path(str(folder / "config.py"))
    return create_app(
        {
            "TESTING": True,
            "DATABASE": keys.get("DATABASE_URL") or str(folder / "fieldapp.sqlite3"),
            "SECRET_KEY": keys["SECRET_KEY"],
            "ID_KEY": keys["ID_KEY"],
        }
    )


def save_records(folder: Path, wire: list[dict[str, Any]], device: str | None = None) -> list[str]:
    """Store records at an instance as its gate (or a phone's push) would; their statuses."""
    from fieldapp import records

    app = instance_app(folder)
    with app.test_request_context():
        conn = connect(app.config["DATABASE"])
        try:
            saved = records.save(conn, wire, source=device or "gate", device=device)
            return [r.status for r in saved]
        finally:
            conn.close()


def http(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any]]:
    """One JSON request; (status, answer) even for 4xx."""
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def add_instance(upstream, name: str) -> str:
    """`fieldapp instance add NAME` on a served instance; the token it prints once."""
    out = upstream.cli("instance", "add", name).stdout
    tokens = [ln for ln in out.splitlines() if len(ln) == 43 and " " not in ln]
    assert len(tokens) == 1, out
    return tokens[0]


def link(downstream, upstream, name: str) -> None:
    """Make `downstream` push to `upstream` (instance add there, upstream set here)."""
    token = add_instance(upstream, name)
    downstream.cli("upstream", "set", upstream.url, token)


def snapshot(server, folder: Path) -> Path:
    """Last night's backup of a live instance, made as the README says: `fieldapp backup` for
    SQLite, pg_dump for PostgreSQL. The backup's path."""
    if server.target.startswith("postgresql"):
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / "central.dump"
        subprocess.run([pg_tool("pg_dump"), "-Fc", "-f", str(copy), server.target], check=True)
        return copy
    server.cli("backup", "--out", str(folder))
    (copy,) = folder.glob("fieldapp-*.sqlite3")
    return copy


def restore(server, copy: Path) -> None:
    """Put a backup back in place of a (stopped) instance's database, as the README says."""
    if server.target.startswith("postgresql"):
        subprocess.run(
            [pg_tool("pg_restore"), "--clean", "--if-exists", "-d", server.target, str(copy)],
            check=True,
        )
        return
    server.cli("restore", str(copy))


def pg_tool(name: str) -> str:
    """A PostgreSQL client program (pg_dump, pg_restore) of the newest installed version."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else name


def uuids(server, table: str = "entries") -> list[str]:
    """Every uuid an instance holds in table, duplicates included."""
    return [r[0] for r in server.query(f"SELECT uuid FROM {table}")]


def stop(server) -> None:
    """Stop a served instance and close its stderr pipe (the fixture leaves it open)."""
    server.stop()
    if server.proc is not None and server.proc.stderr is not None:
        server.proc.stderr.close()


def kill(server) -> None:
    """SIGKILL a served instance, its workers too: no clean shutdown, no checkpoint."""
    server.kill()


def start(server) -> None:
    """Start a served instance (Server.start's readiness probe leaves a socket to the GC)."""
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        server.start()
        gc.collect()


# A record kind of the tests' own, for the protocol alone (sync/ knows no entries).
NOTES = """CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, hash TEXT NOT NULL, origin TEXT NOT NULL,
    device TEXT, recorded_at TEXT NOT NULL, received_at TEXT NOT NULL, text TEXT NOT NULL)"""


def _validate(_conn, data):
    text = data.get("text")
    if not isinstance(text, str) or not text:
        raise sync.Invalid("text is required")
    return {"text": text}


REGISTRY = sync.Registry(
    [
        sync.RecordKind(
            name="note",
            table="notes",
            validate=_validate,
            to_row=lambda d: {"text": d["text"]},
            from_row=lambda row: {"text": row["text"]},
            columns=("text",),
            expires=False,
        )
    ]
)


def other_kinds(server, site_id: str, entry_uuid: str) -> list[dict]:
    """A daily report, a correction and a visitor's registration made at an instance."""
    from fieldapp.reports import daily as reports

    app = instance_app(server.folder)
    with app.test_request_context():
        conn = connect(app.config["DATABASE"])
        try:
            tz = app.config["TIMEZONE"]
            data = reports.draft(conn, site_id, days.today(tz), tz, reporter="值班员")
        finally:
            conn.close()
    correction = records.new(
        "correction",
        {
            "entry_uuid": entry_uuid,
            "changes": {"destination": "5-1-502"},
            "void": False,
            "reason": "房号登记错了",
            "author": "值班员",
        },
        recorded_at=entry(site_id)["recorded_at"],
    )
    registration = records.new(
        "registration",
        {
            "site_id": site_id,
            "direction": "in",
            "name": "访客王",
            "phone": "",
            "health_code": "green",
            "travel": False,
            "travel_where": "",
            "destination": "",
            "temperature": None,
        },
        recorded_at=entry(site_id)["recorded_at"],
    )
    # The gate staff's entries that name what their form was filled from: the visitor's
    # registration (their pass scanned) and a roster person (their card scanned).
    person = server.query("SELECT id FROM roster WHERE site_id = ? LIMIT 1", (site_id,))[0][0]
    checked = entry(
        site_id,
        1,
        name="访客王",
        person_type="visitor",
        phone="",
        registration_uuid=registration["uuid"],
    )
    resident = entry(site_id, 2, roster_id=person)
    return [reports.new_record(data), correction, registration, checked, resident]


class Upstream:
    """An upstream that takes every record pushed and whose pull answers the payload given."""

    def __init__(self, payload) -> None:
        self.payload = payload

    def cursor(self):
        return {"source": "office", "cursor": 0}

    def push(self, body: bytes):
        batch = json.loads(body)
        applied = [{"uuid": r["uuid"], "status": "applied"} for r in batch["records"]]
        return {"results": applied, "cursor": batch.get("upto") or batch.get("since") or 0}

    def pull(self, since, since_id=None):
        return self.payload


# The site an upstream sends in the tests of pulls (site()).
SITE_ID = "5d0c1a53-0d8e-4a49-9e55-3d8f1c9b2a10"


def site(**changed) -> dict:
    """A site row as an upstream sends it."""
    row = {
        "id": SITE_ID,
        "name": "上游小区",
        "kind": "residential",
        "code": "UpstreamCode1234",
        "active": 1,
        "created_at": "2026-01-01T00:00:00.000Z",
    }
    return {**row, **changed}
