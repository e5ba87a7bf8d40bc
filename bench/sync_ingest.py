"""Sync ingest: 100,000 entries through the real push endpoint vs one raw executemany.

    .venv/bin/python bench/sync_ingest.py [--records 100000] [--pushers 8] [--batch 500]

A fresh instance is served by waitress (`fieldapp serve`, one process, as an instance on SQLite
runs). PUSHERS downstream instances, each with its own token, push their
share at once, 500 records a batch, through sync.HttpTransport as `fieldapp sync` does (a
connection per batch; --keep-alive keeps one per pusher instead). Bodies are encoded before
the clock starts: we measure the upstream, not the client. Then, in the same run, the very rows
the instance stored are inserted with one `executemany` in one transaction into a fresh SQLite
file of the same schema, through the same connect() as the server's; that is done three times
and the fastest counts, so a slow raw run cannot flatter the ratio.
Prints records/s for both and the ratio.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fieldapp.db import connect, migrate  # noqa: E402
from sync import HttpTransport, SyncError  # noqa: E402

FIELDAPP = [sys.executable, "-m", "fieldapp.cli"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        FIELDAPP + list(args), env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def wire_entries(site_id: str, n: int, rng: random.Random) -> list[dict]:
    """n realistic entries at one site over the last few days."""
    now = datetime.now(UTC)
    out = []
    for _ in range(n):
        at = now - timedelta(seconds=rng.randrange(3 * 24 * 3600))
        temp = round(rng.gauss(36.5, 0.3), 1)
        out.append(
            {
                "uuid": str(uuid.uuid4()),
                "kind": "entry",
                "recorded_at": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
                "device": None,
                "data": {
                    "site_id": site_id,
                    "direction": rng.choice(("in", "out")),
                    "person_type": rng.choice(("resident", "resident", "worker", "visitor")),
                    "name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(("", *GIVEN)),
                    "phone": f"1{rng.choice('3578')}{rng.randrange(10**9):09d}",
                    "id_number": "",
                    "temperature": temp,
                    "fever_action": "clinic" if temp >= 37.3 else "",
                    "health_code": "green",
                    "travel": False,
                    "travel_where": "",
                    "plate": "",
                    "destination": f"{rng.randrange(1, 20)}-{rng.randrange(1, 5)}-{rng.randrange(101, 3000)}",
                    "note": "",
                    "volunteer": "",
                    "self_registered": False,
                },
            }
        )
    return out


def bodies_for(source: str, records: list[dict], batch: int) -> list[bytes]:
    """Push bodies as a downstream sends them: seq numbers, since/upto, compact JSON."""
    out = []
    for start in range(0, len(records), batch):
        chunk = [
            dict(r, seq=start + j + 1, origin=source)
            for j, r in enumerate(records[start : start + batch])
        ]
        body = {
            "source": source,
            "since": start,
            "upto": start + len(chunk),
            "upto_uuid": chunk[-1]["uuid"],
            "records": chunk,
        }
        out.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    return out


def pusher(port: int, token: str, bodies: list[bytes], errors: list[str], keep_alive: bool) -> None:
    """Push bodies one after the other, as `fieldapp sync` does: sync.HttpTransport, which opens
    a connection per batch. keep_alive: one persistent connection for all of them instead."""
    if keep_alive:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def push(body: bytes) -> dict:
            conn.request("POST", "/sync/v1/push", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise SyncError(f"{resp.status} {data[:200]!r}")
            return json.loads(data)
    else:
        push = HttpTransport(f"http://127.0.0.1:{port}", token, timeout=300).push
    try:
        for body in bodies:
            answer = push(body)
            bad = [r for r in answer["results"] if r["status"] != "applied"]
            if bad:
                errors.append(f"not applied: {bad[:3]}")
                return
    except SyncError as exc:
        errors.append(str(exc))
    finally:
        if keep_alive:
            conn.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process and its children have used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, IndexError, ValueError):
        return float("nan")
    return own + sum(_cpu_seconds(int(child)) for child in children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--pushers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="each pusher keeps one connection (fieldapp sync opens one per batch)",
    )
    parser.add_argument("--threads", type=int, default=8, help="waitress threads")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    folder = work / "instance"
    port = free_port()
    env = dict(
        os.environ, FIELDAPP_INSTANCE=str(folder), FIELDAPP_BASE_URL=f"http://127.0.0.1:{port}"
    )
    env.pop("FLASK_APP", None)
    cli(env, "init")
    cli(env, "demo")
    tokens = []
    for i in range(args.pushers):
        out = cli(env, "instance", "add", f"bench-{i}")
        tokens.append(next(ln for ln in out.splitlines() if len(ln) == 43 and " " not in ln))
    database = folder / "fieldapp.sqlite3"
    db = sqlite3.connect(database)
    site_id = db.execute("SELECT id FROM sites ORDER BY name LIMIT 1").fetchone()[0]
    sources = {
        t: db.execute("SELECT id FROM peers WHERE name = ?", (f"bench-{i}",)).fetchone()[0]
        for i, t in enumerate(tokens)
    }
    db.close()

    rng = random.Random(42)
    records = wire_entries(site_id, args.records, rng)
    share = (len(records) + args.pushers - 1) // args.pushers
    # A downstream pushes its change log in the order its records were made.
    work_items = [
        (
            t,
            bodies_for(
                sources[t],
                sorted(records[i * share : (i + 1) * share], key=lambda r: r["recorded_at"]),
                args.batch,
            ),
        )
        for i, t in enumerate(tokens)
    ]
    mb = sum(len(b) for _t, bs in work_items for b in bs) / 1e6

    proc = subprocess.Popen(
        FIELDAPP
        + [
            "serve",
            "--port",
            str(port),
            "--threads",
            str(args.threads),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/ping")
                c.getresponse().read()
                c.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        errors: list[str] = []
        threads = [
            threading.Thread(target=pusher, args=(port, t, bodies, errors, args.keep_alive))
            for t, bodies in work_items
        ]
        cpu0 = _cpu_seconds(proc.pid)
        client0 = time.process_time()
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        push_s = time.perf_counter() - t0
        server_cpu = _cpu_seconds(proc.pid) - cpu0
        client_cpu = time.process_time() - client0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if errors:
        raise SystemExit(f"push failed: {errors[:3]}")

    served = connect(database)
    stored = served.execute("SELECT count(*) FROM entries").fetchone()[0]
    changes = served.execute("SELECT count(*) FROM changes WHERE kind = 'entry'").fetchone()[0]
    assert stored == changes == args.records, (stored, changes)
    cols = [r[1] for r in served.execute("PRAGMA table_info(entries)")]
    rows = served.execute(f"SELECT {', '.join(cols)} FROM entries").fetchall()  # noqa: S608
    site = served.execute("SELECT * FROM sites WHERE id = ?", (site_id,)).fetchone()
    served.close()
    rows = [tuple(r) for r in rows]

    marks = ", ".join("?" * len(cols))
    raw_runs = []
    for attempt in range(3):
        raw = connect(work / f"raw-{attempt}.sqlite3")  # the server's settings
        migrate(raw)
        raw.execute(
            f"INSERT INTO sites VALUES ({', '.join('?' * len(site))})",  # noqa: S608
            tuple(site),
        )
        t0, c0 = time.perf_counter(), time.process_time()
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(f"INSERT INTO entries ({', '.join(cols)}) VALUES ({marks})", rows)  # noqa: S608
        raw.execute("COMMIT")
        raw_runs.append((time.perf_counter() - t0, time.process_time() - c0))
        raw.close()
    raw_s, raw_cpu = min(raw_runs)

    push_rate = args.records / push_s
    raw_rate = args.records / raw_s
    print(
        f"records:            {args.records} ({args.pushers} pushers, batches of {args.batch}, {mb:.1f} MB of JSON)"
    )
    print(f"HTTP push (waitress): {push_s:8.2f} s  {push_rate:10,.0f} records/s")
    print(
        f"  1 process x {args.threads} threads; server CPU during the push:"
        f" {server_cpu:.1f} s, the pushers' {client_cpu:.1f} s ({os.cpu_count()} cores)"
    )
    print(f"raw executemany:      {raw_s:8.2f} s  {raw_rate:10,.0f} records/s (fastest of 3)")
    print(f"  CPU: {raw_cpu:.1f} s")
    print(f"ratio push/raw:       {push_rate / raw_rate:8.1%}")
    # The machine is shared: wall-clock rates move with the neighbours' load. CPU seconds per
    # record move less, so the ratio by CPU is printed too.
    print(f"ratio by CPU time:    {raw_cpu / server_cpu:8.1%}  (raw CPU / server CPU for the push)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
