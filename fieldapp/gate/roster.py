"""A site's roster of known people (residents, workers): CSV import and search as you type.

The roster is configuration like the site itself: each change takes the next configuration
version in the same transaction, so it can flow down. A person taken off the roster (deactivate)
keeps their row, with when, until the purge deletes it past RETENTION_DAYS (privacy/retention.py).
"""

from __future__ import annotations

import csv
import io
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from fieldapp import audit, db, rules
from fieldapp.db import transaction
from fieldapp.gate import passes
from fieldapp.privacy import fields as site_fields
from sync import config as sync_config
from sync.store import iso, utcnow

REQUIRED_COLUMNS = ("name", "phone", "unit")
MAX_ROWS = 20_000
NAME_LIMIT, UNIT_LIMIT = 50, 50
# A roster kept in Chinese may say the person type in Chinese.
PERSON_TYPE_WORDS = {
    "居民": "resident",
    "住户": "resident",
    "業主": "resident",
    "业主": "resident",
    "工人": "worker",
    "员工": "worker",
    "員工": "worker",
    "访客": "visitor",
    "訪客": "visitor",
    "快递": "delivery",
    "快遞": "delivery",
    "外卖": "delivery",
    "其他": "other",
}


# A roster kept in Chinese names its columns in Chinese: what each header may say, besides
# the column's own name (a trailing colon and spaces are not read).
HEADER_WORDS = {
    "name": ("姓名", "名字"),
    "phone": (
        "手机",
        "手机号",
        "手机号码",
        "电话",
        "联系电话",
        "手機",
        "手機號碼",
        "電話",
        "聯絡電話",
    ),
    "unit": (
        "单元",
        "房号",
        "门牌",
        "门牌号",
        "住址",
        "地址",
        "楼栋单元",
        "單元",
        "房號",
        "門牌",
        "門牌號",
    ),
    "person_type": ("类型", "人员类型", "身份", "類型", "人員類型"),
}
_HEADER = {word: column for column, words in HEADER_WORDS.items() for word in words}


def _column(header: str) -> str:
    """The roster column a header cell names (its own name, or a Chinese word for it)."""
    word = rules.typed(header).rstrip(":：").strip(rules.SPACES).lower()
    return _HEADER.get(word, word)


class RosterError(ValueError):
    """A roster file that cannot be imported; problems lists every bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ImportResult:
    """What an import did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    restored: int = 0  # taken off the roster, put back by the import
    rows: list[dict[str, str]] = field(default_factory=list)


def parse_csv(raw: bytes, default_type: str = "resident") -> list[dict[str, str]]:
    """Read and check a roster CSV; raise RosterError listing every bad line."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterError(
            [_("The file is not UTF-8 text: save it as “CSV UTF-8” and try again.")]
        ) from None
    if "\x00" in text:
        raise RosterError(
            [_("The file holds a NUL character: save it as “CSV UTF-8” and try again.")]
        )
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise RosterError([_("The file is empty.")]) from None
    except csv.Error as exc:
        raise RosterError([_("Line %(line)d: %(reason)s", line=1, reason=str(exc))]) from None
    columns = [_column(h) for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise RosterError(
            [
                _(
                    "Line 1: the header must name the columns name,phone,unit[,person_type];"
                    " missing: %(missing)s",
                    missing=", ".join(missing),
                )
            ]
        )
    index = {c: columns.index(c) for c in (*REQUIRED_COLUMNS, "person_type") if c in columns}
    problems: list[str] = []
    rows: list[dict[str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue  # blank lines are harmless
            if len(rows) >= MAX_ROWS:
                problems.append(_("More than %(n)d people: split the file.", n=MAX_ROWS))
                break
            if len(values) != len(header):
                problems.append(
                    _(
                        "Line %(line)d: %(got)d columns, the header has %(want)d.",
                        line=line,
                        got=len(values),
                        want=len(header),
                    )
                )
                continue
            reasons = []
            name = values[index["name"]].strip()
            phone = rules.normalise_phone(values[index["phone"]].strip())
            unit = values[index["unit"]].strip()
            raw_type = values[index["person_type"]].strip() if "person_type" in index else ""
            person_type = PERSON_TYPE_WORDS.get(raw_type, raw_type.lower()) or default_type
            if not name:
                reasons.append(_("the name is empty"))
            elif len(name) > NAME_LIMIT:
                reasons.append(_("the name is longer than %(n)d characters", n=NAME_LIMIT))
            if phone and not rules.valid_mobile(phone):
                reasons.append(
                    _("%(phone)s is not an 11-digit mobile number", phone=values[index["phone"]])
                )
            if len(unit) > UNIT_LIMIT:
                reasons.append(_("the unit is longer than %(n)d characters", n=UNIT_LIMIT))
            if person_type not in rules.PERSON_TYPES:
                reasons.append(
                    _(
                        "person type %(value)s is not one of %(choices)s",
                        value=raw_type,
                        choices=", ".join(rules.PERSON_TYPES),
                    )
                )
            key = (name, phone)
            if name and key in seen:
                reasons.append(_("the same person as line %(line)d", line=seen[key]))
            if reasons:
                problems.append(
                    _("Line %(line)d: %(reason)s", line=line, reason="; ".join(reasons))
                )
                continue
            seen[key] = line
            rows.append({"name": name, "phone": phone, "unit": unit, "person_type": person_type})
    except csv.Error as exc:
        problems.append(_("Line %(line)d: %(reason)s", line=reader.line_num, reason=str(exc)))
    if problems:
        raise RosterError(problems)
    if not rows:
        raise RosterError([_("The file has a header but nobody in it.")])
    return rows


# Who was on a site's roster on a day, as SQL over roster's columns, with the day's end (a
# stored UTC time, days.bounds) for both marks: made before it ended (created_at; '' for rows
# made before that column, so on every day), and on the roster still or taken off after it
# ended. A past day counts those who left since; today, those on it now. Columns of the index
# roster_site, so a count per site reads the index alone.
ON_ROSTER_BY = "created_at < ? AND (active = 1 OR deactivated_at >= ?)"


def person_key(name: str, phone: str) -> tuple[str, str]:
    """Who someone is on a site's roster: their name and mobile number, as an import finds
    them (import_rows). Screening finds by it the roster row made for someone added on site
    (fieldapp/screening/coverage.py, joined)."""
    return name.strip(rules.SPACES), rules.normalise_phone(phone.strip(rules.SPACES))


def import_rows(
    conn: sqlite3.Connection, site_id: str, rows: list[dict[str, str]], *, actor: str = "cli"
) -> ImportResult:
    """Add or update roster rows (a person is their name and phone) in one transaction. Someone
    taken off the roster (deactivate) and named again is put back on it: their own row, so
    their id, pass and answers stay theirs; written to the audit log as `activate` is."""
    result = ImportResult(rows=rows)
    now = iso(utcnow())
    restored: list[str] = []
    with transaction(conn):
        version: int | None = None
        for row in rows:
            # On the roster first (a row made again for someone taken off, before imports
            # put people back, is who they are now), else the latest taken off.
            known = conn.execute(
                "SELECT id, unit, person_type, active FROM roster"
                " WHERE site_id = ? AND name = ? AND phone = ?"
                " ORDER BY active DESC, deactivated_at DESC, id LIMIT 1",
                (site_id, row["name"], row["phone"]),
            ).fetchone()
            same = known and (known["unit"], known["person_type"]) == (
                row["unit"],
                row["person_type"],
            )
            if same and known["active"]:
                result.unchanged += 1
                continue
            if version is None:  # one import is one configuration change
                version = sync_config.next_version(conn)
            if known and not known["active"]:
                conn.execute(
                    "UPDATE roster SET active = 1, deactivated_at = NULL, unit = ?,"
                    " person_type = ?, version = ? WHERE id = ?",
                    (row["unit"], row["person_type"], version, known["id"]),
                )
                restored.append(known["id"])
            elif known:
                conn.execute(
                    "UPDATE roster SET unit = ?, person_type = ?, version = ? WHERE id = ?",
                    (row["unit"], row["person_type"], version, known["id"]),
                )
                result.updated += 1
            else:
                # A newcomer gets a pass token at once: their card can be printed anywhere
                # the roster flows down to.
                conn.execute(
                    "INSERT INTO roster (id, site_id, name, phone, unit, person_type, active,"
                    " version, pass_token, pass_issued_at, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
                    (
                        str(uuid.uuid4()),
                        site_id,
                        row["name"],
                        row["phone"],
                        row["unit"],
                        row["person_type"],
                        version,
                        passes.new_token(),
                        now,
                        now,  # from when screening coverage counts them (coverage.py)
                    ),
                )
                result.added += 1
        if restored:
            audit.write(conn, actor, "roster_activate", target=site_id, detail=",".join(restored))
    result.restored = len(restored)
    return result


def set_active(
    conn: sqlite3.Connection,
    site_id: str,
    person_ids: list[str],
    active: bool,
    *,
    actor: str = "cli",
) -> int:
    """Take these people of the site off its roster (active False) or put them back; how many
    changed. When they went is kept (deactivated_at, cleared when they come back): the purge
    deletes them RETENTION_DAYS after. One configuration change, so it flows down (a gate
    phone's copy of the roster drops them), in the audit log."""
    with transaction(conn):
        marks = ",".join("?" * len(person_ids))
        ids = [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM roster WHERE site_id = ? AND active = ? AND id IN ({marks})"  # noqa: S608 -- marks only
                " ORDER BY id",
                (site_id, int(not active), *person_ids),
            )
        ]
        if not ids:
            return 0
        version = sync_config.next_version(conn)
        when = None if active else iso(utcnow())
        conn.executemany(
            "UPDATE roster SET active = ?, deactivated_at = ?, version = ? WHERE id = ?",
            [(int(active), when, version, i) for i in ids],
        )
        action = "roster_activate" if active else "roster_deactivate"
        audit.write(conn, actor, action, target=site_id, detail=",".join(ids))
    return len(ids)


def purge_removed(conn: sqlite3.Connection, horizon: str) -> int:
    """Delete the people taken off a roster before horizon (UTC), on the instance that owns the
    roster; how many. Their ids stay in roster_removed under a new configuration version, so a
    pull deletes them below too (syncing/configuration.py). Call inside a transaction."""
    ids = conn.execute(
        "SELECT id, site_id FROM roster WHERE active = 0 AND deactivated_at < ? ORDER BY id",
        (horizon,),
    ).fetchall()
    if not ids:
        return 0
    version = sync_config.next_version(conn)
    now = iso(utcnow())
    for person_id, site_id in ids:
        forget(conn, person_id, site_id, now, version)
    return len(ids)


def forget(
    conn: sqlite3.Connection, person_id: str, site_id: str, removed_at: str, version: int
) -> None:
    """Delete one roster person and keep their id (no personal data) under version, for the
    pulls below; the one way a roster row is deleted, here or by a pull."""
    conn.execute("DELETE FROM roster WHERE id = ?", (person_id,))
    conn.execute(
        "INSERT INTO roster_removed (id, site_id, removed_at, version) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        (person_id, site_id, removed_at, version),
    )


def default_person_type(site: sqlite3.Row) -> str:
    """Residents live in compounds, workers work on construction sites."""
    return "worker" if site["kind"] == "construction" else "resident"


def import_csv(
    conn: sqlite3.Connection, site: sqlite3.Row, raw: bytes, *, actor: str = "cli"
) -> ImportResult:
    """Check a whole roster file, then import it; nothing is imported if any line is bad."""
    return import_rows(conn, site["id"], parse_csv(raw, default_person_type(site)), actor=actor)


def search(
    conn: sqlite3.Connection, site: Mapping[str, Any], query: str, limit: int = 8
) -> list[sqlite3.Row]:
    """The site's active roster people whose name, unit or phone contains query (2 characters
    or more). The phone number only where the site's form asks for it, as on the phone's copy
    of the roster (passes.for_phone): elsewhere it is neither searched nor shown."""
    query = query.strip()
    if len(query) < 2:
        return []
    lower = db.contains(query, "lower")  # a typed % or _ means itself
    matched, patterns = (
        ["lower(name) LIKE ? ESCAPE '\\'", "lower(unit) LIKE ? ESCAPE '\\'"],
        [lower, lower],
    )
    phone = "''"
    if "phone" in site_fields.shown(site):
        matched.append("phone LIKE ? ESCAPE '\\'")
        patterns.append(db.contains(query))
        phone = "phone"
    sql = (
        f"SELECT id, name, {phone} AS phone, unit, person_type FROM roster"  # noqa: S608 -- SQL only
        f" WHERE site_id = ? AND active = 1 AND ({' OR '.join(matched)}) ORDER BY name LIMIT ?"
    )
    return conn.execute(sql, (site["id"], *patterns, limit)).fetchall()


def get_person(conn: sqlite3.Connection, site_id: str, person_id: str) -> sqlite3.Row | None:
    """One active roster person of that site, or None."""
    return conn.execute(
        "SELECT id, name, phone, unit, person_type FROM roster"
        " WHERE id = ? AND site_id = ? AND active = 1",
        (person_id, site_id),
    ).fetchone()
