"""fieldapp: offline-first gate registration. create_app() builds every instance, any tier."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from . import settings

# templates/ and static/ sit at the top of the checkout, beside this package (DESIGN.md).
ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: settings, database, languages, security headers, blueprints."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("FIELDAPP_INSTANCE", str(ROOT / "instance")),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping({s.name: s.default for s in settings.SETTINGS})
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # a gate form may stay open for a whole shift
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.update(settings.from_environment())
    else:
        app.config.update(test_config)
    if not app.config.get("DATABASE"):
        app.config["DATABASE"] = str(Path(app.instance_path) / "fieldapp.sqlite3")
    if not app.config.get("SECRET_KEY"):
        # Before `fieldapp init` there is no key yet; a throwaway one keeps CLI commands working.
        app.config["SECRET_KEY"] = os.urandom(32).hex()
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config["SESSION_COOKIE_SECURE"])
    settings.check(app.config)

    from . import cli, db, i18n, records, security, views

    db.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    records.init_app(app)
    views.init_app(app)
    cli.init_app(app)
    return app
