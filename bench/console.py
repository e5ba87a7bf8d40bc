"""Coordinator console at scale: 1,000,000 entries, then the time of the pages and the export.

    .venv/bin/python bench/console.py [--rows 1000000] [--keep DIR]

Prints: the dashboard, the first and the 100th page of the log with a filter (each the median
of a few requests through the Flask test client, signed in as an admin), and the CSV export's
rows/s and peak RSS, measured in a child process so the generation's memory does not count.
Targets (issue 5): each page ≤ 200 ms, export ≥ 100,000 rows/s, peak < 150 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from fieldapp import create_app, days  # noqa: E402
from fieldapp.console import accounts  # noqa: E402
from fieldapp.db import connect, migrate, transaction  # noqa: E402
from fieldapp.gate import sites  # noqa: E402
from fieldapp.instance import ensure_identity  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
N_SITES = 200
DAYS = 21


def generate(db_path: Path, rows: int, key: str) -> dict:
    """Fill a fresh database with sites and `rows` entries spread over 21 days, up to now."""
    conn = connect(db_path)
    migrate(conn)
    origin = ensure_identity(conn)
    app = create_app({"DATABASE": str(db_path), "SECRET_KEY": "bench", "ID_KEY": key})
    with app.app_context():
        site_rows = [
            sites.add_site(conn, f"小区{i:03d}", "residential", district=f"区{i % 10}")
            for i in range(N_SITES)
        ]
    site_ids = [s["id"] for s in site_rows]
    rnd = random.Random(7)
    # 21 whole local days ending tonight at midnight (Asia/Shanghai): the dashboard then reads a
    # full day of about 48,000 entries, the worst case, whatever the hour the bench runs.
    tz = ZoneInfo("Asia/Shanghai")
    end = datetime.combine(datetime.now(tz).date() + timedelta(days=1), dtime(0), tz)
    end = end.astimezone(UTC)
    start = end - timedelta(days=DAYS)
    step = (end - start) / rows
    t0 = time.perf_counter()
    conn.execute("PRAGMA synchronous=OFF")
    batch = []
    with transaction(conn):
        for i in range(rows):
            ts = start + step * i
            iso = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
            temp = 38.1 if rnd.random() < 0.002 else round(rnd.uniform(35.8, 37.1), 1)
            travel = 1 if rnd.random() < 0.01 else 0
            batch.append(
                (
                    str(uuid.uuid4()),
                    f"{i:032x}",
                    origin,
                    iso,
                    iso,
                    site_ids[i % N_SITES],
                    "in" if rnd.random() < 0.5 else "out",
                    "resident",
                    rnd.choice(SURNAMES) + rnd.choice(GIVEN) + rnd.choice(GIVEN),
                    f"13{rnd.randrange(10**9):09d}",
                    temp,
                    "clinic" if temp >= 37.3 else "",
                    "green",
                    travel,
                    "武汉" if travel else "",
                    f"{rnd.randrange(1, 20)}-{rnd.randrange(1, 4)}-{rnd.randrange(101, 1802)}",
                )
            )
            if len(batch) == 20_000:
                _insert(conn, batch)
                batch = []
        if batch:
            _insert(conn, batch)
    conn.execute("ANALYZE")
    conn.close()
    return {"seconds": time.perf_counter() - t0, "site": site_ids[3]}


def _insert(conn, batch) -> None:
    conn.executemany(
        "INSERT INTO entries (uuid, hash, origin, recorded_at, received_at, site_id, direction,"
        " person_type, name, phone, temperature, fever_action, health_code, travel,"
        " travel_where, destination) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch,
    )


def timed(client, path: str, repeat: int = 5) -> tuple[float, str]:
    """Median milliseconds of GET path, and the last body."""
    times, body = [], ""
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(path)
        body = r.get_data(as_text=True)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (path, r.status_code)
    return statistics.median(times), body


def pages(db_path: Path, key: str, site: str) -> None:
    """Time the dashboard and the log pages through the real views."""
    import re

    app = create_app({"DATABASE": str(db_path), "SECRET_KEY": "bench", "ID_KEY": key})
    app.config["WTF_CSRF_ENABLED"] = False
    conn = connect(db_path)
    with app.app_context():
        if accounts.get_user(conn, "bench") is None:
            accounts.create_user(conn, "bench", "admin", "bench password")
    conn.close()
    client = app.test_client()
    r = client.post("/console/login", data={"name": "bench", "password": "bench password"})
    assert r.status_code == 302, r.status_code
    ms, body = timed(client, "/console/")
    tiles = [int(n) for n in re.findall(r"<li><strong>(\d+)</strong>", body)[:2]]
    print(f"dashboard (all {N_SITES} sites, {sum(tiles)} entries today): {ms:7.1f} ms")
    for label, query in (
        ("site + direction", f"site={site}&direction=in"),
        ("fever only", "fever=1"),
        ("date range", "date_from=2000-01-01&date_to=2100-01-01"),
    ):
        first, body = timed(client, f"/console/log?{query}")
        path = f"/console/log?{query}"
        for _ in range(99):  # follow the "older" link 99 times: page 100
            match = re.search(r'rel="next" href="([^"]+)"', body)
            if not match:
                break
            path = match.group(1).replace("&amp;", "&")
            body = client.get(path).get_data(as_text=True)
        hundredth, _ = timed(client, path)
        print(f"log, {label:17s} page 1: {first:7.1f} ms   page 100: {hundredth:7.1f} ms")


def export_child(db_path: str, key: str) -> None:
    """Run in a child process: stream the whole log as CSV to /dev/null, print rows/s, RSS."""
    from fieldapp.console import exports, logbook

    app = create_app({"DATABASE": db_path, "SECRET_KEY": "bench", "ID_KEY": key})
    conn = connect(db_path)
    with app.test_request_context():
        tz = days.zone("Asia/Shanghai")
        f, _ = logbook.parse_filters({}, None)
        counted = [0]
        t, cpu = time.perf_counter(), time.process_time()
        with open("/dev/null", "w", encoding="utf-8") as out:
            chunks = exports.rows(conn, f, None, tz, "coordinator")
            for piece in exports.csv_chunks(chunks, counted.append):
                out.write(piece)
        secs, cpu = time.perf_counter() - t, time.process_time() - cpu
        n = sum(counted)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The machine may be shared: the CPU time says what the export costs whatever else runs.
    print(
        f"CSV export: {n:,} rows in {secs:.1f} s = {n / secs:,.0f} rows/s"
        f" ({n / cpu:,.0f} rows per CPU second), peak RSS {peak:.0f} MB"
    )
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> None:
    """Generate, then measure."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", help="folder for the database (reused if it exists)")
    parser.add_argument("--export-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(args.export_child, os.environ["BENCH_ID_KEY"])
        return
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-console-"))
    folder.mkdir(parents=True, exist_ok=True)
    db_path = folder / "bench.sqlite3"
    key_file = folder / "id_key"
    if not db_path.exists():
        key_file.write_text(Fernet.generate_key().decode())
        made = generate(db_path, args.rows, key_file.read_text())
        print(f"generated {args.rows:,} entries in {made['seconds']:.1f} s")
    key = key_file.read_text()
    conn = connect(db_path)
    site = conn.execute("SELECT id FROM sites ORDER BY name LIMIT 1 OFFSET 3").fetchone()[0]
    total = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    conn.close()
    print(f"database: {total:,} entries, {N_SITES} sites, {db_path.stat().st_size / 2**20:.0f} MB")
    pages(db_path, key, site)
    # The key goes by environment: a Fernet key may start with "-", which argparse reads as an option.
    subprocess.run(
        [sys.executable, __file__, "--export-child", str(db_path)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "BENCH_ID_KEY": key},
    )


if __name__ == "__main__":
    main()
