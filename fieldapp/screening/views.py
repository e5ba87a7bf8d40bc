"""Screening pages: the site phone's list and form (/s/<code>/screening/...), and the console's
campaigns, coverage (table, summary, CSV, XLSX, print), a site's people and the follow-ups."""

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
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

import sync
from fieldapp import audit, days, records, rules
from fieldapp.console import accounts, logbook
from fieldapp.console.accounts import current_user, require_role, scope_site_ids
from fieldapp.db import get_db, transaction
from fieldapp.gate import roster, sites
from fieldapp.pages import page_or_fragment
from fieldapp.phones import devices
from fieldapp.screening import answers, campaigns, coverage, followup, questions

bp = Blueprint("screening", __name__)
ALL = ("admin", "coordinator", "viewer")
WRITE = ("admin", "coordinator")
SOURCE = "console"


@bp.app_context_processor
def _labels() -> dict:
    return {
        "SCREENING_QUESTIONS": questions.QUESTIONS,
        "SCREENING_LABELS": questions.LABELS,
        "FOLLOWUP_ACTIONS": followup.ACTIONS,
        "FOLLOWUP_OUTCOMES": followup.OUTCOMES,
        "PERSON_TYPES_LABELS": rules.PERSON_TYPES,
    }


def _tz() -> str:
    return current_app.config["TIMEZONE"]


def _today() -> date:
    return days.today(_tz())


@bp.app_template_global("screening_today")
def screening_today(site) -> bool:
    """Whether a campaign screens this site's people today (the gate page links to it)."""
    return bool(campaigns.for_site(get_db(), site, _today()))


# ---- the site phone ---------------------------------------------------------------------------


def _site(code: str):
    site = sites.active_by_code(get_db(), code)
    if site is None:
        abort(404)
    return site


def _screener():
    """Who may screen at a site: an enrolled phone (its id), or a console user who may write
    and whose scope has the site. (device id or None, allowed)"""
    phone = devices.peer_from_cookie(get_db())
    if phone is not None:
        return phone.id, True
    user = current_user()
    return None, user is not None and user.can_write


def _not_allowed(site):
    return Response(render_template("screening/not_allowed.html", site=site), 403)


@bp.get("/s/<code>/screening")
def phone_campaigns(code: str):
    """The campaigns screening this site today: the one, or a choice."""
    site = _site(code)
    device, allowed = _screener()
    if not allowed or (device is None and not accounts.in_scope(current_user(), site["id"])):
        return _not_allowed(site)
    running = campaigns.for_site(get_db(), site, _today())
    if len(running) == 1:
        return redirect(url_for("screening.phone_page", code=code, campaign_id=running[0].id))
    return render_template("screening/phone_campaigns.html", site=site, running=running)


def _phone_data(site, campaign, today: date, people: list[dict]) -> dict:
    """What the page's script needs offline: the campaign, the site, the people and their last
    answers (names, units, no phone numbers: the screening does not need them)."""
    return {
        "campaign": {
            "id": campaign.id,
            "name": campaign.name,
            "daily": campaign.daily,
            "start": campaign.start_day.isoformat(),
            "end": campaign.end_day.isoformat() if campaign.end_day else "",
            "questions": list(campaign.questions),
        },
        "site": {"id": site["id"], "person_type": roster.default_person_type(site)},
        "tz": _tz(),
        "today": today.isoformat(),
        "labels": {
            column: {value: str(label) for value, label in labels.items()}
            for column, labels in questions.LABELS.items()
        },
        "followed": list(questions.FOLLOWED),
        "states": {
            "not_yet": _("Not yet"),
            "done": _("Screened"),
            "follow": _("Follow up"),
        },
        "people": [
            {
                "id": p["id"],
                "name": p["name"],
                "unit": p["unit"],
                "added": p["added"],
                # Someone added on site is named again by every answer about them.
                **({"phone": p["phone"], "person_type": p["person_type"]} if p["added"] else {}),
                "last": p["last"],
                "current": p["current"],
            }
            for p in people
        ],
    }


@bp.route("/s/<code>/screening/<campaign_id>", methods=["GET", "POST"])
def phone_page(code: str, campaign_id: str):
    """The site's people with their state today, and the form for one of them. With its script
    the page works offline: answers go to the phone's outbox. Without it, ?person= or ?add=1
    shows the form and a POST saves the answer (then back to the list)."""
    site = _site(code)
    device, allowed = _screener()
    if not allowed or (device is None and not accounts.in_scope(current_user(), site["id"])):
        return _not_allowed(site)
    conn = get_db()
    campaign = campaigns.get(conn, campaign_id)
    if campaign is None or not campaign.covers(site):
        abort(404)
    today = _today()
    if request.method == "POST":
        return _save_posted(site, campaign, today, device)
    context = _phone_context(
        site, campaign, today, request.args.get("person", ""), request.args.get("add") == "1"
    )
    response = make_response(render_template("screening/phone.html", **context))
    if device is not None:
        response.headers["X-Fieldapp-Page"] = "screening"  # the service worker keeps it
    return response


def _save_posted(site, campaign, today: date, device: str | None):
    """An answer posted by the form without the page's script: saved through records.save."""
    form = request.form
    data = {k: form.get(k, "") for k in questions.WIRE_KEYS}
    data.update(campaign_id=campaign.id, site_id=site["id"], day=today.isoformat())
    conn = get_db()
    record_id = form.get("uuid", "")
    try:
        record_id = sync.store.canonical_uuid(record_id)
    except sync.Invalid:
        record_id = None
    record = answers.wire(
        data, uuid=record_id, recorded_at=records.recorded_at(form.get("recorded_at"))
    )
    result = records.save(conn, [record], source="gate", device=device)[0]
    if result.status in ("applied", "duplicate"):
        name = form.get("name") or form.get("person_name") or ""
        flash(_("Saved: %(name)s.", name=name) if name else _("Saved."))
        return redirect(
            url_for("screening.phone_page", code=site["code"], campaign_id=campaign.id), 303
        )
    context = _phone_context(
        site, campaign, today, form.get("person_id", ""), True, posted=form.to_dict()
    )
    context["error"] = result.reason or result.status
    return make_response(render_template("screening/phone.html", **context), 422)


def _phone_context(
    site, campaign, today: date, chosen: str, adding: bool, posted: dict | None = None
) -> dict:
    """The phone page's context; with ?person= (or ?add=1) its form shown, for browsers
    without the page's script, prefilled with the person's last answer (or what was posted)."""
    people = answers.people(get_db(), campaign, site["id"], today)
    person = next((p for p in people if p["id"] == chosen), None) if chosen else None
    if posted is not None:
        prefill = posted
    else:
        prefill = dict(person["last"]) if person and person["last"] else {}
        if person and person["added"]:  # each answer about them names them again
            prefill.update({k: person[k] for k in questions.PERSON_FIELDS})
    return {
        "site": site,
        "campaign": campaign,
        "today": today,
        "running": campaign.runs_on(today),
        "people": people,
        "person": person,
        "adding": adding and person is None,
        "new_person_id": chosen if posted is not None and person is None else str(uuid.uuid4()),
        "record_uuid": str(uuid.uuid4()),
        "prefill": prefill,
        "default_type": roster.default_person_type(site),
        "form_rules": questions.for_phone(campaign.questions),
        "phone_data": _phone_data(site, campaign, today, people),
        "done": sum(p["state"] != "not_yet" for p in people),
        "follow": sum(p["state"] == "follow" for p in people),
        "error": "",
    }


# ---- console: campaigns and coverage ----------------------------------------------------------


def _visible_campaigns(conn) -> list[campaigns.Campaign]:
    """Campaigns covering at least one site the user may see."""
    ids = scope_site_ids(current_user(), conn)
    listed = campaigns.listing(conn)
    if ids is None:
        return listed
    rows = conn.execute("SELECT id, district FROM sites").fetchall()
    mine = [r for r in rows if r["id"] in set(ids)]
    return [c for c in listed if any(c.covers(r) for r in mine)]


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
    central = not current_app.config.get("UPSTREAM_URL")
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
            return redirect(url_for("screening.console_coverage", campaign_id=made.id), 303)
    site_rows = conn.execute(
        "SELECT id, name, district FROM sites WHERE active = 1 ORDER BY district, name"
    ).fetchall()
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
    conn = get_db()
    today = _today()
    try:
        day = days.parse_day(request.args.get("day") or today)
    except ValueError as exc:
        return None, str(exc)
    district = (request.args.get("district") or "").strip() or None
    ids = scope_site_ids(current_user(), conn)
    return coverage.build(conn, campaign, day, district=district, site_ids=ids), ""


@bp.route("/console/screening/<campaign_id>")
@require_role(*ALL)
def console_coverage(campaign_id: str):
    """A campaign's coverage on a day: the summary paragraph, per district and site."""
    campaign = _campaign_or_404(campaign_id)
    cov, error = _coverage_for_request(campaign)
    conn = get_db()
    ids = scope_site_ids(current_user(), conn)
    rows = campaigns.site_rows(conn, campaign, site_ids=ids)
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
        return Response(error, 400)
    name = f"screening-{cov.day.isoformat()}{'-' + cov.scope if cov.scope else ''}"
    if kind == "csv":
        body, mimetype = coverage.to_csv(cov), "text/csv; charset=utf-8"
    else:
        body = coverage.to_xlsx(cov)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    conn = get_db()
    with transaction(conn):
        audit.write(
            conn,
            current_user().name,
            "export",
            target=f"screening.{kind}",
            detail=f"{campaign.name} {name}",
            ip=accounts.client_ip(),
        )
    response = Response(body, mimetype=mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=f"{name}.{kind}")
    response.headers["Cache-Control"] = "no-store"
    return response


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
    conn = get_db()
    try:
        day = days.parse_day(request.args.get("day") or _today())
    except ValueError as exc:
        return Response(str(exc), 400)
    people = answers.people(conn, campaign, site_id, day)
    for p in people:
        shown = logbook.present({"name": p["name"], "phone": p.get("phone", "")}, user.role)
        p["name"], p["phone"] = shown["name"], shown["phone"]
    with transaction(conn):
        audit.write(
            conn,
            user.name,
            "screening_view",
            site_id,
            f"{campaign.name} {day.isoformat()}",
            accounts.client_ip(),
        )
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
    user = current_user()
    conn = get_db()
    people = [p for p in answers.people(conn, campaign, site_id, _today()) if p["added"]]
    lines = ["name,phone,unit,person_type"]
    for p in people:
        cells = [p["name"], p["phone"], p["unit"], p["person_type"]]
        lines.append(",".join(_csv_cell(c) for c in cells))
    with transaction(conn):
        audit.write(
            conn,
            user.name,
            "export",
            target="screening.added.csv",
            detail=f"{campaign.name} {site['name']} {len(people)}",
            ip=accounts.client_ip(),
        )
    response = Response(
        ("\ufeff" + "\r\n".join(lines) + "\r\n").encode(), mimetype="text/csv; charset=utf-8"
    )
    response.headers.set("Content-Disposition", "attachment", filename=f"added-{site['code']}.csv")
    response.headers["Cache-Control"] = "no-store"
    return response


def _csv_cell(value: str) -> str:
    value = value or ""
    if value[:1] in ("=", "+", "-", "@"):
        value = "'" + value
    if any(c in value for c in ',"\r\n'):
        value = '"' + value.replace('"', '""') + '"'
    return value


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
    for f in listed:
        shown = logbook.present({"name": f["name"], "phone": f["phone"]}, user.role)
        f["name"], f["phone"] = shown["name"], shown["phone"]
    return page_or_fragment(
        "screening/followups.html",
        "screening/_followups.html",
        followups=listed,
        status=status,
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
    user = current_user()
    follow = _followup_or_404(campaign_id, person_id)
    shown = logbook.present({"name": follow["name"], "phone": follow["phone"]}, user.role)
    follow["name"], follow["phone"] = shown["name"], shown["phone"]
    campaign = campaigns.get(get_db(), campaign_id)
    return render_template(
        "screening/followup.html",
        f=follow,
        campaign=campaign,
        errors=session.pop("form_errors", []),
    )


@bp.route("/console/screening/followups/<campaign_id>/<person_id>/action", methods=["POST"])
@require_role(*WRITE)
def followup_action(campaign_id: str, person_id: str):
    """Record one follow-up step (a check, a note, close or reopen), audited."""
    user = current_user()
    follow = _followup_or_404(campaign_id, person_id)
    action = request.form.get("action", "")
    record = followup.wire(
        follow,
        user.name,
        action,
        temperature=request.form.get("temperature") or None,
        outcome=request.form.get("outcome", ""),
        note=request.form.get("note", ""),
    )
    conn = get_db()
    with transaction(conn):
        result = records.save(conn, [record], source=SOURCE)[0]
        if result.status == "applied":
            audit.write(
                conn, user.name, "screening_action", person_id, action, accounts.client_ip()
            )
    if result.status != "applied":
        session["form_errors"] = [result.reason or result.status]
    else:
        flash(_("Saved: %(action)s.", action=followup.ACTIONS[action]))
    return redirect(
        url_for("screening.followup_page", campaign_id=campaign_id, person_id=person_id), 303
    )
