"""Daily reports (日报告、零报告): the `daily_report` record kind, a day's counts, submit, supersede.

A report is made from the day's entries at a site, reviewed by the volunteer or coordinator,
and submitted as an append-only record. A correction is a new report that names the one it
supersedes; nothing is edited. A report holds counts only, no personal data, so it is kept for
REPORT_RETENTION_DAYS instead of the entries' horizon.
"""

from __future__ import annotations

import sqlite3
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from operator import attrgetter
from typing import Any, TypeVar

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

import sync
from fieldapp import days, records, rules
from fieldapp.console import corrections
from sync.store import canonical_uuid

R = TypeVar("R")  # a report as a reader holds it (a Report, a row)

PERSON_TYPES = tuple(rules.PERSON_TYPES)
FEVER_ACTIONS = tuple(rules.FEVER_ACTIONS)
# Counts on the wire and in the table, one integer each: the form posts them by these names.
COUNT_KEYS = (
    *(f"in_{t}" for t in PERSON_TYPES),
    *(f"out_{t}" for t in PERSON_TYPES),
    "fevers",
    *(f"fever_{a}" for a in FEVER_ACTIONS),
    "travel",
    "code_red",
    "code_yellow",
    "vehicles",
)
COLUMNS = ("site_id", "day", "zero", "supersedes", "reporter", "remarks", *COUNT_KEYS)
# Keys of the wire data (what an offline form must post, beside uuid/recorded_at/csrf_token).
WIRE_KEYS = COLUMNS
MAX_COUNT = 1_000_000
# What a volunteer types on the report; the hidden counts come from the server.
FIELDS = (
    rules.Field("reporter", "text", _l("Your name"), max_len=50),
    rules.Field("remarks", "text", _l("Remarks"), max_len=500, lines=True),  # a textarea
)

COUNT_LABELS = {
    "fevers": _l("Fevers (≥ %(t)s °C)", t=rules.FEVER_AT),
    "fever_refused": _l("Fever: entry refused"),
    "fever_clinic": _l("Fever: sent to clinic"),
    "fever_remeasured": _l("Fever: re-measured"),
    "fever_other": _l("Fever: other action"),
    "travel": _l("Travel to risk areas"),
    "code_red": _l("Red codes"),
    "code_yellow": _l("Yellow codes"),
    "vehicles": _l("Vehicles"),
}


# ---- counts from entries ----------------------------------------------------------------------


def compute_counts(
    conn: sqlite3.Connection, site_id: str, day: date, tz_name: str
) -> dict[str, int]:
    """The day's counts at a site from its entries' current values (corrections applied, a
    voided entry left out): one indexed query over the entries as recorded, then the
    corrected ones (few) counted again as they are now.

    A fever raised by a correction is in `fevers` but in no `fever_<action>`: what was done
    is recorded at the gate, for a reading that was a fever there (not correctable)."""
    start, end = days.bounds(day, tz_name)
    parts = []
    params: list[Any] = []
    for direction in ("in", "out"):
        for person_type in PERSON_TYPES:
            parts.append("count(*) FILTER (WHERE direction = ? AND person_type = ?)")
            params += [direction, person_type]
    parts.append("count(*) FILTER (WHERE temperature >= ?)")
    params.append(rules.FEVER_AT)
    for action in FEVER_ACTIONS:
        parts.append("count(*) FILTER (WHERE temperature >= ? AND fever_action = ?)")
        params += [rules.FEVER_AT, action]
    parts += [
        f"count(*) FILTER (WHERE {condition})"
        for condition in (
            "travel = 1",
            "health_code = 'red'",
            "health_code = 'yellow'",
            "plate != ''",
        )
    ]
    sql = (
        f"SELECT {', '.join(parts)} FROM entries"  # noqa: S608 -- the expressions come from code
        " WHERE site_id = ? AND recorded_at >= ? AND recorded_at < ?"
    )
    row = conn.execute(sql, (*params, site_id, start, end)).fetchone()
    out = {key: int(value or 0) for key, value in zip(COUNT_KEYS, row, strict=True)}
    fixed = corrections.corrected_entries(
        conn,
        ", ".join(_READ),
        "site_id = ? AND recorded_at >= ? AND recorded_at < ?",
        (site_id, start, end),
    )
    if fixed:
        fixes = corrections.for_entries(conn, [r["uuid"] for r in fixed])
        for r in fixed:
            for key in counted_in(r):
                out[key] -= 1
            now = corrections.current(r, fixes.get(r["uuid"], []))
            if not now["void"]:
                for key in counted_in(now):
                    out[key] += 1
    return out


# The columns counted_in reads.
_READ = ("direction", "person_type", "temperature", "fever_action", "travel")
_READ += ("health_code", "plate")


def counted_in(entry: Mapping[str, Any]) -> list[str]:
    """The counts (COUNT_KEYS) one entry adds one to: what compute_counts' query counts."""
    keys = [f"{entry['direction']}_{entry['person_type']}"]
    if rules.is_fever(float(entry["temperature"])):
        keys += ["fevers", f"fever_{entry['fever_action']}"]
    if entry["travel"]:
        keys.append("travel")
    keys.append(f"code_{entry['health_code']}")
    if entry["plate"]:
        keys.append("vehicles")
    return [k for k in keys if k in _COUNTED]


_COUNTED = frozenset(COUNT_KEYS)


def is_zero(counts: Mapping[str, int]) -> bool:
    """Nothing to report: no one in or out, nothing flagged."""
    return not any(counts.get(k, 0) for k in COUNT_KEYS)


def entries_in(counts: Mapping[str, int]) -> int:
    """People in, all types."""
    return sum(counts.get(f"in_{t}", 0) for t in PERSON_TYPES)


def entries_out(counts: Mapping[str, int]) -> int:
    """People out, all types."""
    return sum(counts.get(f"out_{t}", 0) for t in PERSON_TYPES)


# ---- the record kind --------------------------------------------------------------------------


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = rules.yesno(data.get(key, False))
    if value is None:
        raise sync.Invalid(_("The report does not say whether it is a zero report."))
    return value


def _count(data: Mapping[str, Any], key: str) -> int:
    """A count the report must carry: a missing or empty one is refused, never read as 0 (a
    report without its fevers would stand in the roll-call as a day without fevers)."""
    value = data.get(key)
    if isinstance(value, str):
        text = value.strip(rules.SPACES)
        if text.isascii() and text.isdigit() and len(text) <= 8:
            value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise sync.Invalid(
            _(
                "The count “%(field)s” must be a whole number from 0 to %(max)d.",
                field=count_label(key),
                max=MAX_COUNT,
            )
        )
    return value


def count_label(key: str) -> str:
    """A count's name as the report page shows it ("In: Resident", "Red codes")."""
    if key in COUNT_LABELS:
        return str(COUNT_LABELS[key])
    direction, _sep, person_type = key.partition("_")
    return _(
        "%(direction)s: %(who)s",
        direction=rules.DIRECTIONS.get(direction, direction),
        who=rules.PERSON_TYPES.get(person_type, person_type),
    )


def not_yet(day: date, tz_name: str) -> str:
    """Why a report for a day after days.latest_day is refused, in the reader's language."""
    return _(
        "The report is for %(day)s, a day that has not come yet (today is %(today)s): check"
        " the date of the phone or computer it was made on.",
        day=day.isoformat(),
        today=days.today(tz_name, sync.utcnow()).isoformat(),
    )


def validate(conn: sqlite3.Connection, data: dict[str, Any], tz_name: str) -> dict[str, Any]:
    """Check a daily report from any source and return its normalised wire form. tz_name: the
    instance's TIMEZONE, whose today is the last day a report may be for."""
    site_id = records.site_of(conn, data)
    try:
        day = days.parse_day(data.get("day"))
    except ValueError as exc:
        raise sync.Invalid(_("The report's day: %(message)s", message=str(exc))) from None
    # Tomorrow here is a wrong date (a computer's clock, a typo), whatever the UTC date is.
    if day > days.latest_day(tz_name):
        raise sync.Invalid(not_yet(day, tz_name))
    texts = records.checked(data, FIELDS)
    counts = {key: _count(data, key) for key in COUNT_KEYS}
    fever_actions = sum(counts[f"fever_{a}"] for a in FEVER_ACTIONS)
    if fever_actions > counts["fevers"]:
        raise sync.Invalid(_("The report counts more fever outcomes than fevers."))
    # Every count is of the day's entries: none can be more than the people in and out.
    people = entries_in(counts) + entries_out(counts)
    for key in ("fevers", "travel", "vehicles"):
        if counts[key] > people:
            raise sync.Invalid(
                _(
                    "The count “%(field)s” is more than the people in and out (%(n)d).",
                    field=count_label(key),
                    n=people,
                )
            )
    if counts["code_red"] + counts["code_yellow"] > people:
        raise sync.Invalid(
            _(
                "Red and yellow codes together are more than the people in and out (%(n)d).",
                n=people,
            )
        )
    zero = _bool(data, "zero")
    if zero and not is_zero(counts):
        raise sync.Invalid(_("A zero report cannot have counts."))
    supersedes = data.get("supersedes") or ""
    if supersedes:
        try:
            supersedes = canonical_uuid(supersedes, "supersedes")
        except sync.Invalid:
            raise sync.Invalid(
                _("The report does not name a valid earlier report it supersedes.")
            ) from None
        earlier = conn.execute(
            "SELECT site_id, day FROM daily_reports WHERE uuid = ?", (supersedes,)
        ).fetchone()
        # The earlier report may not have arrived yet (another path up the chain); when it is
        # here, it must be the same site and day.
        if earlier is not None and (earlier[0], earlier[1]) != (site_id, day.isoformat()):
            raise sync.Invalid(_("A report can only supersede one of the same site and day."))
    return {
        "site_id": site_id,
        "day": day.isoformat(),
        "zero": is_zero(counts),
        "supersedes": supersedes,
        **texts,
        **counts,
    }


def record_kinds(config: Mapping[str, Any]) -> list[sync.RecordKind]:
    """The daily_report kind: kept past the entries' horizon (counts only)."""
    return [
        records.kind(
            "daily_report",
            "daily_reports",
            partial(validate, tz_name=config["TIMEZONE"]),
            COLUMNS,
            ("zero",),
            expires=False,
            from_phones=True,
        )
    ]


# ---- reading and submitting -------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """A stored daily report."""

    uuid: str
    site_id: str
    day: str
    zero: bool
    supersedes: str
    reporter: str
    remarks: str
    recorded_at: str
    counts: dict[str, int]

    @property
    def entries_out(self) -> int:
        """People out."""
        return entries_out(self.counts)


def _report(row: sqlite3.Row) -> Report:
    return Report(
        uuid=row["uuid"],
        site_id=row["site_id"],
        day=row["day"],
        zero=bool(row["zero"]),
        supersedes=row["supersedes"],
        reporter=row["reporter"],
        remarks=row["remarks"],
        recorded_at=row["recorded_at"],
        counts={k: row[k] for k in COUNT_KEYS},
    )


def get(conn: sqlite3.Connection, uuid: str) -> Report | None:
    """The report with this UUID, or None."""
    row = conn.execute("SELECT * FROM daily_reports WHERE uuid = ?", (uuid,)).fetchone()
    return _report(row) if row else None


def reports_for(conn: sqlite3.Connection, site_id: str, day: date) -> list[Report]:
    """Every report of a site and day, oldest first."""
    rows = conn.execute(
        "SELECT * FROM daily_reports WHERE day = ? AND site_id = ? ORDER BY recorded_at, id",
        (day.isoformat(), site_id),
    ).fetchall()
    return [_report(r) for r in rows]


def in_force(
    reports: Sequence[R],
    uuid: Callable[[R], str],
    supersedes: Callable[[R], str],
    recorded_at: Callable[[R], str],
) -> R | None:
    """The report in force among one site's reports of one day: the latest that no other one
    supersedes. A report naming itself does not put itself out of force, and if each one is
    superseded (a circle no form makes) the latest of them all is in force: a site that
    reported is never shown as not reported. The report pages and the roll-call both ask here."""
    replaced = {supersedes(r) for r in reports if supersedes(r) and supersedes(r) != uuid(r)}
    live = [r for r in reports if uuid(r) not in replaced] or list(reports)
    return max(live, key=recorded_at) if live else None


def current(reports: list[Report]) -> Report | None:
    """The report in force (in_force) among one site's reports of one day."""
    return in_force(
        reports,
        attrgetter("uuid"),
        attrgetter("supersedes"),
        attrgetter("recorded_at"),
    )


def current_report(conn: sqlite3.Connection, site_id: str, day: date) -> Report | None:
    """The report in force for a site and day, or None."""
    return current(reports_for(conn, site_id, day))


def draft(
    conn: sqlite3.Connection, site_id: str, day: date, tz_name: str, reporter: str = ""
) -> dict[str, Any]:
    """The wire data of a report about to be submitted: the day's counts from its entries."""
    counts = compute_counts(conn, site_id, day, tz_name)
    existing = current_report(conn, site_id, day)
    return {
        "site_id": site_id,
        "day": day.isoformat(),
        "zero": is_zero(counts),
        "supersedes": existing.uuid if existing else "",
        "reporter": reporter,
        "remarks": "",
        **counts,
    }


def outdated(conn: sqlite3.Connection, posted: Mapping[str, Any], day: date, tz_name: str) -> bool:
    """Whether a valid report form, drawn as draft() drew it then, is out of date against
    draft() now: entries came since (other counts), or a report of that day was submitted
    since (another report in force than the one the form supersedes). Submitted as it is, the
    counts of the morning would be in force over a later report (the latest is the one in
    force). An invalid form is not: submit() refuses it with its own reason."""
    try:
        validate(conn, dict(posted), tz_name)
    except sync.Invalid:
        return False
    fresh = draft(conn, posted["site_id"], day, tz_name)
    if (posted.get("supersedes") or "") != fresh["supersedes"]:
        return True
    return any(str(posted.get(key, "")).strip() != str(fresh[key]) for key in COUNT_KEYS)


def new_record(
    data: Mapping[str, Any], *, uuid: str | None = None, recorded_at: str | None = None
) -> dict[str, Any]:
    """A wire record of kind daily_report around the given data."""
    return records.new("daily_report", data, uuid=uuid, recorded_at=recorded_at)


def submit(
    conn: sqlite3.Connection,
    data: Mapping[str, Any],
    *,
    source: str = "local",
    device: str | None = None,
    **record: Any,
) -> sync.Result:
    """Store one report through fieldapp.records.save; the Result says applied, rejected…"""
    return records.save(conn, [new_record(data, **record)], source=source, device=device)[0]


# ---- for the gate page ------------------------------------------------------------------------


def new_uuid() -> str:
    """A fresh record UUID (the form carries it, so a second tap is a harmless repeat)."""
    return str(uuidlib.uuid4())


def already_stored(conn: sqlite3.Connection, uuid: str) -> bool:
    """Whether a report with this UUID is already here."""
    return (
        conn.execute("SELECT 1 FROM daily_reports WHERE uuid = ?", (uuid,)).fetchone() is not None
    )


def count_rows(data: Mapping[str, Any]) -> list[tuple[str, int, int | None]]:
    """(label, in, out) per person type, then (label, count, None) per flagged figure."""
    rows: list[tuple[str, int, int | None]] = [
        (str(label), int(data[f"in_{t}"]), int(data[f"out_{t}"]))
        for t, label in rules.PERSON_TYPES.items()
    ]
    rows += [(str(COUNT_LABELS[k]), int(data[k]), None) for k in COUNT_LABELS]
    return rows
