"""Daily reports at the gate (/s/<code>/report), the roll-call and posters in the console."""

from __future__ import annotations

from datetime import date, timedelta

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

from fieldapp import days, i18n, records, rules
from fieldapp.console import exports
from fieldapp.console.accounts import (
    current_user,
    require_role,
    scope_site_ids,
)
from fieldapp.db import get_db
from fieldapp.gate import codes, sites
from fieldapp.pages import download, is_htmx, page_or_fragment
from fieldapp.pdffont import FontMissing
from fieldapp.phones import devices
from fieldapp.privacy import fields as site_fields
from fieldapp.reports import daily as reports
from fieldapp.reports import posters, rollcall
from fieldapp.screening import coverage as screening_coverage

bp = Blueprint("reports", __name__)
# How far back a gate may still report (a late report beats a missing one).
REPORT_DAYS_BACK = 7


bp.add_app_template_global(rollcall.html_lines, "rollcall_lines")


def _tz() -> str:
    return current_app.config["TIMEZONE"]


def _site(code: str, *, saving: bool = False):
    """The site of a report page's code, open or closed (gate_report: a closed one only for
    the days it was open). An old code of the site this phone is enrolled at (its gate page
    was kept before the code changed) leads to the report under the current code; anyone
    else's old code goes to the gate page, which says it is out of date and who to ask; any
    other code is not found. A report being saved is saved whatever became of the code or the
    site since (sites.posted_to)."""
    if saving and (site := sites.posted_to(get_db(), code)) is not None:
        return site
    status, site = codes.resolve(code, follow=True)
    if status == "old":
        abort(redirect(f"/s/{code}", 303))
    if status != "current":
        abort(404)
    return site


def _report_day(today: date, last: date) -> date:
    """The day a report page is for (?day=, today by default), from REPORT_DAYS_BACK ago to
    last; a 400 otherwise."""
    raw = request.values.get("day")
    if not raw:
        return today
    try:
        day = days.parse_day(raw)
    except ValueError as exc:
        abort(Response(str(exc), 400, mimetype="text/plain"))  # it quotes what was typed
    if day > last or day < today - timedelta(days=REPORT_DAYS_BACK):
        said = _("A gate can report for today and the last 7 days only.")
        abort(Response(said, 400, mimetype="text/plain"))
    return day


def _day_to_come(last: date) -> date | None:
    """The day a report is posted for (?day=, or the form's), when it is after last."""
    for raw in (request.args.get("day"), request.form.get("day")):
        try:
            day = days.parse_day(raw) if raw else None
        except ValueError:
            continue  # said by _report_day, or by the report's own check
        if day is not None and day > last:
            return day
    return None


def _gate_context(site, day: date, today: date, error: str = "", form: dict | None = None):
    conn = get_db()
    data = reports.draft(conn, site["id"], day, _tz())
    if form:
        data["remarks"] = form.get("remarks", "")
        data["reporter"] = form.get("reporter", "")
    history = reports.reports_for(conn, site["id"], day)
    now = reports.current(history)
    return {
        "site": site,
        "day": day,
        "today": today,
        "days": [today - timedelta(days=n) for n in range(0, 3)],
        "data": data,
        "current": now,
        # Its local time, with the date when it was sent on another day (a late report).
        "submitted_at": days.clock(day, _tz())(now.recorded_at) if now else "",
        "history": history,
        "error": error,
        "record_uuid": reports.new_uuid(),
        "count_rows": reports.count_rows(data),
        "wire_counts": reports.COUNT_KEYS,
        "form_rules": rules.for_phone(reports.FIELDS),
        "tz": _tz(),  # the day of an entry waiting on the phone (static/js/report.js)
    }


@bp.route("/s/<code>/report", methods=["GET", "POST"])
def gate_report(code: str):
    """Review the day's counts at a gate, add remarks and submit (a zero report in one tap)."""
    site = _site(code, saving=request.method == "POST")
    device, allowed = devices.writer_at(get_db(), site["id"])
    if not allowed:
        page = render_template("reports/not_allowed.html", site=site)
        return Response(page, 403)
    today = days.today(_tz())
    if request.method == "POST" and (ahead := _day_to_come(days.latest_day(_tz()))):
        # A report for a day to come (reports.validate refuses it): said on today's form, what
        # was typed kept.
        error = reports.not_yet(ahead, _tz())
        context = _gate_context(site, today, today, error=error, form=request.form)
        return page_or_fragment("reports/gate.html", "reports/_gate.html", status=422, **context)
    day = _report_day(today, today if request.method == "GET" else days.latest_day(_tz()))
    if request.method == "GET":
        # A site closed today is on today's roll-call: it reports the days it was open.
        if not site["active"] and not sites.was_open_on(get_db(), site["id"], day, _tz()):
            abort(404)
        return page_or_fragment(
            "reports/gate.html", "reports/_gate.html", **_gate_context(site, day, today)
        )
    form = request.form
    data = {key: form.get(key, "") for key in reports.WIRE_KEYS}
    data["site_id"] = site["id"]  # the page's site, whatever the form says
    conn = get_db()
    uuid = form.get("uuid") or reports.new_uuid()
    if reports.already_stored(conn, uuid):
        # A second tap on the same form (or a retry after a lost answer): it is in.
        flash(_("This report was already submitted."))
        return redirect(url_for("reports.gate_report", code=site["code"], day=day.isoformat()), 303)
    if reports.outdated(conn, data, day, _tz()):
        stale = _(
            "The counts changed since this page was opened (new entries, or another phone's"
            " report): below they are as of now. Check them and submit again."
        )
        context = _gate_context(site, day, today, error=stale, form=form)
        return page_or_fragment("reports/gate.html", "reports/_gate.html", status=422, **context)
    result = reports.submit(
        conn,
        data,
        source="gate",
        device=device,
        uuid=uuid,
        recorded_at=records.recorded_at(
            form.get("recorded_at"), request.headers.get(records.SENT_AT)
        ),
    )
    if result.status in ("applied", "duplicate"):
        stored = reports.get(conn, result.uuid)
        done = _("Zero report submitted.") if stored.zero else _("Daily report submitted.")
        if is_htmx():
            context = _gate_context(site, day, today)
            return page_or_fragment("reports/gate.html", "reports/_gate.html", done=done, **context)
        flash(done)
        return redirect(url_for("reports.gate_report", code=site["code"], day=day.isoformat()), 303)
    context = _gate_context(site, day, today, error=result.reason or result.status, form=form)
    return page_or_fragment("reports/gate.html", "reports/_gate.html", status=422, **context)


# ---- console --------------------------------------------------------------------------------


def _rollcall_for_request():
    today = days.today(_tz())
    try:
        day = days.parse_day(request.args.get("day") or today)
        if day > today:  # every site would read "missing": none could have reported yet
            raise ValueError(
                _(
                    "%(day)s has not come yet: the roll-call shows today and the days before.",
                    day=day.isoformat(),
                )
            )
        rc = rollcall.build(
            get_db(),
            day,
            tz_name=_tz(),
            cutoff=current_app.config["REPORT_CUTOFF"],
            district=(request.args.get("district") or "").strip() or None,
            site_ids=scope_site_ids(current_user()),
        )
    except ValueError as exc:  # a day, or a REPORT_CUTOFF that is not a time of day: say so
        return None, str(exc), today
    return rc, "", today


@bp.route("/console/rollcall")
@require_role()  # any signed-in console user
def console_rollcall():
    """Which sites reported today (or on ?day=), by district, with totals."""
    rc, error, today = _rollcall_for_request()
    conn = get_db()
    context = {
        "rc": rc,
        "error": error,
        "today": today,
        # Those of the day's sites: a past day's, closed since or not, not today's.
        "districts": sites.districts(
            conn, scope_site_ids(current_user(), conn), (rc.day if rc else today, _tz())
        ),
        "district": request.args.get("district", ""),
        "day_value": request.args.get("day") or today.isoformat(),
        "figures": rollcall.FIGURES,
        "states": rollcall.STATES,
        "printing": request.args.get("print") == "1",
        # Each screening campaign running that day: its coverage beside the daily report.
        "screening": screening_coverage.for_rollcall(
            conn, rc.day, [r.site_id for r in rc.rows], _tz()
        )
        if rc
        else [],
    }
    if context["printing"]:
        return render_template("reports/rollcall_print.html", **context), 400 if error else 200
    return page_or_fragment(
        "reports/rollcall.html", "reports/_rollcall.html", status=400 if error else 200, **context
    )


def _export(kind: str):
    rc, error, _today = _rollcall_for_request()
    if rc is None:
        return Response(error, 400, mimetype="text/plain")  # it quotes what was typed
    return exports.audited_download(rc, rollcall, kind, "rollcall")


@bp.route("/console/rollcall.csv")
@require_role()
def rollcall_csv():
    """The roll-call as CSV (UTF-8 with BOM)."""
    return _export("csv")


@bp.route("/console/rollcall.xlsx")
@require_role()
def rollcall_xlsx():
    """The roll-call as an Excel workbook."""
    return _export("xlsx")


@bp.route("/console/sites")
@require_role()
def console_sites():
    """The sites in the user's scope: what each gate asks for, its report page, its poster."""
    conn = get_db()
    user = current_user()
    ids = scope_site_ids(user, conn)
    rows = posters.sites_for(conn, None, set(ids) if ids is not None else None)
    labels = site_fields.LABELS
    listed = [
        {
            "site": r,
            "fields": [str(labels[f]) for f in labels if f in r["optional_fields"].split(",")],
        }
        for r in rows
    ]
    return render_template(
        "reports/sites.html",
        listed=listed,
        base_note=sites.unreachable_note(current_app.config["BASE_URL"]),
        districts=[d for d in sites.districts(conn, ids) if d],
        can_write=user.can_write,
        retention_days=records.retention_days(conn),
    )


@bp.route("/console/posters.pdf")
@require_role()
def posters_pdf():
    """An A4 poster per site in the user's scope (?district= or ?site= narrows it)."""
    conn = get_db()
    ids = scope_site_ids(current_user(), conn)
    district = (request.args.get("district") or "").strip() or None
    allowed = set(ids) if ids is not None else None
    one = (request.args.get("site") or "").strip()
    if one:
        allowed = {one} if allowed is None or one in allowed else set()
    sites = posters.sites_for(conn, district, allowed)
    if one and not sites:
        abort(404)
    if not (one or district) and len(sites) > posters.SHEET_LIMIT:
        flash(
            _(
                "%(n)d sites are in this scope, more than one PDF of posters can hold: print"
                " the posters a district at a time.",
                n=len(sites),
            ),
            "error",
        )
        return redirect(url_for("reports.console_sites"), 303)
    try:
        pdf = posters.render(
            sites,
            base_url=current_app.config["BASE_URL"],
            printed=days.today(_tz()),
            language="zh_Hant"
            if i18n.language(request.args.get("lang")) == "zh_Hant"
            else "zh_Hans",
        )
    except FontMissing as exc:  # say so, in the user's language, rather than print boxes
        return Response(str(exc), status=503, mimetype="text/plain")
    name = f"posters-{district}.pdf" if district else "posters.pdf"
    return download(pdf, name, "application/pdf", inline=True)
