"""The console's privacy pages: which optional fields a site's gate asks for."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _

from fieldapp import records
from fieldapp.console.accounts import current_user, in_scope, require_role
from fieldapp.db import get_db
from fieldapp.gate import sites
from fieldapp.pages import page_or_fragment
from fieldapp.privacy import fields

bp = Blueprint("privacy", __name__)


@bp.route("/console/sites/<site_id>/fields", methods=["GET", "POST"])
@require_role()
def site_fields(site_id: str):
    """Choose which optional fields a site's gate asks for (minimum collection)."""
    conn = get_db()
    user = current_user()
    site = sites.get_site(conn, site_id)
    if site is None or not in_scope(user, site_id):
        abort(404)
    if not user.can_write:
        abort(403)
    error = ""
    if request.method == "POST":
        try:
            sites.set_optional_fields(
                conn,
                current_app.config,
                site_id,
                ",".join(request.form.getlist("fields")),
                actor=user.name,
            )
        except ValueError as exc:
            error = str(exc)
        else:
            flash(_("The gate form of %(site)s now asks for these fields.", site=site["name"]))
            return redirect(url_for("privacy.site_fields", site_id=site_id), 303)
    return page_or_fragment(
        "privacy/fields.html",
        "privacy/_fields.html",
        status=422 if error else 200,
        site=site,
        chosen=fields.shown(site),  # unchanged by a refused choice
        choices=fields.LABELS,
        error=error,
        retention_days=records.retention_days(conn),
    )
