"""Screening in the console: campaigns, coverage (table, summary, CSV, XLSX, print), a site's
people and their answers, the follow-ups. The site phone's pages are in views.py."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

import sync
from fieldapp import audit, days, records, tables
from fieldapp.console import accounts, exports, logbook
from fieldapp.console.accounts import current_user, require_role, scope_site_ids
from fieldapp.db import get_db, transaction
from fieldapp.gate import sites
from fieldapp.pages import MIMETYPES, download, page_or_fragment
from fieldapp.screening import answers, campaigns, coverage, followup
from fieldapp.settings import is_downstream

bp = Blueprint("screening_console", __name__)

ALL = tuple(accounts.ROLES)
WRITE = accounts.WRITE_ROLES
SOURCE = "console"


def _tz() -> str:
    return current_app.config["TIMEZONE"]


def _today() -> date:
    return days.today(_tz())


def _visible_campaigns(conn) -> list[campaigns.Campaign]:
    """Campaigns covering at least one site the user may see."""
    return campaigns.visible(conn, scope_site_ids(current_user(), conn))


def _campaign_or_404(campaign_id: str) -> campaigns.Campaign:
    conn = get_db()
    campaign = campaigns.get(conn, campaign_id)
    if campaign is None or campaign not in _visible_campaigns(conn):
        abort(404)
    return campaign


def _campaign_site_or_404(campaign_id: str, site_id: str) -> tuple[campaigns.Campaign, Any]:
    """A campaign the user sees and one of its sites in the user's scope, or 404."""
    campaign = _campaign_or_404(campaign_id)
    site = sites.get_site(get_db(), site_id)
    if site is None or not accounts.in_scope(current_user(), site_id) or not campaign.covers(site):
        abort(404)
    return campaign, site


@bp.route("/console/screening", methods=["GET", "POST"])
@require_role(*ALL)
def console_campaigns():
    """The campaigns in the user's scope; on the central, admins make new ones here."""
    conn = get_db()
    user = current_user()
    central = not is_downstream(current_app.config)
    error = ""
    if request.method == "POST":
        if not (central and user.is_admin):
            abort(403)
        form = request.form
        try:
            made = campaigns.add(
                conn,
                current_app.config,
                form.get("name", ""),
                start=form.get("start_day", ""),
                end=form.get("end_day", ""),
                daily=form.get("daily") == "1",
                all_sites=form.get("scope") == "all",
                districts=form.getlist("districts") if form.get("scope") != "all" else [],
                sites=form.getlist("sites") if form.get("scope") != "all" else [],
                asked=form.getlist("questions"),
                actor=user.name,
            )
        except campaigns.CampaignError as exc:
            error = str(exc)
        else:
            flash(
                _(
                    "The campaign %(name)s is made; it reaches the sites with the next sync.",
                    name=made.name,
                )
            )
            return redirect(url_for("screening_console.console_coverage", campaign_id=made.id), 303)
    site_rows = sites.listing(conn, active_only=True)
    names = {r["id"]: r["name"] for r in site_rows}
    listed = [{"c": c, "scope": campaigns.scope_text(c, names)} for c in _visible_campaigns(conn)]
    return render_template(
        "screening/campaigns.html",
        listed=listed,
        can_make=central and user.is_admin,
        districts=sorted({r["district"] for r in site_rows if r["district"]}),
        site_rows=site_rows,
        today=_today(),
        error=error,
        values=request.form if request.method == "POST" else {},
    ), (400 if error else 200)


def _coverage_for_request(campaign: campaigns.Campaign):
    try:
        day = days.parse_day(request.args.get("day") or _today())
    except ValueError as exc:
        return None, str(exc)
    district = (request.args.get("district") or "").strip() or None
    ids = scope_site_ids(current_user())
    return coverage.build(get_db(), campaign, day, tz=_tz(), district=district, site_ids=ids), ""


@bp.route("/console/screening/<campaign_id>")
@require_role(*ALL)
def console_coverage(campaign_id: str):
    """A campaign's coverage on a day: the summary paragraph, per district and site."""
    campaign = _campaign_or_404(campaign_id)
    cov, error = _coverage_for_request(campaign)
    # The districts of the sites open on the day shown (a past day's, closed since or not).
    day = cov.day if cov else _today()
    rows = campaigns.site_rows(
        get_db(), campaign, site_ids=scope_site_ids(current_user()), open_on=(day, _tz())
    )
    context = {
        "campaign": campaign,
        "cov": cov,
        "summary": coverage.summary(cov) if cov else "",
        "error": error,
        "districts": sorted({r["district"] for r in rows}),
        "district": request.args.get("district", ""),
        "day_value": request.args.get("day") or _today().isoformat(),
        "today": _today(),
    }
    status = 400 if error else 200
    if request.args.get("print") == "1":
        return render_template("screening/coverage_print.html", **context), status
    return page_or_fragment(
        "screening/coverage.html", "screening/_coverage.html", status=status, **context
    )


def _export(campaign_id: str, kind: str):
    campaign = _campaign_or_404(campaign_id)
    cov, error = _coverage_for_request(campaign)
    if cov is None:
        return Response(error, 400, mimetype="text/plain")  # it quotes what was typed
    return exports.audited_download(cov, coverage, kind, "screening", campaign.name)


@bp.route("/console/screening/<campaign_id>/coverage.csv")
@require_role(*ALL)
def coverage_csv(campaign_id: str):
    """The coverage as CSV (UTF-8 with BOM), the summary paragraph first."""
    return _export(campaign_id, "csv")


@bp.route("/console/screening/<campaign_id>/coverage.xlsx")
@require_role(*ALL)
def coverage_xlsx(campaign_id: str):
    """The coverage as an Excel workbook."""
    return _export(campaign_id, "xlsx")


@bp.route("/console/screening/<campaign_id>/sites/<site_id>")
@require_role(*ALL)
def console_site(campaign_id: str, site_id: str):
    """A site's people and their answers of a day, masked by role; looking is audited."""
    campaign, site = _campaign_site_or_404(campaign_id, site_id)
    user = current_user()
    try:
        day = days.parse_day(request.args.get("day") or _today())
    except ValueError as exc:
        return Response(str(exc), 400, mimetype="text/plain")  # it quotes what was typed
    # The roster of that day, as the coverage of the day counts it.
    people = answers.people(get_db(), campaign, site_id, day, until=days.bounds(day, _tz())[1])
    for p in people:  # name and phone as the user's role may see them
        p.update(logbook.present(p, user.role))
    accounts.audit_action("screening_view", site_id, f"{campaign.name} {day.isoformat()}")
    return render_template(
        "screening/site.html",
        campaign=campaign,
        site=site,
        day=day,
        people=people,
        can_write=user.can_write,
    )


@bp.route("/console/screening/<campaign_id>/sites/<site_id>/added.csv")
@require_role(*WRITE)
def added_csv(campaign_id: str, site_id: str):
    """People added on site, as a roster file (name,phone,unit,person_type) for `fieldapp roster
    import` at the central: who stays joins the roster by the usual path. Audited."""
    campaign, site = _campaign_site_or_404(campaign_id, site_id)
    people = [p for p in answers.people(get_db(), campaign, site_id, _today()) if p["added"]]
    fields = ["name", "phone", "unit", "person_type"]
    body = tables.csv_bytes([fields, *([p[f] for f in fields] for p in people)])
    detail = f"{campaign.name} {site['name']} {len(people)}"
    accounts.audit_action("export", "screening.added.csv", detail)
    return download(body, f"added-{site['code']}.csv", MIMETYPES["csv"])


# ---- console: follow-ups ----------------------------------------------------------------------


@bp.route("/console/screening/followups")
@require_role(*ALL)
def followups():
    """People in home isolation or medical observation, oldest first, overdue checks marked."""
    user = current_user()
    status = request.args.get("status", "open")
    if status not in followup.STATUSES:
        status = "open"
    listed = followup.listing(get_db(), scope_site_ids(user), sync.utcnow(), status)
    for f in listed:  # name and phone as the user's role may see them
        f.update(logbook.present(f, user.role))
    return page_or_fragment(
        "screening/followups.html",
        "screening/_followups.html",
        followups=listed,
        chosen=status,  # not `status`: page_or_fragment's HTTP status
        statuses=followup.STATUSES,
        limit=followup.SHOWN,
    )


def _followup_or_404(campaign_id: str, person_id: str) -> dict:
    follow = followup.one(get_db(), campaign_id, person_id, sync.utcnow(), _tz())
    if follow is None or not accounts.in_scope(current_user(), follow["site_id"]):
        abort(404)
    return follow


@bp.route("/console/screening/followups/<campaign_id>/<person_id>")
@require_role(*ALL)
def followup_page(campaign_id: str, person_id: str):
    """One person's follow-up: their answers, the checks and steps, and the next step."""
    return _followup_page(_followup_or_404(campaign_id, person_id))


def _followup_page(follow: dict, error: str = "", typed=None):
    """The follow-up's page; after a refused step (422), with why, and the form it was posted
    from holding what was typed (typed: the posted form), as a fever case's page does."""
    follow.update(logbook.present(follow, current_user().role))  # name, phone as the role may
    campaign = campaigns.get(get_db(), follow["campaign_id"])
    page = render_template(
        "screening/followup.html",
        f=follow,
        campaign=campaign,
        errors=[error] if error else [],
        typed=typed or {},
        # Each form's step has its id from here: sent twice, it is stored once.
        step_uuids={a: str(uuid.uuid4()) for a in ("check", "close", "reopen")},
    )
    return page, 422 if error else 200


@bp.route("/console/screening/followups/<campaign_id>/<person_id>/action", methods=["POST"])
@require_role(*WRITE)
def followup_action(campaign_id: str, person_id: str):
    """Record one follow-up step (a check, a note, close or reopen), audited."""
    user = current_user()
    follow = _followup_or_404(campaign_id, person_id)
    action = request.form.get("action", "")
    try:  # the form's: a second click, or a retry after a lost answer, is the same step
        step_uuid = sync.store.canonical_uuid(request.form.get("uuid"))
    except sync.Invalid:
        step_uuid = None
    record = followup.wire(
        follow,
        user.name,
        action,
        uuid=step_uuid,
        temperature=request.form.get("temperature") or None,
        outcome=request.form.get("outcome", ""),
        note=request.form.get("note", ""),
    )
    back = redirect(
        url_for("screening_console.followup_page", campaign_id=campaign_id, person_id=person_id),
        303,
    )
    conn = get_db()
    with transaction(conn):
        if step_uuid and followup.stored(conn, step_uuid, follow["campaign_id"]):
            flash(_("This was saved already."))
            return back
        result = records.save(conn, [record], source=SOURCE)[0]
        if result.status == "applied":
            audit.write(
                conn, user.name, "screening_action", person_id, action, accounts.client_ip()
            )
    if result.status != "applied":  # nothing saved: the page again, the form as typed
        return _followup_page(follow, result.reason or result.status, typed=request.form)
    flash(_("Saved: %(action)s.", action=followup.ACTIONS[action]))
    return back
