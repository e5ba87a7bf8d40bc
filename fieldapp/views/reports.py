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

from .. import posters, records, reports, retention, rollcall, rules
from ..db import get_db
from ..pdffont import FontMissing

bp = Blueprint("reports", __name__)
# How far back a gate may still report (a late report beats a missing one).
REPORT_DAYS_BACK = 7


@bp.record_once
def _register_jobs(state) -> None:
    """The daily purge runs wherever this blueprint is served."""
    retention.init_app(state.app)
    state.app.jinja_env.globals["state_labels"] = rollcall.state_labels


def _tz() -> str:
    return current_app.config["TIMEZONE"]


def _render(page: str, fragment: str, status: int = 200, **context) -> Response:
    """The page, or only its fragment for an HTMX request (Vary: HX-Request either way)."""
    template = fragment if request.headers.get("HX-Request") else page
    response = Response(render_template(template, **context), status=status)
    response.vary.add("HX-Request")
    return response


def _site(code: str):
    site = reports.site_by_code(get_db(), code)
    if site is None:
        # An old poster's code: the gate page says it is out of date and who to ask.
        if reports.is_old_code(get_db(), code):
            return redirect(f"/s/{code}", 303)
        abort(404)
    return site


def _report_day(today: date) -> date:
    raw = request.values.get("day")
    if not raw:
        return today
    try:
        day = reports.parse_day(raw)
    except ValueError as exc:
        abort(Response(str(exc), 400))
    if day > today or day < today - timedelta(days=REPORT_DAYS_BACK):
        abort(Response(_("A gate can report for today and the last 7 days only."), 400))
    return day


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
        "submitted_local": reports.to_local(now.recorded_at, _tz()) if now else None,
        "history": history,
        "error": error,
        "record_uuid": reports.new_uuid(),
        "count_rows": reports.count_rows(data),
        "wire_counts": reports.COUNT_KEYS,
        "form_rules": rules.for_phone(reports.FIELDS),
    }


def _reporter():
    """Who may report for a gate: an enrolled phone, or a console user whose scope has the site.

    Returns (device id or None, allowed). A visitor who scanned the poster is neither.
    """
    from .. import accounts, devices

    conn = get_db()
    phone = devices.peer_from_cookie(conn)
    if phone is not None:
        return phone.id, True
    user = accounts.current_user()
    return None, user is not None and user.can_write  # a viewer only reads


@bp.route("/s/<code>/report", methods=["GET", "POST"])
def gate_report(code: str):
    """Review the day's counts at a gate, add remarks and submit (a zero report in one tap)."""
    site = _site(code)
    if isinstance(site, Response):
        return site
    device, allowed = _reporter()
    if allowed and device is None:
        from ..accounts import current_user, in_scope

        allowed = in_scope(current_user(), site["id"])
    if not allowed:
        page = render_template("reports/not_allowed.html", site=site)
        return Response(page, 403)
    today = reports.local_today(_tz())
    day = _report_day(today)
    if request.method == "GET":
        return _render("reports/gate.html", "reports/_gate.html", **_gate_context(site, day, today))
    form = request.form
    data = {key: form.get(key, "") for key in reports.WIRE_KEYS}
    data["site_id"] = site["id"]  # the page's site, whatever the form says
    conn = get_db()
    uuid = form.get("uuid") or reports.new_uuid()
    if reports.already_stored(conn, uuid):
        # A second tap on the same form (or a retry after a lost answer): it is in.
        flash(_("This report was already submitted."))
        return redirect(url_for("reports.gate_report", code=code, day=day.isoformat()), 303)
    result = reports.submit(
        conn,
        data,
        source="gate",
        device=device,
        uuid=uuid,
        recorded_at=reports.sane_time(form.get("recorded_at")),
    )
    if result.status in ("applied", "duplicate"):
        stored = reports.get(conn, result.uuid)
        done = _("Zero report submitted.") if stored.zero else _("Daily report submitted.")
        if request.headers.get("HX-Request"):
            context = _gate_context(site, day, today)
            return _render("reports/gate.html", "reports/_gate.html", done=done, **context)
        flash(done)
        return redirect(url_for("reports.gate_report", code=code, day=day.isoformat()), 303)
    context = _gate_context(site, day, today, error=result.reason or result.status, form=form)
    return _render("reports/gate.html", "reports/_gate.html", status=422, **context)


# ---- console --------------------------------------------------------------------------------


def _console(view):
    """Any signed-in console user (the console engineer's require_role)."""
    from ..accounts import require_role

    return require_role()(view)


def _rollcall_for_request():
    from ..accounts import current_user, scope_site_ids

    conn = get_db()
    user = current_user()
    today = reports.local_today(_tz())
    try:
        day = reports.parse_day(request.args.get("day") or today)
    except ValueError as exc:
        return None, str(exc), today
    ids = scope_site_ids(user, conn)
    district = (request.args.get("district") or "").strip() or None
    try:
        rc = rollcall.build(
            conn,
            day,
            tz_name=_tz(),
            cutoff=current_app.config["REPORT_CUTOFF"],
            district=district,
            site_ids=ids,
        )
    except ValueError as exc:  # a REPORT_CUTOFF that is not a time of day: say so
        return None, str(exc), today
    return rc, "", today


def _districts() -> list[str]:
    from ..accounts import current_user, scope_site_ids

    conn = get_db()
    ids = scope_site_ids(current_user(), conn)
    rows = conn.execute(
        "SELECT DISTINCT id, district FROM sites WHERE active = 1 ORDER BY district"
    ).fetchall()
    return sorted({r["district"] for r in rows if ids is None or r["id"] in ids})


@bp.route("/console/rollcall")
@_console
def console_rollcall():
    """Which sites reported today (or on ?day=), by district, with totals."""
    rc, error, today = _rollcall_for_request()
    context = {
        "rc": rc,
        "error": error,
        "today": today,
        "districts": _districts(),
        "district": request.args.get("district", ""),
        "day_value": request.args.get("day") or today.isoformat(),
        "figures": rollcall.FIGURES,
        "states": rollcall.STATES,
        "printing": request.args.get("print") == "1",
    }
    if context["printing"]:
        return render_template("reports/rollcall_print.html", **context), 400 if error else 200
    return _render(
        "reports/rollcall.html", "reports/_rollcall.html", status=400 if error else 200, **context
    )


def _export(kind: str):
    from .. import audit
    from ..accounts import current_user

    rc, error, _today = _rollcall_for_request()
    if rc is None:
        return Response(error, 400)
    name = f"rollcall-{rc.day.isoformat()}{'-' + rc.scope if rc.scope else ''}"
    if kind == "csv":
        body, mimetype = rollcall.to_csv(rc), "text/csv; charset=utf-8"
    else:
        body = rollcall.to_xlsx(rc)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    conn = get_db()
    audit.write(
        conn,
        current_user().name,
        "export",
        target=f"rollcall.{kind}",
        detail=name,
        ip=request.remote_addr or "",
    )
    response = Response(body, mimetype=mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=f"{name}.{kind}")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/console/rollcall.csv")
@_console
def rollcall_csv():
    """The roll-call as CSV (UTF-8 with BOM)."""
    return _export("csv")


@bp.route("/console/rollcall.xlsx")
@_console
def rollcall_xlsx():
    """The roll-call as an Excel workbook."""
    return _export("xlsx")


@bp.route("/console/sites")
@_console
def console_sites():
    """The sites in the user's scope: what each gate asks for, its report page, its poster."""
    from ..accounts import current_user, scope_site_ids

    conn = get_db()
    user = current_user()
    ids = scope_site_ids(user, conn)
    rows = posters.sites_for(conn, None, set(ids) if ids is not None else None)
    labels = retention.OPTIONAL_FIELD_LABELS
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
        can_write=user.can_write,
        retention_days=records.retention_days(conn),
    )


@bp.route("/console/posters.pdf")
@_console
def posters_pdf():
    """An A4 poster per site in the user's scope (?district= or ?site= narrows it)."""
    from ..accounts import current_user, scope_site_ids

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
    try:
        pdf = posters.render(
            sites,
            base_url=current_app.config["BASE_URL"],
            printed=reports.local_today(_tz()),
            language="zh_Hant" if request.args.get("lang") == "zh_Hant" else "zh_Hans",
        )
    except FontMissing as exc:  # say so, in the user's language, rather than print boxes
        return Response(str(exc), status=503, mimetype="text/plain")
    response = Response(pdf, mimetype="application/pdf")
    name = f"posters-{district}.pdf" if district else "posters.pdf"
    response.headers.set("Content-Disposition", "inline", filename=name)
    return response


@bp.route("/console/sites/<site_id>/fields", methods=["GET", "POST"])
@_console
def site_fields(site_id: str):
    """Choose which optional fields a site's gate asks for (minimum collection)."""
    from ..accounts import current_user, in_scope

    conn = get_db()
    user = current_user()
    site = conn.execute("SELECT * FROM sites WHERE id = ?", (site_id,)).fetchone()
    if site is None or not in_scope(user, site_id):
        abort(404)
    if not user.can_write:
        abort(403)
    error = ""
    if request.method == "POST":
        try:
            retention.set_optional_fields(
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
            return redirect(url_for("reports.site_fields", site_id=site_id), 303)
        site = conn.execute("SELECT * FROM sites WHERE id = ?", (site_id,)).fetchone()
    chosen = {f for f in site["optional_fields"].split(",") if f}
    return _render(
        "reports/fields.html",
        "reports/_fields.html",
        status=422 if error else 200,
        site=site,
        chosen=chosen,
        choices=retention.OPTIONAL_FIELD_LABELS,
        error=error,
        retention_days=records.retention_days(conn),
    )
