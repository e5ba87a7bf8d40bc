"""A record the upstream cannot store at all is set aside by the instance sending it, and every
other record still goes; it is tried again each round and leaves once the upstream takes it."""

from __future__ import annotations

import pytest
from servers import make_server
from sync_helpers import entry, link, save_records, start, stop, uuids

# Real processes (or a PostgreSQL cluster): `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow


def test_a_poison_record_is_held_back_and_the_queue_moves_on(tmp_path):
    central = make_server(tmp_path / "central")
    office = make_server(tmp_path / "office", demo=False)
    link(office, central, "office")
    site_id = central.query("SELECT id FROM sites ORDER BY name LIMIT 1")[0][0]
    wire = [entry(site_id, i) for i in range(9)]
    poison = wire[5]["uuid"]
    with (central.folder / "config.py").open("a") as f:
        f.write(f"TEST_FAIL_PUSH_UUIDS = [{poison!r}]\n")
    start(central)
    try:
        office.cli("sync")  # the sites come down
        assert set(save_records(office.folder, wire)) == {"applied"}
        done = office.cli("sync", check=False)
        assert done.returncode == 0, done.stderr
        assert "1" in done.stderr and "fieldapp sync --status" in done.stderr  # says so
        assert sorted(uuids(central)) == sorted(r["uuid"] for r in wire if r["uuid"] != poison)
        status = office.cli("sync", "--status").stdout
        assert poison in status and "500" in status

        # A second round sends nothing twice and keeps it held while the upstream still fails.
        office.cli("sync")
        assert len(uuids(central)) == 8
        assert office.query("SELECT uuid FROM sync_held")[0][0] == poison

        # Once the upstream can take it (fixed, restarted), the next round delivers it.
        stop(central)
        config = (central.folder / "config.py").read_text()
        (central.folder / "config.py").write_text(config.replace(poison, "none"))
        start(central)
        office.cli("sync")
        assert sorted(uuids(central)) == sorted(r["uuid"] for r in wire)
        assert office.query("SELECT count(*) FROM sync_held")[0][0] == 0
    finally:
        stop(central)


def test_an_upstream_that_fails_for_everything_holds_nothing_back(tmp_path):
    """A proxy answering 502 while the upstream is down is not a poison record: nothing is held,
    the round fails and is retried, and the cursor stays where it was."""
    central = make_server(tmp_path / "central")
    office = make_server(tmp_path / "office", demo=False)
    link(office, central, "office")
    site_id = central.query("SELECT id FROM sites ORDER BY name LIMIT 1")[0][0]
    wire = [entry(site_id, i) for i in range(4)]
    with (central.folder / "config.py").open("a") as f:
        f.write(f"TEST_FAIL_PUSH_UUIDS = {[r['uuid'] for r in wire]!r}\n")
        f.write("TEST_FAIL_EMPTY_PUSH = True\n")
    start(central)
    try:
        office.cli("sync")  # the sites come down
        save_records(office.folder, wire)
        failed = office.cli("sync", check=False)
        assert failed.returncode != 0
        assert office.query("SELECT count(*) FROM sync_held")[0][0] == 0
        assert uuids(central) == []
    finally:
        stop(central)
