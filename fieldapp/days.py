"""Days at the gates: dates and times in the configured TIMEZONE, and a day's bounds in UTC.

Records carry UTC timestamps in the stored form (sync.store.iso), which sort as text; a local
day is the UTC [start, end) of its midnight-to-midnight in the zone, so a day that has a DST
change is 23 or 25 hours long and still counted whole.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

import sync
from fieldapp import rules
from sync.store import iso


@cache
def _named(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone(tz: str | ZoneInfo) -> ZoneInfo:
    """The gates' time zone, from its name (setting TIMEZONE)."""
    return tz if isinstance(tz, ZoneInfo) else _named(tz)


def today(tz: str | ZoneInfo, now: datetime | None = None) -> date:
    """Today's date at the gates."""
    return (now or datetime.now(UTC)).astimezone(zone(tz)).date()


def latest_day(tz: str | ZoneInfo) -> date:
    """The latest day a record made for a day (a daily report, a screening answer) may be for:
    today in the zone, as a clock up to sync.store.CLOCK_TOLERANCE ahead of ours reads it (a
    phone a few minutes fast just before midnight is not a wrong clock, and its "today" is the
    next day). A later day is a wrong date: a computer's clock, a typo."""
    return today(tz, sync.utcnow() + sync.store.CLOCK_TOLERANCE)


def bounds(day: date, tz: str | ZoneInfo) -> tuple[str, str]:
    """The UTC [start, end) of a local day, as stored timestamps (they sort as text)."""
    start = datetime.combine(day, time(0), tzinfo=zone(tz))
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone(tz))
    return iso(start), iso(end)


def local(recorded_at: str, tz: str | ZoneInfo) -> datetime:
    """A stored UTC timestamp in the gates' time zone."""
    return datetime.fromisoformat(recorded_at.replace("Z", "+00:00")).astimezone(zone(tz))


def clock(day: date, tz: str | ZoneInfo) -> Callable[[str], str]:
    """A reader of stored timestamps as local 'HH:MM' when on `day`, 'YYYY-MM-DD HH:MM' when
    not, for thousands of them (a city's roll-call): the zone is looked up once for the day.
    On a day whose UTC offset is the same from midnight to midnight (every day but a DST
    change's), a time on it is its UTC minute of the day less local midnight's, read from the
    text; any other timestamp is converted one by one (local_text)."""
    start, end = bounds(day, tz)
    midnight = datetime.fromisoformat(start)
    steady = (
        midnight.astimezone(zone(tz)).utcoffset()
        == datetime.fromisoformat(end).astimezone(zone(tz)).utcoffset()
        and start[16:] == ":00.000Z"  # an offset of whole minutes (every zone's since 1972)
    )
    first = midnight.hour * 60 + midnight.minute

    def read(recorded_at: str) -> str:
        if steady and start <= recorded_at < end and len(recorded_at) == len(start):
            minutes = (int(recorded_at[11:13]) * 60 + int(recorded_at[14:16]) - first) % 1440
            return f"{minutes // 60:02d}:{minutes % 60:02d}"
        at = local(recorded_at, tz)
        return at.strftime("%H:%M") if at.date() == day else at.strftime("%Y-%m-%d %H:%M")

    return read


def local_text(recorded_at: str, tz: str | ZoneInfo) -> str:
    """A stored UTC timestamp as local 'YYYY-MM-DD HH:MM'."""
    return local(recorded_at, tz).strftime("%Y-%m-%d %H:%M")


# The days a date typed into a filter, a report or a campaign may name.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)


def parse_day(value: Any) -> date:
    """A YYYY-MM-DD date, its digits and dashes typed full-width too ("２０２６－１２－０７", as
    a Chinese input method gives them), read as rules.typed reads them; ValueError with a
    clear message otherwise, one that says so for an empty text."""
    if isinstance(value, date):
        return value
    text = rules.typed(value) if isinstance(value, str) else ""
    if isinstance(value, str) and not text:
        raise ValueError(_("the date is empty: give one like 2020-02-15"))
    try:
        if len(text) != 10:
            raise ValueError
        day = date.fromisoformat(text)
    except ValueError:
        shown = text[:20] if text else str(value)[:20] if isinstance(value, int | float) else "?"
        raise ValueError(
            _("the date must look like 2020-02-15, not %(value)s", value=shown)
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:  # 9999-12-31 has no next day to end it
        raise ValueError(_("the date %(value)s is out of range (1970 to 2999)", value=text))
    return day


def parse_cutoff(value: str) -> tuple[int, int]:
    """HH:MM of REPORT_CUTOFF; ValueError with a clear message otherwise."""
    try:
        hours, minutes = (int(p) for p in str(value).split(":"))
        time(hours, minutes)
    except ValueError:
        raise ValueError(
            _("REPORT_CUTOFF must be a time of day like 20:00, not %(value)s", value=value)
        ) from None
    return hours, minutes


def cutoff_instant(day: date, cutoff: str, tz: str | ZoneInfo) -> str:
    """The UTC moment after which a report for `day` is late, as a stored timestamp."""
    hours, minutes = parse_cutoff(cutoff)
    return iso(datetime.combine(day, time(hours, minutes), tzinfo=zone(tz)))
