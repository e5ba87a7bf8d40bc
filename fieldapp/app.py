"""create_app(): every instance, any tier, is this one app; each area is wired in here."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

import sync
from fieldapp import (
    assets,
    commands,
    db,
    errors,
    home,
    i18n,
    jobs,
    records,
    rules,
    security,
    settings,
)
from fieldapp.console import cases, signin
from fieldapp.console import cli as console_cli
from fieldapp.console import views as console_views
from fieldapp.db import cli as db_cli
from fieldapp.gate import cli as gate_cli
from fieldapp.gate import console_views as gate_console_views
from fieldapp.gate import entries, registrations
from fieldapp.gate import views as gate_views
from fieldapp.phones import cli as phones_cli
from fieldapp.phones import views as phones_views
from fieldapp.privacy import cli as privacy_cli
from fieldapp.privacy import ids, retention
from fieldapp.privacy import views as privacy_views
from fieldapp.reports import cli as reports_cli
from fieldapp.reports import daily
from fieldapp.reports import views as reports_views
from fieldapp.screening import answers as screening_answers
from fieldapp.screening import cli as screening_cli
from fieldapp.screening import console_views as screening_console_views
from fieldapp.screening import followup as screening_followup
from fieldapp.screening import views as screening_views
from fieldapp.syncing import cli as syncing_cli
from fieldapp.syncing import endpoints, upstream

# templates/ and static/ sit at the top of the checkout, beside this package (DESIGN.md).
ROOT = settings.ROOT


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app: settings, database, languages, security headers, then each area's
    record kinds, pages, commands and background jobs."""
    app = Flask(
        "fieldapp",
        instance_path=settings.instance_folder(),
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
    if app.config.get("DATABASE_URL"):  # PostgreSQL; db.connect() reads the URL
        app.config["DATABASE"] = app.config["DATABASE_URL"]
    if not app.config.get("DATABASE"):
        app.config["DATABASE"] = str(Path(app.instance_path) / "fieldapp.sqlite3")
    if not app.config.get("SECRET_KEY"):
        # Before `fieldapp init` there is no key yet; a throwaway one keeps CLI commands working.
        app.config["SECRET_KEY"] = os.urandom(32).hex()
    app.config["SESSION_COOKIE_SECURE"] = bool(app.config["SESSION_COOKIE_SECURE"])
    settings.check(app.config)

    db.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)  # error pages in the user's language, every area's
    app.jinja_env.globals["FEVER_AT"] = rules.FEVER_AT  # every template's fever threshold
    app.jinja_env.globals["MAX_LEN"] = rules.MAX_LEN  # and the inputs' maxlength
    # How far off a phone's clock may be before its status line says so (as pushes judge it).
    app.jinja_env.globals["CLOCK_TOLERANCE_MS"] = sync.store.CLOCK_TOLERANCE // timedelta(
        milliseconds=1
    )
    security.init_app(app)
    assets.init_app(app)  # compressed answers; static files hashed, precompressed, cached
    records.init_app(
        app,
        kinds=[
            entries.record_kinds,
            registrations.record_kinds,
            cases.record_kinds,  # and the correction kind
            daily.record_kinds,
            screening_answers.record_kinds,
            screening_followup.record_kinds,
        ],
        for_review=ids.for_review,  # a refused record is kept with its ID number masked
    )
    for blueprint in (
        home.bp,
        gate_views.bp,
        gate_console_views.bp,
        phones_views.bp,
        signin.bp,
        console_views.bp,
        reports_views.bp,
        privacy_views.bp,
        screening_views.bp,
        screening_console_views.bp,
        endpoints.bp,
    ):
        app.register_blueprint(blueprint)
    for area in (
        commands,
        db_cli,
        gate_cli,
        phones_cli,
        console_cli,
        reports_cli,
        privacy_cli,
        syncing_cli,
        screening_cli,
    ):
        for command in area.commands:
            app.cli.add_command(command)
    jobs.register(app, "sync", upstream.background_job, upstream.interval(app))
    jobs.register(app, "purge", retention.daily_job, retention.BACKGROUND_EVERY_SECONDS)
    jobs.register(app, "backup", db_cli.daily_job, db_cli.BACKGROUND_EVERY_SECONDS)
    # Records that are not entries nor point at one, purged by their own recorded_at.
    app.extensions["fieldapp.purges"] = [screening_answers.purge]
    return app
