"""`fieldapp demo`: a residential compound and a construction site with small rosters."""

from __future__ import annotations

import sqlite3

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _

from . import roster, sites
from .db import connect, transaction
from .i18n import cli_locale

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


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Seed a demo compound and construction site when there are no sites; print gate URLs."""
    base = current_app.config["BASE_URL"]
    with force_locale(cli_locale()):
        if current_app.config.get("UPSTREAM_URL"):
            click.echo(
                _("This instance has an upstream: its sites come from there; no demo seeded.")
            )
            return
        conn = connect(current_app.config["DATABASE"])
        try:
            made = seed(conn)
            shown = made or sites.list_sites(conn)
        finally:
            conn.close()
        click.echo(_("Demo sites created:") if made else _("Sites exist already; nothing seeded."))
    for site in shown:
        if site["active"]:
            click.echo(f"  {site['name']}: {sites.gate_url(base, site['code'])}")
    _print_enrolment_links(shown)


def _print_enrolment_links(shown) -> None:
    """Without an enrolled phone a gate URL shows the visitor's form: give one link per site."""
    from . import devices

    conn = connect(current_app.config["DATABASE"])
    with force_locale(cli_locale()):
        try:
            for site in shown:
                if site["active"]:
                    token, _expires = devices.create_enrolment(conn, site["code"], _("Demo phone"))
                    click.echo(
                        _("Enrol a phone for %(site)s (one-time link, 24 h):", site=site["name"])
                    )
                    click.echo(f"  {devices.enrol_url(token)}")
        finally:
            conn.close()


commands = [demo_command]
