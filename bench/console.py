"""Coordinator console at scale: millions of entries, then the time of the pages and the export.

    .venv/bin/python bench/console.py [--entries 1000000] [--sites 5000] [--keep DIR]
        [--database postgresql://user@host/db | --database postgresql] [--explain]

Prints: the dashboard, the first and the 100th page of the log with a filter, the roll-call of
every site for yesterday (each the median of a few requests through the Flask test client,
signed in as an admin, and the app's CPU time for them, steadier than the wall clock on a
shared machine), and the CSV export's rows/s and memory, measured in a child process so the
generation's memory does not count: its RSS before the export and its peak (flat memory: the
growth stays the same at any size).

SQLite by default (a fresh file, or the one in --keep DIR). --database: PostgreSQL (a URL: the
bench works in a schema of its own there, dropped at the end unless --keep NAME names one to
reuse; `postgresql`: a throwaway cluster set up as a central runs, see bench/support.py). On
PostgreSQL the entries are made by the server itself (generate_series, the indexes dropped and
built again after), a million a minute or so on two cores. --explain prints, for each page,
the plan (EXPLAIN ANALYZE) of its slowest statement.

Entries are spread evenly over 21 whole local days ending tonight, one site after another;
90 % of the sites have a daily report for yesterday (counts from their entries).
Targets (issues 5 and 18): each page ≤ 200 ms, export ≥ 100,000 rows/s with flat memory.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cryptography.fernet import Fernet  # noqa: E402
from support import TZ, add_sites, daily_reports, is_postgres, postgres  # noqa: E402

from fieldapp import create_app, days  # noqa: E402
from fieldapp.console import accounts, cases  # noqa: E402
from fieldapp.db import connect, dialect, migrate, transaction  # noqa: E402
from fieldapp.gate import counts  # noqa: E402
from fieldapp.instance import ensure_identity  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
DAYS = 21


def config(target: str, key: str) -> dict:
    """The app's settings for the database at target (a file or a URL)."""
    where = {"DATABASE_URL": target} if is_postgres(target) else {"DATABASE": target}
    return {**where, "SECRET_KEY": "bench", "ID_KEY": key, "TESTING": True}


def span(rows: int) -> tuple[datetime, timedelta]:
    """The first entry's time and the step between two: 21 whole local days ending tonight at
    midnight (Asia/Shanghai), so the dashboard reads a full day (the worst case) at any hour."""
    tz = ZoneInfo(TZ)
    end = datetime.combine(datetime.now(tz).date() + timedelta(days=1), dtime(0), tz)
    end = end.astimezone(UTC)
    start = end - timedelta(days=DAYS)
    return start, (end - start) / rows


def generate(target: str, rows: int, n_sites: int, key: str) -> dict:
    """Fill a fresh database with sites, `rows` entries and yesterday's reports."""
    conn = connect(target)
    migrate(conn)
    origin = ensure_identity(conn)
    site_ids = [str(uuid.uuid4()) for _ in range(n_sites)]
    with transaction(conn):
        add_sites(conn, site_ids)
    t0 = time.perf_counter()
    if dialect(conn) == "postgresql":
        conn.close()
        _fill_postgres(target, rows, site_ids, origin)
        conn = connect(target)
    else:
        _fill_sqlite(conn, rows, site_ids, origin)
    made = time.perf_counter() - t0
    t1 = time.perf_counter()
    yesterday = days.today(TZ) - timedelta(days=1)
    n_reports = daily_reports(conn, site_ids, yesterday, create_app(config(target, key)))
    conn.execute("ANALYZE")
    conn.close()
    return {"seconds": made, "reports": n_reports, "report_seconds": time.perf_counter() - t1}


def init(target: str) -> None:
    """What `fieldapp init` does to a database made before the dashboard's kept figures (or
    whose entries were made here without the store): migrate, then count the entries and
    make the cases' states; printed with their time when there was something to do."""
    conn = connect(target)
    t = time.perf_counter()
    applied = migrate(conn)
    n_days = counts.ensure(conn, TZ)
    n_cases = cases.ensure(conn)
    if applied or n_days is not None or n_cases is not None:
        conn.execute("ANALYZE")
        print(
            f"init: migrations {applied or '-'}, entries counted for {n_days or 0} days,"
            f" {n_cases or 0:,} fever cases: {time.perf_counter() - t:.1f} s"
        )
    conn.close()


def _fill_sqlite(conn, rows: int, site_ids: list[str], origin: str) -> None:
    rnd = random.Random(7)
    start, step = span(rows)
    conn.execute("PRAGMA synchronous=OFF")
    batch = []
    with transaction(conn):
        for i in range(rows):
            ts = start + step * i
            at = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
            temp = 38.1 if rnd.random() < 0.002 else round(rnd.uniform(35.8, 37.1), 1)
            travel = 1 if rnd.random() < 0.01 else 0
            batch.append(
                (
                    str(uuid.uuid4()),
                    f"{i:032x}",
                    origin,
                    at,
                    at,
                    site_ids[i % len(site_ids)],
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
                conn.executemany(INSERT, batch)
                batch = []
        if batch:
            conn.executemany(INSERT, batch)


INSERT = (
    "INSERT INTO entries (uuid, hash, origin, recorded_at, received_at, site_id, direction,"
    " person_type, name, phone, temperature, fever_action, health_code, travel,"
    " travel_where, destination) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# The same rows as _fill_sqlite's, made by PostgreSQL itself for rows a to b.
FILL_PG = """
INSERT INTO entries (uuid, hash, origin, recorded_at, received_at, site_id, direction,
    person_type, name, phone, temperature, fever_action, health_code, travel, travel_where,
    destination)
SELECT gen_random_uuid()::text, md5(g.i::text), %(origin)s, g.t, g.t,
    (%(sites)s::text[])[1 + g.i %% %(n)s],
    CASE WHEN random() < 0.5 THEN 'in' ELSE 'out' END, 'resident',
    substr(%(sur)s, 1 + floor(random() * %(nsur)s)::int, 1)
        || substr(%(given)s, 1 + floor(random() * %(ngiven)s)::int, 1)
        || substr(%(given)s, 1 + floor(random() * %(ngiven)s)::int, 1),
    '13' || lpad(floor(random() * 1e9)::bigint::text, 9, '0'),
    g.temp, CASE WHEN g.temp >= 37.3 THEN 'clinic' ELSE '' END, 'green', g.travel,
    CASE WHEN g.travel = 1 THEN '武汉' ELSE '' END,
    (1 + floor(random() * 19))::int || '-' || (1 + floor(random() * 3))::int
        || '-' || (101 + floor(random() * 1701))::int
FROM (
    SELECT i,
        to_char(to_timestamp(%(start)s + i * %(step)s) AT TIME ZONE 'UTC',
            'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS t,
        CASE WHEN random() < 0.002 THEN 38.1
            ELSE round((35.8 + random() * 1.3)::numeric, 1)::float8 END AS temp,
        (random() < 0.01)::int AS travel
    FROM generate_series(%(a)s::bigint, %(b)s::bigint) AS i
) AS g
"""


def _fill_postgres(url: str, rows: int, site_ids: list[str], origin: str) -> None:
    """The entries made by the server a million at a time, with the table's indexes and
    unique constraints dropped first and built again at the end, then VACUUM ANALYZE (the
    visibility map that index-only scans need, as autovacuum would set in time)."""
    import psycopg

    start, step = span(rows)
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute("SET synchronous_commit = off")
        pg.execute("SET maintenance_work_mem = '1GB'")
        constraints = pg.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'entries'::regclass AND contype = 'u'"
        ).fetchall()
        indexes = pg.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            " AND tablename = 'entries' AND indexname NOT IN"
            " (SELECT conname FROM pg_constraint WHERE conrelid = 'entries'::regclass)"
        ).fetchall()
        for name, _ in indexes:
            pg.execute(f'DROP INDEX "{name}"')
        for name, _ in constraints:
            pg.execute(f'ALTER TABLE entries DROP CONSTRAINT "{name}"')
        t = time.perf_counter()
        for a in range(0, rows, 1_000_000):
            b = min(rows, a + 1_000_000) - 1
            params = {
                "origin": origin,
                "sites": site_ids,
                "n": len(site_ids),
                "sur": SURNAMES,
                "nsur": len(SURNAMES),
                "given": GIVEN,
                "ngiven": len(GIVEN),
                "start": start.timestamp(),
                "step": step.total_seconds(),
                "a": a,
                "b": b,
            }
            pg.execute(FILL_PG, params)
            print(f"  {b + 1:,} entries, {time.perf_counter() - t:.0f} s", flush=True)
        for name, definition in constraints:
            pg.execute(f'ALTER TABLE entries ADD CONSTRAINT "{name}" {definition}')
        for _name, definition in indexes:
            pg.execute(definition)
        print(f"  indexes built, {time.perf_counter() - t:.0f} s", flush=True)
        pg.execute("VACUUM (ANALYZE) entries")


class Statements:
    """The statements a request runs on PostgreSQL, with their times (for --explain)."""

    def __init__(self) -> None:
        from fieldapp.db import postgres as pg

        self.seen: list[tuple[float, str, tuple]] = []
        self._cursor = pg.Cursor
        self._real = pg.Cursor.execute
        recorder = self

        def execute(cur, sql, params=()):
            t = time.perf_counter()
            try:
                return recorder._real(cur, sql, params)
            finally:
                recorder.seen.append((time.perf_counter() - t, sql, tuple(params)))

        pg.Cursor.execute = execute

    def explain(self, conn, label: str) -> None:
        """Print the slowest statements of the last request timed, and the plan of the slowest
        that reads the entries (else of the slowest)."""
        on_entries = [s for s in self.seen if "FROM entries" in s[1]]
        secs, sql, params = max(on_entries or self.seen)
        top = sorted(self.seen, reverse=True)[:4]
        self.seen.clear()
        print(f"    {label}: its {len(top)} slowest statements")
        for t, text, _params in top:
            print(f"      {t * 1000:6.1f} ms  {' '.join(text.split())[:110]}")
        plan = [
            r[0] for r in self._real(conn.cursor(), "EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        ]
        print(f"    plan of {label}'s slowest statement on entries ({secs * 1000:.1f} ms):")
        for line in plan:
            print("      " + line)


SQL_MS: list[float] = []  # the database's share of the requests timed last (PostgreSQL)
CPU_MS: list[float] = []  # the app's own CPU time for them: steadier than the wall clock when
# other work shares the machine (PostgreSQL's is not in it: it runs in its own processes)


def timed(client, path: str, repeat: int = 5, seen: Statements | None = None) -> tuple[float, str]:
    """Median milliseconds of GET path, and the last body; with seen, the median time its
    statements took (sent, run and their rows received) goes in SQL_MS; the app's CPU time
    (median) in CPU_MS."""
    times, sql, cpu, body = [], [], [], ""
    for _ in range(repeat):
        if seen:
            seen.seen.clear()
        t, c = time.perf_counter(), time.process_time()
        r = client.get(path)
        body = r.get_data(as_text=True)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        assert r.status_code == 200, (path, r.status_code)
        if seen:
            sql.append(sum(s for s, _sql, _p in seen.seen) * 1000)
    SQL_MS[:] = [statistics.median(sql)] if sql else []
    CPU_MS[:] = [statistics.median(cpu)]
    return statistics.median(times), body


def db_share() -> str:
    """' (app CPU x ms, SQL y ms)' for the requests timed last (SQL when measured)."""
    sql = f", SQL {SQL_MS[0]:5.1f} ms" if SQL_MS else ""
    return f" (app CPU {CPU_MS[0]:5.1f} ms{sql})"


def pages(target: str, key: str, site: str, explain: bool) -> None:
    """Time the dashboard, the log pages and the roll-call through the real views."""
    app = create_app(config(target, key))
    app.config["WTF_CSRF_ENABLED"] = False
    conn = connect(target)
    with app.app_context():
        if accounts.get_user(conn, "bench") is None:
            accounts.create_user(conn, "bench", "admin", "bench password")
    client = app.test_client()
    r = client.post("/console/login", data={"name": "bench", "password": "bench password"})
    assert r.status_code == 302, r.status_code
    seen = Statements() if is_postgres(target) else None

    def show(label: str) -> None:
        if seen and explain:
            seen.explain(conn, label)

    ms, body = timed(client, "/console/", seen=seen)
    tiles = [int(n) for n in re.findall(r"<li><strong>(\d+)</strong>", body)[:2]]
    print(f"dashboard (all sites, {sum(tiles):,} entries today): {ms:7.1f} ms{db_share()}")
    show("the dashboard")
    for label, query in (
        ("site + direction", f"site={site}&direction=in"),
        ("fever only", "fever=1"),
        ("date range", "date_from=2000-01-01&date_to=2100-01-01"),
    ):
        first, body = timed(client, f"/console/log?{query}", seen=seen)
        first_sql = db_share()
        show(f"log, {label}, page 1")
        path = f"/console/log?{query}"
        for _ in range(99):  # follow the "older" link 99 times: page 100
            match = re.search(r'rel="next" href="([^"]+)"', body)
            if not match:
                break
            path = match.group(1).replace("&amp;", "&")
            body = client.get(path).get_data(as_text=True)
        hundredth, _ = timed(client, path, seen=seen)
        print(
            f"log, {label:17s} page 1: {first:7.1f} ms{first_sql}"
            f"   page 100: {hundredth:7.1f} ms{db_share()}"
        )
        show(f"log, {label}, page 100")
    yesterday = days.today(TZ) - timedelta(days=1)
    ms, body = timed(client, f"/console/rollcall?day={yesterday.isoformat()}", seen=seen)
    sites = conn.execute("SELECT count(*) FROM sites").fetchone()[0]
    reported = conn.execute(
        "SELECT count(*) FROM daily_reports WHERE day = ?", (yesterday.isoformat(),)
    ).fetchone()[0]
    print(
        f"roll-call of {sites:,} sites ({reported:,} reports), yesterday: {ms:7.1f} ms{db_share()}"
    )
    show("the roll-call")
    conn.close()
    print(f"load average after the pages: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def export_child(target: str, key: str) -> None:
    """Run in a child process: stream the whole log as CSV to /dev/null, print rows/s, RSS."""
    from fieldapp.console import exports, logbook

    app = create_app(config(target, key))
    conn = connect(target)
    with app.test_request_context():
        tz = days.zone(TZ)
        f, _ = logbook.parse_filters({}, None)
        counted = [0]
        before = rss_mb()
        marks: list[float] = []

        def count(n: int) -> None:
            counted.append(n)
            if len(counted) % 200 == 0:  # every 1,000,000 rows (5,000 a chunk)
                marks.append(rss_mb())

        t, cpu = time.perf_counter(), time.process_time()
        with open("/dev/null", "w", encoding="utf-8") as out:
            chunks = exports.rows(conn, f, None, tz, "coordinator")
            for piece in exports.csv_chunks(chunks, count):
                out.write(piece)
        secs, cpu = time.perf_counter() - t, time.process_time() - cpu
        n = sum(counted)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The machine may be shared: the CPU time says what the export costs whatever else runs.
    print(
        f"CSV export: {n:,} rows in {secs:.1f} s = {n / secs:,.0f} rows/s"
        f" ({n / cpu:,.0f} rows per CPU second of the exporting process)"
    )
    print(
        f"  RSS before the export {before:.0f} MB, peak {peak:.0f} MB (+{peak - before:.0f} MB);"
        f" at each million rows: {', '.join(f'{m:.0f}' for m in marks) or '-'} MB"
    )
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> None:
    """Generate, then measure."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", "--rows", dest="rows", type=int, default=1_000_000)
    parser.add_argument("--sites", type=int, default=5000)
    parser.add_argument("--database", help="postgresql://… or postgresql (SQLite without it)")
    parser.add_argument(
        "--keep",
        help="SQLite: folder for the database; PostgreSQL URL: a schema name (reused if it exists)",
    )
    parser.add_argument("--explain", action="store_true", help="plans of the slowest statements")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--export-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(args.export_child, os.environ["BENCH_ID_KEY"])
        return
    with ExitStack() as stack:
        if is_postgres(args.database):
            target, key, fresh = _postgres_target(stack, args)
        else:
            folder = (
                Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-console-"))
            )
            folder.mkdir(parents=True, exist_ok=True)
            target = str(folder / "bench.sqlite3")
            key_file = folder / "id_key"
            fresh = not Path(target).exists()
            if fresh:
                key_file.write_text(Fernet.generate_key().decode())
            key = key_file.read_text()
        if fresh:
            made = generate(target, args.rows, args.sites, key)
            print(
                f"generated {args.rows:,} entries in {made['seconds']:.1f} s,"
                f" {made['reports']:,} reports in {made['report_seconds']:.1f} s"
            )
        init(target)
        conn = connect(target)
        site = conn.execute("SELECT id FROM sites ORDER BY name LIMIT 1 OFFSET 3").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        n_sites = conn.execute("SELECT count(*) FROM sites").fetchone()[0]
        if dialect(conn) == "postgresql":
            size = conn.execute("SELECT pg_total_relation_size('entries')").fetchone()[0]
            engine = "PostgreSQL"
        else:
            size, engine = Path(target).stat().st_size, "SQLite"
        conn.close()
        print(
            f"database ({engine}): {total:,} entries, {n_sites:,} sites,"
            f" entries {size / 2**20:,.0f} MB with their indexes"
        )
        pages(target, key, site, args.explain)
        if not args.no_export:
            # The key goes by environment: a Fernet key may start with "-", which argparse
            # reads as an option.
            subprocess.run(
                [sys.executable, __file__, "--export-child", target],
                check=True,
                cwd=ROOT,
                env={**os.environ, "BENCH_ID_KEY": key},
            )


def _postgres_target(stack: ExitStack, args) -> tuple[str, str, bool]:
    """The URL to work in, the ID key, and whether it is empty (to be generated)."""
    import psycopg

    pg = stack.enter_context(postgres(args.database, keep=bool(args.keep)))
    if not args.keep:
        return pg.schema("console"), Fernet.generate_key().decode(), True
    from psycopg import sql

    schema = sql.Identifier(args.keep)
    with psycopg.connect(pg.url, autocommit=True) as raw:
        exists = raw.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (args.keep,)
        ).fetchone()
        if not exists:
            raw.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
            raw.execute(sql.SQL("CREATE TABLE {}.bench_key (key TEXT)").format(schema))
            raw.execute(
                sql.SQL("INSERT INTO {}.bench_key VALUES (%s)").format(schema),
                (Fernet.generate_key().decode(),),
            )
        key = raw.execute(sql.SQL("SELECT key FROM {}.bench_key").format(schema)).fetchone()[0]
    sep = "&" if "?" in pg.url else "?"
    return f"{pg.url}{sep}options=-csearch_path%3D{args.keep}", key, not exists


if __name__ == "__main__":
    main()
