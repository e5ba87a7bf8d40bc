"""Follow-up of people in home isolation or medical observation, like a fever case.

An answer whose status is one of questions.FOLLOWED opens a follow-up of that person in that
campaign (derived: no record opens it). Each step taken, a temperature check (twice a day), a
note, closing with an outcome or reopening, is an append-only `screening_action` record that
syncs up like the answers. An isolating answer recorded after a close opens it again: the answer
is what the site says now. Someone known under two ids (added on site, then on the roster;
added on two phones) has one follow-up, under the id coverage counts them by
(coverage.same_people), made of the answers and steps under either.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l

import sync
from fieldapp import days, db, records, rules
from fieldapp.console import cases
from fieldapp.screening import answers as screening_answers
from fieldapp.screening import coverage, questions, tallies

ACTIONS = {
    "check": _l("Temperature check"),
    "note": _l("Note"),
    "close": _l("Closed"),
    "reopen": _l("Reopened"),
}
OUTCOMES = {
    "completed": _l("Completed, well"),
    "hospital": _l("Taken to hospital"),
    "left": _l("Left the site"),
    "other": _l("Other"),
}
# Checked twice a day: a follow-up whose last check (or opening) is older than this is overdue.
CHECK_EVERY = timedelta(hours=12)
CHECKS_PER_DAY = cases.CHECKS_PER_DAY  # as a fever case in home isolation
COLUMNS = (
    "campaign_id",
    "site_id",
    "person_id",
    "action",
    "temperature",
    "outcome",
    "note",
    "author",
)
# The condition of the partial index screenings_isolating, written out as it is there.
ISOLATING_SQL = "status IN ('home_isolation', 'medical_observation')"
SHOWN = 500  # follow-ups listed at most, the oldest first
# listing() reads with two joins once the people to follow are at more sites than this.
WHOLE_AT = 50


def validate(conn: sqlite3.Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Check a follow-up step from any source and return its normalised wire form."""
    campaign_id, _asked, site_id, person_id = screening_answers.about(conn, data)
    step = cases.check_step(
        data, ACTIONS, OUTCOMES, ("check",), _l("Choose the outcome to close the follow-up.")
    )
    return {"campaign_id": campaign_id, "site_id": site_id, "person_id": person_id, **step}


def record_kinds(config: Mapping[str, Any]) -> list[sync.RecordKind]:
    """The screening_action kind."""
    return [records.kind("screening_action", "screening_actions", validate, COLUMNS)]


def wire(
    key: Mapping[str, Any], author: str, action: str, uuid: str | None = None, **data: Any
) -> dict[str, Any]:
    """A new follow-up step (key: campaign_id, site_id, person_id), made here now, and after
    every answer and step the follow-up shown held (key's answers and all_steps, as one() gives
    them): a phone whose clock ran a few minutes ahead stamped its answer later than our now, and
    a close placed before that answer would close nothing (state() goes by recorded_at).
    uuid: the form's (stored(): a form sent twice is one step), else a new one."""
    now = sync.utcnow()
    seen = [r["recorded_at"] for r in (*key.get("answers", ()), *key.get("all_steps", ()))]
    if seen and _at(max(seen)) >= now:
        now = _at(max(seen)) + timedelta(milliseconds=1)
    return records.new(
        "screening_action",
        {
            "campaign_id": key["campaign_id"],
            "site_id": key["site_id"],
            "person_id": key["person_id"],
            "action": action,
            "author": author,
            **data,
        },
        uuid=uuid,
        recorded_at=sync.store.iso(now),
    )


def stored(conn: sqlite3.Connection, uuid: str, campaign_id: str) -> bool:
    """Whether a step with this uuid, of this campaign, is stored (a form sent twice)."""
    return (
        conn.execute(
            "SELECT 1 FROM screening_actions WHERE uuid = ? AND campaign_id = ?",
            (uuid, campaign_id),
        ).fetchone()
        is not None
    )


def _at(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def state(
    answers: Iterable[Mapping[str, Any]], actions: Iterable[Mapping[str, Any]], now: datetime
) -> dict[str, Any] | None:
    """The follow-up of one person in one campaign, from their answers and the steps taken
    (both in any order), or None if no answer ever opened one. The latest period counts."""
    events = sorted(
        [("answer", a) for a in answers] + [("action", a) for a in actions],
        key=lambda e: (e[1]["recorded_at"], e[1]["uuid"]),
    )
    follow: dict[str, Any] | None = None
    last_status = ""
    for kind, e in events:
        if kind == "answer":
            last_status = e["status"] or last_status
            if e["status"] in questions.FOLLOWED and (follow is None or follow["closed"]):
                follow = {
                    "opened_at": e["recorded_at"],
                    "opened_status": e["status"],
                    "closed": False,
                    "closed_at": "",
                    "closed_by": "",
                    "outcome": "",
                    "checks": [],
                    "steps": [],
                }
            continue
        if follow is None:
            continue  # a step that arrived before the answer it follows up
        follow["steps"].append(e)
        if e["action"] == "check":
            follow["checks"].append(e)
        elif e["action"] == "close" and not follow["closed"]:
            follow.update(closed=True, closed_at=e["recorded_at"], closed_by=e["author"])
            follow["outcome"] = e["outcome"]
        elif e["action"] == "reopen" and follow["closed"]:
            follow.update(closed=False, closed_at="", closed_by="", outcome="")
    if follow is None:
        return None
    since = follow["checks"][-1]["recorded_at"] if follow["checks"] else follow["opened_at"]
    follow["status"] = last_status
    follow["last_temperature"] = follow["checks"][-1]["temperature"] if follow["checks"] else None
    follow["overdue"] = not follow["closed"] and now - _at(since) > CHECK_EVERY
    follow["fever"] = any(rules.is_fever(c["temperature"]) for c in follow["checks"][-2:])
    return follow


def checks_on(follow: Mapping[str, Any], day_start: str, day_end: str) -> int:
    """How many temperature checks were recorded in [day_start, day_end) (UTC timestamps)."""
    return sum(1 for c in follow["checks"] if day_start <= c["recorded_at"] < day_end)


STATUSES = {
    "open": _l("Open"),
    "overdue": _l("Check overdue"),
    "closed": _l("Closed"),
    "all": _l("All"),
}


def _names(conn: sqlite3.Connection, people: list[tuple[str, str, str]]) -> dict[str, dict]:
    """person_id -> name, phone, unit: from the roster, else from the answer that added them."""
    out: dict[str, dict] = {}
    ids = sorted({p for _c, _s, p in people})
    for chunk in db.chunks(ids, 500):
        for r in conn.execute(
            f"SELECT id, name, phone, unit FROM roster WHERE {db.in_list('id', chunk)}",  # noqa: S608
            chunk,
        ):
            out[r["id"]] = {"name": r["name"], "phone": r["phone"], "unit": r["unit"]}
    return out


def listing(
    conn: sqlite3.Connection,
    site_ids: list[str] | None,
    now: datetime,
    status: str = "open",
    campaign_id: str | None = None,
    limit: int = SHOWN,
) -> list[dict[str, Any]]:
    """Follow-ups in scope (site_ids None: every site), the oldest opened first, each with the
    person, the site and its derived state."""
    sql = (
        "SELECT DISTINCT campaign_id, site_id, person_id FROM screenings"  # noqa: S608 -- constant
        f" WHERE {ISOLATING_SQL}"
    )
    params: list[Any] = []
    if campaign_id:
        sql += " AND campaign_id = ?"
        params.append(campaign_id)
    people = [tuple(r) for r in conn.execute(sql, params)]
    if site_ids is not None:
        allowed = set(site_ids)
        people = [p for p in people if p[1] in allowed]
    # Someone known under two ids (added on site, then joined the roster; added on two
    # phones) is one person followed up, by the id coverage counts them under, their answers
    # and steps under every id of theirs.
    ids: dict[tuple[str, str], list[str]] = {}
    for c in sorted({c for c, _s, _p in people}):
        sites = sorted({s for c2, s, _p in people if c2 == c})
        for every in coverage.same_people(conn, c, sites).values():
            for p in every:
                ids[(c, p)] = every
    isolating = set(people)
    people = sorted({(c, s, ids.get((c, p), [p])[0]) for c, s, p in people})
    by_place: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c, s, p in people:
        by_place[(c, s)] += ids.get((c, p), [p])
    answers: dict[tuple[str, str], list] = defaultdict(list)
    actions: dict[tuple[str, str], list] = defaultdict(list)
    if len(by_place) > WHOLE_AT:
        # Many sites (a city, a district of it): two joins over everyone followed beat two
        # look-ups per site, round trips adding up; people out of scope are read and unused.
        # Those joins miss only an id of someone followed that no answer put into isolation.
        _read_all(conn, campaign_id, answers, actions)
        by_place = {
            (c, s): missed
            for (c, s), persons in by_place.items()
            if (missed := [p for p in persons if (c, s, p) not in isolating])
        }
    for (c, s), persons in by_place.items():
        for chunk in db.chunks(persons, 500):
            marks = db.in_list("person_id", chunk)
            for a in conn.execute(
                "SELECT * FROM screenings WHERE campaign_id = ? AND site_id = ?"  # noqa: S608
                f" AND {marks}",
                (c, s, *chunk),
            ):
                answers[(c, a["person_id"])].append(a)
            for a in conn.execute(
                "SELECT * FROM screening_actions WHERE campaign_id = ?"  # noqa: S608
                f" AND {marks}",
                (c, *chunk),
            ):
                actions[(c, a["person_id"])].append(a)
    names = _names(conn, people)
    site_names = {r["id"]: r["name"] for r in conn.execute("SELECT id, name FROM sites")}
    campaign_names = {
        r["id"]: r["name"] for r in conn.execute("SELECT id, name FROM screening_campaigns")
    }
    out = []
    for c, s, p in people:
        every = ids.get((c, p), [p])
        found = [a for q in every for a in answers[(c, q)]]
        follow = state(found, [a for q in every for a in actions[(c, q)]], now)
        if follow is None:
            continue
        keep = {
            "open": not follow["closed"],
            "overdue": follow["overdue"],
            "closed": follow["closed"],
        }.get(status, True)
        if not keep:
            continue
        person = names.get(p) or _added_person(found)
        out.append(
            {
                **follow,
                "campaign_id": c,
                "campaign_name": campaign_names.get(c, c),
                "site_id": s,
                "site_name": site_names.get(s, s),
                "person_id": p,
                **person,
            }
        )
    out.sort(key=lambda f: (f["opened_at"], f["person_id"]))
    return out[:limit]


def _read_all(
    conn: sqlite3.Connection,
    campaign_id: str | None,
    answers: dict[tuple[str, str], list],
    actions: dict[tuple[str, str], list],
) -> None:
    """The answers and steps of everyone an answer ever put into isolation (of one campaign, or
    all), in two queries: listing()'s reading for a scope of many sites."""
    where, params = f"WHERE {ISOLATING_SQL}", []
    if campaign_id:
        where += " AND campaign_id = ?"
        params.append(campaign_id)
    people = f"SELECT DISTINCT campaign_id, site_id, person_id FROM screenings {where}"  # noqa: S608
    for a in conn.execute(
        f"SELECT s.* FROM screenings s JOIN ({people}) f"  # noqa: S608 -- constant SQL
        " ON s.campaign_id = f.campaign_id AND s.site_id = f.site_id"
        " AND s.person_id = f.person_id",
        params,
    ):
        answers[(a["campaign_id"], a["person_id"])].append(a)
    people = f"SELECT DISTINCT campaign_id, person_id FROM screenings {where}"  # noqa: S608
    for a in conn.execute(
        f"SELECT a.* FROM screening_actions a JOIN ({people}) f"  # noqa: S608 -- constant SQL
        " ON a.campaign_id = f.campaign_id AND a.person_id = f.person_id",
        params,
    ):
        actions[(a["campaign_id"], a["person_id"])].append(a)


def _added_person(answers: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    named = tallies.latest(a for a in answers if a["added"])
    return {k: "" if named is None else named[k] for k in ("name", "phone", "unit")}


def one(
    conn: sqlite3.Connection, campaign_id: str, person_id: str, now: datetime, tz: Any
) -> dict[str, Any] | None:
    """One person's follow-up in a campaign, with every answer and step, or None."""
    # The site through the partial index of isolating answers (no follow-up without one), or
    # the roster's, for someone followed up under an id of theirs as added on site.
    place = (
        conn.execute(
            "SELECT site_id FROM screenings"  # noqa: S608 -- constant
            f" WHERE {ISOLATING_SQL} AND campaign_id = ? AND person_id = ? LIMIT 1",
            (campaign_id, person_id),
        ).fetchone()
        or conn.execute("SELECT site_id FROM roster WHERE id = ?", (person_id,)).fetchone()
    )
    if place is None:
        return None
    # Their every id (coverage.same_people), the one they are known by first.
    every = [person_id]
    for ids in coverage.same_people(conn, campaign_id, [place["site_id"]]).values():
        if person_id in ids:
            every = ids
    person_id, marks = every[0], db.in_list("person_id", every)
    answers = conn.execute(
        "SELECT * FROM screenings WHERE campaign_id = ? AND site_id = ?"  # noqa: S608
        f" AND {marks} ORDER BY recorded_at, uuid",
        (campaign_id, place["site_id"], *every),
    ).fetchall()
    steps = conn.execute(
        f"SELECT * FROM screening_actions WHERE campaign_id = ? AND {marks}"  # noqa: S608
        " ORDER BY recorded_at, uuid",
        (campaign_id, *every),
    ).fetchall()
    follow = state(answers, steps, now)
    if follow is None:
        return None
    site_id = answers[-1]["site_id"]
    person = _names(conn, [(campaign_id, site_id, person_id)]).get(person_id) or _added_person(
        answers
    )
    start, end = days.bounds(now.astimezone(days.zone(tz)).date(), tz)
    site = conn.execute("SELECT name FROM sites WHERE id = ?", (site_id,)).fetchone()
    return {
        **follow,
        **person,
        "campaign_id": campaign_id,
        "site_id": site_id,
        "site_name": site["name"] if site else site_id,
        "person_id": person_id,
        "answers": answers,
        "all_steps": steps,
        "checks_today": checks_on(follow, start, end),
        "checks_per_day": CHECKS_PER_DAY,
    }
