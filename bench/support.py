"""What the bench scripts share: PostgreSQL to run against, the CPU time of a process tree, the
best of a few timed runs, and a city's districts and daily reports.

`--database postgresql://user@host/db` names a database the bench may write in: it works in
schemas of its own there (bench_<hex>…), dropped when it ends. `--database postgresql` starts
a throwaway cluster (tests/pg_cluster.py) set up as a central would run, not as the tests do:

- durable: fsync and full-page writes on, WAL for a replica;
- commits not waited for on disk (synchronous_commit off): what SQLite's synchronous=NORMAL
  in WAL mode gives the SQLite side of the same run (a crash of the app or of the database
  loses nothing committed; a crash of the machine may lose the last commits, never
  consistency). --synchronous-commit on measures PostgreSQL's default instead;
- shared_buffers of 2 GB and a larger max_wal_size, the first settings an operator changes.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fieldapp import days, records  # noqa: E402
from fieldapp.reports import daily as reports  # noqa: E402
from sync.store import iso  # noqa: E402

TZ = "Asia/Shanghai"
DISTRICTS = [
    "金坛区",
    "溧阳市",
    "武进区",
    "新北区",
    "天宁区",
    "钟楼区",
    "经开区",
    "溧水区",
    "高淳区",
    "江宁区",
]

CENTRAL = {
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "off",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "shared_buffers": "'2GB'",
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'15min'",
}


@dataclass
class Postgres:
    """A PostgreSQL database the bench may write in, and the schemas it made there."""

    url: str
    server_pid: int | None = None  # the postmaster's, when the cluster is the bench's own
    schemas: list[str] = field(default_factory=list)

    def schema(self, label: str) -> str:
        """A new empty schema; the URL whose connections create and find names in it."""
        import psycopg
        from psycopg import sql

        name = f"bench_{uuid.uuid4().hex[:8]}_{label}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        self.schemas.append(name)
        parts = urlsplit(self.url)
        option = f"options=-csearch_path%3D{name}"
        return urlunsplit(
            parts._replace(query=f"{parts.query}&{option}" if parts.query else option)
        )

    def drop(self) -> None:
        """Drop every schema the bench made."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as conn:
            while self.schemas:
                name = self.schemas.pop()
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))

    def cpu_seconds(self) -> float:
        """CPU seconds the server's processes have used so far (nan when it is not ours)."""
        return cpu_seconds(self.server_pid) if self.server_pid else float("nan")


def is_postgres(spec: str | None) -> bool:
    """Whether --database asks for PostgreSQL."""
    return bool(spec) and spec.startswith(("postgresql", "postgres:"))


@contextmanager
def postgres(spec: str, synchronous_commit: str = "off", keep: bool = False) -> Iterator[Postgres]:
    """The PostgreSQL database --database names: a URL, or "postgresql" for a throwaway
    cluster of the bench's own (stopped and removed at the end)."""
    if "://" in spec:
        pg = Postgres(spec)
        try:
            yield pg
        finally:
            if not keep:
                pg.drop()
        return
    from pg_cluster import throwaway_cluster

    settings = dict(CENTRAL, synchronous_commit=synchronous_commit)
    with throwaway_cluster("fieldapp_bench", settings=settings) as cluster:
        pid = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
        yield Postgres(cluster.url, server_pid=pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process and its children, living or ended, have used so far
    (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, IndexError, ValueError):
        return float("nan")
    return own + sum(cpu_seconds(int(child)) for child in children)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) of values, nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def add_sites(conn, site_ids: list[str]) -> None:
    """Residential sites with these ids, spread over the city's districts (in the caller's
    transaction), added a year ago: on the roll-call of every day a bench looks at."""
    now = iso(datetime.now(UTC) - timedelta(days=365))
    conn.executemany(
        "INSERT INTO sites (id, name, kind, district, code, version, created_at)"
        " VALUES (?, ?, 'residential', ?, ?, 1, ?)",
        [
            (sid, f"第{i + 1}小区", DISTRICTS[i % len(DISTRICTS)], uuid.uuid4().hex[:16], now)
            for i, sid in enumerate(site_ids)
        ],
    )


def best(fn, runs: int = 5) -> tuple[float, object]:
    """Best wall time of a few runs, in ms, and the last result."""
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return min(times), out


def daily_reports(conn, site_ids: list[str], day, app) -> int:
    """A day's daily reports from 90 % of the sites (85 % on time, 5 % late: the next morning;
    10 % missing), through fieldapp.records.save with the counts of their entries, as the
    roll-call reads them. Returns how many were sent."""
    wire = []
    with app.test_request_context():
        for i, sid in enumerate(site_ids):
            roll = i % 20
            if roll >= 18:
                continue  # missing
            at = days.cutoff_instant(day, "18:00", TZ)
            if roll == 17:
                at = days.cutoff_instant(day + timedelta(days=1), "09:00", TZ)
            wire.append(reports.new_record(reports.draft(conn, sid, day, TZ), recorded_at=at))
        for k in range(0, len(wire), 500):
            results = records.save(conn, wire[k : k + 500], source="bench")
            assert all(r.status == "applied" for r in results), results[:3]
    return len(wire)
