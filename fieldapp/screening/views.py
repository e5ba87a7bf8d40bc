"""Screening on the site phone: its campaigns, the roster with today's state, the form
(/s/<code>/screening/...). The console's pages are in console_views.py."""

from __future__ import annotations

import uuid
from datetime import date

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
    url_for,
)
from flask_babel import gettext as _

import sync
from fieldapp import days, records
from fieldapp.db import get_db
from fieldapp.gate import codes, roster, sites
from fieldapp.phones import devices
from fieldapp.screening import answers, campaigns, followup, questions

bp = Blueprint("screening", __name__)


@bp.app_context_processor
def _labels() -> dict:
    return {
        "SCREENING_QUESTIONS": questions.QUESTIONS,
        "SCREENING_LABELS": questions.LABELS,
        "FOLLOWUP_ACTIONS": followup.ACTIONS,
        "FOLLOWUP_OUTCOMES": followup.OUTCOMES,
    }


def _tz() -> str:
    return current_app.config["TIMEZONE"]


def _today() -> date:
    return days.today(_tz())


@bp.app_template_global("screening_link")
def screening_link(site) -> str | None:
    """Where the gate page's "Screening" button leads: the page of the one campaign screening
    this site's people today (the phone keeps it, so the button works offline), a choice when
    several do, or nowhere."""
    running = campaigns.for_site(get_db(), site, _today())
    if len(running) == 1:
        return url_for("screening.phone_page", code=site["code"], campaign_id=running[0].id)
    return url_for("screening.phone_campaigns", code=site["code"]) if running else None


# ---- the site phone ---------------------------------------------------------------------------


def _site(code: str, *, saving: bool = False):
    """The open site of a page's code, else not found; an answer being saved is saved whatever
    became of the code or the site since (sites.posted_to). A page opened under an old code of
    the site this phone is enrolled at (a link or a copy kept before the code changed) is sent
    to the current code's (codes.resolve)."""
    if saving:
        site = sites.posted_to(get_db(), code)
    else:
        status, site = codes.resolve(code, follow=True)
        site = site if status == "current" and site["active"] else None
    if site is None:
        abort(404)
    return site


def _not_allowed(site):
    return Response(render_template("screening/not_allowed.html", site=site), 403)


@bp.get("/s/<code>/screening")
def phone_campaigns(code: str):
    """The campaigns screening this site today: the one, or a choice."""
    site = _site(code)
    device, allowed = devices.writer_at(get_db(), site["id"])
    if not allowed:
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
                # The ids a phone may have answered them under (added on site before they
                # joined the roster; on another phone): its own answers are theirs.
                **({"aliases": p["aliases"]} if p["aliases"] else {}),
            }
            for p in people
        ],
    }


@bp.route("/s/<code>/screening/<campaign_id>", methods=["GET", "POST"])
def phone_page(code: str, campaign_id: str):
    """The site's people with their state today, and the form for one of them. With its script
    the page works offline: answers go to the phone's outbox. Without it, ?person= or ?add=1
    shows the form and a POST saves the answer (then back to the list)."""
    site = _site(code, saving=request.method == "POST")
    device, allowed = devices.writer_at(get_db(), site["id"])
    if not allowed:
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
    at = records.recorded_at(form.get("recorded_at"), request.headers.get(records.SENT_AT))
    record = records.new("screening", data, uuid=record_id, recorded_at=at)
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
