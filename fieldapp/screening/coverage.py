"""Coverage of a campaign on a day, per site, per district and for the scope: people to screen
(the roster and the people added on site), screened, not yet, and the breakdown of their
answers; the summary paragraph made from those numbers; CSV, XLSX and a terminal table.

A daily campaign's day is read from the counts kept with the answers (tallies.py: a row per
site); a one-off campaign counts every answer from its start to the day (each person once).

A day counts the roster of that day (roster rows made before its end, not taken off before
it ended: roster.ON_ROSTER_BY), so later imports and departures leave it as it was. Someone
added on site who has joined the roster since (`fieldapp roster import` makes a new row of the
same name and phone) is that roster person (joined): one person to screen, their answers under
either id counted once (merged). So is someone added on two phones
(two ids, the same site, name and phone).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_babel import gettext as _

from fieldapp import days, db, tables
from fieldapp.gate import roster
from fieldapp.screening import campaigns, questions, tallies


@dataclass
class Line:
    """Coverage of one site, or summed over a district or the scope."""

    name: str
    district: str = ""
    site_id: str = ""
    sites: int = 0
    roster: int = 0  # on the roster that day
    added: int = 0  # people added on site so far, not on the roster that day
    counts: Counter = field(default_factory=Counter)
    rows: list[Line] = field(default_factory=list)  # a district's sites

    @property
    def to_screen(self) -> int:
        """People to screen: the roster and those added on site."""
        return self.roster + self.added

    @property
    def screened(self) -> int:
        """People whose answer counts for the day."""
        return self.counts["people"]

    @property
    def not_yet(self) -> int:
        """People still to screen."""
        return max(self.to_screen - self.screened, 0)

    def add(self, other: Line) -> None:
        """Sum a site into a district or the scope."""
        self.sites += other.sites
        self.roster += other.roster
        self.added += other.added
        self.counts.update(other.counts)


@dataclass
class Coverage:
    """A campaign's coverage on a day over a scope."""

    campaign: campaigns.Campaign
    day: date
    scope: str  # a district's name, or '' for every site in scope
    rows: list[Line]
    districts: list[Line]
    total: Line

    @property
    def columns(self) -> list[tuple[str, str, str]]:
        """The breakdown's columns: (column, value, label) of the questions the campaign asks."""
        return [
            (column, value, questions.table_label(column, value))
            for column, question, labels in questions.BREAKDOWN
            if question in self.campaign.questions
            for value in labels
        ]


def roster_sizes(conn: sqlite3.Connection, site_ids: list[str] | None, until: str) -> Counter:
    """Roster people per site (every site, or those) on the roster at `until` (a stored UTC
    time, the end of a day): a past day counts the roster it had, not people who joined later,
    and still those taken off since."""
    sql = f"SELECT site_id, count(*) FROM roster WHERE {roster.ON_ROSTER_BY}"  # noqa: S608
    if site_ids is None:
        return Counter(dict(conn.execute(sql + " GROUP BY site_id", (until, until)).fetchall()))
    out: Counter = Counter()
    for chunk in db.chunks(site_ids, 500):
        out.update(
            dict(
                conn.execute(
                    f"{sql} AND {db.in_list('site_id', chunk)} GROUP BY site_id",  # noqa: S608 -- only marks
                    (until, until, *chunk),
                ).fetchall()
            )
        )
    return out


PAIRS = 400  # (site, name or person) pairs looked up at a time: 800 values, under any limit


def _pairs(first: str, second: str, n: int) -> str:
    """SQL for `(first = ? AND second = ?) OR …` n times: each pair an index look-up (SQLite's
    multi-index OR, PostgreSQL's bitmap OR), where a join on a list of values would make
    SQLite read the whole table first."""
    return " OR ".join([f"({first} = ? AND {second} = ?)"] * n)


@dataclass
class Joined:
    """A campaign's people added on site up to a day, against the roster of that day."""

    same: dict[str, str]  # an added person's id: the roster row made for them by then
    added: Counter  # per site, added people not on the roster of that day
    site_of: dict[str, str] = field(default_factory=dict)  # of the ids in same, both sides


def joined(
    conn: sqlite3.Connection,
    campaign_id: str,
    day: date,
    until: str,
    site_ids: list[str] | None = None,
) -> Joined:
    """Who of the people added on site up to the day (partial index screenings_added: such
    people are few), at every site or those, is on the site's roster at `until` (the end of
    the day: made before it, not taken off before it). Someone added on site who stays joins
    the roster by `fieldapp roster import` (README), which makes a new roster row for them: the
    same person as the import knows one, by name and phone (roster.person_key), named as in
    their latest answer as added.
    People added on site with the same name and phone are one person too (same: the others
    to the least of their ids), whether on the roster or not."""
    # In the order of screenings_added: SQLite reads that index, not the whole day's answers,
    # even when no statistics say how few such people there are.
    sql = (
        "SELECT site_id, person_id, name, phone, recorded_at, uuid FROM screenings"
        " WHERE added = 1 AND campaign_id = ? AND day <= ? AND {sites}"
        " ORDER BY site_id, person_id"
    )
    found_rows: list[tuple] = []
    for chunk in [None] if site_ids is None else db.chunks(site_ids, 500):
        found_rows += db.tuples(
            conn,
            sql.format(sites="1 = 1" if chunk is None else db.in_list("site_id", chunk)),
            (campaign_id, day.isoformat(), *(chunk or ())),
        )
    named: dict[tuple[str, str], tuple[tuple[str, str], tuple[str, str]]] = {}
    for site_id, person_id, name, phone, recorded_at, uuid in found_rows:
        held = named.get((site_id, person_id))
        if held is None or (recorded_at, uuid) > held[0]:
            named[(site_id, person_id)] = ((recorded_at, uuid), roster.person_key(name, phone))
    wanted = sorted({(site_id, key[0]) for (site_id, _p), (_w, key) in named.items()})
    found: dict[tuple[str, str, str], str] = {}
    for chunk in db.chunks(wanted, PAIRS):
        for person_id, site_id, name, phone in db.tuples(
            conn,
            "SELECT id, site_id, name, phone FROM roster"  # noqa: S608 -- only marks
            f" WHERE ({_pairs('site_id', 'name', len(chunk))}) AND {roster.ON_ROSTER_BY}",
            (*(v for pair in chunk for v in pair), until, until),
        ):
            key = (site_id, *roster.person_key(name, phone))
            found[key] = min(found.get(key, person_id), person_id)
    out = Joined({}, Counter())
    # Two phones that each add the same newcomer make two ids: one person, as a roster row is
    # (the same site, name and phone), counted under the first id (the least).
    first: dict[tuple[str, str, str], str] = {}
    for (site_id, person_id), (_w, key) in sorted(named.items()):
        row = found.get((site_id, *key))
        if row is None:
            row = first.setdefault((site_id, *key), person_id)
            if row == person_id:
                out.added[site_id] += 1
                continue
        out.same[person_id] = row
        out.site_of[person_id] = out.site_of[row] = site_id
    return out


# The roster as it is now, whenever its rows were made (a follow-up is about today): nobody
# was taken off after it.
EVER = "9999-12-31T23:59:59.999Z"


def same_people(
    conn: sqlite3.Connection, campaign_id: str, site_ids: list[str]
) -> dict[str, list[str]]:
    """A campaign's people at those sites known under more than one id (added on site, then on
    the roster now; or added on two phones), as joined() finds them: the id they are known by
    (the roster's, else the least) -> every id of theirs, that one first. The follow-ups."""
    out: dict[str, list[str]] = {}
    for person_id, one in sorted(joined(conn, campaign_id, date.max, EVER, site_ids).same.items()):
        out.setdefault(one, [one]).append(person_id)
    return out


def merged(
    conn: sqlite3.Connection, campaign_id: str, day: date, people: Joined
) -> dict[str, Counter]:
    """Per site, what counting a daily campaign's day with each person added on site and the
    roster row made for them as one person changes in the counts kept with the answers (those
    count each person id once): nothing, unless both ids have an answer that day."""
    pairs = sorted((site_id, person_id) for person_id, site_id in people.site_of.items())
    rows: list[Any] = []
    for chunk in db.chunks(pairs, PAIRS):
        rows += conn.execute(
            f"SELECT {tallies.READ} FROM screenings"  # noqa: S608 -- columns from code
            f" WHERE campaign_id = ? AND day = ? AND ({_pairs('site_id', 'person_id', len(chunk))})",
            (campaign_id, day.isoformat(), *(v for pair in chunk for v in pair)),
        ).fetchall()
    apart, together = tallies.count(rows), tallies.count(rows, people.same)
    out: dict[str, Counter] = {}
    for site_id in apart.keys() | together.keys():
        delta = Counter(together.get(site_id, Counter()))
        delta.subtract(apart.get(site_id, Counter()))
        out[site_id] = delta
    return out


def screened_counts(
    conn: sqlite3.Connection,
    campaign: campaigns.Campaign,
    day: date,
    site_ids: list[str] | None,
    people: Joined,
) -> dict[str, Counter]:
    """Counts of the answers in force on the day per site (each person once, someone added on
    site and their roster row as one): a daily campaign's from the counts kept with the
    answers, a one-off's from every answer since its start."""
    if not campaign.daily:
        first, last = campaign.window(day)
        return tallies.count(tallies.answers_in(conn, campaign.id, first, last), people.same)
    counts = tallies.read(conn, campaign.id, day, site_ids)
    for site_id, delta in merged(conn, campaign.id, day, people).items():
        counts.setdefault(site_id, Counter()).update(delta)
    return counts


def build(
    conn: sqlite3.Connection,
    campaign: campaigns.Campaign,
    day: date,
    *,
    tz: str,
    district: str | None = None,
    site_ids: Iterable[str] | None = None,
) -> Coverage:
    """Coverage of a campaign on a day (in the gates' time zone tz), for a district (or every
    site it covers), narrowed to the site ids a console user may see (None: all)."""
    # The sites open on the day, as its roll-call lists them: a past day keeps its figures.
    covered = campaigns.site_rows(conn, campaign, district=district, open_on=(day, tz))
    allowed = set(site_ids) if site_ids is not None else None
    sites = [s for s in covered if allowed is None or s["id"] in allowed]
    # Every site the campaign covers: one pass over the roster and the counts beats asking
    # for them site by site.
    everywhere = district is None and len(sites) == len(covered)
    ids = [s["id"] for s in sites]
    until = days.bounds(day, tz)[1]
    roster_on = roster_sizes(conn, None if everywhere else ids, until)
    people = joined(conn, campaign.id, day, until, None if everywhere else ids)
    counts = screened_counts(conn, campaign, day, None if everywhere else ids, people)
    rows: list[Line] = []
    districts: dict[str, Line] = {}
    total = Line(district or "")
    for s in sites:
        line = Line(
            s["name"],
            s["district"],
            s["id"],
            sites=1,
            roster=roster_on.get(s["id"], 0),
            added=people.added.get(s["id"], 0),
            counts=counts.get(s["id"], Counter()),
        )
        rows.append(line)
        group = districts.setdefault(s["district"], Line(s["district"], s["district"]))
        group.add(line)
        group.rows.append(line)
    groups = list(districts.values())
    for group in groups:  # the scope is the sum of its districts: one addition per district
        total.add(group)
    # A scope of one district is named by it, whether chosen or the user's whole scope.
    scope = district or (groups[0].name if len(groups) == 1 else "")
    total.name = scope
    return Coverage(campaign, day, scope, rows, groups, total)


# ---- the summary paragraph -------------------------------------------------------------------

WHEREABOUTS: dict[str, Callable[[int], str]] = {
    "district": lambda n: _("%(n)d stayed in the district", n=n),
    "city": lambda n: _("%(n)d went elsewhere in the city", n=n),
    "province": lambda n: _("%(n)d went elsewhere in the province", n=n),
    "other_province": lambda n: _("%(n)d went to another province", n=n),
    "risk_area": lambda n: _("%(n)d went to a risk area", n=n),
}
STATUS: dict[str, Callable[[int], str]] = {
    "here": lambda n: _("%(n)d here and well", n=n),
    "home_isolation": lambda n: _("%(n)d isolating at home", n=n),
    "medical_observation": lambda n: _("%(n)d under medical observation", n=n),
    "away": lambda n: _("%(n)d told not to come back yet", n=n),
    "left": lambda n: _("%(n)d have left the site", n=n),
}


def _join(parts: list[str]) -> str:
    return _(", ").join(parts)


def _whom(counts: Counter, prefix: str) -> str:
    """' (of whom 2 isolating at home, 5 told not to come back yet)' for a group, if any."""
    parts = [
        STATUS[s](counts[f"{prefix}:{s}"])
        for s in STATUS
        if s != "here" and counts[f"{prefix}:{s}"]
    ]
    return _(" (of whom %(parts)s)", parts=_join(parts)) if parts else ""


def summary(cov: Coverage) -> str:
    """The paragraph sent up the chain, every number from the records: who was to be screened,
    who was, where they had been, whom they met, where they are now, tests and vaccination."""
    t = cov.total
    asked = cov.campaign.questions
    added = _(" (%(n)d of them added on site)", n=t.counts["added"]) if t.counts["added"] else ""
    head = _(
        "%(day)s, %(scope)s, “%(campaign)s”: %(to_screen)d people to screen, %(screened)d"
        " screened%(added)s, %(not_yet)d not yet.",
        day=cov.day.isoformat(),
        scope=cov.scope or _("all sites"),
        campaign=cov.campaign.name,
        to_screen=t.to_screen,
        screened=t.screened,
        added=added,
        not_yet=t.not_yet,
    )
    if not t.screened:
        return head
    c = t.counts
    clauses = []
    if "whereabouts" in asked:
        clauses.append(
            _join(
                [
                    WHEREABOUTS[w](c[f"whereabouts:{w}"]) + _whom(c, f"whereabouts/status:{w}")
                    for w in WHEREABOUTS
                    if c[f"whereabouts:{w}"]
                ]
            )
        )
    if "contact" in asked:
        met = c["contact:yes"]
        clauses.append(
            _("%(n)d met people from risk areas", n=met) + _whom(c, "contact/status:yes")
            if met
            else _("nobody met people from risk areas")
        )
    if "status" in asked:
        now = [STATUS[s](c[f"status:{s}"]) for s in STATUS if c[f"status:{s}"]]
        clauses.append(_("now %(parts)s", parts=_join(now)))
    for column, question, labels in questions.BREAKDOWN:
        if question not in ("nat", "vaccine") or question not in asked:
            continue
        parts = [
            _("%(label)s %(n)d", label=label, n=c[f"{column}:{value}"])
            for value, label in labels.items()
            if c[f"{column}:{value}"]
        ]
        what = _("nucleic acid tests") if question == "nat" else _("vaccination")
        clauses.append(_("%(what)s: %(parts)s", what=what, parts=_join(parts)))
    body = _(
        " Of the %(n)d screened: %(parts)s.",
        n=t.screened,
        parts=_("; ").join(filter(None, clauses)),
    )
    return head + body


# ---- tables ---------------------------------------------------------------------------------


def header(cov: Coverage) -> list[str]:
    """Column titles of the exported table."""
    return [
        _("District"),
        _("Site"),
        _("To screen"),
        _("On the roster"),
        _("Added on site"),
        _("Screened"),
        _("Not yet"),
        *(label for _c, _v, label in cov.columns),
    ]


def _cells(columns: list, line: Line, district: str, name: str) -> list[str | int]:
    return [
        district,
        name,
        line.to_screen,
        line.roster,
        line.added,
        line.screened,
        line.not_yet,
        *(line.counts[f"{column}:{value}"] for column, value, _l in columns),
    ]


def table(cov: Coverage) -> list[list[str | int]]:
    """Every site's line, then a total per district and for the scope."""
    columns = cov.columns  # labels translated once for the whole table
    total = _("Total")
    out = [_cells(columns, r, r.district, r.name) for r in cov.rows]
    for d in cov.districts:
        out.append(_cells(columns, d, d.name, total))
    out.append(_cells(columns, cov.total, total, cov.scope or _("all sites")))
    return out


def title(cov: Coverage) -> str:
    """The table's title."""
    return _(
        "Screening “%(campaign)s” %(day)s", campaign=cov.campaign.name, day=cov.day.isoformat()
    ) + (f" · {cov.scope}" if cov.scope else "")


def to_csv(cov: Coverage) -> bytes:
    """The coverage as CSV in UTF-8 with a BOM (Excel opens the Chinese right), the summary
    paragraph in its first line."""
    return tables.csv_bytes([[summary(cov)], header(cov), *table(cov)])


def to_xlsx(cov: Coverage) -> bytes:
    """The coverage as an XLSX workbook: title, summary paragraph, then the table."""
    cols = header(cov)
    return tables.xlsx_bytes(
        cov.day.isoformat(),
        title(cov),
        cols,
        table(cov),
        plain=len(cov.rows),
        widths=((0, 1, 18), (2, len(cols) - 1, 10)),
        summary=summary(cov),
    )


def format_text(cov: Coverage) -> str:
    """The coverage as a plain-text table for the terminal, the summary paragraph after it."""
    return tables.text_table(
        title(cov), header(cov), table(cov), plain=len(cov.rows), summary=summary(cov)
    )


# ---- beside the daily roll-call --------------------------------------------------------------


def for_rollcall(
    conn: sqlite3.Connection, day: date, site_ids: Iterable[str], tz: str
) -> list[dict[str, Any]]:
    """For the roll-call of a day: each campaign that ran that day, with every listed site's
    (screened, to screen); sites it does not cover are absent. The same figures as build()'s
    lines, without the breakdown of answers each of a city's 5,000 lines would carry."""
    ids = list(site_ids)
    out = []
    until = days.bounds(day, tz)[1]
    roster_on: Counter | None = None
    for campaign in campaigns.listing(conn):
        if not campaign.ran_on(day):  # an ended campaign too, on the days it ran
            continue
        # The roll-call's own sites (those of its day, closed since or not) the campaign covers.
        sites = campaigns.site_rows(conn, campaign, site_ids=ids, open_only=False)
        if not sites:
            continue
        roster_on = roster_sizes(conn, None, until) if roster_on is None else roster_on
        people = joined(conn, campaign.id, day, until)
        if campaign.daily:
            screened = Counter(tallies.people(conn, campaign.id, day))
            for site_id, delta in merged(conn, campaign.id, day, people).items():
                screened[site_id] += delta["people"]
        else:
            counted = screened_counts(conn, campaign, day, None, people)
            screened = Counter({site_id: c["people"] for site_id, c in counted.items()})
        cells: dict[str, tuple[int, int]] = {}
        districts: dict[str, tuple[int, int]] = {}
        for s in sites:
            site_id = s["id"]
            cell = (screened[site_id], roster_on[site_id] + people.added[site_id])
            cells[site_id] = cell
            held = districts.get(s["district"], (0, 0))
            districts[s["district"]] = (held[0] + cell[0], held[1] + cell[1])
        total = (sum(c[0] for c in cells.values()), sum(c[1] for c in cells.values()))
        out.append({"campaign": campaign, "sites": cells, "districts": districts, "total": total})
    return out
