"""Sending that does not go well: a backlog over one bar of signal, where a full batch of the
outbox cannot go up within the push's time limit, so the phone sends smaller ones, says so,
and everything arrives, once; an instance that keeps failing, which the status line says."""

from __future__ import annotations

from phone_support import Throttle, no_duplicates, outbox_loaded, queue, ready, until, wait_waiting
from wait import wait_until

# What the status line's trouble note shows (status.js), and what it says on a slow uplink or
# when sending keeps failing (before the count).
TROUBLE = """() => {
  const box = document.getElementById("outbox-status");
  const note = box.querySelector("[data-status-trouble]");
  return {shown: note.hidden ? "" : note.textContent, slow: box.dataset.tSlow,
          failing: box.dataset.tFailing.split("{n}")[0], bad: note.classList.contains("flash-error")};
}"""


def trouble_shows(page, what: str, seconds: float = 60) -> None:
    """Wait until the trouble note says `what`: "slow", "failing" (in red), or "" (hidden)."""

    def shows() -> bool:
        t = page.evaluate(TROUBLE)
        if what == "slow":
            return t["shown"] == t["slow"]
        if what == "failing":
            return t["bad"] and t["shown"].startswith(t["failing"])
        return t["shown"] == ""

    wait_until(shows, seconds, f"the status line's trouble note says {what or 'nothing'}")


# About 425 bytes a record: 200 are ~85 kB, which take ~22 s at 4 kB/s, more than the push's
# 20 s time limit (outbox.js PUSH_TIMEOUT_MS); half of them take ~11 s.
COUNT = 200
UPLINK = 4000


def test_a_backlog_too_big_for_one_bar_goes_in_smaller_batches(server, context, enrolled_page):
    page = enrolled_page
    ready(page)
    throttle = Throttle(context, page)
    page.reload()  # the service worker starts again, attached to the throttle
    outbox_loaded(page)
    until(page, "() => navigator.serviceWorker.controller !== null")
    throttle.set(offline=True)  # a shift change during an outage
    queue(page, COUNT, "积压")
    throttle.set(latency_ms=300, down=20000, up=UPLINK)  # back, on one bar
    page.click("[data-send-now]")
    # The first push (all of them) times out: the status line says that sending goes in
    # smaller batches, not that all is well.
    trouble_shows(page, "slow", seconds=90)
    wait_waiting(page, 0, seconds=120)
    assert server.query("SELECT COUNT(DISTINCT uuid), COUNT(*) FROM entries")[0][:] == (
        COUNT,
        COUNT,
    )
    no_duplicates(server)
    trouble_shows(page, "")  # nothing waits: nothing to say


def test_the_status_line_says_when_sending_keeps_failing(server, context, enrolled_page):
    page = enrolled_page
    ready(page)
    failing = [True]

    def instance(route):
        if failing[0]:
            route.fulfill(status=500, body="boom")
        else:
            route.continue_()

    context.route("**/sync/v1/push", instance)
    queue(page, 3, "失败")
    page.click("[data-send-now]")
    # Every round fails; it tries again by itself, and after a few rounds it says so, in red.
    trouble_shows(page, "failing")
    assert server.query("SELECT COUNT(*) FROM entries")[0][0] == 0
    failing[0] = False  # the instance is back
    wait_waiting(page, 0)
    assert server.query("SELECT COUNT(DISTINCT uuid), COUNT(*) FROM entries")[0][:] == (3, 3)
    trouble_shows(page, "")
