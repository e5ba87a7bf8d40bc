"""Two serving processes of one central on PostgreSQL (two hosts behind a load balancer): each
runs the background jobs, and each job's round runs in one of them at a time, never in both."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import pytest
from proxy import Proxy
from servers import free_port, make_server
from sync_helpers import add_instance, entry, save_records, start, stop, uuids
from wait import wait_until

from fieldapp import days

pytestmark = pytest.mark.slow  # real processes and a PostgreSQL cluster


class PushLog(Proxy):
    """A proxy in front of the upstream that notes when each push began and ended and how many
    records it carried, and holds each push a little so that two at once would overlap."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.pushes: list[tuple[float, float, int]] = []

    def before(self, path: str) -> None:
        if path.startswith("/sync/v1/push"):
            time.sleep(0.3)

    def answer(self, path: str, body: bytes | None, began: float) -> bool:
        if path.startswith("/sync/v1/push"):
            carried = len(json.loads(body).get("records", []))
            self.pushes.append((began, time.monotonic(), carried))
        return True


def test_two_processes_of_a_central_run_each_job_round_once(tmp_path, make_pg_database):
    city = make_server(tmp_path / "city")
    start(city)
    proxy = PushLog(city.url)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    central = make_server(
        tmp_path / "central",
        demo=False,
        database_url=make_pg_database(),
        SYNC_INTERVAL="1",
        SYNC_BATCH_SIZE="50",
    )
    central.cli("upstream", "set", proxy.url, add_instance(city, "central"))
    central.cli("sync")  # the sites come down
    site_id = city.query("SELECT id FROM sites ORDER BY name")[0][0]
    made = [entry(site_id, i) for i in range(400)]
    assert set(save_records(central.folder, made)) == {"applied"}
    proxy.pushes.clear()

    other_host = dataclasses.replace(central, port=free_port())
    try:
        start(central)
        start(other_host)
        wait_until(lambda: len(uuids(city)) >= 400, 60, "the city holds the 400 entries")
        time.sleep(3)  # three more sync rounds' worth in each process: nothing more to send
    finally:
        stop(other_host)
        stop(central)
        proxy.shutdown()
        proxy.server_close()
        stop(city)

    got = uuids(city)
    assert sorted(got) == sorted(r["uuid"] for r in made)
    pushes = sorted(proxy.pushes)
    assert sum(n for _b, _e, n in pushes) == 400, "a record was sent twice"
    for (_b1, end, _n1), (begin, _e2, _n2) in zip(pushes, pushes[1:], strict=False):
        assert begin >= end, "two sync rounds pushed at once"
    today = days.today("Asia/Shanghai").isoformat()
    purges = central.query("SELECT trigger FROM purge_log WHERE local_day = ?", (today,))
    assert [r[0] for r in purges] == ["background"]  # purged once today, by one of them
    audited = central.query("SELECT count(*) FROM audit_log WHERE action = 'purge'")[0][0]
    assert audited == 1
