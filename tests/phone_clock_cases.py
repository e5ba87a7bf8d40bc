"""How a phone times again what its wrong clock stamped (static/js/outbox.js retimeWrongClock),
case by case, for the phone's own code (tests/browser/test_phone_clock.py) and the import's
mirror of it (fieldapp/phones/outbox_import.py) alike.

Times are in ms from the phone's clock as it sends; "contact" is the instance's time at the
phone's last contact before the record was kept (None: kept by a version that noted none).
Each case: (what it shows, offset_now, records, {name: [time, restamped]} expected or None,
how many are timed again or None). A record with a "day" is a screening answer, its day set by
the phone's clock in "tz" (by default Asia/Shanghai; None: a daily report, whose day is not),
and what it became says its day too: [time, restamped, day]. One with a "nat_date" has a test
date too, set by a chip of the page ("chip": by the phone's clock, nat_date_by_clock) or typed,
and what it became says it last: [time, restamped, day, nat_date]."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

H = 3_600_000
D = 24 * H
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CASES = [
    (
        "the clock is right as it sends",
        0,
        [
            # Right all along: as it is, not marked.
            {"name": "right", "at": -1 * H, "contact": -5 * H, "contact_offset": 0},
            # Stamped 40 days slow after a contact by a right clock: as late as can be, the
            # gap of ten minutes between them kept.
            {"name": "slow1", "at": -40 * D, "contact": -5 * H, "contact_offset": 0},
            {"name": "slow2", "at": -40 * D + 600_000, "contact": -5 * H, "contact_offset": 0},
            # The clock was two days slow at the contact already and was set right since: by
            # the offset of that contact, to the hour it was made.
            {"name": "fixed", "at": -2 * D - 3 * H, "contact": -5 * H, "contact_offset": 2 * D},
            # Two days ahead while it recorded, right again: no later than now.
            {"name": "ahead", "at": 2 * D, "contact": -5 * H, "contact_offset": 0},
            # No contact remembered (kept by an older version): nothing shows it is wrong.
            {"name": "unknown", "at": -40 * D, "contact": None},
        ],
        {
            "right": [-1 * H, False],
            "slow1": [-600_000, True],
            "slow2": [0, True],
            "fixed": [-3 * H, True],
            "ahead": [0, True],
            "unknown": [-40 * D, False],
        },
        4,
    ),
    (
        "the clock is 40 days slow as it sends",
        40 * D,
        [
            # Stamped by this same slow clock: as it is (the instance holds it and gives the
            # offset, by which the phone times it).
            {"name": "still", "at": -30 * 60_000, "contact": 40 * D - H, "contact_offset": 40 * D},
            # Stamped by a right clock before it went back: as it was stamped, marked so that
            # the instance does not time it by today's offset.
            {
                "name": "before",
                "at": 40 * D - 2 * H,
                "contact": 40 * D - 3 * H,
                "contact_offset": 0,
            },
        ],
        {"still": [-30 * 60_000, False], "before": [40 * D - 2 * H, True]},
        1,
    ),
    (
        "two contacts, a clock ahead, a record timed already, one that is no time",
        -2 * D,
        [
            {"name": "a1", "at": 10 * D, "contact": -3 * D, "contact_offset": 0},
            {"name": "a2", "at": 10 * D + H, "contact": -3 * D, "contact_offset": 0},
            {"name": "b1", "at": -30 * D, "contact": -4 * D - H, "contact_offset": -2 * D},
            {"name": "b2", "at": -29 * D, "contact": -4 * D - H, "contact_offset": -2 * D},
            {"name": "c", "at": -5 * D, "contact": -4 * D - H, "contact_offset": -2 * D},
            {"name": "ok", "at": H, "contact": -4 * D, "contact_offset": -2 * D},
            {"name": "done", "at": -50 * D, "contact": -4 * D, "restamped": True},
            {"name": "bad", "at": "not a time", "contact": -4 * D, "contact_offset": 0},
        ],
        None,
        None,
    ),
    (
        "a day the clock set moves with the time, in the instance's zone",
        0,
        [
            # Screening answers (their day "today" by the phone's clock, in Asia/Shanghai,
            # where the phone's 08:30 UTC is 16:30): 40 days slow, "today" and "yesterday" by
            # that clock, after one contact; as late as can be, 40 calendar days later.
            {"name": "today", "at": -40 * D - 60_000, "contact": -5 * H, "day": "2026-10-14"},
            {"name": "yesterday", "at": -40 * D, "contact": -5 * H, "day": "2026-10-13"},
            # Ten hours fast, past midnight there (02:30 on the 24th): timed at now, 16:30 on
            # the 23rd, a day back though the time moves less than a day.
            {"name": "fast", "at": 10 * H, "contact": -6 * H, "day": "2026-11-24"},
            # A day that is none (refused as it is by the instance), and one not timed again.
            {"name": "no day", "at": -40 * D, "contact": -7 * H, "day": "2026-02-30"},
            {"name": "right", "at": -H, "contact": -7 * H, "day": "2026-11-23"},
            # A daily report: its day came from the instance's page, not this phone's clock.
            {"name": "report", "at": -40 * D, "contact": -8 * H, "day": "2026-11-23", "tz": None},
        ],
        {
            "today": [-60_000, True, "2026-11-23"],
            "yesterday": [0, True, "2026-11-22"],
            "fast": [0, True, "2026-11-23"],
            "no day": [0, True, "2026-02-30"],
            "right": [-H, False, "2026-11-23"],
            "report": [0, True, "2026-11-23"],
        },
        5,
    ),
    (
        "a test date a chip set moves with the day; a typed one does not",
        0,
        [
            # 40 days slow: "Today" and "Yesterday" by that clock (16:30 in Asia/Shanghai),
            # then as late as can be, 40 calendar days later; the date typed stays.
            {
                "name": "today",
                "at": -40 * D - 60_000,
                "contact": -5 * H,
                "day": "2026-10-14",
                "nat_date": "2026-10-14",
                "chip": True,
            },
            {
                "name": "yesterday",
                "at": -40 * D,
                "contact": -5 * H,
                "day": "2026-10-14",
                "nat_date": "2026-10-13",
                "chip": True,
            },
            {
                "name": "typed",
                "at": -40 * D,
                "contact": -6 * H,
                "day": "2026-10-14",
                "nat_date": "2026-10-10",
            },
            # Ten hours fast, past midnight there: "Today" was the 24th, today is the 23rd.
            {
                "name": "fast",
                "at": 10 * H,
                "contact": -7 * H,
                "day": "2026-11-24",
                "nat_date": "2026-11-24",
                "chip": True,
            },
            # A day that is none stays (refused as it is); the chip's date moves all the same.
            {
                "name": "no day",
                "at": -40 * D,
                "contact": -8 * H,
                "day": "2026-02-30",
                "nat_date": "2026-10-13",
                "chip": True,
            },
            # A date that is none stays as it is; one not timed again, too.
            {
                "name": "no date",
                "at": -40 * D,
                "contact": -9 * H,
                "day": "2026-10-14",
                "nat_date": "2026-10-32",
                "chip": True,
            },
            {
                "name": "right",
                "at": -H,
                "contact": -10 * H,
                "day": "2026-11-23",
                "nat_date": "2026-11-22",
                "chip": True,
            },
        ],
        {
            "today": [-60_000, True, "2026-11-23", "2026-11-23"],
            "yesterday": [0, True, "2026-11-23", "2026-11-22"],
            "typed": [0, True, "2026-11-23", "2026-10-10"],
            "fast": [0, True, "2026-11-23", "2026-11-23"],
            "no day": [0, True, "2026-02-30", "2026-11-22"],
            "no date": [0, True, "2026-11-23", "2026-10-32"],
            "right": [-H, False, "2026-11-23", "2026-11-22"],
        },
        6,
    ),
]


def iso_ms(ms: int) -> str:
    """new Date(ms).toISOString()."""
    return (EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")[:-6] + "Z"


def phone_records(phone: int, recs: list[dict]) -> list[dict]:
    """The case's records as the phone keeps them, its clock at `phone` (ms) as it sends."""
    out = []
    for i, r in enumerate(recs):
        at = r["at"]
        rec = {
            "uuid": f"00000000-0000-4000-8000-{i:012d}",
            "kind": "entry",
            "data": {},
            "queued_at": phone,
            "recorded_at": iso_ms(phone + at) if isinstance(at, int) else at,
        }
        if r.get("contact") is not None:
            rec["contact_at"] = phone + r["contact"]
            rec["contact_offset"] = r.get("contact_offset")
        if r.get("restamped"):
            rec["restamped"] = True
        if "day" in r:  # a screening answer (its day by the phone's clock), or a daily report
            rec["data"] = {"day": r["day"]}
            tz = r.get("tz", "Asia/Shanghai")
            rec["kind"] = "screening" if tz else "daily_report"
            if tz:
                rec["day_tz"] = tz
        if "nat_date" in r:  # its test date: by a chip of the page (by the clock), or typed
            rec["data"]["nat_date"] = r["nat_date"]
            if r.get("chip"):
                rec["nat_date_by_clock"] = True
        out.append(rec)
    return out


def times(phone: int, recs: list[dict], timed: list[dict]) -> dict[str, list]:
    """What each record became: [time (ms from the phone's clock, or as it is), restamped]."""
    by_uuid = {r["uuid"]: r for r in timed}
    out = {}
    for i, r in enumerate(recs):
        got = by_uuid[f"00000000-0000-4000-8000-{i:012d}"]
        try:
            at = datetime.fromisoformat(got["recorded_at"])
            shown = (at - EPOCH) // timedelta(milliseconds=1) - phone
        except ValueError:
            shown = got["recorded_at"]
        out[r["name"]] = [shown, bool(got.get("restamped"))]
        if "day" in r:
            out[r["name"]].append(got["data"]["day"])
        if "nat_date" in r:
            out[r["name"]].append(got["data"]["nat_date"])
    return out
