"""`fieldapp demo`: a residential compound and a construction site with small rosters."""

from __future__ import annotations

import sqlite3

from fieldapp.db import transaction
from fieldapp.gate import roster, sites

DEMO_SITES = (
    {
        "name": "阳光花园小区",
        "kind": "residential",
        "address": "江苏省常州市金坛区东门大街88号",
        "district": "金坛区",
        "contact": "阳光花园物业 0519-82800000",
        "people": [
            ("张建国", "13812345678", "3-2-501", "resident"),
            ("李秀英", "13951234567", "3-1-202", "resident"),
            ("王磊", "15861234567", "5-1-1102", "resident"),
            ("陈晓梅", "18912345678", "7-2-301", "resident"),
        ],
    },
    {
        "name": "金坛区人民医院扩建工地",
        "kind": "construction",
        "address": "江苏省常州市金坛区南环一路500号",
        "district": "金坛区",
        "contact": "项目部安全员 刘工 13900000000",
        "people": [
            ("赵志强", "13770001234", "钢筋班组", "worker"),
            ("孙海波", "15052345678", "木工班组", "worker"),
            ("周德才", "18651234567", "项目部", "worker"),
        ],
    },
)


def seed(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Create the demo sites and rosters if there are no sites yet; return the new sites."""
    made = []
    with transaction(conn):
        if conn.execute("SELECT 1 FROM sites LIMIT 1").fetchone() is not None:
            return []
        for spec in DEMO_SITES:
            site = sites.add_site(
                conn,
                spec["name"],
                spec["kind"],
                address=spec["address"],
                district=spec["district"],
                contact=spec["contact"],
            )
            rows = [
                {"name": n, "phone": p, "unit": u, "person_type": t}
                for n, p, u, t in spec["people"]
            ]
            roster.import_rows(conn, site["id"], rows)
            made.append(site)
    return made
