"""Roll-call (点名): for a day and a scope, which sites reported, zero-reported, were late, or are
missing, with totals by district and for the scope. Reads daily reports, never entries; a zero
report is checked against the day's kept entry counts (a gate that registered people did not
have a day with nobody)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from operator import itemgetter
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from fieldapp import days, db, tables
from fieldapp.gate import counts
from fieldapp.gate import sites as sites_domain
from fieldapp.reports import daily as reports

REPORTED, ZERO, LATE, MISSING = "reported", "zero", "late", "missing"
STATES = {
    REPORTED: _l("Reported"),
    ZERO: _l("Zero report"),
    LATE: _l("Late"),
    MISSING: _l("Missing"),
}
# Figures shown per site and summed per district: (key, label).
FIGURES = (
    ("in", _l("In")),
    ("out", _l("Out")),
    ("visitors", _l("Visitors")),
    ("fevers", _l("Fevers")),
    ("travel", _l("Travel")),
    ("code_red", _l("Red code")),
    ("code_yellow", _l("Yellow code")),
    ("vehicles", _l("Vehicles")),
)


# Each figure as the database sums it from a report's counts (people in and out of every type,
# visitors in and out, the counts themselves), in FIGURES' order: worked out once per report by
# the query, not in Python per site.
FIGURE_SQL = (
    " + ".join(f"r.in_{t}" for t in reports.PERSON_TYPES),
    " + ".join(f"r.out_{t}" for t in reports.PERSON_TYPES),
    "r.in_visitor + r.out_visitor",
    "r.fevers",
    "r.travel",
    "r.code_red",
    "r.code_yellow",
    "r.vehicles",
)
FIGURE_KEYS = tuple(key for key, _label in FIGURES)
assert len(FIGURE_SQL) == len(FIGURES)


@dataclass(slots=True)
class Row:
    """One site's line of the roll-call."""

    site_id: str
    name: str
    district: str
    state: str
    zero: bool = False
    submitted_at: str = ""  # local time of the first submission, HH:MM (date if another day)
    reporter: str = ""
    remarks: str = ""
    values: tuple[int, ...] = ()  # the figures in FIGURES' order; () when the site has none
    # A zero report's doubt: the entries this instance holds of that day at the site, and fevers.
    registered: tuple[int, int] = (0, 0)

    @property
    def figures(self) -> dict[str, int]:
        """The figures by key ({} when the site has not reported)."""
        return dict(zip(FIGURE_KEYS, self.values, strict=True)) if self.values else {}

    @property
    def cells(self) -> list[int | str]:
        """The figures in FIGURES' order, blank where the site reported none (the exports')."""
        return list(self.values) if self.values else [""] * len(FIGURES)


@dataclass
class Totals:
    """Counts of states and summed figures over a group of sites."""

    name: str
    sites: int = 0
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURE_KEYS))
    rows: list[Row] = field(default_factory=list)  # a district's own sites (not for the total)

    @classmethod
    def of(cls, name: str, rows: list[Row]) -> Totals:
        """A district's totals, listing its sites: each figure summed once over the group,
        not site by site."""
        t = cls(name, sites=len(rows), rows=rows)
        for row in rows:
            t.states[row.state] += 1
        if rows:
            sums = [sum(col) for col in zip(*(r.values for r in rows if r.values), strict=True)]
            t.figures = dict(zip(FIGURE_KEYS, sums or [0] * len(FIGURES), strict=True))
        return t

    @classmethod
    def over(cls, name: str, groups: list[Totals]) -> Totals:
        """The totals of several groups together (the scope's, from its districts)."""
        t = cls(name, sites=sum(g.sites for g in groups))
        for key in t.states:
            t.states[key] = sum(g.states[key] for g in groups)
        if t.sites:
            t.figures = {k: sum(g.figures[k] or 0 for g in groups) for k in FIGURE_KEYS}
        return t

    @property
    def reported(self) -> int:
        """Sites with a report in force (on time, zero or late)."""
        return self.sites - self.states[MISSING]


@dataclass
class RollCall:
    """The roll-call of one day over a scope."""

    day: date
    scope: str  # a district's name, or '' for every site
    cutoff: str
    rows: list[Row]
    districts: list[Totals]
    total: Totals


# The columns build reads of a report, by position (plain tuples: 5,000 of them for a city).
_SITE, _UUID, _SUPERSEDES, _AT, _ZERO, _REPORTER, _REMARKS = range(7)
_IN_FORCE = itemgetter(_UUID), itemgetter(_SUPERSEDES), itemgetter(_AT)
_REPORT_COLUMNS = (
    "r.site_id, r.uuid, r.supersedes, r.recorded_at, r.zero, r.reporter, r.remarks, "
    + ", ".join(FIGURE_SQL)
)


def build(
    conn: sqlite3.Connection,
    day: date,
    *,
    tz_name: str,
    cutoff: str,
    district: str | None = None,
    site_ids: Iterable[str] | None = None,
) -> RollCall:
    """The roll-call of a day for a district (or every site), optionally limited to site_ids.

    It lists the sites open on that day (sites.open_on: created by its end, not closed before
    it), and any other site with a report of that day, whose report always counts: a day's
    roll-call stays as it was sent when sites are added or closed afterwards."""
    late_after = days.cutoff_instant(day, cutoff, tz_name)
    # A district narrows the sites, and the reports through their sites.
    in_district, params = (" AND s.district = ?", (district,)) if district else ("", ())
    opened, opened_params = sites_domain.open_on(day, tz_name)
    sites = db.tuples(
        conn,
        f"SELECT s.id, s.name, s.district FROM sites s WHERE ({opened} OR EXISTS ("  # noqa: S608 -- fixed clauses
        " SELECT 1 FROM daily_reports d WHERE d.day = ? AND d.site_id = s.id))"
        f"{in_district} ORDER BY s.district, s.name, s.id",
        (*opened_params, day.isoformat(), *params),
    )
    allowed = set(site_ids) if site_ids is not None else None
    # One pass over the day's reports (index daily_reports_day_site); tiny next to the entries.
    by_site: dict[str, list[tuple]] = {}
    join = " JOIN sites s ON s.id = r.site_id" if district else ""
    found = db.tuples(
        conn,
        f"SELECT {_REPORT_COLUMNS} FROM daily_reports r{join}"  # noqa: S608 -- fixed clauses
        f" WHERE r.day = ?{in_district} ORDER BY r.site_id, r.recorded_at, r.id",
        (day.isoformat(), *params),
    )
    for r in found:
        by_site.setdefault(r[_SITE], []).append(r)

    clock = days.clock(day, tz_name)  # the zone looked up once, not per site
    rows: list[Row] = []
    by_district: dict[str, list[Row]] = {}
    for site_id, name, site_district in sites:
        if allowed is not None and site_id not in allowed:
            continue
        found = by_site.get(site_id)
        if not found:
            row = Row(site_id, name, site_district, MISSING)
        else:
            first = now = found[0]
            if len(found) > 1:  # corrected: the latest report not replaced is in force
                now = reports.in_force(found, *_IN_FORCE)
            zero = bool(now[_ZERO])
            state = LATE if first[_AT] > late_after else ZERO if zero else REPORTED
            row = Row(
                site_id,
                name,
                site_district,
                state,
                zero,
                clock(first[_AT]),
                now[_REPORTER],
                now[_REMARKS],
                now[7:],
            )
        rows.append(row)
        by_district.setdefault(site_district, []).append(row)
    _doubt_zero_reports(conn, day, tz_name, [r for r in rows if r.zero])
    districts = [Totals.of(name, group) for name, group in by_district.items()]
    total = Totals.over(district or "", districts)
    return RollCall(day, district or "", cutoff, rows, districts, total)


def _doubt_zero_reports(conn: sqlite3.Connection, day: date, tz_name: str, zero: list[Row]) -> None:
    """Mark each zero report whose site has entries of that day here (registered after the
    report, or on a phone or instance the report was not made on): the roll-call says so, for
    a zero report in force would leave them, fevers too, out of the day's figures."""
    if not zero:
        return
    per_site, _hours = counts.figures(conn, day, tz_name, [r.site_id for r in zero])
    for r in zero:
        found = per_site.get(r.site_id)
        if found and found["in"] + found["out"]:
            r.registered = (found["in"] + found["out"], found["fevers"])


def doubt(r: Row) -> str:
    """Why a zero report is in doubt, in the reader's language; "" when it is not."""
    n, fevers = r.registered
    if not n:
        return ""
    return _(
        "but %(n)d entries of this day are registered (%(fevers)d with fever)", n=n, fevers=fevers
    )


def state_labels() -> dict[str, str]:
    """Each state in the reader's language, translated once for a whole table."""
    return {key: str(label) for key, label in STATES.items()}


def html_lines(rc: RollCall, screening: list[dict[str, Any]]) -> dict[str, Markup]:
    """Each district's site lines of the console's table (templates/reports/_rollcall.html),
    by district name: a city's 5,000 lines written here in one pass, each text escaped once,
    as a template would take some 20 steps a line to write them (2-3 times the time of the
    whole rest of the page). screening: coverage.for_rollcall's campaigns, a cell each."""
    span = {
        key: f'<span class="state state-{key}">{escape(label)}</span>'
        for key, label in state_labels().items()
    }
    late_zero = f'{span[LATE]} <span class="muted">{escape(_("(zero)"))}</span>'
    blank = "<td></td>" * len(FIGURES)
    out: dict[str, Markup] = {}
    for t in rc.districts:
        lines = []
        for r in t.rows:
            state = late_zero if r.state == LATE and r.zero else span[r.state]
            if r.registered[0]:
                state += f' <strong class="zero-doubt">{escape(doubt(r))}</strong>'
            figures = "<td>" + "</td><td>".join(map(str, r.values)) + "</td>" if r.values else blank
            screened = "".join(
                f'<td class="screening-cell">{_fraction(sc["sites"].get(r.site_id))}</td>'
                for sc in screening
            )
            lines.append(
                f'<tr class="state-{r.state}" data-site="{escape(r.site_id)}">'
                f'<th scope="row">{escape(r.name)}</th><td>{state}</td>'
                f"<td>{escape(r.submitted_at)}</td>{screened}{figures}"
                f"<td>{escape(r.remarks)}</td></tr>"
            )
        out[t.name] = Markup("\n".join(lines))
    return out


def _fraction(pair: tuple[int, int] | None) -> str:
    """'screened/to screen' of a screening cell, or nothing."""
    return f"{escape(pair[0])}/{escape(pair[1])}" if pair else ""


def header() -> list[str]:
    """Column titles of the exported table, in the reader's language."""
    return [
        _("District"),
        _("Site"),
        _("State"),
        _("Zero report"),
        _("Submitted at"),
        *(str(label) for _key, label in FIGURES),
        _("Reporter"),
        _("Remarks"),
    ]


def table(rc: RollCall) -> list[list[str | int]]:
    """Every site's line, then a total per district and for the scope."""
    out: list[list[str | int]] = []
    labels, yes = state_labels(), _("yes")
    for r in rc.rows:
        zero = (f"{yes}, {doubt(r)}" if r.registered[0] else yes) if r.zero else ""
        out.append(
            [
                r.district,
                r.name,
                labels[r.state],
                zero,
                r.submitted_at,
                *r.cells,
                r.reporter,
                r.remarks,
            ]
        )
    for t in [*rc.districts, rc.total]:
        name = t.name if t is not rc.total else _("Total")
        out.append(
            [
                name,
                _("%(reported)d of %(sites)d sites reported", reported=t.reported, sites=t.sites),
                summary(t),
                "",
                "",
                *(t.figures[k] or 0 for k, _label in FIGURES),
                "",
                "",
            ]
        )
    return out


def summary(t: Totals) -> str:
    """'Reported 3, zero 1, late 0, missing 2' in the reader's language."""
    return _(
        "reported %(reported)d, zero %(zero)d, late %(late)d, missing %(missing)d",
        reported=t.states[REPORTED],
        zero=t.states[ZERO],
        late=t.states[LATE],
        missing=t.states[MISSING],
    )


def title(rc: RollCall) -> str:
    """The table's title."""
    day = rc.day.isoformat()
    return _("Daily roll-call %(day)s", day=day) + (f" · {rc.scope}" if rc.scope else "")


def to_csv(rc: RollCall) -> bytes:
    """The roll-call as CSV in UTF-8 with a BOM, so Excel opens the Chinese right."""
    return tables.csv_bytes([header(), *table(rc)])


def to_xlsx(rc: RollCall) -> bytes:
    """The roll-call as an XLSX workbook (XlsxWriter)."""
    return tables.xlsx_bytes(
        rc.day.isoformat(),
        title(rc),
        header(),
        table(rc),
        plain=len(rc.rows),
        widths=((0, 1, 18), (2, 4, 12)),
    )


def format_text(rc: RollCall) -> str:
    """The roll-call as a plain-text table for the terminal."""
    return tables.text_table(title(rc), header(), table(rc), plain=len(rc.rows))
