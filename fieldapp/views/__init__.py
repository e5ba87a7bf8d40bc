"""Thin blueprints: each area's views translate HTTP to calls of the domain modules."""

from __future__ import annotations

import importlib

from flask import Flask

# Each module here has a blueprint `bp`.
BLUEPRINTS = (
    "fieldapp.views.home",
    "fieldapp.views.gate",
    "fieldapp.views.reports",
    "fieldapp.views.console_auth",
    "fieldapp.views.console",
    "fieldapp.views.pwa",
    "fieldapp.views.sync_api",
)


def init_app(app: Flask) -> None:
    """Register every area's blueprint."""
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)
