"""Today at a glance: entries per site and hour, people inside, fevers, travel flags, silent
sites, open fever cases, the sync state of instances and phones, and the last backup (made when,
failed why). Charts are plain SVG.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

import sync
from fieldapp.console import cases, logbook
from fieldapp.db import backup as backups
from fieldapp.gate import counts
from fieldapp.gate.sites import listing as site_listing
from fieldapp.syncing import status as sync_status_of
from sync.store import iso

CHART_W, CHART_H = 340, 140
# Rows a table of the dashboard shows at most: a city has 5,000 sites and more phones, and the
# page is polled every 30 seconds. The roll-call and the log list every site.
SHOWN = 100
# A phone or instance that has not pushed for this long is flagged: it may be off or offline.
SILENT = timedelta(hours=2)


def today(
    conn: sqlite3.Connection, site_ids: list[str] | None, tz: ZoneInfo, now: datetime
) -> dict[str, Any]:
    """The figures of the local day containing `now`, for the sites in scope (None: all)."""
    day = now.astimezone(tz).date()
    # Kept as the entries are stored (gate/counts.py): a row per site and hour, not the day's
    # entries (counted from them only while `fieldapp init` has not made the counts yet).
    per_site, hours = counts.figures(conn, day, tz.key, site_ids)
    sites = []
    # The open sites and those closed today (today's roll-call lists them): one closed at
    # noon keeps its morning's entries and fevers in today's figures. So does a site closed
    # before today whose phone pushes entries of today (kept offline): the log and the fever
    # cases list them, so the figures count them too.
    listed = site_listing(conn, site_ids, active_only=True, open_day=(day, tz.key))
    unlisted = sorted(set(per_site) - {row["id"] for row in listed})
    if unlisted:
        listed = [*listed, *site_listing(conn, unlisted)]
    for row in listed:
        s = per_site.get(row["id"]) or counts.blank()
        sites.append(
            {
                "id": row["id"],
                "name": row["name"],
                "district": row["district"],
                **s,
                "total": s["in"] + s["out"],
                # Ins minus outs of the day, never below 0 (those in since yesterday leave today).
                "inside": max(s["in"] - s["out"], 0),
            }
        )
    totals = {
        k: sum(s[k] for s in sites) for k in ("in", "out", "fevers", "travels", "total", "inside")
    }
    silent = [s for s in sites if s["total"] == 0]
    chart = site_chart(sorted(sites, key=lambda s: -s["total"])[:15])
    site_count = len(sites)
    if site_count > SHOWN:  # those with fevers first, then the busiest
        sites = sorted(sites, key=lambda s: (-s["fevers"], -s["total"]))[:SHOWN]
    return {
        "day": day.isoformat(),
        "sites": sites,
        "site_count": site_count,
        "totals": totals,
        "silent": silent[:SHOWN],
        "silent_count": len(silent),
        "hours": hours,
        "cases": cases.open_count(conn, site_ids, now),
        "hour_chart": bar_chart([str(h) for h in range(24)], hours),
        "site_chart": chart,
        "sync": sync_status(conn, site_ids, now),
        "backup": backups.status(conn, current_app.config),
    }


def bar_chart(labels: list[str], values: list[int]) -> dict[str, Any]:
    """Geometry of a vertical bar chart (rendered as SVG by the template)."""
    top = max(values) if values and max(values) > 0 else 1
    slot = CHART_W / max(len(values), 1)
    plot_h = CHART_H - 20
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = round(plot_h * value / top, 1)
        bars.append(
            {
                "x": round(i * slot + 1, 1),
                "y": round(plot_h - h, 1),
                "w": round(slot - 2, 1),
                "h": h,
                "label": label,
                "value": value,
                "show_label": i % 3 == 0,
                "lx": round(i * slot + slot / 2, 1),
            }
        )
    return {"width": CHART_W, "height": CHART_H, "bars": bars, "max": top, "base": plot_h}


def site_chart(sites: list[dict]) -> dict[str, Any]:
    """Geometry of a horizontal bar chart of entries per site (in and out stacked; the site's
    name is written over its bar, so a 360 px screen keeps the whole width for the bars)."""
    top = max((s["total"] for s in sites), default=0) or 1
    row_h = 24
    bars = []
    for i, s in enumerate(sites):
        w_in = round(CHART_W * s["in"] / top, 1)
        w_out = round(CHART_W * s["out"] / top, 1)
        bars.append({"y": i * row_h, "w_in": w_in, "w_out": w_out, "x_out": w_in, **s})
    return {"width": CHART_W, "height": max(len(sites), 1) * row_h, "bars": bars, "row_h": row_h}


def sync_status(
    conn: sqlite3.Connection, site_ids: list[str] | None, now: datetime | None = None
) -> dict[str, Any]:
    """Instances and phones that push here (last push, records received, silent for too long)
    and what this instance still has to push upstream, from fieldapp.syncing.status()."""
    found = sync_status_of.status(conn)
    names = logbook.site_names(conn)
    silent_before = iso((now or sync.utcnow()) - SILENT)
    shown = [
        dict(
            p,
            site_name=names.get(p.get("site_id") or "", ""),
            silent=not p.get("last_push_at") or p["last_push_at"] < silent_before,
        )
        for p in found["downstream"]
        if not p.get("revoked")
        # Phones belong to a site: only those in scope. Instances are shown to everyone.
        and (p["kind"] != "device" or site_ids is None or p["site_id"] in site_ids)
    ]
    shown.sort(key=lambda p: (p["kind"], p["name"]))
    count = len(shown)
    if count > SHOWN:  # the silent ones first: they are what to act on
        shown = sorted(shown, key=lambda p: not p["silent"])[:SHOWN]
    return {"peers": shown, "peer_count": count, "upstream": found["upstream"]}
