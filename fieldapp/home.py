"""The front page and the liveness ping phones use to judge connectivity."""

from __future__ import annotations

from flask import Blueprint, render_template

import sync

bp = Blueprint("home", __name__)


@bp.route("/")
def index():
    """What this instance is, and where to go."""
    return render_template("home/index.html")


@bp.route("/ping")
def ping():
    """A tiny answer that is never cached: a phone reaching it is online, and learns from `now`
    (this instance's clock) whether its own clock is wrong."""
    now = sync.store.iso(sync.utcnow())
    return {"ok": True, "now": now}, 200, {"Cache-Control": "no-store"}
