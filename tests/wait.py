"""The one way the tests wait for something outside them (a process, a sync round): poll
until it holds, within a generous bound that is not a timing assertion. In a browser, prefer
Playwright's own waits (wait_for_selector, and wait_for_function for a condition that needs no
await); phone_support.until polls an async one through this."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], seconds: float = 60, what: str = "") -> None:
    """Return once condition() is true; fail if it is not within `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {seconds} s: {what or condition}")
        time.sleep(0.05)
