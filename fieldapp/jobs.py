"""Periodic jobs the server runs beside the web app (sync --watch, the daily purge)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask

log = logging.getLogger(__name__)


def register(app: Flask, name: str, job: Callable[[Flask], None], every_seconds: float) -> None:
    """Ask `fieldapp serve` to run job(app) every so many seconds."""
    app.extensions.setdefault("fieldapp.background", []).append((name, job, every_seconds))


def start(app: Flask, stop: threading.Event) -> list[threading.Thread]:
    """Start a daemon thread per registered job; each runs until stop is set."""
    threads = []
    for name, job, every in app.extensions.get("fieldapp.background", []):

        def loop(job=job, every=every, name=name) -> None:
            while not stop.is_set():
                try:
                    job(app)
                except Exception:  # a failed round must not end the loop; the next one retries
                    log.exception("background job %s failed", name)
                stop.wait(every)

        thread = threading.Thread(target=loop, name=f"fieldapp-{name}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads
