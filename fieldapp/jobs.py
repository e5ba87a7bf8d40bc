"""Periodic jobs the server runs beside the web app (the upstream sync, the daily purge).

Every serving process starts them; a job's round runs only in the process that holds its turn
(db.turn: a PostgreSQL advisory lock, so across processes and hosts; on SQLite, served by one
process, the turn is always free), so no two rounds of a job ever run at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask

from fieldapp import db

log = logging.getLogger(__name__)


def register(app: Flask, name: str, job: Callable[[Flask], None], every_seconds: float) -> None:
    """Ask `fieldapp serve` to run job(app) every so many seconds."""
    app.extensions.setdefault("fieldapp.background", []).append((name, job, every_seconds))


def run_once(app: Flask, name: str, job: Callable[[Flask], None]) -> bool:
    """One round of a job if no other process is running one now; whether it ran. It runs in
    an app context, as a command does: what it words (a sync error kept for the console) is in
    the language of the server's user (i18n.select_locale), not left in English."""
    with db.turn(app.config["DATABASE"], f"job:{name}") as mine:
        if mine:
            with app.app_context():
                job(app)
        return mine


def start(app: Flask, stop: threading.Event) -> list[threading.Thread]:
    """Start a daemon thread per registered job; each runs until stop is set."""
    threads = []
    for name, job, every in app.extensions.get("fieldapp.background", []):

        def loop(job=job, every=every, name=name) -> None:
            while not stop.is_set():
                try:
                    run_once(app, name, job)
                except Exception:  # a failed round must not end the loop; the next one retries
                    log.exception("background job %s failed", name)
                stop.wait(every)

        thread = threading.Thread(target=loop, name=f"fieldapp-{name}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads
