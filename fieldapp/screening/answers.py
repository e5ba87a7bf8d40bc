"""Screening answers: the `screening` record kind, a site's people and their answers, the purge.

An answer is made once, on the phone (or a form), about one person on one day; answering again
is a new record, and the person's answer of a day is their latest (tallies.latest). A person not
on the roster is added by the answer itself (added, with their name): such people stay with the
campaign and never become roster rows on their own, because the roster is configuration owned
upstream and flows one way, down (README, "Screening").
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from functools import partial
from typing import Any

from flask_babel import gettext as _

import sync
from fieldapp import days, records, rules
from fieldapp.db import transaction
from fieldapp.gate import roster as rosters
from fieldapp.screening import campaigns, questions, tallies
from sync.store import canonical_uuid

COLUMNS = (
    "campaign_id",
    "site_id",
    "person_id",
    "day",
    "added",
    *questions.PERSON_FIELDS,
    *questions.ANSWER_COLUMNS,
    "screener",
    "note",
)
PURGE_BATCH = 5000  # answers deleted per write transaction


def about(conn: sqlite3.Connection, data: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(campaign id, the questions it asks, site id, person id) that an answer or a follow-up
    step (followup.py) names, each checked; sync.Invalid, worded for the sender, otherwise."""
    campaign_id = data.get("campaign_id")
    if isinstance(campaign_id, str):
        campaign_id = campaign_id.strip(rules.SPACES)
    if (
        not isinstance(campaign_id, str)
        or not campaign_id
        or len(campaign_id) > 40
        or "\x00" in campaign_id  # in no campaign's id (PostgreSQL's text cannot hold one)
    ):
        raise sync.Invalid(_("The answer names no screening campaign."))
    row = conn.execute(
        "SELECT questions FROM screening_campaigns WHERE id = ?", (campaign_id,)
    ).fetchone()
    if row is None:
        raise sync.NotYet(_("The answer names a screening campaign this instance does not know."))
    site_id = records.site_of(conn, data)
    try:
        person_id = canonical_uuid(data.get("person_id"), "person_id")
    except sync.Invalid:
        raise sync.Invalid(_("The answer does not name the person it is about.")) from None
    return campaign_id, row[0], site_id, person_id


def validate(conn: sqlite3.Connection, data: dict[str, Any], tz_name: str) -> dict[str, Any]:
    """Check an answer from any source and return its normalised wire form. tz_name: the
    instance's TIMEZONE, whose today (days.latest_day) is the last day an answer may be for."""
    campaign_id, asked, site_id, person_id = about(conn, data)
    fields = questions.fields_for(questions.parse(asked))
    clean = records.checked(data, fields)
    if date.fromisoformat(clean["day"]) > days.latest_day(tz_name):
        raise sync.Invalid(
            _("The answer is for a day that has not come yet: check the phone's date.")
        )
    if not clean["added"]:
        # Someone on the roster, or deleted from it by a purge (an answer a phone kept offline
        # meanwhile is stored, not held for a person who will never come back).
        known = conn.execute(
            "SELECT 1 FROM roster WHERE id = ? AND site_id = ?"
            " UNION ALL SELECT 1 FROM roster_removed WHERE id = ? AND site_id = ?",
            (person_id, site_id, person_id, site_id),
        ).fetchone()
        if known is None:
            raise sync.NotYet(_("The answer is about someone not on this site's roster."))
    # No form adds someone under a roster person's id: they would be counted twice among the
    # people to screen (the roster, and the added) and once as added on site.
    elif conn.execute("SELECT 1 FROM roster WHERE id = ?", (person_id,)).fetchone() is not None:
        raise sync.Invalid(
            _("The answer adds someone not on the roster under the id of someone on it.")
        )
    out: dict[str, Any] = dict.fromkeys(questions.WIRE_KEYS, "")
    out.update(clean)  # questions the campaign does not ask stay empty
    out.update(campaign_id=campaign_id, site_id=site_id, person_id=person_id)
    return out


def record_kinds(config: Mapping[str, Any]) -> list[sync.RecordKind]:
    """The screening kind (its counts kept as it is written: tallies.after_write)."""
    return [
        records.kind(
            "screening",
            "screenings",
            partial(validate, tz_name=config["TIMEZONE"]),
            COLUMNS,
            ("added",),
            after_write=tallies.after_write,
            from_phones=True,
        )
    ]


# ---- a site's people and their answers -------------------------------------------------------

ANSWER_KEYS = ("uuid", "day", "recorded_at", *questions.ANSWER_COLUMNS)


def _answer(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ANSWER_KEYS}


def people(
    conn: sqlite3.Connection,
    campaign: campaigns.Campaign,
    site_id: str,
    day: date,
    until: str | None = None,
) -> list[dict[str, Any]]:
    """A site's people for a campaign on a day, roster first by name, then people added on
    phones: each with `last` (the latest answer up to that day, what a re-check starts from),
    `current` (the answer in force for the day's coverage, or None), `state` (not_yet,
    done, or follow: the answer puts them in isolation or observation) and `aliases` (the
    other ids their answers came under: added on site, or on another phone). until (the end
    of a past day, a stored UTC time): the roster of that day, as its coverage counts it
    (rosters.ON_ROSTER_BY: those taken off since are still listed); None: as it is now."""
    first, last = campaign.window(day)
    on = "active = 1" if until is None else rosters.ON_ROSTER_BY
    roster = conn.execute(
        "SELECT id, name, phone, unit, person_type FROM roster"  # noqa: S608 -- fixed clauses
        f" WHERE site_id = ? AND {on} ORDER BY name, id",
        (site_id,) if until is None else (site_id, until, until),
    ).fetchall()
    answers: dict[str, list[sqlite3.Row]] = defaultdict(list)
    for a in conn.execute(
        "SELECT * FROM screenings WHERE campaign_id = ? AND site_id = ? AND day <= ?",
        (campaign.id, site_id, last.isoformat()),
    ):
        answers[a["person_id"]].append(a)
    # Someone added on site who has joined the roster since (`fieldapp roster import`) is that
    # roster person, their answers as added theirs too: the same person as the import knows
    # one (roster.person_key), as the coverage counts them (coverage.joined).
    # Someone added on two phones (two ids, the same name and phone) is one person too, listed
    # under the least id, as coverage.joined counts them.
    on_roster = {rosters.person_key(p["name"], p["phone"]): p["id"] for p in roster}
    listed = set(on_roster.values())
    aliases: dict[str, list[str]] = defaultdict(list)  # their other ids (a phone may know one)
    for person_id in sorted(p for p in answers if p not in listed):
        named = tallies.latest(a for a in answers[person_id] if a["added"])
        if named is None:
            continue
        same = on_roster.setdefault(rosters.person_key(named["name"], named["phone"]), person_id)
        if same != person_id:
            answers[same] += answers.pop(person_id)
            aliases[same].append(person_id)
    out = [
        _person(dict(p, aliases=aliases[p["id"]]), False, answers.pop(p["id"], []), first, last)
        for p in roster
    ]
    added = []
    for person_id, found in answers.items():  # the rest: people not on the roster
        named = tallies.latest(a for a in found if a["added"])
        if named is None:
            continue  # someone who has left the roster: not asked for any more
        person = {k: named[k] for k in ("name", "phone", "unit", "person_type")}
        person.update(id=person_id, aliases=aliases[person_id])
        added.append(_person(person, True, found, first, last))
    added.sort(key=lambda p: (p["name"], p["id"]))
    return out + added


def _person(
    person: dict[str, Any], added: bool, found: list[sqlite3.Row], first: date, last: date
) -> dict[str, Any]:
    newest = tallies.latest(found)
    current = tallies.latest(a for a in found if first.isoformat() <= a["day"] <= last.isoformat())
    state = "not_yet"
    if current is not None:
        state = "follow" if current["status"] in questions.FOLLOWED else "done"
    return {
        **person,
        "added": added,
        "last": _answer(newest) if newest else None,
        "current": _answer(current) if current else None,
        "state": state,
    }


# ---- retention ------------------------------------------------------------------------------


def purge(conn: sqlite3.Connection, horizon: str) -> int:
    """Delete answers and follow-up steps recorded before the horizon; how many rows went. Each
    batch of answers goes in one write transaction with the counting again of the days they
    were counted in, so the tallies never count an answer that is gone (a purge cut short
    leaves whole batches). They are not entries and point at none (no entry_uuid), so
    create_app hands this to the retention purge (privacy/retention.py, `others`)."""
    deleted = 0
    while True:
        with transaction(conn):
            gone = conn.execute(
                "DELETE FROM screenings WHERE id IN (SELECT id FROM screenings"
                " WHERE recorded_at < ? ORDER BY recorded_at LIMIT ?) RETURNING campaign_id, day",
                (horizon, PURGE_BATCH),
            ).fetchall()
            for campaign_id, day in sorted({(r[0], r[1]) for r in gone}):
                tallies.rebuild(conn, campaign_id, day)
        deleted += len(gone)
        if len(gone) < PURGE_BATCH:
            break
    with transaction(conn):
        deleted += conn.execute(
            "DELETE FROM screening_actions WHERE recorded_at < ?", (horizon,)
        ).rowcount
    return deleted
