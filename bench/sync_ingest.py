"""Sync ingest: 100,000 entries through the real push endpoint, beside raw inserts of the same rows.

    .venv/bin/python bench/sync_ingest.py [--records 100000] [--pushers 8] [--batch 500]
        [--database postgresql://user@host/db | --database postgresql] [--workers 4] [--rounds 1]

SQLite, always: a fresh instance served by waitress (`fieldapp serve`, one process, as an
instance on SQLite runs). PUSHERS downstream instances, each with its own token, push their
share at once, 500 records a batch, through sync.HttpTransport as `fieldapp sync` does (a
connection per batch; --keep-alive keeps one per pusher instead). Bodies are encoded before
the clock starts: we measure the upstream, not the client. Then the very rows the instance
stored are inserted with one `executemany` in one transaction into a fresh file of the same
schema, through the same connect() as the server's (three times, the fastest counts).

PostgreSQL, with --database (a URL: the bench works in schemas of its own there; `postgresql`:
a throwaway cluster set up as a central runs, see bench/support.py): a fresh central served by
`fieldapp serve --workers 4` (gunicorn) takes the same pushes in the same run; then the rows
it stored go into a fresh copy of the same table with one COPY, and with one `executemany`
through fieldapp's connect(), each in one transaction (fastest of three each). fieldapp's
executemany sends a plain INSERT of many rows as COPY too (since 2026-12-06): the two
baselines now differ only by the adapter's Python.

Prints records/s for each, the ratios, and the CPU seconds of the app's processes (and of
PostgreSQL's, when the cluster is the bench's own). --rounds N alternates the two engines'
pushes N times: the machine is shared, so compare within a round.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from servers import Server, make_server  # noqa: E402
from support import cpu_seconds, is_postgres, percentile, postgres  # noqa: E402

from fieldapp.db import columns, connect, migrate  # noqa: E402
from sync import HttpTransport, SyncError  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"


def wire_entries(site_id: str, n: int, seed: int = 42) -> list[dict]:
    """n realistic entries at one site over the last few days (the same n for the same seed)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out = []
    for _ in range(n):
        at = now - timedelta(seconds=rng.randrange(3 * 24 * 3600))
        temp = round(rng.gauss(36.5, 0.3), 1)
        out.append(
            {
                "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
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


def pusher(
    port: int,
    token: str,
    bodies: list[bytes],
    errors: list[str],
    keep_alive: bool,
    times: list[float],
) -> None:
    """Push bodies one after the other, as `fieldapp sync` does: sync.HttpTransport, which opens
    a connection per batch. keep_alive: one persistent connection for all of them instead.
    Each answer's time goes into times."""
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
            t = time.perf_counter()
            answer = push(body)
            times.append(time.perf_counter() - t)
            bad = [r for r in answer["results"] if r["status"] != "applied"]
            if bad:
                errors.append(f"not applied: {bad[:3]}")
                return
    except SyncError as exc:
        errors.append(str(exc))
    finally:
        if keep_alive:
            conn.close()


def central(folder: Path, pushers: int, database_url: str | None = None) -> tuple[Server, dict]:
    """A fresh instance (demo sites) with a downstream instance per pusher: the server (not
    started) and {token: the pusher's peer id}; also its first site's id under "site"."""
    server = make_server(folder, database_url=database_url)
    tokens = {}
    for i in range(pushers):
        out = server.cli("instance", "add", f"bench-{i}").stdout
        tokens[next(ln for ln in out.splitlines() if len(ln) == 43 and " " not in ln)] = (
            f"bench-{i}"
        )
    peers = dict(server.query("SELECT name, id FROM peers"))
    site = server.query("SELECT id FROM sites ORDER BY name LIMIT 1")[0][0]
    return server, {"site": site, **{t: peers[name] for t, name in tokens.items()}}


def run_push(server: Server, ids: dict, args, db_pid: int | None = None) -> dict:
    """Push args.records entries into server from args.pushers pushers at once; the figures."""
    records = wire_entries(ids["site"], args.records)
    tokens = [t for t in ids if t != "site"]
    share = (len(records) + len(tokens) - 1) // len(tokens)
    # A downstream pushes its change log in the order its records were made.
    work = [
        (
            t,
            bodies_for(
                ids[t],
                sorted(records[i * share : (i + 1) * share], key=lambda r: r["recorded_at"]),
                args.batch,
            ),
        )
        for i, t in enumerate(tokens)
    ]
    mb = sum(len(b) for _t, bs in work for b in bs) / 1e6
    server.start()
    try:
        errors: list[str] = []
        times: list[float] = []
        threads = [
            threading.Thread(
                target=pusher, args=(server.port, t, bodies, errors, args.keep_alive, times)
            )
            for t, bodies in work
        ]
        cpu0 = cpu_seconds(server.proc.pid)
        db0 = cpu_seconds(db_pid) if db_pid else float("nan")
        client0 = time.process_time()
        os.sync()  # what the set-up wrote is on disk: the clock does not count its write-back
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - t0
        server_cpu = cpu_seconds(server.proc.pid) - cpu0
        db_cpu = (cpu_seconds(db_pid) - db0) if db_pid else float("nan")
        client_cpu = time.process_time() - client0
    finally:
        server.stop()
    if errors:
        raise SystemExit(f"push failed: {errors[:3]}")
    stored = server.query("SELECT count(*) FROM entries")[0][0]
    changes = server.query("SELECT count(*) FROM changes WHERE kind = 'entry'")[0][0]
    assert stored == changes == args.records, (stored, changes)
    return {
        "seconds": seconds,
        "rate": args.records / seconds,
        "server_cpu": server_cpu,
        "db_cpu": db_cpu,
        "client_cpu": client_cpu,
        "mb": mb,
        "p50": percentile(times, 50) * 1000,
        "p99": percentile(times, 99) * 1000,
    }


def stored_rows(target: str) -> tuple[list[str], list[tuple], tuple]:
    """The entries an instance stored (all columns) and the site they are at."""
    conn = connect(target)
    try:
        cols = columns(conn, "entries")
        rows = [tuple(r) for r in conn.execute(f"SELECT {', '.join(cols)} FROM entries")]  # noqa: S608
        site = tuple(conn.execute("SELECT * FROM sites WHERE id = ?", (rows[0][7],)).fetchone())
    finally:
        conn.close()
    return cols, rows, site


def _fresh(target: str, site: tuple):
    """A connection to a freshly migrated database of the same schema, the site in it."""
    conn = connect(target)
    migrate(conn)
    conn.execute(f"INSERT INTO sites VALUES ({', '.join('?' * len(site))})", site)  # noqa: S608
    return conn


def raw_executemany(target: str, cols: list[str], rows: list[tuple], site: tuple) -> tuple:
    """(wall, CPU) seconds of one executemany of rows in one transaction, fresh schema."""
    conn = _fresh(target, site)
    marks = ", ".join("?" * len(cols))
    os.sync()  # nor the push's, whose WAL and file the kernel may still be writing
    t0, c0 = time.perf_counter(), time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(f"INSERT INTO entries ({', '.join(cols)}) VALUES ({marks})", rows)  # noqa: S608
    conn.execute("COMMIT")
    took = (time.perf_counter() - t0, time.process_time() - c0)
    conn.close()
    return took


def raw_copy(target: str, cols: list[str], rows: list[tuple], site: tuple) -> tuple:
    """(wall, CPU) seconds of one COPY of rows in one transaction, fresh schema (PostgreSQL)."""
    import psycopg

    _fresh(target, site).close()
    with psycopg.connect(target) as conn:
        t0, c0 = time.perf_counter(), time.process_time()
        with conn.cursor() as cur, cur.copy(f"COPY entries ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - t0, time.process_time() - c0


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
    parser.add_argument("--threads", type=int, default=8, help="threads per serving process")
    parser.add_argument(
        "--database",
        help="postgresql://… (schemas of the bench's own) or postgresql (a throwaway cluster)",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers on PostgreSQL")
    parser.add_argument(
        "--synchronous-commit",
        default="off",
        choices=("on", "off"),
        help="of the throwaway cluster",
    )
    parser.add_argument("--rounds", type=int, default=1, help="alternate the engines' pushes")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    pg_spec = args.database if is_postgres(args.database) else None
    threads = ("--threads", str(args.threads))
    print(
        f"records: {args.records} ({args.pushers} pushers, batches of {args.batch},"
        f" {'keep-alive' if args.keep_alive else 'a connection per batch'}),"
        f" {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    results: dict[str, list[dict]] = {"sqlite": [], "postgresql": []}
    with postgres(pg_spec, args.synchronous_commit) if pg_spec else nullcontext() as pg:
        for r in range(args.rounds):
            if not args.no_sqlite:
                server, ids = central(work / f"sqlite-{r}", args.pushers)
                server.serve_args = threads
                res = run_push(server, ids, args)
                res["target"] = server.target
                results["sqlite"].append(res)
                _show(f"round {r + 1} SQLite push (waitress, 1 process)", res, args.records)
            if pg:
                url = pg.schema(f"central{r}")
                server, ids = central(work / f"pg-{r}", args.pushers, database_url=url)
                server.serve_args = ("--workers", str(args.workers), *threads)
                res = run_push(server, ids, args, pg.server_pid)
                res["target"] = url
                results["postgresql"].append(res)
                _show(
                    f"round {r + 1} PostgreSQL push (gunicorn, {args.workers} workers)",
                    res,
                    args.records,
                )
        print()
        sqlite_raw = pg_copy = pg_many = None
        if results["sqlite"]:
            cols, rows, site = stored_rows(results["sqlite"][-1]["target"])
            sqlite_raw = min(
                raw_executemany(str(work / f"raw-{i}.sqlite3"), cols, rows, site) for i in range(3)
            )
            _raw("SQLite raw executemany", sqlite_raw, args.records)
        if pg:
            cols, rows, site = stored_rows(results["postgresql"][-1]["target"])
            pg_many = min(
                raw_executemany(pg.schema(f"many{i}"), cols, rows, site) for i in range(3)
            )
            _raw("PostgreSQL raw executemany", pg_many, args.records)
            pg_copy = min(raw_copy(pg.schema(f"copy{i}"), cols, rows, site) for i in range(3))
            _raw("PostgreSQL raw COPY", pg_copy, args.records)
    print()
    sq = [r["rate"] for r in results["sqlite"]]
    pq = [r["rate"] for r in results["postgresql"]]
    if sq:
        print(
            f"SQLite push:     median {statistics.median(sq):10,.0f} records/s over {len(sq)} round(s)"
        )
        print(
            f"  push / raw executemany: {statistics.median(sq) / (args.records / sqlite_raw[0]):6.1%}"
        )
    if pq:
        print(
            f"PostgreSQL push: median {statistics.median(pq):10,.0f} records/s over {len(pq)} round(s)"
        )
        print(
            f"  push / raw executemany: {statistics.median(pq) / (args.records / pg_many[0]):6.1%}"
        )
        print(
            f"  push / raw COPY:        {statistics.median(pq) / (args.records / pg_copy[0]):6.1%}"
        )
    if sq and pq:
        ratios = [
            p["rate"] / s["rate"]
            for s, p in zip(results["sqlite"], results["postgresql"], strict=False)
        ]
        print(
            f"PostgreSQL push / SQLite push, per round: {', '.join(f'{x:.2f}' for x in ratios)}"
            f" (median {statistics.median(ratios):.2f})"
        )
    shutil.rmtree(work, ignore_errors=True)


def _show(label: str, res: dict, n: int) -> None:
    print(
        f"{label}: {res['seconds']:7.2f} s {res['rate']:9,.0f} records/s;"
        f" answer p50 {res['p50']:.0f} ms, p99 {res['p99']:.0f} ms; CPU: app {res['server_cpu']:.1f} s"
        + ("" if res["db_cpu"] != res["db_cpu"] else f", PostgreSQL {res['db_cpu']:.1f} s")
        + f", pushers {res['client_cpu']:.1f} s ({res['mb']:.1f} MB of JSON)"
    )


def _raw(label: str, took: tuple, n: int) -> None:
    print(
        f"{label}: {took[0]:7.2f} s {n / took[0]:9,.0f} records/s (fastest of 3), CPU {took[1]:.1f} s"
    )


if __name__ == "__main__":
    main()
