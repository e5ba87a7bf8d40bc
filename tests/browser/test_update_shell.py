"""A new version of the app that reaches the phone on one bar of signal: the app shell must
still open offline afterwards."""

from __future__ import annotations

import time

from phone_support import SAVE_MANY, WORKER_STATE, names, ready, wait_waiting, worker_versions
from wait import wait_until


def test_an_update_whose_shell_could_not_all_be_fetched_leaves_the_shell_working_offline(
    server, context, enrolled_page
):
    page = enrolled_page
    ready(page)
    context.set_offline(True)
    page.evaluate(SAVE_MANY, [1, "更新"])
    # A new deployment, and one bar of signal: the new worker's copy of the outbox page (a page
    # of the shell, not a hashed file the browser's HTTP cache may still have) does not come.
    # (The route reaches the service worker's requests too.)
    context.route("**/outbox", lambda route: route.abort())
    # (and the instance down for pushes meanwhile: the entry waits on the phone)
    context.route("**/sync/v1/push", lambda route: route.fulfill(status=503, body="down"))
    context.set_offline(False)
    server.stop()
    server.env["FIELDAPP_APP_VERSION"] = "next"
    server.start()
    cdp, versions = worker_versions(context, page)
    wait_until(lambda: page.evaluate("true") and versions, 30, "the worker version reported")
    first = {v for v, d in versions.items() if d["status"] == "activated"}
    stopped = [time.monotonic()]

    def tried(ends=("activated", "redundant")) -> bool:
        """A newer version installed and took over, or its install failed."""
        newer = [d for v, d in versions.items() if v not in first]
        if any(d["status"] in ends for d in newer):
            return True
        if any(d["status"] == "installed" for d in newer) and time.monotonic() - stopped[0] > 2:
            # The old worker, idle on a phone, is stopped there (see test_offline's update).
            for v in first:
                if versions[v]["runningStatus"] != "stopped":
                    cdp.send("ServiceWorker.stopWorker", {"versionId": v})
            stopped[0] = time.monotonic()
        page.evaluate(
            """async () => {
              const reg = await navigator.serviceWorker.getRegistration();
              if (!reg.installing && !reg.waiting) await reg.update().catch(() => null);
            }"""
        )
        return False

    try:
        wait_until(tried, 60, "the new worker version was installed or refused")
    except AssertionError:
        raise AssertionError(f"no new worker version: {page.evaluate(WORKER_STATE)}") from None
    # The phone still has a shell with the outbox page in it (the browser's HTTP cache may
    # answer for it too, now and then, but not for long: that is no shell).
    assert page.evaluate("async () => !!(await caches.match('/outbox'))")
    # Then no network at all: the outbox page (where the waiting entry is seen and exported)
    # opens from the shell, as before the update.
    context.set_offline(True)
    context.unroute("**/outbox")
    page.goto(server.url + "/outbox")
    page.wait_for_selector("[data-outbox-waiting] li:has-text('更新0000')")
    assert page.evaluate("async () => (await caches.keys()).filter(k => k.includes('shell'))")
    context.set_offline(False)
    context.unroute("**/sync/v1/push")
    page.click("[data-send-now]")
    wait_waiting(page, 0)
    assert names(server) == ["更新0000"]
    # With the whole shell within reach, the new version comes at the next look for it.
    wait_until(lambda: tried(("activated",)), 60, "the new worker version took over")
