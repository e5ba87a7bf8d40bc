"""Configuration flowing down: sites and rosters (owned by the upstream, versioned) and the
settings a downstream must share (retention), exported to a pull and applied from one."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _

import sync
from fieldapp import db, records, rules
from fieldapp.gate import roster, sites
from fieldapp.screening import campaigns
from fieldapp.settings import RETENTION_RANGE, check_retention_days
from sync import client as sync_client
from sync import config as sync_config

# Configuration that flows down: these tables are owned by the upstream and versioned there.
CONFIG_TABLES = ("sites", "roster", "screening_campaigns")

# The longest text a pulled column may hold: what the forms and commands that make it here
# take (a central's bug must not put a 10 MB site name into every instance below it).
TEXT_LIMITS = {
    "sites": {
        "name": sites.NAME_LIMIT,
        "address": sites.TEXT_LIMIT,
        "district": sites.NAME_LIMIT,
        "contact": sites.TEXT_LIMIT,
    },
    "roster": {
        "name": roster.NAME_LIMIT,
        "unit": roster.UNIT_LIMIT,
        "phone": rules.MAX_LEN["phone"],
    },
    "screening_campaigns": {"name": campaigns.NAME_LIMIT},
}
# Any other text of these tables (ids, codes, kinds, times, field lists) is made by the program,
# never near the longest text a site's form takes. A campaign's lists of districts and sites
# (JSON) grow with what it covers, and are not held to it.
OTHER_TEXT_LIMIT = sites.TEXT_LIMIT
UNLIMITED = {("screening_campaigns", "districts"), ("screening_campaigns", "sites")}


def export_config(
    conn: sqlite3.Connection, since: int, since_id: str | None = None
) -> dict[str, Any]:
    """Sites, roster rows and settings changed after version `since`, with the current version
    and its id.

    A downstream ahead of us, or whose version `since` is not ours under that number (its id
    differs: we were restored from an older copy and took the number again), gets everything
    again. One that sends no id (older) is judged by the number alone.
    """
    version = sync_config.current_version(conn)
    full = since > version or (
        since > 0 and since_id is not None and since_id != sync_config.version_id(conn, since)
    )
    if full:
        since = 0
    out: dict[str, Any] = {
        "version": version,
        "version_id": sync_config.version_id(conn, version),
        "full": full,
    }
    for table in CONFIG_TABLES:
        cur = conn.execute(
            f"SELECT * FROM {table} WHERE version > ? ORDER BY version",  # noqa: S608 -- table from code
            (since,),
        )
        names = [d[0] for d in cur.description]
        out[table] = [
            {k: v for k, v in zip(names, row, strict=True) if k != "version"} for row in cur
        ]
    for site in out["sites"]:
        site["old_codes"] = [
            {"code": r[0], "retired_at": r[1]}
            for r in conn.execute(
                "SELECT code, retired_at FROM site_old_codes WHERE site_id = ?", (site["id"],)
            )
        ]
        site["closures"] = sites.closures(conn, site["id"])
    # Roster people the purge deleted (gate/roster.py, forget): a deletion has no row to pull.
    out["roster_removed"] = [
        {"id": r[0], "site_id": r[1], "removed_at": r[2]}
        for r in conn.execute(
            "SELECT id, site_id, removed_at FROM roster_removed WHERE version > ? ORDER BY version",
            (since,),
        )
    ]
    out["settings"] = {"retention_days": records.retention_days(conn)}
    return out


def _upsert(conn: sqlite3.Connection, table: str, row: Mapping[str, Any], version: int) -> None:
    """Insert or replace one configuration row by id, stamped with our own version.

    Only columns this database has are written (names come from its schema, never the wire);
    _check has made sure the row has an id and values it can store.
    """
    cols = [c for c in db.columns(conn, table) if c in row and c != "version"]
    cols.append("version")
    values = [row[c] for c in cols[:-1]] + [version]
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id")
    conn.execute(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"  # noqa: S608 -- names from the schema
        f" ON CONFLICT (id) DO UPDATE SET {updates}",
        values,
    )


def _check(conn: sqlite3.Connection, rows: Mapping[str, list[Mapping[str, Any]]]) -> None:
    """Refuse a pull answer whose rows this instance cannot store as they are, before any is
    written: a row without an id, a value that is a list or an object, a number too large, text
    with NUL or longer than the forms here take (TEXT_LIMITS), a site of a kind this version
    does not know."""
    for table, given in rows.items():
        columns = set(db.columns(conn, table))
        limits = TEXT_LIMITS.get(table, {})
        for row in given:
            if not isinstance(row.get("id"), str) or not row["id"] or not _storable(row["id"]):
                raise _unusable("no_id", table=table)
            if len(row["id"]) > OTHER_TEXT_LIMIT:
                raise _unusable(
                    "too_long",
                    table=table,
                    id=row["id"][:40] + "…",
                    column="id",
                    n=OTHER_TEXT_LIMIT,
                )
            for column in sorted(columns.intersection(row)):
                value = row[column]
                if not _storable(value):
                    raise _unusable("not_value", table=table, id=row["id"], column=column)
                limit = limits.get(column, OTHER_TEXT_LIMIT)
                if (
                    isinstance(value, str)
                    and len(value) > limit
                    and (table, column) not in UNLIMITED
                ):
                    raise _unusable("too_long", table=table, id=row["id"], column=column, n=limit)
    for site in rows["sites"]:
        old_codes = site.get("old_codes")
        for old in old_codes if isinstance(old_codes, list) else ():
            code = old.get("code") if isinstance(old, Mapping) else None
            if isinstance(code, str) and len(code) > OTHER_TEXT_LIMIT:
                raise _unusable(
                    "too_long", table="sites", id=site["id"], column="old_codes", n=OTHER_TEXT_LIMIT
                )
        if "kind" in site and site["kind"] not in rules.SITE_KINDS:
            # A kind added by a newer version upstream: this one could not show or count it.
            raise _unusable(
                "unknown_kind",
                name=sync.wire.printable(str(site.get("name"))[:80]),
                kind=sync.wire.printable(str(site["kind"])[:80]),
            )


def _storable(value: Any) -> bool:
    """Whether a pulled value can be stored in a column as it is: text, a number, a flag or
    nothing, in which sync.wire.problem finds nothing a database cannot hold (a NUL, a lone
    surrogate, a number beyond 64 bits or not finite); not a list, an object."""
    return (value is None or isinstance(value, str | int | float)) and (
        sync.wire.problem(value) is None
    )


def _unusable(what: str, **params: Any) -> sync.SyncError:
    """The error of a pull answer this instance cannot take, saying what in it is wrong: worded
    now, and named (problem "config", params: what and its own) to be worded again for whoever
    reads the sync status later (word)."""
    named = {"what": what, **{k: str(v) for k, v in params.items()}}
    return sync.SyncError(word(named), problem="config", params=named)


def word(params: Mapping[str, str]) -> str:
    """A pull answer refused (_unusable's params), in the current language; KeyError for params
    it does not know."""
    p, what = params, params["what"]
    if what == "malformed":
        return _("The upstream's configuration answer is malformed.")
    if what == "no_id":
        problem = _("%(table)s: a row without id", table=p["table"])
    elif what == "not_value":
        problem = _(
            "%(table)s %(id)s: “%(column)s” is not a value",
            table=p["table"],
            id=p["id"],
            column=p["column"],
        )
    elif what == "too_long":
        problem = _(
            "%(table)s %(id)s: “%(column)s” is longer than %(n)d characters",
            table=p["table"],
            id=p["id"],
            column=p["column"],
            n=int(p["n"]),
        )
    elif what == "unknown_kind":
        problem = _(
            "site “%(name)s” is of a kind this version does not know (%(kind)s):"
            " update fieldapp here",
            name=p["name"],
            kind=p["kind"],
        )
    elif what == "database":
        problem = p["detail"]
    else:
        raise KeyError(what)
    return _("The upstream's configuration could not be applied: %(problem)s", problem=problem)


def _when(value: Any, default: str) -> str:
    """A pulled time as text it can store (an old code's retirement), else default."""
    return value if isinstance(value, str) and value and _storable(value) else default


def _closing(site: Mapping[str, Any]) -> Mapping[str, Any]:
    """A site's row as stored here: an upstream from before closing dates (no closed_at) that
    opens a site again clears ours, so an open site is never taken as closed on a day; one it
    closes keeps ours (none: when it closed is not known, as for sites closed before)."""
    if "closed_at" in site or not site.get("active"):
        return site
    return {**site, "closed_at": None}


def _closures(conn: sqlite3.Connection, site: Mapping[str, Any], now: str) -> None:
    """A site's closures as the upstream keeps them (when it closed and opened again): the
    ones given replace ours; a malformed one is left out. An upstream from before closures
    (none given) that opens the site again ends the closure we have open."""
    given = site.get("closures")
    if not isinstance(given, list):
        if site.get("active"):
            sites.end_closure(conn, site["id"], now)
        return
    rows: list[tuple[str, str | None]] = []
    for c in given:
        if not isinstance(c, Mapping):
            continue
        try:
            closed = sync.store.normal_time(c.get("closed_at"))
            opened = c.get("opened_at")
            opened = None if opened is None else sync.store.normal_time(opened)
        except sync.Invalid:
            continue
        rows.append((closed, opened))
    sites.replace_closures(conn, site["id"], rows)


def apply_config(conn: sqlite3.Connection, payload: Any) -> dict[str, int]:
    """Apply a pull answer in one transaction; remember its version. Counts of rows changed."""
    version = payload.get("version") if isinstance(payload, Mapping) else None
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or version < 0
        or not _storable(version)
    ):
        raise _unusable("malformed")
    rows = {t: payload.get(t) or [] for t in CONFIG_TABLES}
    if not all(
        isinstance(v, list) and all(isinstance(r, Mapping) for r in v) for v in rows.values()
    ):
        raise _unusable("malformed")
    _check(conn, rows)
    removed = _removed(payload.get("roster_removed"))
    settings = payload.get("settings") or {}
    counts = {t: len(v) for t, v in rows.items()}
    counts["roster"] += len(removed)  # a person deleted is a roster row changed too
    try:
        with db.transaction(conn):
            # Our own version number, so downstreams of ours pull what we took (chains).
            version = sync_config.next_version(conn) if any(counts.values()) else 0
            now = sync.store.iso(sync.utcnow())
            for site in rows["sites"]:
                old = conn.execute(
                    "SELECT code FROM sites WHERE id = ?", (site.get("id"),)
                ).fetchone()
                _upsert(conn, "sites", _closing(site), version)
                # The code it had here, if the upstream changed it, and the upstream's old codes.
                retired = [(old[0], now)] if old is not None and old[0] != site.get("code") else []
                retired += [
                    (oc["code"], _when(oc.get("retired_at"), now))
                    for oc in site.get("old_codes") or []
                    if isinstance(oc, Mapping)
                    and isinstance(oc.get("code"), str)
                    and oc["code"]
                    and _storable(oc["code"])
                ]
                conn.executemany(
                    "INSERT INTO site_old_codes (code, site_id, retired_at)"
                    " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    [(code, site["id"], when) for code, when in retired],
                )
                _closures(conn, site, now)
            for table in ("roster", "screening_campaigns"):
                for row in rows[table]:
                    _upsert(conn, table, row, version)
            # A row the upstream sends is its word: it was not deleted there (restored from a
            # copy that had them), so no id of it is passed on as deleted below us.
            conn.executemany(
                "DELETE FROM roster_removed WHERE id = ?", [(r["id"],) for r in rows["roster"]]
            )
            for gone in removed:
                roster.forget(conn, gone["id"], gone["site_id"], gone["removed_at"], version)
            _retention(conn, settings)
            version_id = payload.get("version_id")
            sync_client.remember(
                conn,
                config_version=payload["version"],
                config_version_id=version_id if isinstance(version_id, str) else None,
            )
    except (*db.IntegrityError, KeyError, TypeError) as exc:
        raise _unusable("database", detail=str(exc)) from None
    return counts


def _removed(given: Any) -> list[dict[str, str]]:
    """The roster people a pull answer says were deleted upstream (an answer from before
    deletions has none); refuses the answer if one of them is not an id, a site and a time."""
    if given is None:
        return []
    if not isinstance(given, list) or not all(isinstance(r, Mapping) for r in given):
        raise _unusable("malformed")
    out = []
    for r in given:
        values = [r.get(k) for k in ("id", "site_id", "removed_at")]
        if not all(isinstance(v, str) and v and _storable(v) for v in values):
            raise _unusable("no_id", table="roster_removed")
        if any(len(v) > OTHER_TEXT_LIMIT for v in values):
            raise _unusable(
                "too_long",
                table="roster_removed",
                id=values[0][:40],
                column="id",
                n=OTHER_TEXT_LIMIT,
            )
        out.append(dict(zip(("id", "site_id", "removed_at"), values, strict=True)))
    return out


def pull(conn: sqlite3.Connection, transport: sync_client.Transport) -> dict[str, int]:
    """Pull what changed since our last pull (its version, and the id the upstream gave it) and
    apply it. Counts of rows changed."""
    state = sync_client.upstream_state(conn)
    since = int(state.get("config_version") or 0)
    return apply_config(conn, transport.pull(since, state.get("config_version_id")))


def _retention(conn: sqlite3.Connection, settings: Any) -> None:
    """Take the upstream's retention if this instance could have it too; else keep ours and
    remember what the upstream asked for (retention_refused), for the status and `fieldapp sync`
    to say (retention_notice). An answer without one changes nothing."""
    days = settings.get("retention_days") if isinstance(settings, Mapping) else None
    if days is None:
        return
    if isinstance(days, int) and not isinstance(days, bool) and _retention_ok(days):
        conn.execute(
            "INSERT INTO settings (name, value) VALUES ('retention_days', ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (str(days),),
        )
        sync_client.remember(conn, retention_refused=None)
        return
    shown = days if isinstance(days, str) else json.dumps(days, ensure_ascii=False, default=repr)
    sync_client.remember(conn, retention_refused=sync.wire.printable(shown)[:40])


def _retention_ok(days: int) -> bool:
    """A retention pulled from upstream is taken only if this instance could have it too."""
    try:
        check_retention_days(days)
    except ValueError:
        return False
    return True


def retention_notice(conn: sqlite3.Connection, config: Mapping[str, Any]) -> str | None:
    """What the upstream's last pull asked of retention that this instance did not apply, why,
    and what is in force, in the current language; None when its retention was applied."""
    asked = sync_client.upstream_state(conn).get("retention_refused")
    if asked is None:
        return None
    return _(
        "The upstream's retention (%(asked)s days) was not applied: this instance keeps entries"
        " %(min)d to %(max)d days. In force here: %(days)d days.",
        asked=asked,
        min=RETENTION_RANGE[0],
        max=RETENTION_RANGE[1],
        days=records.retention_days(conn, config),
    )
