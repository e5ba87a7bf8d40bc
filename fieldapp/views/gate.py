"""The gate: a site's page with its entry form, roster search, QR posters and last entries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

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
from flask_wtf.csrf import CSRFError

from sync.store import APPLIED, CONFLICT, DUPLICATE, iso, parse_time, utcnow

from .. import devices, entries, qr, records, roster, rules, sites
from ..db import get_db
from ..forms import EntryForm

bp = Blueprint("gate", __name__)


@bp.context_processor
def _labels() -> dict:
    return {
        "SITE_KINDS": rules.SITE_KINDS,
        "DIRECTIONS": rules.DIRECTIONS,
        "PERSON_TYPES": rules.PERSON_TYPES,
        "HEALTH_CODES": rules.HEALTH_CODES,
        "FEVER_ACTIONS": rules.FEVER_ACTIONS,
        "FEVER_AT": rules.FEVER_AT,
    }


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _site_or_404(code: str):
    """The active site of a poster's code, or a 404 page saying what is wrong with the poster."""
    status, site = sites.by_code(get_db(), code)
    if status == "current" and site["active"]:
        return site
    reason = "unknown" if site is None else ("inactive" if status == "current" else "old")
    page = render_template("errors/poster.html", reason=reason, site=site)
    abort(make_response(page, 404))


def _new_form(site, **prefill) -> EntryForm:
    """An empty form with a fresh record id, so a retry of this one form saves one record."""
    form = EntryForm(formdata=None, site_id=site["id"], uuid=str(uuid.uuid4()), **prefill)
    form.keep_only(sites.shown_optional_fields(site))
    return form


def _render(site, form: EntryForm, *, status: int = 200, saved=None, query: str = "", matches=()):
    """The gate page, or only its fragment for an HTMX request."""
    context = {
        "site": site,
        "form": form,
        "saved": saved,
        "query": query,
        "matches": matches,
        "last": entries.last_at_site(get_db(), site["id"]),
        # The rules the phone applies before it says "saved" (static/js/rules.js).
        "form_rules": rules.for_phone(form.field_rules()),
    }
    template = "gate/_fragment.html" if _is_htmx() else "gate/page.html"
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def _recorded_at(value: str | None) -> str:
    """The device's time of recording if it is a sane timestamp, else ours (no JS, bad clock)."""
    now = utcnow()
    try:
        when = parse_time(value)
    except ValueError:
        return iso(now)
    # This form is posted as it is saved (the offline outbox pushes through /sync instead), so
    # a device time far from ours is a wrong clock: ahead it would be refused, a day behind it
    # could fall past the retention horizon. Trust ours then.
    if not now - timedelta(days=1) <= when <= now + timedelta(minutes=5):
        return iso(now)
    return iso(when)


@bp.app_errorhandler(CSRFError)
def csrf_expired(error: CSRFError):
    """A form whose token is stale (phone slept, cookies cleared): say so, save nothing, lose nothing."""
    code = (request.view_args or {}).get("code")
    if request.endpoint == "gate.create" and code:
        status, site = sites.by_code(get_db(), code)
        if status == "current" and site["active"]:
            form = EntryForm()  # what was typed, with a fresh token when rendered
            form.keep_only(sites.shown_optional_fields(site))
            form.form_errors.append(
                _("This page had expired, so nothing was saved. Check the details and save again.")
            )
            return _render(site, form, status=200 if _is_htmx() else 400)
    return render_template("errors/csrf.html"), 400


@bp.app_template_filter("gate_time")
def gate_time(value: str) -> str:
    """A stored UTC timestamp as the gate's local time: 08:30, or 11-22 08:30 if not today."""
    zone = ZoneInfo(current_app.config["TIMEZONE"])
    when = datetime.fromisoformat(value).astimezone(zone)
    today = datetime.now(UTC).astimezone(zone).date()
    return when.strftime("%H:%M") if when.date() == today else when.strftime("%m-%d %H:%M")


@bp.app_template_global("mask_phone")
def mask_phone(value: str) -> str:
    """138****5678."""
    return rules.mask_phone(value)


@bp.get("/s/<code>")
def page(code: str):
    """The gate page: roster search, the entry form, the last entries here."""
    site = _site_or_404(code)
    conn = get_db()
    prefill = {}
    person_id = request.args.get("person", "")
    if person_id:
        person = roster.get_person(conn, site["id"], person_id)
        if person is not None:
            prefill = {
                "name": person["name"],
                "phone": person["phone"],
                "destination": person["unit"],
                "person_type": person["person_type"],
            }
    query = request.args.get("q", "").strip()[:50]
    matches = roster.search(conn, site["id"], query)
    return _render(site, _new_form(site, **prefill), query=query, matches=matches)


@bp.get("/s/<code>/roster")
def roster_search(code: str):
    """Roster matches as you type (HTMX); without JS, the gate page with the matches."""
    site = _site_or_404(code)
    query = request.args.get("q", "").strip()[:50]
    if not _is_htmx():
        return redirect(url_for("gate.page", code=code, q=query))
    matches = roster.search(get_db(), site["id"], query)
    response = make_response(
        render_template("gate/_roster.html", site=site, matches=matches, query=query)
    )
    response.vary.add("HX-Request")
    return response


@bp.post("/s/<code>/entries")
def create(code: str):
    """Save one entry through records.save(); a repeat of the same record id saves nothing new."""
    site = _site_or_404(code)
    form = EntryForm()
    form.keep_only(sites.shown_optional_fields(site))
    if not form.validate():
        return _render(site, form, status=200 if _is_htmx() else 400)
    try:
        record_id = str(uuid.UUID(form.uuid.data or ""))
    except ValueError:
        record_id = str(uuid.uuid4())  # a form without its id: this submission is the record
    conn = get_db()
    data = form.wire_data(site["id"])
    if entries.exists(conn, record_id):
        status = DUPLICATE  # a double tap or a retry of a saved form: nothing new to save
    else:
        record = {
            "uuid": record_id,
            "kind": "entry",
            "recorded_at": _recorded_at(form.recorded_at.data),
            "data": data,
        }
        # Stamped like the phone's pushes, so a form post and a later push of the same record
        # hash the same (a duplicate, not a conflict).
        phone = devices.peer_from_cookie(conn)
        result = records.save(conn, [record], source="gate", device=phone.id if phone else None)[0]
        # CONFLICT: a concurrent retry of this form won the race; its record is the one kept.
        status = DUPLICATE if result.status == CONFLICT else result.status
        if status not in (APPLIED, DUPLICATE):
            form.form_errors.append(_("Not saved: %(reason)s", reason=result.reason))
            return _render(site, form, status=200 if _is_htmx() else 400)
    temperature = rules.parse_temperature(data["temperature"])
    saved = {
        "name": data["name"].strip(),
        "direction": data["direction"],
        "temperature": temperature,
        "fever": rules.is_fever(temperature),
        "fever_action": data["fever_action"],
        "repeat": status == DUPLICATE,
    }
    if _is_htmx():
        return _render(site, _new_form(site), saved=saved)
    flash(_confirmation(saved), "error" if rules.is_fever(saved["temperature"]) else "message")
    return redirect(url_for("gate.page", code=code), 303)


def _confirmation(saved: dict) -> str:
    """The one line a volunteer reads after saving."""
    if saved["repeat"]:
        return _("Already saved: %(name)s (this form was sent twice).", name=saved["name"])
    values = {
        "name": saved["name"],
        "direction": rules.DIRECTIONS[saved["direction"]],
        "t": saved["temperature"],
    }
    if rules.is_fever(saved["temperature"]):
        action = rules.FEVER_ACTIONS[saved["fever_action"]]
        return _(
            "Saved: %(name)s, %(direction)s, %(t).1f °C. Fever: %(action)s.",
            action=action,
            **values,
        )
    return _("Saved: %(name)s, %(direction)s, %(t).1f °C.", **values)


@bp.app_template_global("gate_confirmation")
def gate_confirmation(saved: dict) -> str:
    """The confirmation line, for the HTMX fragment."""
    return _confirmation(saved)


@bp.get("/s/<code>/qr.svg")
def qr_svg(code: str):
    """The site's QR poster code as SVG."""
    site = _site_or_404(code)
    url = sites.gate_url(current_app.config["BASE_URL"], site["code"])
    return Response(qr.svg(url), mimetype="image/svg+xml")


@bp.get("/s/<code>/qr.png")
def qr_png(code: str):
    """The site's QR poster code as PNG."""
    site = _site_or_404(code)
    url = sites.gate_url(current_app.config["BASE_URL"], site["code"])
    return Response(qr.png(url), mimetype="image/png")
