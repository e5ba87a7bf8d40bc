"""The thread holding the write turn runs at real-time priority, where the system allows it.

Every serving process waits for the one writing, so while a writer holds the turn nothing is
more urgent. Yet Linux's scheduler shares the cores fairly: with the other process checking
its next batch, waitress moving bytes and the checkpoint thread copying pages, the writer was
put aside for other threads again and again in the middle of its transaction, each time for
a slice of a millisecond. Timed from inside both serving processes during
bench/sync_ingest.py, a record's write waited 5-6 µs for a core (of 28 µs the turn was held),
although the cores were only about 70 % busy on average. Nice -20 halved that wait; the
real-time class (SCHED_FIFO, the lowest real-time priority) took it to zero: a writer woken
gets a core at once and keeps it until it lets go of the turn, when the thread goes back to
the class it had. A thread it starts meanwhile (the checkpoint thread is started by the
first write) does not inherit the real-time class: measured, a checkpoint thread that had
inherited it made the push slower than without any of this.

Raising a thread into the real-time class takes CAP_SYS_NICE or an RLIMIT_RTPRIO of at least
1 (systemd: LimitRTPRIO=1). Without either the writer keeps its ordinary priority, as before:
`fieldapp serve --workers` says so when it starts, and the first refused write logs it (INFO).
Nothing is raised on a single core, where a writer in the
real-time class would keep every other request waiting while it writes. Linux's real-time
throttling (kernel.sched_rt_runtime_us, 95 % by default) keeps some time for everyone else
should a write ever run away.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

# The lowest real-time priority: above every ordinary thread, below anything the system runs
# in the real-time class itself.
PRIORITY = 1


def real_time_allowed() -> bool:
    """Whether a writer of this process runs at real-time priority."""
    return WriterPriority().allowed and _may_raise()


def real_time_refused() -> bool:
    """Whether a writer of this process would be raised but the system refuses it (no
    CAP_SYS_NICE, no RLIMIT_RTPRIO): what `fieldapp serve --workers` tells its operator."""
    return WriterPriority().allowed and not _may_raise()


def _may_raise() -> bool:
    """Whether the system lets a thread of this process into the real-time class (tried in a
    thread of its own, which ends with its priority)."""
    answer: list[bool] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
        except OSError:
            answer.append(False)
        else:
            answer.append(True)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return answer[0]


class WriterPriority:
    """raised(): a context in which the calling thread runs at real-time priority, if allowed.

    After the first refusal it stops asking (one log line, not one per write).
    """

    def __init__(self, *, cores: int | None = None) -> None:
        if cores is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        self.allowed = hasattr(os, "sched_setscheduler") and cores > 1

    @contextlib.contextmanager
    def raised(self) -> Iterator[None]:
        """Run the block at real-time priority; the thread's own policy is restored after."""
        if not self.allowed:
            yield
            return
        try:
            policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
            if policy & ~os.SCHED_RESET_ON_FORK in (os.SCHED_FIFO, os.SCHED_RR):  # already
                policy = None
            else:
                # Threads started meanwhile (the checkpoint thread) do not inherit the class.
                os.sched_setscheduler(
                    0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(PRIORITY)
                )
        except OSError as exc:  # EPERM: neither CAP_SYS_NICE nor RLIMIT_RTPRIO
            self.allowed = False
            log.info(
                "the writing thread keeps its ordinary priority (%s); grant CAP_SYS_NICE or"
                " RLIMIT_RTPRIO 1 to let it run at real-time priority",
                exc.strerror or exc,
            )
            yield
            return
        try:
            yield
        finally:
            if policy is not None:
                os.sched_setscheduler(0, policy, param)
