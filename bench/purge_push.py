"""A purge of a whole day of entries while downstreams push: the pushes' answer times beside.

    .venv/bin/python bench/purge_push.py [--expired 1000000] [--pushers 8] [--rate 2000]
        [--database postgresql://user@host/db | --database postgresql] [--quiet 40]

A central on PostgreSQL served by `fieldapp serve --workers 4` (gunicorn) holds `--expired`
entries of the day just past the retention horizon (made by PostgreSQL itself, each with its
change-log line, as pushes would have left them) besides what is pushed during the run. PUSHERS
downstream instances push at a steady `--rate` records/s in all (batches of 500, through
sync.HttpTransport as `fieldapp sync` does) for `--quiet` seconds, then through `fieldapp purge`
(which deletes 2,000 entries per write transaction, then sweeps the change log), then for
`--quiet` seconds more. Prints each phase's answer times (p50, p99, max) and records/s, and
how long the purge took.

Without --database: SQLite (waitress, one process), the same phases.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from console import FILL_PG, GIVEN, SURNAMES  # noqa: E402
from servers import FIELDAPP  # noqa: E402
from support import is_postgres, percentile, postgres  # noqa: E402
from sync_ingest import bodies_for, central, wire_entries  # noqa: E402
from wait import wait_until  # noqa: E402

from sync import HttpTransport, SyncError, horizon_for  # noqa: E402
from sync.store import iso  # noqa: E402

RETENTION_DAYS = 21  # the setting's default, which the instance keeps


def fill_expired(server, url: str | None, n: int, site: str) -> float:
    """n entries spread over the day before the horizon, each with its change-log line; the
    seconds it took."""
    horizon = datetime.fromisoformat(horizon_for(RETENTION_DAYS).replace("Z", "+00:00"))
    start = horizon - timedelta(days=1)
    origin = server.query("SELECT value FROM settings WHERE name = 'instance_id'")[0][0]
    t = time.perf_counter()
    if url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            for a in range(0, n, 1_000_000):
                params = {
                    "origin": origin,
                    "sites": [site],
                    "n": 1,
                    "sur": SURNAMES,
                    "nsur": len(SURNAMES),
                    "given": GIVEN,
                    "ngiven": len(GIVEN),
                    "start": start.timestamp(),
                    "step": 86_400 / n,
                    "a": a,
                    "b": min(n, a + 1_000_000) - 1,
                }
                pg.execute(FILL_PG, params)
            pg.execute(
                "INSERT INTO changes (kind, uuid, chain)"
                " SELECT 'entry', uuid, md5(uuid) FROM entries ORDER BY recorded_at"
            )
            pg.execute("VACUUM (ANALYZE) entries, changes")
    else:
        from fieldapp.db import connect, transaction

        conn = connect(server.target)
        with transaction(conn):
            conn.execute(
                "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < ?)"
                " INSERT INTO entries (uuid, hash, origin, recorded_at, received_at, site_id,"
                " direction, person_type, name, temperature, health_code)"
                " SELECT lower(hex(randomblob(16))), 'h', ?, strftime('%Y-%m-%dT%H:%M:%fZ',"
                " ? + n * ?, 'unixepoch'), ?, ?, 'in', 'resident', '张三', 36.5, 'green' FROM i",
                (n - 1, origin, start.timestamp(), 86_400 / n, iso(start), site),
            )
            conn.execute(
                "INSERT INTO changes (kind, uuid, chain)"
                " SELECT 'entry', uuid, uuid FROM entries ORDER BY recorded_at"
            )
        conn.close()
    return time.perf_counter() - t


def pace(port, token, bodies, interval, stop, answers, errors) -> None:
    """Push one body every `interval` seconds until stop is set or the bodies run out;
    (start, seconds) of each answer into answers."""
    push = HttpTransport(f"http://127.0.0.1:{port}", token, timeout=300).push
    due = time.perf_counter()
    for body in bodies:
        if stop.is_set():
            return
        due += interval
        t = time.perf_counter()
        try:
            answer = push(body)
        except SyncError as exc:
            errors.append(str(exc))
            return
        answers.append((t, time.perf_counter() - t))
        if any(r["status"] != "applied" for r in answer["results"]):
            errors.append(f"not applied: {answer['results'][:2]}")
            return
        time.sleep(max(0.0, due - time.perf_counter()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--pushers", type=int, default=8)
    parser.add_argument("--rate", type=int, default=2000, help="records/s of all pushers")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--quiet", type=float, default=40, help="seconds before and after")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--purge-guess", type=float, default=300, help="seconds of records to have for the purge"
    )
    parser.add_argument("--database", help="postgresql://… or postgresql (SQLite without it)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    pg_spec = args.database if is_postgres(args.database) else None
    with postgres(pg_spec) if pg_spec else nullcontext() as pg:
        url = pg.schema("purge") if pg else None
        server, ids = central(work / "central", args.pushers, database_url=url)
        if url:
            server.serve_args = ("--workers", str(args.workers), "--threads", "8")
        else:
            server.serve_args = ("--threads", "8")
        # Today's background purge counts as done, so the server's own job leaves the
        # expired day to the `fieldapp purge` timed below.
        server.start()
        wait_until(lambda: server.query("SELECT count(*) FROM purge_log")[0][0], 60, "a purge")
        server.stop()
        secs = fill_expired(server, url, args.expired, ids["site"])
        print(f"{args.expired:,} expired entries and their log lines made in {secs:.0f} s")

        # Enough records for the whole run at the rate asked (the purge's length guessed
        # generously); every pusher paces its batches to its share of the rate.
        tokens = [t for t in ids if t != "site"]
        per_pusher = int(args.rate / len(tokens) * (2 * args.quiet + args.purge_guess))
        per_pusher -= per_pusher % args.batch
        records = wire_entries(ids["site"], per_pusher * len(tokens), seed=7)
        interval = args.batch * len(tokens) / args.rate
        work_bodies = [
            (
                t,
                bodies_for(
                    ids[t],
                    sorted(
                        records[i * per_pusher : (i + 1) * per_pusher],
                        key=lambda r: r["recorded_at"],
                    ),
                    args.batch,
                ),
            )
            for i, t in enumerate(tokens)
        ]
        server.start()
        stop = threading.Event()
        answers: list[tuple[float, float]] = []
        errors: list[str] = []
        threads = [
            threading.Thread(
                target=pace, args=(server.port, t, bodies, interval, stop, answers, errors)
            )
            for t, bodies in work_bodies
        ]
        try:
            t0 = time.perf_counter()
            for i, th in enumerate(threads):
                th.start()
                time.sleep(interval / len(threads) if i < len(threads) - 1 else 0)
            time.sleep(args.quiet)
            p0 = time.perf_counter()
            purged = subprocess.run(
                [*FIELDAPP, "purge"], env=server.env, cwd=ROOT, capture_output=True, text=True
            )
            p1 = time.perf_counter()
            time.sleep(args.quiet)
            stop.set()
            for th in threads:
                th.join()
            t1 = time.perf_counter()
        finally:
            stop.set()
            server.stop()
        if errors:
            raise SystemExit(f"push failed: {errors[:3]}")
        if max(s for s, _d in answers) < t1 - 2 * interval:
            print("the pushers ran out of records before the end: raise --purge-guess")
        if purged.returncode != 0:
            raise SystemExit(f"purge failed: {purged.stderr[-2000:]}")
        left = server.query(
            "SELECT count(*) FROM entries WHERE recorded_at < ?", (horizon_for(RETENTION_DAYS),)
        )[0][0]
        engine = f"PostgreSQL, gunicorn {args.workers} workers" if url else "SQLite, waitress"
        print(
            f"{engine}; {args.pushers} pushers at {args.rate:,} records/s in all,"
            f" batches of {args.batch}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
        )
        print(
            f"purge: {p1 - p0:.1f} s, {args.expired - left:,} expired entries deleted, {left} left"
        )
        phases = (
            ("before the purge", t0, p0),
            ("during the purge", p0, p1),
            ("after the purge", p1, t1),
        )
        for label, a, b in phases:
            times = [d for s, d in answers if a <= s < b]
            n = len(times) * args.batch
            print(
                f"push {label:17s} {len(times):4d} answers, {n / (b - a):7,.0f} records/s;"
                f" answer p50 {percentile(times, 50) * 1000:6.0f} ms,"
                f" p99 {percentile(times, 99) * 1000:6.0f} ms,"
                f" max {max(times, default=float('nan')) * 1000:6.0f} ms"
            )
        print(f"started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
