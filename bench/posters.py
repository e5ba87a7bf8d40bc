"""Site posters: PDF size for 1 and for N sites, and the time to make N posters.

    .venv/bin/python bench/posters.py [--sites 100] [--lang zh_Hans] [--out DIR]

Each site gets a different made-up name, district and address (so a sheet of many posters
needs many different characters, as a real district's does), then posters.render makes the
PDF in memory: best of 3 for the N-site sheet. --out also writes both PDFs there to look at.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.fernet import Fernet  # noqa: E402

from fieldapp import create_app  # noqa: E402
from fieldapp.reports import posters  # noqa: E402

# Common characters of place names; a name is two to four of them and a kind of site.
CHARS = (
    "阳光花园金坛溧阳新北天宁钟楼武进东西南北湖山水城河桥春秋明华嘉和平安康乐福寿"
    "龙凤翠竹梅兰松柏清泉绿苑雅居锦绣香樟枫林星月云海滨江景御府名都国际世纪家园"
)
KINDS = ("小区", "花园", "新村", "工地", "公寓", "苑")
DISTRICTS = ("金坛区", "溧阳市", "武进区", "新北区", "天宁区", "钟楼区")


def fake_sites(n: int) -> list[dict]:
    rng = random.Random(2020)
    sites = []
    for i in range(n):
        name = "".join(rng.choice(CHARS) for _ in range(rng.randint(2, 4))) + rng.choice(KINDS)
        sites.append(
            {
                "id": str(i),
                "name": name,
                "district": DISTRICTS[i % len(DISTRICTS)],
                "address": f"{rng.choice(CHARS)}{rng.choice(CHARS)}路{rng.randint(1, 999)}号",
                "contact": f"社区居委会 0519-{8000 + i}",
                "code": f"{i:016x}",
            }
        )
    return sites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--lang", choices=["zh_Hans", "zh_Hant"], default="zh_Hans")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "DATABASE": str(Path(tmp) / "bench.sqlite3"),
                "SECRET_KEY": "bench",
                "ID_KEY": Fernet.generate_key().decode(),
                "BASE_URL": "http://gate.example",
            }
        )
        sites = fake_sites(args.sites)
        with app.app_context():

            def make(rows):
                return posters.render(
                    rows,
                    base_url="http://gate.example",
                    printed=date(2020, 2, 15),
                    language=args.lang,
                )

            one = make(sites[:1])  # also the first-use cost (font registration), timed below
            times = []
            for _ in range(3):
                t = time.perf_counter()
                many = make(sites)
                times.append(time.perf_counter() - t)
    print(f"1 site:      {len(one):>9,} bytes")
    print(
        f"{args.sites} sites: {len(many):>9,} bytes ({len(many) / args.sites / 1024:.1f} KiB a page)"
    )
    print(
        f"{args.sites} posters in {min(times):.2f} s (best of 3; {min(times) / args.sites * 1000:.1f} ms each)"
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "posters-1.pdf").write_bytes(one)
        (args.out / f"posters-{args.sites}.pdf").write_bytes(many)


if __name__ == "__main__":
    main()
