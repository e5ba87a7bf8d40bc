"""The coordinator console: today's dashboard, the log, corrections, fever cases, exports, audit.

Views are thin: they check the role and scope, call the domain modules and render.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
import uuid as uuidlib
from dataclasses import asdict
from datetime import date

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

import sync
from fieldapp import audit, days, records, rules
from fieldapp.console import accounts, cases, corrections, dashboard, exports, logbook
from fieldapp.console.accounts import client_ip, current_user, require_role, scope_site_ids
from fieldapp.db import connect, get_db, transaction
from fieldapp.gate import registrations, sites
from fieldapp.pages import MIMETYPES, page_or_fragment
from fieldapp.privacy.ids import IdVault

logger = logging.getLogger(__name__)
bp = Blueprint("console", __name__, url_prefix="/console")
ALL = tuple(accounts.ROLES)
WRITE = accounts.WRITE_ROLES
UNMASK_SECONDS = 300  # how long a deliberate unmask keeps showing the full data
SOURCE = "console"  # names the console as the source of the records it saves
CASES_SHOWN = 500  # the oldest first; more are reached by narrowing the filters


@bp.app_context_processor
def _console_globals():
    return {
        "console_user": current_user,
        "roles": accounts.ROLES,
        "DIRECTIONS": rules.DIRECTIONS,
        "PERSON_TYPES": rules.PERSON_TYPES,
        "HEALTH_CODES": rules.HEALTH_CODES,
        "FEVER_ACTIONS": rules.FEVER_ACTIONS,
        "CASE_ACTIONS": cases.ACTIONS,
        "OUTCOMES": cases.OUTCOMES,
        "CORRECTABLE": corrections.FIELDS,
        "correction_text": corrections.value_text,
        # Other areas' console pages, linked from the console's menu when they exist.
        "has_view": lambda endpoint: endpoint in current_app.view_functions,
    }


def _tz():
    return days.zone(current_app.config["TIMEZONE"])


def _entry_in_scope(entry_uuid: str) -> dict:
    """The entry, or 404 when unknown or outside the user's scope (no hint it exists)."""
    entry = logbook.entry(get_db(), entry_uuid)
    if entry is None or not accounts.in_scope(current_user(), entry["site_id"]):
        abort(404)
    return entry


@bp.app_template_filter("localtime")
def _localtime_filter(ts: str) -> str:
    return days.local_text(ts, _tz()) if ts else ""


@bp.app_template_filter("age")
def _age_filter(hours: int) -> str:
    if hours < 48:
        return _("%(n)d h", n=hours)
    return _("%(n)d days", n=hours // 24)


@bp.route("/", endpoint="dashboard")
@require_role(*ALL)
def dashboard_page():
    """Today for the user's sites; the fragment is polled by HTMX."""
    user = current_user()
    data = dashboard.today(get_db(), scope_site_ids(user), _tz(), sync.utcnow())
    return page_or_fragment("console/dashboard.html", "console/_dashboard.html", d=data)


@bp.route("/log", methods=["GET", "POST"])
@require_role(*ALL)
def log():
    """Every entry in scope, filtered, newest first, one keyset page at a time.

    The text search (a name, a phone number) never goes in a URL, where access logs, the
    browser's history and a Referer would keep it: the filters form is posted, and the
    search answers with a redirect to the filters and a token this session keeps the text
    under (SEARCHES_KEPT of them). A URL still carrying q (a bookmark) is sent there too."""
    user = current_user()
    site_ids = scope_site_ids(user)
    posted = request.method == "POST"
    if posted or "q" in request.args:
        filters, errors = logbook.parse_filters(
            request.form if posted else request.args, site_ids, user.role
        )
        if not errors:
            after = {} if posted else {"after": request.args.get("after")}
            return redirect(url_for("console.log", **after, **_log_args(filters)), 303)
        expired = False
    else:
        args = request.args.to_dict()
        token = args.pop("s", "")
        if token:
            args["q"] = session.get("searches", {}).get(token, "")
        filters, errors = logbook.parse_filters(args, site_ids, user.role)
        expired = bool(token) and not filters.q
        if expired:
            errors.append(_("This search is no longer kept: type it again."))
    after = logbook.decode_cursor(request.args.get("after"))
    rows, next_cursor = [], None
    if not expired:  # a search forgotten lists nothing, not the whole log as if it matched
        rows, next_cursor = logbook.page(get_db(), filters, site_ids, _tz(), after)
    shown = [logbook.present(r, user.role) for r in rows]
    unchecked, unchecked_total = [], 0
    if after is None and not expired:  # visitors who registered and were never checked
        found, unchecked_total = registrations.unchecked(
            get_db(),
            site_ids,
            current_app.config["TIMEZONE"],
            site=filters.site,
            date_from=filters.date_from,
            date_to=filters.date_to,
            match=asdict(filters),
        )
        unchecked = [logbook.present(dict(r), user.role) for r in found]
    return page_or_fragment(
        "console/log.html",
        "console/_log.html",
        rows=shown,
        unchecked=unchecked,
        unchecked_total=unchecked_total,
        filters=filters,
        log_args=_log_args(filters),
        errors=errors,
        next_cursor=next_cursor,
        sites=sites.listing(get_db(), site_ids),
        first_page=after is None,
    )


SEARCHES_KEPT = 10  # text searches a session keeps for the log's URLs


def _log_args(filters: logbook.Filters) -> dict[str, str]:
    """The filters as the log's URL arguments: the text search as a token of this session's
    (a random one: a hash of a name could be matched against a list of names)."""
    args = filters.as_args()
    q = args.pop("q", "")
    if q:
        kept = dict(session.get("searches", {}))
        token = next((t for t, text in kept.items() if text == q), None)
        if token is None:
            token = secrets.token_urlsafe(6)
            kept[token] = q
            session["searches"] = dict(list(kept.items())[-SEARCHES_KEPT:])
        args["s"] = token
    return args


def _case_in_scope(entry_uuid: str) -> dict:
    """The entry of a fever case, or 404 like _entry_in_scope (also when not fever, or void)."""
    value = _entry_in_scope(entry_uuid)
    if not cases.is_case(value):
        abort(404)
    return value


def _unmasked(entry_uuid: str) -> bool:
    until = session.get("unmasked", {}).get(entry_uuid)
    return bool(until and until > time.time())


@bp.route("/entry/<entry_uuid>")
@require_role(*ALL)
def entry(entry_uuid: str):
    """One entry: current value, original, history of corrections, and what may be done."""
    return _entry_page(_entry_in_scope(entry_uuid))


def _entry_page(value: dict, error: str = "", correcting=None, voiding=None):
    """The entry's page; after a refused correction or void (422), with why, and that form
    open with what was typed in it (correcting or voiding: the posted form)."""
    user = current_user()
    entry_uuid = value["uuid"]
    unmasked = user.can_write and _unmasked(entry_uuid)
    shown = logbook.present(value, user.role, unmasked)
    if unmasked:
        shown["id_full"] = IdVault(current_app.config["ID_KEY"]).open(value["id_cipher"])
    original = logbook.present(value["original"], user.role, unmasked)
    history = logbook.history(get_db(), entry_uuid, user.role, unmasked)
    page = render_template(
        "console/entry.html",
        e=shown,
        original=original,
        history=history,
        # Each form's own record id (a form sent twice is one record; the other form of the
        # same page is another), and the corrections the correction form is drawn with (what
        # it leaves as it is, it does not change).
        correct_uuid=str(uuidlib.uuid4()),
        void_uuid=str(uuidlib.uuid4()),
        seen=",".join(c["uuid"] for c in history),
        unmasked=unmasked,
        case=cases.is_case(value),
        errors=[error] if error else [],
        correcting=correcting,
        voiding=voiding,
    )
    return page, 422 if error else 200


@bp.route("/entry/<entry_uuid>/unmask", methods=["POST"])
@require_role(*WRITE)
def unmask(entry_uuid: str):
    """Show the full phone and ID number for a few minutes; written to the audit log."""
    value = _entry_in_scope(entry_uuid)
    accounts.audit_action("unmask", entry_uuid, value["site_name"])
    shown = {k: v for k, v in session.get("unmasked", {}).items() if v > time.time()}
    shown[entry_uuid] = time.time() + UNMASK_SECONDS
    session["unmasked"] = dict(list(shown.items())[-20:])
    return redirect(url_for("console.entry", entry_uuid=entry_uuid))


def _repeated(entry_uuid: str) -> bool:
    """Whether the posted form's record is stored already (a second tap, a retry after a lost
    answer): then say so, and nothing more is saved."""
    if not corrections.stored(get_db(), request.form.get("uuid"), entry_uuid):
        return False
    flash(_("This was saved already."))
    return True


def _save(record: dict, action: str, entry_uuid: str, detail: str, done: str) -> str:
    """Save a console-made record through records.save and audit it, in one transaction (the
    caller's, if it holds one); then flash done and return "", or return why not (nothing
    saved: the caller shows its form again, as typed)."""
    user = current_user()
    conn = get_db()
    with transaction(conn):
        result = records.save(conn, [record], source=SOURCE)[0]
        if result.status != "applied":
            return result.reason or result.status
        audit.write(conn, user.name, action, entry_uuid, detail, client_ip())
    flash(done)
    return ""


@bp.route("/entry/<entry_uuid>/correct", methods=["POST"])
@require_role(*WRITE)
def correct(entry_uuid: str):
    """Record a correction of an entry (the original stays)."""
    user = current_user()
    # The entry as it is, whether it is void, and the save: one write transaction, so that no
    # void (another coordinator's, or one arriving by sync) lands between the look and the save.
    with transaction(get_db()):
        value = _entry_in_scope(entry_uuid)
        if _repeated(entry_uuid):
            return redirect(url_for("console.entry", entry_uuid=entry_uuid))
        if value["void"]:  # voided since the page was drawn: the page no longer offers the form
            error = _("This entry is void: it is not corrected any more.")
            return _entry_page(value, error)
        drawn = corrections.as_drawn(get_db(), value, request.form.get("seen"))
        changes = corrections.changes_from(request.form, drawn, value)
        form = request.form
        record = corrections.wire(
            entry_uuid, user.name, form.get("reason", ""), changes, uuid=form.get("uuid")
        )
        done = _("The correction is saved. The original entry is kept.")
        error = corrections.problem_after(value, changes) or _save(
            record, "correct", entry_uuid, ", ".join(sorted(changes)), done
        )
    if error:
        return _entry_page(value, error, correcting=request.form)
    return redirect(url_for("console.entry", entry_uuid=entry_uuid))


@bp.route("/entry/<entry_uuid>/void", methods=["POST"])
@require_role(*WRITE)
def void(entry_uuid: str):
    """Mark an entry void (a mistake), with a reason."""
    user = current_user()
    # The look (is it there, void already?) and the save in one write transaction: two voids
    # at once are one void and a "void already", never two.
    with transaction(get_db()):
        value = _entry_in_scope(entry_uuid)
        if _repeated(entry_uuid):
            return redirect(url_for("console.entry", entry_uuid=entry_uuid))
        if value["void"]:  # by another coordinator since the page was drawn: nothing to add
            flash(_("This entry is void already."))
            return redirect(url_for("console.entry", entry_uuid=entry_uuid))
        reason = request.form.get("reason", "")
        record = corrections.wire(
            entry_uuid, user.name, reason, void=True, uuid=request.form.get("uuid")
        )
        # The reason is the correction's, purged with it: free text, not for the audit log.
        error = _save(record, "void", entry_uuid, "", _("The entry is marked void."))
    if error:
        return _entry_page(value, error, voiding=request.form)
    return redirect(url_for("console.entry", entry_uuid=entry_uuid))


@bp.route("/cases", endpoint="cases")
@require_role(*ALL)
def cases_page():
    """Fever cases with filters, oldest first, overdue ones highlighted."""
    user = current_user()
    site_ids = scope_site_ids(user)
    status = request.args.get("status", "open")
    if status not in cases.STATUSES:
        status = "open"
    # Site and dates are checked like the log's filters (same messages, same local days).
    filters, errors = logbook.parse_filters(
        {k: request.args.get(k, "") for k in ("site", "date_from", "date_to")}, site_ids
    )
    tz = _tz()
    since = days.bounds(date.fromisoformat(filters.date_from), tz)[0] if filters.date_from else None
    until = days.bounds(date.fromisoformat(filters.date_to), tz)[1] if filters.date_to else None
    rows = cases.listing(
        get_db(), site_ids, sync.utcnow(), status, filters.site or None, since, until, CASES_SHOWN
    )
    for c in rows:
        c["entry"] = logbook.present(c["entry"], user.role)
    return page_or_fragment(
        "console/cases.html",
        "console/_cases.html",
        cases=rows,
        limit=CASES_SHOWN,
        chosen=status,
        filters=filters,
        errors=errors,
        sites=sites.listing(get_db(), site_ids),
        statuses=cases.STATUSES,
    )


@bp.route("/cases/<entry_uuid>")
@require_role(*ALL)
def case(entry_uuid: str):
    """One fever case: the entry, its follow-up so far, and the next steps."""
    return _case_page(_case_in_scope(entry_uuid))


def _case_page(value: dict, error: str = "", typed=None):
    """The case's page; after a refused step (422), with why, and the form it was posted from
    holding what was typed (typed: the posted form)."""
    user = current_user()
    actions = cases.actions_for(get_db(), value["uuid"])
    now = sync.utcnow()
    state = cases.state(value, actions, now)
    if state["isolated"] and not state["closed"]:
        start, end = days.bounds(now.astimezone(_tz()).date(), _tz())
        state["checks_today"] = cases.checks_on(actions, start, end)
        state["checks_per_day"] = cases.CHECKS_PER_DAY
    page = render_template(
        "console/case.html",
        e=logbook.present(value, user.role),
        c=state,
        actions=actions,
        errors=[error] if error else [],
        typed=typed or {},
        # Each form's step has its id from here: sent twice, it is stored once.
        step_uuids={a: str(uuidlib.uuid4()) for a in ("acknowledge", "step", "close", "reopen")},
    )
    return page, 422 if error else 200


@bp.route("/cases/<entry_uuid>/action", methods=["POST"])
@require_role(*WRITE)
def case_action(entry_uuid: str):
    """Record one follow-up step of a fever case."""
    user = current_user()
    action = request.form.get("action", "")
    data = {
        "temperature": request.form.get("temperature") or None,
        "outcome": request.form.get("outcome", ""),
        "note": request.form.get("note", ""),
    }
    try:  # the form's: a second click, or a retry after a lost answer, is the same step
        step_uuid = sync.store.canonical_uuid(request.form.get("uuid"))
    except sync.Invalid:
        step_uuid = None
    # The look (is this step stored already?) and the save in one write transaction: the same
    # form sent twice at once is one step and a "saved already", never two.
    with transaction(get_db()):
        value = _case_in_scope(entry_uuid)
        if step_uuid and cases.stored(get_db(), step_uuid, entry_uuid):
            flash(_("This was saved already."))
            return redirect(url_for("console.case", entry_uuid=entry_uuid))
        record = cases.wire(entry_uuid, user.name, action, uuid=step_uuid, **data)
        done = _("Saved: %(action)s.", action=cases.ACTIONS.get(action, action))
        error = _save(record, "case_action", entry_uuid, action, done)
    if error:
        return _case_page(value, error, typed=request.form)
    return redirect(url_for("console.case", entry_uuid=entry_uuid))


@bp.route("/export", methods=["POST"])
@require_role(*ALL)
def export():
    """Download the filtered log as CSV (streamed) or XLSX; audited, masked by role."""
    user = current_user()
    site_ids = scope_site_ids(user)
    filters, errors = logbook.parse_filters(request.form, site_ids, user.role)
    fmt = request.form.get("format", "csv")
    if errors or fmt not in ("csv", "xlsx"):
        flash(" ".join(errors) or _("Choose CSV or XLSX."), "error")
        return redirect(url_for("console.log", **_log_args(filters)))
    full = user.can_write and request.form.get("full") == "1"
    tz = _tz()
    vault = IdVault(current_app.config["ID_KEY"]) if full else None
    accounts.audit_action("export", "", f"{fmt} full={int(full)} {filters.audited()}")
    conn = get_db()
    name = exports.filename(fmt, sync.utcnow(), tz)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if fmt == "xlsx":
        path = exports.xlsx_tempfile(
            exports.rows(conn, filters, site_ids, tz, user.role, full, vault, guard=False)
        )

        def chunks():
            # Read back in pieces and remove the file when done, even if the client goes away.
            try:
                with open(path, "rb") as f:
                    while piece := f.read(1 << 16):
                        yield piece
            finally:
                os.unlink(path)

        response = current_app.response_class(chunks(), mimetype=MIMETYPES["xlsx"], headers=headers)
        # A stream never started never reaches its finally: remove the file on close too.
        response.call_on_close(lambda: os.path.exists(path) and os.unlink(path))
        return response

    database = current_app.config["DATABASE"]

    def generate():
        # Its own connection: the request's one is closed before the stream ends.
        own = connect(database)
        sent = 0

        def progress(k: int) -> None:
            nonlocal sent
            sent += k

        try:
            chunks = exports.rows(own, filters, site_ids, tz, user.role, full, vault)
            yield from exports.csv_chunks(chunks, progress)
        except Exception as exc:
            # Status 200 is likely sent already. The file's last line says it is cut, and the error
            # goes on to the server, which then ends the connection without the chunked body's
            # end: a browser or curl marks the download failed, not complete.
            logger.error("CSV export by %s cut after %d rows: %r", user.name, sent, exc)
            yield exports.cut_notice(sent)
            raise
        finally:
            own.close()

    return current_app.response_class(
        stream_with_context(generate()), mimetype=MIMETYPES["csv"], headers=headers
    )


@bp.route("/audit")
@require_role("admin")
def audit_page():
    """The audit log, newest first (admins only)."""
    before = request.args.get("before", type=int)
    if before is not None and not 0 < before < 2**63:  # not a row id: the first page
        before = None
    action = request.args.get("action") or None
    if action not in audit.ACTIONS:
        action = None
    rows = audit.page(get_db(), before, action)
    older = rows[-1]["id"] if len(rows) == audit.PAGE_SIZE else None
    return render_template(
        "console/audit.html", rows=rows, older=older, action=action or "", actions=audit.ACTIONS
    )


class UserForm(FlaskForm):
    """A new console account, made by an administrator."""

    name = StringField(_l("User name"), validators=[DataRequired(), Length(max=40)])
    role = SelectField(_l("Role"), choices=[SelectChoice(k, v) for k, v in accounts.ROLES.items()])
    sites = SelectMultipleField(_l("Sites"), choices=[], validate_choice=True)
    districts = StringField(_l("Districts (comma-separated)"), validators=[Length(max=400)])
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(min=accounts.MIN_PASSWORD, max=200)]
    )
    # This form's id from the page: sent twice, it makes one account and says it is created.
    uuid = HiddenField(default=lambda: str(uuidlib.uuid4()))


def _user_rows():
    conn = get_db()
    names = logbook.site_names(conn)
    out = []
    for row in accounts.listing(conn):
        user = accounts.get_user(conn, row["name"])
        if user is None:  # disabled: shown without its scope
            out.append({"name": row["name"], "role": "", "scope": "", "active": False})
            continue
        scope = list(user.districts) + [names.get(s, s) for s in user.sites]
        out.append(
            {"name": user.name, "role": user.role, "scope": "、".join(scope), "active": True}
        )
    return out


@bp.route("/users", methods=["GET", "POST"])
@require_role("admin")
def users():
    """Console accounts: the list, and a form to add one (admins only; audited)."""
    form = UserForm()
    form.sites.choices = [SelectChoice(s["id"], s["name"]) for s in sites.listing(get_db(), None)]
    status = 200
    if form.validate_on_submit():
        districts = [d for d in re.split(r"[,，、\s]+", form.districts.data or "") if d]
        try:
            form_uuid = sync.store.canonical_uuid(form.uuid.data)
        except sync.Invalid:  # no guard, as before forms had their id
            form_uuid = ""
        try:
            accounts.create_user(
                get_db(),
                form.name.data,
                form.role.data,
                form.password.data,
                form.sites.data,
                districts,
                actor=current_user().name,
                form=form_uuid,
            )
        except accounts.AccountError as exc:
            form.form_errors.append(exc.on_form)
            status = 400
        else:
            flash(_("The account %(name)s is created.", name=form.name.data.strip()))
            return redirect(url_for("console.users"))
    elif request.method == "POST":
        status = 400
    return render_template("console/users.html", form=form, users=_user_rows()), status


@bp.route("/users/<path:name>/disable", methods=["POST"])
@require_role("admin")
def disable_user(name: str):
    """Disable an account (not one's own: an instance must keep an administrator)."""
    if name.lower() == current_user().name.lower():
        flash(_("You cannot disable your own account."), "error")
        return redirect(url_for("console.users"))
    try:
        accounts.disable_user(get_db(), name, actor=current_user().name)
    except accounts.AccountError as exc:
        flash(str(exc), "error")
    else:
        flash(_("The account %(name)s is disabled.", name=name))
    return redirect(url_for("console.users"))
