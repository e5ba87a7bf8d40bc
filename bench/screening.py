"""Screening coverage of a city: 5,000 sites × 100 roster people, a day's 500,000 answers.

    .venv/bin/python bench/screening.py [--sites 5000] [--people 100] [--keep DB]
    .venv/bin/python bench/screening.py --database-url postgresql://…/empty_db

Builds the database once: sites and rosters inserted in bulk, one daily campaign over every
site, and the day's answers (98 % of the people, 2 % of them answered twice) stored through
fieldapp.records.save in batches of 1,000, as pushes store them, so the counts kept with the
answers (fieldapp/screening/tallies.py) are made by the real path; the ingest rate is printed,
and beside it the rate of the same path with the counts switched off, in the same process.
Then 1,000 people added on site (two on every tenth site), 500 of whom join the roster by
roster.import_rows and are screened again under their roster id: each counted once.
Then times coverage.build for the whole city and for one district (best of 5), the summary,
CSV and XLSX, the roll-call's screening column, a site phone's page data, the follow-ups, and
as a baseline the same coverage counted from the answers themselves.
Targets: the city in 500 ms or less, a district in 50 ms or less.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.fernet import Fernet  # noqa: E402
from support import TZ, add_sites, best  # noqa: E402

import sync  # noqa: E402
from fieldapp import create_app, days, records  # noqa: E402
from fieldapp.db import connect, migrate, transaction  # noqa: E402
from fieldapp.gate import roster  # noqa: E402
from fieldapp.instance import ensure_identity  # noqa: E402
from fieldapp.screening import answers, campaigns, coverage, followup, tallies  # noqa: E402
from sync.store import iso  # noqa: E402

# Shares modelled on the seed reports' summary (576 screened: 295 never left the district, 82
# elsewhere in the city, 199 left the city...), most people here and well.
WHEREABOUTS = [
    ("district", 51),
    ("city", 14),
    ("province", 15),
    ("other_province", 19),
    ("risk_area", 1),
]
STATUSES = [
    ("here", 97),
    ("home_isolation", 1),
    ("medical_observation", 0.4),
    ("away", 1),
    ("left", 0.6),
]
NAT = [("negative", 70), ("none", 25), ("pending", 5)]
DOSES = [("3", 60), ("2", 30), ("1", 5), ("0", 5)]
BATCH = 1000


def pick(rng: random.Random, shares: list[tuple[str, float]]) -> str:
    return rng.choices([k for k, _ in shares], weights=[w for _, w in shares])[0]


def wire(rng: random.Random, campaign_id: str, site_id: str, person_id: str, day, at) -> dict:
    w = pick(rng, WHEREABOUTS)
    n = pick(rng, NAT)
    return {
        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "kind": "screening",
        "recorded_at": iso(at),
        "data": {
            "campaign_id": campaign_id,
            "site_id": site_id,
            "person_id": person_id,
            "day": day.isoformat(),
            "added": False,
            "whereabouts": w,
            "whereabouts_where": "外地" if w in ("other_province", "risk_area") else "",
            "contact": "yes" if rng.random() < 0.01 else "no",
            "status": pick(rng, STATUSES),
            "nat_result": n,
            "nat_date": (day - timedelta(days=1)).isoformat() if n != "none" else "",
            "vaccine_doses": pick(rng, DOSES),
            "screener": "值班员",
            "note": "",
        },
    }


def build(target: str, n_sites: int, n_people: int, app) -> None:
    rng = random.Random(2020)
    conn = connect(target)
    migrate(conn)
    ensure_identity(conn)
    site_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n_sites)]
    t = time.perf_counter()
    with transaction(conn):
        add_sites(conn, site_ids)
        people = {sid: [str(uuid.uuid4()) for _ in range(n_people)] for sid in site_ids}
        conn.executemany(
            "INSERT INTO roster (id, site_id, name, phone, unit, person_type, active, version)"
            " VALUES (?, ?, ?, '', ?, 'resident', 1, 1)",
            [
                (pid, sid, f"居民{k}", f"{k // 10 + 1}-{k % 10 + 1}01")
                for sid, pids in people.items()
                for k, pid in enumerate(pids)
            ],
        )
    print(
        f"built {n_sites:,} sites, {n_sites * n_people:,} roster people in {time.perf_counter() - t:.1f} s"
    )
    day = days.today(TZ)
    with app.app_context():
        campaign = campaigns.add(
            conn, {}, "复工人员排查", start=day - timedelta(days=7), all_sites=True
        )
    start = datetime.fromisoformat(days.bounds(day, TZ)[0].replace("Z", "+00:00"))
    recs = []
    for sid, pids in people.items():
        for pid in pids:
            if rng.random() < 0.98:
                recs.append(
                    wire(
                        rng,
                        campaign.id,
                        sid,
                        pid,
                        day,
                        start + timedelta(minutes=rng.randrange(7 * 60, 12 * 60)),
                    )
                )
    for r in rng.sample(recs, len(recs) // 50):  # answered again in the afternoon
        d = r["data"]
        recs.append(
            wire(rng, campaign.id, d["site_id"], d["person_id"], day, start + timedelta(hours=15))
        )
    rng.shuffle(recs)
    t = time.perf_counter()
    with app.test_request_context():
        for k in range(0, len(recs), BATCH):
            results = records.save(conn, recs[k : k + BATCH], source="bench")
            assert all(r.status == "applied" for r in results), results[:3]
    took = time.perf_counter() - t
    print(
        f"stored {len(recs):,} answers through records.save in {took:.1f} s ({len(recs) / took:,.0f}/s)"
    )
    # People added on site: two on every tenth site, one of whom has since joined the roster
    # (`fieldapp roster import`: a new roster row, the same name and phone) and was screened
    # again under the roster id. Coverage counts each of them once (coverage.joined, merged).
    newcomers, joined = [], []
    for n, sid in enumerate(site_ids[::10]):
        for k in range(2):
            rec = wire(rng, campaign.id, sid, str(uuid.uuid4()), day, start + timedelta(hours=8))
            person = {"name": f"新来的{k}", "phone": f"139{n:04d}{k:04d}", "unit": "临时工棚"}
            rec["data"].update(added=True, person_type="worker", **person)
            newcomers.append(rec)
            if k == 0:
                joined.append((sid, {**person, "person_type": "worker"}))
    with app.test_request_context():
        records.save(conn, newcomers, source="bench")
        for sid, person in joined:
            roster.import_rows(conn, sid, [person])
        again = [
            wire(rng, campaign.id, sid, pid, day, start + timedelta(hours=16))
            for sid, pid in conn.execute(
                "SELECT site_id, id FROM roster WHERE name = '新来的0'"
            ).fetchall()
        ]
        records.save(conn, again, source="bench")
    print(
        f"{len(newcomers):,} people added on site, {len(joined):,} of them since on the roster"
        " and screened again under that id"
    )
    if not target.startswith("postgres"):
        conn.execute("ANALYZE")
    conn.close()


def ingest_cost(app, n: int = 20_000, rounds: int = 3, mixed: bool = True) -> None:
    """The same path into scratch SQLite files, with and without the counts, taking turns in
    the same process (the machine's noise is large): the best of each."""
    rng = random.Random(7)
    folder = Path(tempfile.mkdtemp(prefix="fieldapp-bench-ingest-"))
    rates: dict[str, list[float]] = {"with counts": [], "without counts": []}
    registry = app.extensions["fieldapp.records"]
    without = sync.Registry(
        replace(k, after_write=None) if k.name == "screening" else k for k in registry
    )
    for n_round in range(rounds):
        for label in rates:
            path = folder / f"{n_round}-{label.replace(' ', '-')}.sqlite3"
            conn = connect(path)
            migrate(conn)
            ensure_identity(conn)
            now = iso(datetime.now(UTC))
            sites = [str(uuid.uuid4()) for _ in range(200)]
            with transaction(conn):
                conn.executemany(
                    "INSERT INTO sites (id, name, kind, district, code, version, created_at)"
                    " VALUES (?, ?, 'residential', '金坛区', ?, 1, ?)",
                    [(s, s[:8], uuid.uuid4().hex[:16], now) for s in sites],
                )
                people = [(str(uuid.uuid4()), s) for s in sites for _ in range(n // 200)]
                conn.executemany(
                    "INSERT INTO roster (id, site_id, name, version) VALUES (?, ?, '居民', 1)",
                    people,
                )
            day = days.today(TZ)
            with app.app_context():
                campaign = campaigns.add(conn, {}, "排查", start=day, all_sites=True)
            recs = [wire(rng, campaign.id, s, p, day, datetime.now(UTC)) for p, s in people]
            if mixed:  # every batch mixes 200 sites: the dearest case for the counts
                rng.shuffle(recs)
            app.extensions["fieldapp.records"] = registry if label == "with counts" else without
            try:
                t = time.perf_counter()
                with app.test_request_context():
                    for k in range(0, len(recs), BATCH):
                        records.save(conn, recs[k : k + BATCH], source="bench")
                rates[label].append(len(recs) / (time.perf_counter() - t))
            finally:
                app.extensions["fieldapp.records"] = registry
            conn.close()
    kept, bare = max(rates["with counts"]), max(rates["without counts"])
    how = "sites mixed in every batch" if mixed else "a site at a time, as phones push"
    print(
        f"ingest, {n:,} answers ({how}), best of {rounds}: {kept:,.0f}/s with the counts kept,"
        f" {bare:,.0f}/s without ({(1 / kept - 1 / bare) * 1e6:+.0f} µs an answer)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=5000)
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--keep", type=Path, default=None, help="keep (or reuse) this SQLite file")
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    target = args.database_url or str(args.keep or folder / "bench.sqlite3")
    app = create_app(
        {
            "TESTING": True,
            "DATABASE": target,
            "SECRET_KEY": "bench",
            "ID_KEY": Fernet.generate_key().decode(),
        }
    )
    conn = connect(target)
    migrate(conn)
    built = conn.execute("SELECT count(*) FROM screening_campaigns").fetchone()[0]
    conn.close()
    if not built:
        build(target, args.sites, args.people, app)
    conn = connect(target)
    day = days.today(TZ)
    with app.test_request_context():
        campaign = campaigns.listing(conn)[0]
        city_ms, cov = best(lambda: coverage.build(conn, campaign, day, tz=TZ))
        district_ms, cd = best(
            lambda: coverage.build(conn, campaign, day, tz=TZ, district="金坛区")
        )
        summary_ms, text = best(lambda: coverage.summary(cov))
        csv_ms, _ = best(lambda: coverage.to_csv(cov), runs=3)
        xlsx_ms, _ = best(lambda: coverage.to_xlsx(cov), runs=3)
        ids = [r.site_id for r in cov.rows]
        rollcall_ms, _ = best(lambda: coverage.for_rollcall(conn, day, ids, TZ), runs=3)
        site = conn.execute("SELECT * FROM sites LIMIT 1").fetchone()
        phone_ms, _ = best(lambda: answers.people(conn, campaign, site["id"], day))
        follow_ms, follows = best(lambda: followup.listing(conn, None, datetime.now(UTC)), runs=3)
        # Baseline: the same day counted from the answers themselves, each person once.
        same = coverage.joined(conn, campaign.id, day, days.bounds(day, TZ)[1]).same
        direct_city_ms, direct = best(
            lambda: tallies.count(tallies.answers_in(conn, campaign.id, day, day), same), runs=3
        )
        district_ids = [r.site_id for r in cd.rows]
        marks = ",".join("?" * len(district_ids))
        direct_district_ms, _ = best(
            lambda: tallies.count(
                conn.execute(
                    f"SELECT {tallies.READ} FROM screenings WHERE campaign_id = ?"  # noqa: S608
                    f" AND day = ? AND site_id IN ({marks})",
                    (campaign.id, day.isoformat(), *district_ids),
                ).fetchall()
            ),
            runs=3,
        )
    assert sum(c["people"] for c in direct.values()) == cov.total.screened  # the same counts
    n_answers = conn.execute("SELECT count(*) FROM screenings").fetchone()[0]
    conn.close()
    t = cov.total
    engine = "PostgreSQL" if target.startswith("postgres") else "SQLite"
    print(f"{engine}: sites {t.sites:,}, roster {t.roster:,}, answers of the day {n_answers:,}")
    print(
        f"to screen {t.to_screen:,} ({t.added:,} added on site), screened {t.screened:,},"
        f" not yet {t.not_yet:,}, follow-ups open {len(follows):,}"
    )
    print(f"coverage, whole city ({t.sites:,} sites):      {city_ms:8.1f} ms  (target <= 500 ms)")
    print(
        f"coverage, one district ({cd.total.sites:,} sites):     {district_ms:8.1f} ms  (target <= 50 ms)"
    )
    print(f"summary paragraph (city):                {summary_ms:8.1f} ms")
    print(f"CSV export of the city:                  {csv_ms:8.1f} ms")
    print(f"XLSX export of the city:                 {xlsx_ms:8.1f} ms")
    print(f"roll-call's screening column (city):     {rollcall_ms:8.1f} ms")
    print(f"a site phone's page data (100 people):   {phone_ms:8.1f} ms")
    print(f"follow-ups, whole city:                  {follow_ms:8.1f} ms")
    print(
        f"baseline, counting the answers (city):   {direct_city_ms:8.1f} ms  (what the kept counts avoid)"
    )
    print(f"baseline, counting the answers (district): {direct_district_ms:6.1f} ms")
    print(f"summary: {text}")
    if engine == "SQLite":
        ingest_cost(app, mixed=False)
        ingest_cost(app, mixed=True)


if __name__ == "__main__":
    main()
