"""The gate: a site's page with its entry form, roster search, QR posters and last entries."""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, generate_csrf
from markupsafe import escape

from fieldapp import days, records, rules
from fieldapp.console import accounts
from fieldapp.db import get_db
from fieldapp.gate import codes, entries, passes, qr, registrations, roster, selfreg, sites
from fieldapp.gate.forms import EntryForm
from fieldapp.pages import is_htmx, page_or_fragment
from fieldapp.phones import devices
from fieldapp.privacy import fields as site_fields
from sync import peers
from sync.store import APPLIED, CONFLICT, DUPLICATE, iso, utcnow

bp = Blueprint("gate", __name__)
bp.add_app_template_global(rules.mask_phone, "mask_phone")  # 138****5678


@bp.context_processor
def _labels() -> dict:
    # DIRECTIONS and the other entry labels come from the console's app-wide processor.
    return {
        "SITE_KINDS": rules.SITE_KINDS,
        "PASS_PREFIX": passes.PASS_PREFIX,
        "VISIT_PREFIX": passes.VISIT_PREFIX,
    }


def _site_or_404(code: str, follow: bool = False):
    """The active site of a poster's code, or a 404 page saying what is wrong with the poster.
    follow: a phone enrolled at the site that `code` is an old code of is sent to this address
    under its new code instead (codes.resolve): the phone follows its site, a visitor's says
    the poster is out of date."""
    status, site = codes.resolve(code, follow)
    if status == "current" and site["active"]:
        return site
    reason = "unknown" if site is None else ("inactive" if status == "current" else "old")
    # Closed today: its gate keepers still send today's report (the day's roll-call lists it).
    tz = current_app.config["TIMEZONE"]
    report = (
        reason == "inactive"
        and _volunteer(site)
        and sites.was_open_on(get_db(), site["id"], days.today(tz), tz)
    )
    page = render_template("errors/poster.html", reason=reason, site=site, report=report)
    abort(make_response(page, 404))


def _new_form(site, **prefill) -> EntryForm:
    """An empty form with a fresh record id, so a retry of this one form saves one record."""
    form = EntryForm(formdata=None, site_id=site["id"], uuid=str(uuid.uuid4()), **prefill)
    form.keep_only(site_fields.shown(site))
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
        "as_of": iso(utcnow()),  # when the list was made: a kept page says how old it is
        # The rules the phone applies before it says "saved" (static/js/rules.js).
        "form_rules": rules.for_phone(form.field_rules()),
        # Which copy of the roster the phone should keep (static/js/roster.js).
        "roster_version": passes.phone_version(get_db(), site),
    }
    response = page_or_fragment("gate/page.html", "gate/_fragment.html", status, **context)
    # Names and phone numbers: never in a shared cache, and never reused unchecked (the
    # service worker keeps its own copy).
    response.headers["Cache-Control"] = "private, no-cache"
    if devices.peer_from_cookie(get_db()) is not None:
        response.headers["X-Fieldapp-Page"] = "gate"  # the service worker keeps this page
    return response


@bp.app_errorhandler(CSRFError)
def csrf_expired(error: CSRFError):
    """A form whose token is stale (phone slept, cookies cleared): say so, save nothing, lose nothing."""
    code = (request.view_args or {}).get("code")
    if request.endpoint == "gate.create" and code:
        site = sites.posted_to(get_db(), code)
        if site is not None:
            form = EntryForm()  # what was typed, with a fresh token when rendered
            form.keep_only(site_fields.shown(site))
            form.form_errors.append(
                _("This page had expired, so nothing was saved. Check the details and save again.")
            )
            response = _render(site, form, status=400)
            # The form's token was of a session the browser has lost (restarted while the
            # service worker kept the page): this answer carries a new one (and its session),
            # and gate.js sends the same record again with it rather than show this.
            response.headers["X-Fieldapp-Token"] = "renewed"
            return response
    if request.endpoint == "gate.self_register" and code:
        site = _register_site(code)
        if site is not None:
            # A visitor's form: what they typed comes back with a new token (and session).
            form = selfreg.for_site(site)
            message = _(
                "This page had expired, so nothing was saved. Check your details and tap"
                " “Register” again."
            )
            if current_app.config["SESSION_COOKIE_NAME"] not in request.cookies:
                # No cookie came at all: the browser lost it, or keeps none (then every
                # send fails like this one, and only its settings can change that).
                message += " " + _(
                    "If this happens again, allow this site to use cookies in your browser's"
                    " settings, or open the page in another browser."
                )
            form.form_errors.append(message)
            return _register_response(site, form, 400)
    return render_template("errors/csrf.html"), 400


@bp.app_template_filter("gate_time")
def gate_time(value: str) -> str:
    """A stored UTC timestamp as the gate's local time: 08:30, or 11-22 08:30 if not today."""
    tz = current_app.config["TIMEZONE"]
    when = days.local(value, tz)
    today = days.today(tz)
    return when.strftime("%H:%M") if when.date() == today else when.strftime("%m-%d %H:%M")


def _volunteer(site) -> bool:
    """Whether the site's gate is kept from here: an enrolled phone (its volunteer may help at
    another gate), or a console user who may write and has the site in scope (a viewer, or a
    coordinator of another district, gets what a visitor gets)."""
    return devices.writer_at(get_db(), site["id"])[1]


@bp.get("/s/<code>")
def page(code: str):
    """The gate page: roster search, the entry form, the last entries here. Opened on a phone
    that is not enrolled (a visitor who scanned the poster), the self-registration form; on a
    phone enrolled here by an old code of the site, a redirect to the new code's page."""
    site = _site_or_404(code, follow=True)
    conn = get_db()
    if not _volunteer(site):
        return _register_response(site, selfreg.for_site(site))
    prefill = {}
    person_id = request.args.get("person", "")
    # The roster's people (search, a card scanned) only for this site's own gate keepers, as
    # roster.json: a phone of another site records here without reading who lives here.
    keeper = _gate_keeper_of(site)
    if person_id and keeper:
        person = roster.get_person(conn, site["id"], person_id)
        if person is not None:
            prefill = {
                "name": person["name"],
                "phone": person["phone"],
                "destination": person["unit"],
                "person_type": person["person_type"],
                "roster_id": person["id"],
            }
    query = request.args.get("q", "").strip()[:50]
    matches = roster.search(conn, site, query) if keeper else []
    return _render(site, _new_form(site, **prefill), query=query, matches=matches)


@bp.get("/s/<code>/last")
def last_entries(code: str):
    """The last entries here (HTMX), loaded by the gate page: a page the phone kept shows the
    current list, and its form gets a fresh CSRF token (the kept one may be of a lost session):
    also while the page is open after its code changed or the site closed (as sites.posted_to)."""
    status, site = sites.by_code(get_db(), code)  # current or old, open or closed
    if site is None:
        _site_or_404(code)  # the poster's page saying what is wrong
    if not is_htmx():
        return redirect(url_for("gate.page", code=code))
    if not _volunteer(site):
        return "", 401
    last = render_template(
        "gate/_last.html", last=entries.last_at_site(get_db(), site["id"]), as_of=iso(utcnow())
    )
    # Swapped in by its id, out of band: the entry form's token, renewed.
    token = f'<input id="csrf_token" name="csrf_token" type="hidden" value="{escape(generate_csrf())}" hx-swap-oob="true">'
    response = make_response(last + token)
    response.headers["Cache-Control"] = "private, no-store"
    if codes.followed(status, site):
        # The page was kept before the site's code changed: last.js opens the new one.
        response.headers["X-Fieldapp-Gate"] = url_for("gate.page", code=site["code"])
    response.vary.add("HX-Request")
    return response


@bp.get("/s/<code>/roster")
def roster_search(code: str):
    """Roster matches as you type (HTMX); without JS, the gate page with the matches. Asked
    by a page kept under an old code of the site, its phone is sent to the current one."""
    site = _site_or_404(code, follow=True)
    query = request.args.get("q", "").strip()[:50]
    if not is_htmx():
        return redirect(url_for("gate.page", code=code, q=query))
    if not _volunteer(site):
        return "", 401
    matches = roster.search(get_db(), site, query) if _gate_keeper_of(site) else []
    response = make_response(
        render_template("gate/_roster.html", site=site, matches=matches, query=query)
    )
    response.vary.add("HX-Request")
    return response


@bp.post("/s/<code>/entries")
def create(code: str):
    """Save one entry through records.save(); a repeat of the same record id saves nothing new.
    Saved whatever became of the code or the site since the page was opened (sites.posted_to)."""
    site = sites.posted_to(get_db(), code) or _site_or_404(code)
    if not _volunteer(site):
        # 401 tells the phone's service worker to keep the entry in its outbox until
        # the phone is enrolled again (a revoked phone stops here).
        message = _("This phone is not enrolled. Ask your coordinator for an enrolment link.")
        return render_template("phones/not_enrolled.html", message=message), 401
    form = EntryForm()
    form.keep_only(site_fields.shown(site))
    if not form.validate():
        return _render(site, form, status=400)
    try:
        record_id = str(uuid.UUID(form.uuid.data or ""))
    except ValueError:
        record_id = str(uuid.uuid4())  # a form without its id: this submission is the record
    conn = get_db()
    data = form.wire_data(site["id"])
    if entries.exists(conn, record_id):
        status = DUPLICATE  # a double tap or a retry of a saved form: nothing new to save
    else:
        # Posted as it is saved: a device time far from ours is a wrong clock.
        recorded_at = records.recorded_at(
            form.recorded_at.data, request.headers.get(records.SENT_AT)
        )
        record = records.new("entry", data, uuid=record_id, recorded_at=recorded_at)
        # Stamped like the phone's pushes, so a form post and a later push of the same record
        # hash the same (a duplicate, not a conflict).
        phone = devices.peer_from_cookie(conn)
        now = utcnow()
        result = records.save(
            conn,
            [record],
            source="gate",
            device=phone.id if phone else None,
            received_at=now,
            # A phone's save through this form is its sync too: the console's "last sync".
            inside=_counted_for(phone, iso(now)) if phone else None,
        )[0]
        # CONFLICT: a concurrent retry of this form won the race; its record is the one kept.
        status = DUPLICATE if result.status == CONFLICT else result.status
        if status not in (APPLIED, DUPLICATE):
            form.form_errors.append(_("Not saved: %(reason)s", reason=result.reason))
            return _render(site, form, status=400)
    temperature = rules.parse_temperature(data["temperature"])
    saved = {
        "name": data["name"].strip(),
        "direction": data["direction"],
        "temperature": temperature,
        "fever": rules.is_fever(temperature),
        "fever_action": data["fever_action"],
        "repeat": status == DUPLICATE,
    }
    if is_htmx():
        response = _render(site, _new_form(site), saved=saved)
        # The instance itself stored it (not the service worker's outbox): the phone's status
        # line counts this as sent (static/js/status.js).
        response.headers["X-Outbox-Stored"] = record_id
        return response
    flash(_confirmation(saved), "error" if rules.is_fever(saved["temperature"]) else "message")
    # saved=1: a page with a confirmation, which the phone's service worker asks of us rather
    # than answer with the page it keeps (and never keeps: the flash is for this once).
    return redirect(url_for("gate.page", code=site["code"], saved=1), 303)


def _counted_for(phone: peers.Peer, when: str):
    """Count a gate form's save as a push from that phone, in the record's transaction."""

    def inside(conn, results) -> None:
        peers.pushed(conn, phone.id, sum(1 for r in results if r.status == APPLIED), when)

    return inside


@bp.app_template_global("gate_confirmation")  # for the HTMX fragment
def _confirmation(saved: dict) -> str:
    """The one line a volunteer reads after saving."""
    if saved["repeat"]:
        return _("Already saved: %(name)s (this form was sent twice).", name=saved["name"])
    # The reading as text: the page words an entry kept offline with the same sentences.
    values = {
        "name": saved["name"],
        "direction": rules.DIRECTIONS[saved["direction"]],
        "t": f"{saved['temperature']:.1f}",
    }
    if rules.is_fever(saved["temperature"]):
        action = rules.FEVER_ACTIONS[saved["fever_action"]]
        return _(
            "Saved: %(name)s, %(direction)s, %(t)s °C. Fever: %(action)s.",
            action=action,
            **values,
        )
    return _("Saved: %(name)s, %(direction)s, %(t)s °C.", **values)


@bp.get("/s/<code>/qr.<any(svg, png):kind>")
def qr_image(code: str, kind: str):
    """The site's QR poster code as SVG (qr.svg) or PNG (qr.png)."""
    site = _site_or_404(code)
    url = sites.gate_url(current_app.config["BASE_URL"], site["code"])
    if kind == "svg":
        return Response(qr.svg(url), mimetype="image/svg+xml")
    return Response(qr.png(url), mimetype="image/png")


def _register_response(site, form, status=200):
    _remember_form(form)
    return page_or_fragment(
        "gate/self_register.html",
        "gate/_self_register.html",
        status,
        site=site,
        form=form,
        retention_days=records.retention_days(get_db()),
        earlier=_my_passes_today(site),
    )


# The passes this browser registered, newest last (the session cookie): only it shows them.
MY_PASSES = "visitor_passes"
# The registration ids this instance gave this browser's forms, newest last. A form sent whose
# answer never came (the signal dropped) is stored, but the cookie above was not updated: the
# page reloaded then finds its registration by the id it gave, rather than open an empty form
# that registers the visitor a second time.
MY_FORMS = "visitor_forms"


def _remember_pass(registration_uuid: str) -> None:
    session[MY_PASSES] = [*session.get(MY_PASSES, [])[-4:], registration_uuid]


def _remember_form(form) -> None:
    """Remember the form's registration id if this instance made it now (not one sent in: a
    refused form keeps what was sent, which may be the id of someone else's pass)."""
    made = form.uuid.data
    if request.method == "POST" and made in request.form.getlist("uuid"):
        return
    if made and made not in session.get(MY_FORMS, []):
        session[MY_FORMS] = [*session.get(MY_FORMS, [])[-4:], made]


def _mine(registration_uuid: str) -> bool:
    """Whether this browser registered it (its pass is shown only here)."""
    return registration_uuid in session.get(MY_PASSES, []) + session.get(MY_FORMS, [])


def _my_passes_today(site) -> list[dict]:
    """This browser's registrations at the site today, newest first, with their names masked
    (to show their passes again: one phone may register a family, one by one)."""
    tz = current_app.config["TIMEZONE"]
    found = []
    for registration_uuid in {*session.get(MY_PASSES, []), *session.get(MY_FORMS, [])}:
        row = registrations.get(get_db(), registration_uuid)
        if row is not None and row["site_id"] == site["id"]:
            if days.local(row["recorded_at"], tz).date() == days.today(tz):
                found.append({**dict(row), "masked": selfreg.mask_name(row["name"])})
    return sorted(found, key=lambda r: r["recorded_at"], reverse=True)


def _register_site(code: str):
    """The open site a visitor's form is shown for or sent to, or None. A form opened before
    the code changed saves all the same (as the volunteers' form does); a poster's old code
    opens no new form."""
    conn = get_db()
    site = sites.active_by_code(conn, code)
    if request.method == "POST" and site is None:
        posted = sites.posted_to(conn, code)
        site = posted if posted is not None and posted["active"] else None
    return site


@bp.route("/s/<code>/register", methods=["GET", "POST"])
def self_register(code: str):
    """A visitor registers themself at a site's gate: own details only, nobody else's."""
    conn = get_db()
    site = _register_site(code)
    if site is None:
        _site_or_404(code)  # the poster's page saying what is wrong (as /s/<code> says it)
        abort(404)
    form = selfreg.for_site(site)
    if request.method == "POST":
        if form.validate_on_submit():
            registration_uuid, error = selfreg.save(conn, site, form)
            if registration_uuid:
                _remember_pass(registration_uuid)
                if is_htmx():
                    return _pass_response(site, registration_uuid)
                return redirect(
                    url_for("gate.visitor_pass", code=code, registration_uuid=registration_uuid),
                    303,
                )
            form.form_errors.append(error)
        return _register_response(site, form, 422)
    return _register_response(site, form)


@bp.route("/s/<code>/pass/<registration_uuid>")
def visitor_pass(code: str, registration_uuid: str):
    """The visitor's pass, on the phone that registered (POST-redirect-GET, or opened again),
    also under the code the site had when they registered."""
    site = sites.posted_to(get_db(), code) or _site_or_404(code)
    if not _mine(registration_uuid):
        page = render_template("gate/pass_elsewhere.html", site=site)
        return Response(page, 404)
    return _pass_response(site, registration_uuid)


def _pass_response(site, registration_uuid: str):
    conn = get_db()
    row = registrations.get(conn, registration_uuid)
    if row is None or row["site_id"] != site["id"]:
        abort(404)
    context = selfreg.pass_context(
        conn, site, row, current_app.config["TIMEZONE"], registrations.checks(conn, row["uuid"])
    )
    response = page_or_fragment("gate/visitor_pass.html", "gate/_visitor_pass.html", **context)
    response.headers["Cache-Control"] = "no-store"  # a live pass, never a kept copy of one
    return response


def _json(body: dict, status: int = 200) -> Response:
    """A JSON answer (people's data, or an error about them): no cache keeps it."""
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _json_error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


def _gate_keeper_of(site) -> bool:
    """Whether this request may read the site's people: a phone enrolled for this site, or a
    console user with the site in scope who may write (not a viewer, who sees names masked)."""
    phone = devices.peer_from_cookie(get_db())
    if phone is not None:
        return phone.site_id == site["id"]
    user = accounts.current_user()
    return user is not None and user.can_write and accounts.in_scope(user, site["id"])


@bp.get("/s/<code>/roster.json")
def roster_json(code: str):
    """The roster this site's gate phones keep, for passes and search offline (roster.js).
    ?have=<version> answers 204 when the phone's copy is current. Asked by a gate page kept
    under an old code of the site, its phone is redirected to the current code's roster (the
    fetch follows it, and the phone keeps the roster as ever)."""
    site = _site_or_404(code, follow=True)
    if not _gate_keeper_of(site):
        return _json_error(_("Only this site's enrolled phones get its roster."), 403)
    conn = get_db()
    if request.args.get("have") == passes.phone_version(conn, site):
        return Response(status=204, headers={"Cache-Control": "no-store"})
    return _json(passes.for_phone(conn, site))


@bp.get("/s/<code>/registrations/<registration_uuid>")
def registration(code: str, registration_uuid: str):
    """A visitor's registration, for the gate phone that scanned their pass (JSON); asked by a
    page kept under an old code of the site, its phone is redirected to the current code's.
    Asked by a page kept open at a site closed since, the scanner is told so (JSON, as it reads
    every answer of this address), not given the poster's page."""
    status, site = codes.resolve(code, follow=True)
    if site is not None and not site["active"]:
        if not _volunteer(site):
            return _json_error(_("This phone is not enrolled."), 401)
        return _json_error(
            _(
                "%(name)s is closed: its visitors' passes are no longer valid.",
                name=site["name"],
            ),
            410,
        )
    if status != "current":
        _site_or_404(code)  # an unknown code, or an old one this phone does not follow
        abort(404)
    if not _volunteer(site):
        return _json_error(_("This phone is not enrolled."), 401)
    conn = get_db()
    try:
        wanted = str(uuid.UUID(registration_uuid))
    except ValueError:
        wanted = ""
    row = registrations.get(conn, wanted) if wanted else None
    if row is None or row["site_id"] != site["id"]:
        return _json_error(
            _(
                "This visitor's registration is not known here: it is for another site, or was"
                " made on another server. Ask the visitor to register again, or fill in the form."
            ),
            404,
        )
    tz = current_app.config["TIMEZONE"]
    when = days.local(row["recorded_at"], tz)
    if when.date() != days.today(tz):
        return _json_error(
            _(
                "This pass is from %(day)s and is no longer valid: ask the visitor to register"
                " again.",
                day=when.date().isoformat(),
            ),
            410,
        )
    shown = site_fields.shown(site)
    checked = registrations.checks(conn, row["uuid"])
    body = {
        "uuid": row["uuid"],
        "name": row["name"],
        "phone": row["phone"] if "phone" in shown else "",
        "destination": row["destination"] if "destination" in shown else "",
        "health_code": row["health_code"],
        "travel": bool(row["travel"]),
        "travel_where": row["travel_where"],
        "direction": row["direction"],
        "temperature": row["temperature"],
        "time": when.strftime("%H:%M"),
        "checked": [
            _(
                "%(direction)s at %(time)s",
                direction=rules.DIRECTIONS[c["direction"]],
                time=days.local(c["recorded_at"], tz).strftime("%H:%M"),
            )
            for c in checked
        ],
    }
    return _json(body)
