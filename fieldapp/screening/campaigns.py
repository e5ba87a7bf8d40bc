"""Screening campaigns: configuration made at the central and flowing down with the sites and
rosters (fieldapp/syncing/configuration.py pulls the table), so every tier and every site phone
asks the same questions. Each change takes the next configuration version; an instance with an
upstream refuses to make or end one.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from fieldapp import audit, days, rules
from fieldapp.db import transaction
from fieldapp.gate import sites as site_lookup
from fieldapp.screening import questions
from fieldapp.settings import is_downstream
from sync import config as sync_config
from sync.store import iso, utcnow

NAME_LIMIT = 100


class CampaignError(ValueError):
    """A campaign that cannot be made or changed; the message says why, in the user's language."""


@dataclass(frozen=True)
class Campaign:
    """A screening campaign as the code reads it."""

    id: str
    name: str
    all_sites: bool
    districts: tuple[str, ...]
    sites: tuple[str, ...]
    start_day: date
    end_day: date | None
    daily: bool
    questions: tuple[str, ...]
    active: bool

    def covers(self, site: Mapping[str, Any]) -> bool:
        """Whether the site (a row with id and district) is one this campaign screens."""
        return self.all_sites or site["id"] in self.sites or site["district"] in self.districts

    def runs_on(self, day: date) -> bool:
        """Whether people are to be screened on that day, as the campaign stands now (ended:
        not any more)."""
        return self.active and self.ran_on(day)

    def ran_on(self, day: date) -> bool:
        """Whether people were (or are) to be screened on that day: ending a campaign sets its
        last day (end), so a day's roll-call keeps the campaign it had. One ended before that
        was so has no known last day: on no day's."""
        if not self.active and self.end_day is None:
            return False
        return self.start_day <= day and (self.end_day is None or day <= self.end_day)

    def window(self, day: date) -> tuple[date, date]:
        """The days whose answers count for coverage on `day`: that day for a daily campaign,
        from the start up to it for a one-off."""
        return (day, day) if self.daily else (self.start_day, day)


def _campaign(row: Mapping[str, Any]) -> Campaign:
    return Campaign(
        id=row["id"],
        name=row["name"],
        all_sites=bool(row["all_sites"]),
        districts=tuple(json.loads(row["districts"] or "[]")),
        sites=tuple(json.loads(row["sites"] or "[]")),
        start_day=date.fromisoformat(row["start_day"]),
        end_day=date.fromisoformat(row["end_day"]) if row["end_day"] else None,
        daily=bool(row["daily"]),
        questions=questions.parse(row["questions"]),
        active=bool(row["active"]),
    )


def get(conn: sqlite3.Connection, campaign_id: str) -> Campaign | None:
    """The campaign with that id, or None."""
    row = conn.execute("SELECT * FROM screening_campaigns WHERE id = ?", (campaign_id,)).fetchone()
    return _campaign(row) if row else None


def listing(conn: sqlite3.Connection) -> list[Campaign]:
    """Every campaign here, running ones first, newest first."""
    rows = conn.execute(
        "SELECT * FROM screening_campaigns ORDER BY active DESC, start_day DESC, created_at DESC"
    ).fetchall()
    return [_campaign(r) for r in rows]


def visible(conn: sqlite3.Connection, site_ids: list[str] | None) -> list[Campaign]:
    """The campaigns covering at least one of site_ids (None: every campaign)."""
    listed = listing(conn)
    if site_ids is None:
        return listed
    wanted = set(site_ids)
    mine = [r for r in conn.execute("SELECT id, district FROM sites") if r["id"] in wanted]
    return [c for c in listed if any(c.covers(r) for r in mine)]


def find(conn: sqlite3.Connection, ref: str) -> Campaign:
    """A campaign named on the command line by its id or its exact name."""
    rows = conn.execute(
        "SELECT * FROM screening_campaigns WHERE id = ? OR name = ? ORDER BY created_at DESC",
        (ref, ref),
    ).fetchall()
    if not rows:
        raise CampaignError(_("No screening campaign is called %(ref)s.", ref=ref))
    if len(rows) > 1:
        raise CampaignError(
            _("Several campaigns are called %(ref)s: give the id instead.", ref=ref)
        )
    return _campaign(rows[0])


def for_site(conn: sqlite3.Connection, site: Mapping[str, Any], day: date) -> list[Campaign]:
    """The campaigns that screen this site's people on that day."""
    return [c for c in listing(conn) if c.runs_on(day) and c.covers(site)]


def site_rows(
    conn: sqlite3.Connection,
    campaign: Campaign,
    *,
    district: str | None = None,
    site_ids: Iterable[str] | None = None,
    open_only: bool = True,
    open_on: tuple[date, str] | None = None,
) -> list[sqlite3.Row]:
    """The open sites a campaign screens, by district and name; narrowed to a district and to
    the site ids a console user may see (None: every site). open_only=False: closed ones too,
    for site_ids chosen already (a past day's roll-call lists a site closed since). open_on
    (a day, the time zone): the sites open at some time that day, as its roll-call lists them
    (sites.open_on): a site closed since keeps its figures, one closed all day is not missing."""
    which = "active = 1" if open_only else "1 = 1"
    params: list[Any] = []
    if open_on is not None:
        which, opened = site_lookup.open_on(*open_on, alias="sites")
        params += opened
    sql = f"SELECT id, name, district FROM sites WHERE {which}"  # noqa: S608 -- fixed clauses
    if district is not None:
        sql += " AND district = ?"
        params.append(district)
    rows = conn.execute(sql + " ORDER BY district, name, id", params).fetchall()
    allowed = set(site_ids) if site_ids is not None else None
    return [r for r in rows if campaign.covers(r) and (allowed is None or r["id"] in allowed)]


# ---- making and ending campaigns (at the central) -------------------------------------------


def refuse_if_downstream(config: Mapping[str, Any]) -> None:
    """Campaigns are configuration: an instance with an upstream receives them, never makes them."""
    if is_downstream(config):
        raise CampaignError(
            _(
                "This instance has an upstream (%(url)s): screening campaigns are made there"
                " and flow down to this instance.",
                url=config["UPSTREAM_URL"],
            )
        )


def _day(value: Any, label: Any) -> date:
    try:
        return days.parse_day(value)
    except ValueError as exc:
        raise CampaignError(_("%(field)s: %(message)s", field=label, message=str(exc))) from None


def add(
    conn: sqlite3.Connection,
    config: Mapping[str, Any],
    name: str,
    *,
    start: Any,
    end: Any = "",
    daily: bool = True,
    all_sites: bool = False,
    districts: Iterable[str] = (),
    sites: Iterable[str] = (),
    asked: Any = tuple(questions.QUESTIONS),
    actor: str = "cli",
) -> Campaign:
    """Make a campaign (sites by code or id, districts by name): checked whole, then written in
    one transaction with the next configuration version and an audit line."""
    refuse_if_downstream(config)
    clean = rules.clean_line(name or "")
    if clean is None:
        raise CampaignError(
            _("A campaign's name must be one line, without tabs or invisible characters.")
        )
    name = clean
    if not name or len(name) > NAME_LIMIT:
        raise CampaignError(_("A campaign's name is 1 to %(n)d characters.", n=NAME_LIMIT))
    start_day = _day(start, _l("Start"))
    end_day = _day(end, _l("End")) if end else None
    if end_day is not None and end_day < start_day:
        raise CampaignError(_("A campaign cannot end before it starts."))
    try:
        chosen = questions.parse(asked)
    except ValueError as exc:
        raise CampaignError(str(exc)) from None
    districts = sorted({d.strip() for d in districts if d and d.strip()})
    for district in districts:
        if conn.execute("SELECT 1 FROM sites WHERE district = ?", (district,)).fetchone() is None:
            raise CampaignError(_("No site is in the district %(name)s.", name=district))
    site_ids = []
    for ref in sites:
        ref = (ref or "").strip()
        if not ref:
            continue
        try:
            site_ids.append(site_lookup.find(conn, ref)["id"])
        except site_lookup.SiteError as exc:
            raise CampaignError(str(exc)) from None
    if not all_sites and not districts and not site_ids:
        raise CampaignError(_("Say which sites the campaign covers: all, districts or sites."))
    campaign_id = str(uuid.uuid4())
    with transaction(conn):
        if conn.execute(
            "SELECT 1 FROM screening_campaigns WHERE name = ? AND active = 1", (name,)
        ).fetchone():
            raise CampaignError(_("A running campaign is already called %(name)s.", name=name))
        version = sync_config.next_version(conn)
        conn.execute(
            "INSERT INTO screening_campaigns (id, name, all_sites, districts, sites, start_day,"
            " end_day, daily, questions, active, version, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
            (
                campaign_id,
                name,
                int(all_sites),
                json.dumps(districts, ensure_ascii=False),
                json.dumps(sorted(set(site_ids))),
                start_day.isoformat(),
                end_day.isoformat() if end_day else "",
                int(daily),
                ",".join(chosen),
                version,
                iso(utcnow()),
            ),
        )
        audit.write(conn, actor, "screening_campaign", campaign_id, f"add {name}")
    return get(conn, campaign_id)  # type: ignore[return-value]


def end(
    conn: sqlite3.Connection, config: Mapping[str, Any], campaign: Campaign, actor: str = "cli"
) -> bool:
    """Stop a campaign (its answers are kept); False if it had stopped already. Its last day
    becomes today (in TIMEZONE) unless it was to end sooner: the days it ran stay on their
    roll-calls (Campaign.ran_on)."""
    refuse_if_downstream(config)
    today = days.today(config["TIMEZONE"]).isoformat()
    with transaction(conn):
        row = conn.execute(
            "SELECT active, end_day FROM screening_campaigns WHERE id = ?", (campaign.id,)
        ).fetchone()
        if row is None or not row[0]:
            return False
        last = min(row[1], today) if row[1] else today
        version = sync_config.next_version(conn)
        conn.execute(
            "UPDATE screening_campaigns SET active = 0, end_day = ?, version = ? WHERE id = ?",
            (last, version, campaign.id),
        )
        audit.write(conn, actor, "screening_campaign", campaign.id, f"end {campaign.name}")
    return True


def scope_text(campaign: Campaign, site_names: Mapping[str, str]) -> str:
    """What a campaign covers, as a reader sees it."""
    if campaign.all_sites:
        return _("every site")
    parts = list(campaign.districts) + [site_names.get(s, s) for s in campaign.sites]
    return "、".join(parts)
