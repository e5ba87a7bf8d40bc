"""Roll-call of a whole city: 5,000 sites, 2,000,000 entries of the day, a report per site.

    .venv/bin/python bench/rollcall.py [--sites 5000] [--entries 2000000] [--keep DB]

Builds the database once (entries inserted in bulk, reports submitted through
fieldapp.records.save with counts from compute_counts), then times rollcall.build for the
whole city and for one district (best of 5), the CSV / XLSX exports, and, as a baseline in the
same process, the same day's counts read from the entries instead of the reports.
Target: the city roll-call in 500 ms or less.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.fernet import Fernet  # noqa: E402
from support import TZ, add_sites, best, daily_reports  # noqa: E402

from fieldapp import create_app, days  # noqa: E402
from fieldapp.db import connect, migrate, transaction  # noqa: E402
from fieldapp.instance import ensure_identity  # noqa: E402
from fieldapp.reports import daily as reports  # noqa: E402
from fieldapp.reports import rollcall
from sync.store import iso  # noqa: E402

TYPES = ["resident", "resident", "resident", "worker", "visitor", "delivery", "other"]
CODES = ["green"] * 97 + ["yellow", "yellow", "red"]


def build(db_path: Path, n_sites: int, n_entries: int, app) -> None:
    rng = random.Random(2020)
    conn = connect(db_path)
    migrate(conn)
    origin = ensure_identity(conn)
    day = days.today(TZ) - timedelta(days=1)
    start, _end = days.bounds(day, TZ)
    t0 = datetime.fromisoformat(start.replace("Z", "+00:00"))
    site_ids = [str(uuid.uuid4()) for _ in range(n_sites)]
    now = iso(datetime.now(UTC))
    with transaction(conn):
        add_sites(conn, site_ids)
    # 10 % of the sites see nobody (zero reports); the rest share the entries.
    busy = site_ids[: int(n_sites * 0.9)]
    t = time.perf_counter()
    batch = []
    cols = (
        "uuid, hash, origin, recorded_at, received_at, site_id, direction, person_type, name,"
        " temperature, fever_action, health_code, travel, travel_where, plate"
    )
    sql = f"INSERT INTO entries ({cols}) VALUES ({','.join('?' * 15)})"  # noqa: S608 -- fixed columns
    conn.execute("BEGIN")
    for i in range(n_entries):
        temp = 37.5 if rng.random() < 0.002 else 36.5
        travel = rng.random() < 0.01
        batch.append(
            (
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "h",
                origin,
                iso(t0 + timedelta(seconds=rng.randrange(86_400))),
                now,
                busy[i % len(busy)],
                "in" if i % 2 else "out",
                TYPES[i % len(TYPES)],
                "张三",
                temp,
                "clinic" if temp >= 37.3 else "",
                CODES[i % len(CODES)],
                int(travel),
                "外地" if travel else "",
                "苏D12345" if i % 13 == 0 else "",
            )
        )
        if len(batch) == 50_000:
            conn.executemany(sql, batch)
            batch.clear()
    if batch:
        conn.executemany(sql, batch)
    conn.execute("COMMIT")
    print(f"built {n_entries:,} entries in {time.perf_counter() - t:.1f} s")

    # Reports: 85 % on time, 5 % late (next morning), 10 % missing; zero ones among them.
    t = time.perf_counter()
    n = daily_reports(conn, site_ids, day, app)
    print(f"submitted {n:,} reports (counts from entries) in {time.perf_counter() - t:.1f} s")
    conn.execute("ANALYZE")
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=5000)
    parser.add_argument("--entries", type=int, default=2_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="keep (or reuse) this database")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    db_path = args.keep or folder / "bench.sqlite3"
    app = create_app(
        {
            "TESTING": True,
            "DATABASE": str(db_path),
            "SECRET_KEY": "bench",
            "ID_KEY": Fernet.generate_key().decode(),
        }
    )
    if not db_path.exists():
        build(db_path, args.sites, args.entries, app)
    conn = connect(db_path)
    day = days.today(TZ) - timedelta(days=1)
    with app.test_request_context():
        city_ms, rc = best(lambda: rollcall.build(conn, day, tz_name=TZ, cutoff="20:00"))
        district_ms, rd = best(
            lambda: rollcall.build(conn, day, tz_name=TZ, cutoff="20:00", district="金坛区")
        )
        csv_ms, _ = best(lambda: rollcall.to_csv(rc), runs=3)
        xlsx_ms, _ = best(lambda: rollcall.to_xlsx(rc), runs=3)
        start, end = days.bounds(day, TZ)
        # Baseline: the same day's figures counted from the entries themselves.
        entries_ms, _ = best(
            lambda: conn.execute(
                "SELECT site_id, count(*), sum(temperature >= 37.3), sum(health_code = 'red')"
                " FROM entries WHERE recorded_at >= ? AND recorded_at < ? GROUP BY site_id",
                (start, end),
            ).fetchall(),
            runs=3,
        )
        from flask import render_template

        context = {
            "rc": rc,
            "error": "",
            "today": day,
            "district": "",
            "figures": rollcall.FIGURES,
            "states": rollcall.STATES,
        }
        html_ms, html = best(lambda: render_template("reports/_rollcall.html", **context), runs=3)
        busiest = conn.execute(
            "SELECT site_id FROM entries GROUP BY site_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
        draft_ms, _ = best(lambda: reports.compute_counts(conn, busiest, day, TZ))
    n_entries = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    plan = " / ".join(
        r[3]
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM daily_reports WHERE day = ? ORDER BY site_id",
            (day.isoformat(),),
        )
    )
    conn.close()
    t = rc.total
    print(f"sites {t.sites:,}, entries of the day {n_entries:,}, reports {t.reported:,}")
    print(
        f"states: reported {t.states['reported']:,}, zero {t.states['zero']:,},"
        f" late {t.states['late']:,}, missing {t.states['missing']:,}"
    )
    print(f"roll-call, whole city ({t.sites:,} sites):   {city_ms:8.1f} ms  (target <= 500 ms)")
    print(f"roll-call, one district ({rd.total.sites:,} sites): {district_ms:8.1f} ms")
    print(f"roll-call table as HTML (city):        {html_ms:8.1f} ms  ({len(html) // 1024:,} KiB)")
    print(f"CSV export of the city:                {csv_ms:8.1f} ms")
    print(f"XLSX export of the city:               {xlsx_ms:8.1f} ms")
    print(
        f"baseline, counting the day's entries:  {entries_ms:8.1f} ms  (what the roll-call avoids)"
    )
    print(f"a gate's draft report (busiest site):  {draft_ms:8.1f} ms")
    print(f"query plan: {plan}")


if __name__ == "__main__":
    main()
