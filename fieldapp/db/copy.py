"""Moving an instance from its SQLite file to an empty PostgreSQL database, whole.

Every table is copied as it is: the records and their content hashes, the change log with its
seq numbers and hash chain, the cursors of the downstreams, the upstream's state, the peers and
their token hashes, the accounts, the audit log, the settings with the instance's id. Identity
counters continue after the copied rows (the change log's after the highest seq ever handed
out, purged or not), so the instance goes on syncing with its downstreams and its upstream as
if nothing had happened. The copy is verified: the same rows in every table, by count and by a
digest of their content.

The source is read in one read transaction: one snapshot of the whole file (SQLite's WAL), so
a write made while the copy runs (a push stored by the server) is in it whole or not at all,
never an entry without its change-log line. The target commits only once the copy verifies: a
copy that does not leaves the target as it was, empty, and the command can simply run again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask_babel import gettext as _

from fieldapp import db
from fieldapp.db import postgres
from sync.client import highest_seq

CHUNK = 5000


class CopyError(ValueError):
    """The copy cannot be made (a target that is not empty, not PostgreSQL); worded."""


def copy(source: db.Connection, target: db.Connection) -> dict[str, int]:
    """Copy every table of source into target (migrated, empty) and verify it; rows copied per
    table. Every table is read from one snapshot of source, and target commits only if the copy
    verifies (else CopyError, and target holds what it held before)."""
    with db.transaction(source, "DEFERRED"):  # a read transaction: one snapshot, every table
        return _copy(source, target)


def _copy(source: db.Connection, target: db.Connection) -> dict[str, int]:
    done = {r[0] for r in target.execute("SELECT name FROM migrations")}
    ours = {r[0] for r in source.execute("SELECT name FROM migrations")}
    if ours - done:
        raise CopyError(_("The target lacks migrations %(names)s", names=sorted(ours - done)))
    copied: dict[str, int] = {}
    tables = _tables(source)
    with db.transaction(target):
        for table in reversed(tables):  # what migrate() put there (the config version's row)
            target.execute(f"DELETE FROM {table}")  # noqa: S608 -- names from the schema
        for table in tables:
            columns = [c for c in db.columns(source, table) if c in db.columns(target, table)]
            names = ",".join(columns)
            insert = f"INSERT INTO {table} ({names}) VALUES ({','.join('?' * len(columns))})"  # noqa: S608
            cur = source.execute(f"SELECT {names} FROM {table} ORDER BY 1")  # noqa: S608
            copied[table] = 0
            while rows := cur.fetchmany(CHUNK):
                target.executemany(insert, [tuple(r) for r in rows])
                copied[table] += len(rows)
        _continue_counters(source, target)
        if differ := verify(source, target):  # raised inside: the target rolls back
            raise CopyError(
                _(
                    "The copy differs from the original in: %(tables)s. Nothing was written to"
                    " the target; run the command again.",
                    tables=", ".join(differ),
                )
            )
    return copied


def verify(source: db.Connection, target: db.Connection) -> list[str]:
    """The tables whose rows differ between the two (by count or content); none, after copy()."""
    return [table for table in _tables(source) if _digest(source, table, target) is not None]


def _tables(conn: db.Connection) -> list[str]:
    """The source's tables, each after the tables its foreign keys point at."""
    left = [t for t in db.tables(conn) if t != "migrations"]
    parents = {t: {r[2] for r in conn.execute(f"PRAGMA foreign_key_list({t})")} - {t} for t in left}
    ordered: list[str] = []
    while left:
        ready = [t for t in left if parents[t] <= set(ordered)] or left[:1]
        ordered += ready
        left = [t for t in left if t not in ready]
    return ordered


def _digest(source: db.Connection, table: str, target: db.Connection) -> str | None:
    """None if table holds the same rows in both, else what differs."""
    columns = [c for c in db.columns(source, table) if c in db.columns(target, table)]
    sums = []
    for conn in (source, target):
        total = hashlib.sha256()
        count = 0
        cur = conn.execute(f"SELECT {','.join(columns)} FROM {table} ORDER BY 1")  # noqa: S608
        while rows := cur.fetchmany(CHUNK):
            for row in rows:
                total.update(json.dumps(list(row), ensure_ascii=False, default=str).encode())
            count += len(rows)
        sums.append((count, total.hexdigest()))
    return None if sums[0] == sums[1] else f"{table}: {sums[0]} != {sums[1]}"


def _continue_counters(source: db.Connection, target: db.Connection) -> None:
    """Each identity of the target goes on after the copied rows; the change log's after the
    highest seq the source ever handed out (a purged seq is never handed out again)."""
    for table in db.tables(target):
        for column in db.columns(target, table):
            sequence = target.execute(
                "SELECT pg_get_serial_sequence(?, ?)", (table, column)
            ).fetchone()[0]
            if sequence is None:
                continue
            top: Any = target.execute(f"SELECT max({column}) FROM {table}").fetchone()[0]  # noqa: S608
            if table == "changes":
                top = max(top or 0, highest_seq(source) or 0)
            if top:
                target.execute("SELECT setval(?, ?)", (sequence, top))


def check_target(target: db.Connection) -> None:
    """Refuse a target that is not PostgreSQL or that already holds records."""
    if db.dialect(target) != postgres.Connection.dialect:
        raise CopyError(_("The target must be a PostgreSQL database (postgresql://…)"))
    if "entries" in db.tables(target):
        if target.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is not None:
            raise CopyError(_("The target database is not empty: it already holds entries"))
