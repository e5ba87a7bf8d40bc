"""sync.apply_batch's write on a real database of either engine: results in order, each uuid
stored once, the change log's chain unbroken, whatever the batch mixes (new, resent, repeated,
conflicting); a batch whose write fails stores nothing."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from sync_helpers import NOTES, REGISTRY

import sync.store
from fieldapp.db import connect, dialect, postgres
from sync.store import apply_batch, chain_next


@pytest.fixture
def conn(database):
    conn = connect(database)
    # A note reading "refused" breaks a constraint: a write that fails part of the way.
    table = NOTES.replace("text TEXT NOT NULL)", "text TEXT NOT NULL CHECK (text != 'refused'))")
    conn.execute(postgres.translate_ddl(table) if dialect(conn) == "postgresql" else table)
    yield conn
    conn.close()


def note(text: str, rid: str | None = None) -> dict:
    return {
        "uuid": rid or str(uuid.uuid4()),
        "kind": "note",
        "recorded_at": "2026-11-20T08:00:00.000Z",
        "data": {"text": text},
    }


def stored(conn) -> dict[str, str]:
    return dict(conn.execute("SELECT uuid, text FROM notes").fetchall())


def assert_chain_unbroken(conn) -> None:
    chain = ""
    for rid, link in conn.execute("SELECT uuid, chain FROM changes ORDER BY seq"):
        chain = chain_next(chain, rid)
        assert link == chain


def test_a_mixed_batch_is_written_once_per_uuid_in_order(conn):
    first = [note(f"first {n}") for n in range(7)]
    results = apply_batch(conn, REGISTRY, first, origin="here", source="down")
    assert [r.status for r in results] == ["applied"] * 7

    fresh = [note(f"fresh {n}") for n in range(10)]
    batch = [
        first[0],  # resent, same content
        fresh[0],
        note("changed", first[1]["uuid"]),  # resent with other content
        *fresh[1:6],
        fresh[2],  # twice in the batch, same content
        note("other", fresh[3]["uuid"]),  # twice in the batch, other content
        *fresh[6:],
    ]
    results = apply_batch(conn, REGISTRY, batch, origin="here", source="down")

    assert [(r.uuid, r.status) for r in results] == [
        (first[0]["uuid"], "duplicate"),
        (fresh[0]["uuid"], "applied"),
        (first[1]["uuid"], "conflict"),
        *[(r["uuid"], "applied") for r in fresh[1:6]],
        (fresh[2]["uuid"], "duplicate"),
        (fresh[3]["uuid"], "conflict"),
        *[(r["uuid"], "applied") for r in fresh[6:]],
    ]
    # Each uuid once, with the content that came first; the conflicts kept for review.
    assert stored(conn) == {r["uuid"]: r["data"]["text"] for r in first + fresh}
    reviewed = conn.execute("SELECT uuid, status FROM sync_rejects ORDER BY uuid").fetchall()
    assert sorted(tuple(r) for r in reviewed) == sorted(
        [(first[1]["uuid"], "conflict"), (fresh[3]["uuid"], "conflict")]
    )
    # The change log: every stored record once, in the order written, its chain unbroken.
    logged = [r[0] for r in conn.execute("SELECT uuid FROM changes ORDER BY seq")]
    assert logged == [r["uuid"] for r in first + fresh]
    assert_chain_unbroken(conn)


def test_a_batch_larger_than_one_statement_is_written_whole(conn, monkeypatch):
    # On SQLite a batch's rows go in as multi-row INSERTs within its limit on parameters: at
    # 20 parameters, two notes (7 columns) or six change-log rows (3) a statement.
    monkeypatch.setattr(sync.store, "SQLITE_MAX_PARAMETERS", 20)
    first = [note(f"first {n}") for n in range(5)]
    apply_batch(conn, REGISTRY, first, origin="here", source="down")
    fresh = [note(f"fresh {n}") for n in range(11)]
    batch = [*fresh[:4], first[2], *fresh[4:], fresh[0]]
    results = apply_batch(conn, REGISTRY, batch, origin="here", source="down")

    assert [r.status for r in results] == ["applied"] * 4 + ["duplicate"] + ["applied"] * 7 + [
        "duplicate"
    ]
    assert stored(conn) == {r["uuid"]: r["data"]["text"] for r in first + fresh}
    logged = [r[0] for r in conn.execute("SELECT uuid FROM changes ORDER BY seq")]
    assert logged == [r["uuid"] for r in first + fresh]
    assert_chain_unbroken(conn)


def test_a_sqlite_built_with_fewer_parameters_still_takes_a_whole_batch(conn):
    if dialect(conn) != "sqlite":
        pytest.skip("SQLite's own limit")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)  # as an old build's 999, smaller
    batch = [note(f"n {n}") for n in range(9)]
    assert {r.status for r in apply_batch(conn, REGISTRY, batch, origin="here", source="d")} == {
        "applied"
    }
    assert stored(conn) == {r["uuid"]: r["data"]["text"] for r in batch}
    assert_chain_unbroken(conn)


def test_a_batch_that_fails_to_write_stores_nothing(conn):
    apply_batch(conn, REGISTRY, [note("before")], origin="here", source="down")
    # The tenth row of the batch breaks the table's constraint.
    batch = [note(f"n{n}") for n in range(9)] + [note("refused")]
    with pytest.raises(Exception, match="(?i)check"):
        apply_batch(conn, REGISTRY, batch, origin="here", source="down")
    assert list(stored(conn).values()) == ["before"]
    assert conn.execute("SELECT count(*) FROM changes").fetchone()[0] == 1


def test_a_nul_character_refuses_its_record_on_either_engine(conn):
    """PostgreSQL cannot store U+0000 in text, SQLite can: refused on both, so a record a site
    office on SQLite took is not one its central on PostgreSQL can never take."""
    batch = [note("before"), note("a\x00b"), note("after")]
    results = apply_batch(conn, REGISTRY, batch, origin="here", source="down")
    assert [r.status for r in results] == ["applied", "rejected", "applied"]
    assert "NUL" in results[1].reason
    assert stored(conn) == {batch[0]["uuid"]: "before", batch[2]["uuid"]: "after"}
    reviewed = conn.execute("SELECT uuid, status, body FROM sync_rejects").fetchall()
    assert [(r[0], r[1]) for r in reviewed] == [(batch[1]["uuid"], "rejected")]
    assert "\\u0000" in reviewed[0][2]  # kept for review as it came


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_time_with_no_utc_form_refuses_its_record_not_the_batch(conn, when):
    """Year 1 at +14:00 is before UTC's year 1: it was a 500 that lost the whole batch."""
    batch = [note("before"), dict(note("odd"), recorded_at=when), note("after")]
    results = apply_batch(conn, REGISTRY, batch, origin="here", source="down")
    assert [r.status for r in results] == ["applied", "rejected", "applied"]
    assert "ISO 8601" in results[1].reason
    assert stored(conn) == {batch[0]["uuid"]: "before", batch[2]["uuid"]: "after"}
