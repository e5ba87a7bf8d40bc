"""The console's page of a site's gate: self-service or not, the roster, and its passes (print,
reissue). Coordinators and admins of the site's scope; the changes are configuration, made on
the instance that owns it (the central), and written to the audit log. A viewer sees the roster
masked as in the log."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _

import sync
from fieldapp import days, i18n, rules
from fieldapp.console import logbook
from fieldapp.console.accounts import client_ip, current_user, in_scope, require_role
from fieldapp.db import get_db
from fieldapp.gate import passes, sites
from fieldapp.pages import download, page_or_fragment
from fieldapp.pdffont import FontMissing
from fieldapp.settings import is_downstream

bp = Blueprint("gate_console", __name__)


def _site(site_id: str):
    """The site, if the user may see it (404 otherwise, as for a site that does not exist)."""
    site = sites.get_site(get_db(), site_id)
    if site is None or not in_scope(current_user(), site_id):
        abort(404)
    return site


def _writer():
    user = current_user()
    if not user.can_write:
        abort(403)
    return user


@bp.route("/console/sites/<site_id>/gate")
@require_role()
def site_gate(site_id: str):
    """A site's gate: self-service, the roster with each pass, print and reissue."""
    site = _site(site_id)
    conn = get_db()
    tz = current_app.config["TIMEZONE"]
    role = current_user().role
    people = []
    for row in passes.roster_of(conn, site["id"]):
        p = logbook.present(dict(row), role)  # name (and phone) as the user's role may see them
        people.append(
            {
                "id": p["id"],
                "name": p["name"],
                "unit": p["unit"],
                "type": rules.PERSON_TYPES.get(p["person_type"], p["person_type"]),
                "issued": days.local_text(p["pass_issued_at"], tz) if p["pass_token"] else "",
                "form": str(uuid.uuid4()),  # its reissue form's id: sent twice, done once
            }
        )
    return page_or_fragment(
        "gate/console_site.html",
        "gate/_console_site.html",
        site=site,
        people=people,
        everyone_form=str(uuid.uuid4()),
        can_write=current_user().can_write,
        downstream=is_downstream(current_app.config),
    )


@bp.post("/console/sites/<site_id>/self-service")
@require_role()
def self_service(site_id: str):
    """Turn self-service on or off (POST-redirect-GET)."""
    site = _site(site_id)
    user = _writer()
    on = request.form.get("self_service") == "1"
    try:
        sites.set_self_service(get_db(), current_app.config, site_id, on, actor=user.name)
    except sites.SiteError as exc:
        flash(str(exc), "error")
    else:
        if on:
            flash(
                _(
                    "%(site)s is self-service: visitors take their own temperature.",
                    site=site["name"],
                )
            )
        else:
            flash(_("At %(site)s the gate staff take visitors' temperatures.", site=site["name"]))
    return redirect(url_for("gate_console.site_gate", site_id=site_id), 303)


@bp.post("/console/sites/<site_id>/passes/reissue")
@require_role()
def reissue(site_id: str):
    """New passes for one person, or for everyone (confirmed): the old cards stop working."""
    site = _site(site_id)
    user = _writer()
    person = request.form.get("person", "")
    everyone = request.form.get("all") == "1"
    try:
        sites.refuse_if_downstream(current_app.config)
        if everyone and request.form.get("confirm") != "1":
            raise ValueError(
                _("Tick the box to confirm that every card of this site stops working.")
            )
        if not everyone and not passes.find_people(get_db(), site_id, [person] if person else []):
            raise ValueError(_("Choose whose pass to reissue."))
        ids = None if everyone else [person]
        try:  # the form's: sent twice, it reissues once
            form = sync.store.canonical_uuid(request.form.get("uuid"))
        except sync.Invalid:
            form = ""
        n = passes.reissue(get_db(), site_id, ids, actor=user.name, ip=client_ip(), form=form)
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        if n is None:
            flash(
                _(
                    "These passes of %(site)s were reissued already: print them; the old cards"
                    " no longer open the gate once the phones have the new roster.",
                    site=site["name"],
                )
            )
            return redirect(url_for("gate_console.site_gate", site_id=site_id), 303)
        flash(
            _(
                "%(n)d passes of %(site)s reissued: print them; the old cards no longer open the"
                " gate once the phones have the new roster.",
                n=n,
                site=site["name"],
            )
        )
    return redirect(url_for("gate_console.site_gate", site_id=site_id), 303)


@bp.get("/console/sites/<site_id>/passes.pdf")
@require_role()
def passes_pdf(site_id: str):
    """The site's passes as an A4 PDF of cards (?person=<id> for one person's)."""
    site = _site(site_id)
    user = _writer()
    conn = get_db()
    person = request.args.get("person", "")
    ids = [person] if person else None
    if ids and not passes.people(conn, site_id, ids):
        abort(404)
    if not is_downstream(current_app.config):
        passes.issue_missing(conn, site_id)
    people = passes.people(conn, site_id, ids)
    tz = current_app.config["TIMEZONE"]
    try:
        pdf = passes.render(
            site,
            people,
            printed=days.today(tz),
            tz_name=tz,
            language="zh_Hant"
            if i18n.language(request.args.get("lang")) == "zh_Hant"
            else "zh_Hans",
        )
    except FontMissing as exc:  # say so, in the user's language, rather than print boxes
        return Response(str(exc), status=503, mimetype="text/plain")
    passes.printed(conn, site_id, len(people), actor=user.name, ip=client_ip())
    return download(pdf, "passes.pdf", "application/pdf", inline=True)
