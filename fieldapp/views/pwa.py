"""The phone app: service worker, manifest, enrolment, self-registration and outbox import."""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from .. import ROOT, accounts, devices, outbox_import, records, selfreg
from ..db import get_db

bp = Blueprint("pwa", __name__)

STATIC = ROOT / "static"
# What the service worker fetches into its versioned app-shell cache when it installs, on the
# phone's first visit: only what a volunteer's gate page needs, so that visit stays small.
SHELL_GLOBS = ("css/app.css", "css/gate.css", "css/pwa.css", "js/*.js", "vendor/htmx.min.js")
SHELL_EXTRA = ("icons/icon-192.png",)
# Kept in the same cache the first time they are used, not before: the jsQR fallback (57 KB
# gzip, only for phones without the native BarcodeDetector), the console's and reports' styles,
# the large icons the installer asks for.
LAZY_GLOBS = ("css/*.css", "vendor/*.js", "icons/*")


GATE_PAGE = re.compile(r"^/s/([^/]+)/?$")
GATE_POST = re.compile(r"^/s/([^/]+)/entries/?$")


@bp.before_app_request
def _visitor_or_volunteer():
    """A gate page opened without an enrolled phone is a visitor's self-registration form."""
    if request.method == "POST" and GATE_POST.match(request.path):
        return _volunteers_only()
    match = GATE_PAGE.match(request.path) if request.method == "GET" else None
    if match is None:
        return None
    conn = get_db()
    if devices.peer_from_cookie(conn) is not None:
        g.volunteer_page = True  # the service worker keeps this page for offline use
        return None
    site = devices.site_by_code(conn, match.group(1))
    if site is None or accounts.current_user() is not None:
        return None  # unknown or out-of-date codes are the gate page's to explain
    return _register_response(site, selfreg.for_site(conn, site))


def _volunteers_only():
    """Gate entries come from enrolled phones (or a signed-in coordinator): a revoked phone stops."""
    if devices.peer_from_cookie(get_db()) is not None or accounts.current_user() is not None:
        return None
    # 401 tells the phone's service worker to keep the entry in its outbox until re-enrolment.
    message = _("This phone is not enrolled. Ask your coordinator for an enrolment link.")
    return render_template("pwa/not_enrolled.html", message=message), 401


@bp.after_app_request
def _mark_volunteer_page(response):
    if g.get("volunteer_page") and response.status_code == 200:
        response.headers["X-Fieldapp-Page"] = "gate"
    return response


def _files(globs: tuple[str, ...]) -> list[Path]:
    return sorted({p for g in globs for p in STATIC.glob(g) if p.is_file()})


def _url(path: Path) -> str:
    return "/static/" + path.relative_to(STATIC).as_posix()


@cache
def _shell(app_version: str | None) -> tuple[str, list[str], list[str]]:
    """(version, precached URLs, cached-on-use URLs): a new deployment's files, a new version."""
    shell = _files(SHELL_GLOBS + SHELL_EXTRA)
    lazy = [p for p in _files(LAZY_GLOBS) if p not in shell]
    digest = hashlib.sha256((app_version or "").encode())
    for path in [STATIC / "sw.js", *shell, *lazy]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    urls = [_url(p) for p in shell] + ["/manifest.webmanifest", "/outbox", "/scan"]
    return digest.hexdigest()[:16], urls, [_url(p) for p in lazy]


@bp.route("/sw.js")
def service_worker():
    """The service worker, at the root so its scope covers every page."""
    version, urls, lazy = _shell(current_app.config.get("APP_VERSION"))
    body = (STATIC / "sw.js").read_text(encoding="utf-8")
    body = body.replace("__VERSION__", version).replace('"__SHELL__"', json.dumps(urls))
    body = body.replace('"__LAZY__"', json.dumps(lazy))
    return Response(
        body,
        mimetype="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


@bp.route("/manifest.webmanifest")
def manifest():
    """The web app manifest, in the phone's language."""
    data = {
        "name": _("Gate register"),
        "short_name": _("Gate"),
        "description": _("Register everyone at the gate, even with no network."),
        "lang": request.accept_languages.best or "zh-Hans",
        "start_url": "/start",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0b1f3a",
        "icons": [
            {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {
                "src": "/static/icons/icon-maskable.png",
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }
    return Response(
        json.dumps(data, ensure_ascii=False),
        mimetype="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


@bp.route("/start")
def start():
    """Where the installed app opens: this phone's own gate page (offline: the last one used)."""
    conn = get_db()
    peer = devices.peer_from_cookie(conn)
    row = None
    if peer is not None and peer.site_id:
        row = conn.execute(
            "SELECT code FROM sites WHERE id = ? AND active = 1", (peer.site_id,)
        ).fetchone()
    return redirect("/s/" + row["code"] if row else url_for("pwa.outbox"))


@bp.route("/enrol/<token>", methods=["GET", "POST"])
def enrol(token: str):
    """Show what a one-time link enrols; on POST, enrol this phone and open its site's gate."""
    conn = get_db()
    try:
        if request.method == "POST":
            _peer, device_token, site_code = devices.redeem(conn, token)
            response = redirect(url_for("pwa.enrolled", code=site_code), 303)
            devices.set_cookie(response, device_token)
            return response
        pending = devices.pending(conn, token)
    except devices.EnrolError as exc:
        return render_template("pwa/enrol.html", error=str(exc)), 410
    return render_template("pwa/enrol.html", pending=pending)


@bp.route("/enrolled/<code>")
def enrolled(code: str):
    """After enrolment: a same-site page, so the strict device cookie goes with the next tap."""
    site = devices.site_by_code(get_db(), code)
    if site is None:
        abort(404)
    return render_template("pwa/enrolled.html", site=site)


@bp.route("/pwa/device")
def device_info():
    """Which enrolled phone this is (the page's outbox names it as the push source)."""
    peer = devices.peer_from_cookie(get_db())
    if peer is None:
        return {"error": _("This phone is not enrolled.")}, 401, {"Cache-Control": "no-store"}
    return {"id": peer.id, "name": peer.name}, 200, {"Cache-Control": "no-store"}


@bp.route("/outbox")
def outbox():
    """The phone's outbox: what waits, what needs attention, export and send now."""
    return render_template("pwa/outbox.html")


@bp.route("/outbox/import", methods=["GET", "POST"])
def outbox_upload():
    """Upload a phone's exported outbox file; only from an enrolled phone or browser."""
    conn = get_db()
    peer = devices.peer_from_cookie(conn)
    if peer is None:
        return render_template("pwa/import.html", forbidden=True), 403
    if request.method == "POST":
        upload = request.files.get("file")
        try:
            if upload is None or not upload.filename:
                raise outbox_import.OutboxFileError(_("Choose the exported file first."))
            summary = outbox_import.import_bytes(conn, upload.read(), source=f"upload:{peer.id}")
        except outbox_import.OutboxFileError as exc:
            return render_template("pwa/import.html", error=str(exc)), 400
        flash(outbox_import.describe(summary))
        return redirect(url_for("pwa.outbox_upload"), 303)
    return render_template("pwa/import.html")


def _register_response(site, form, status=200):
    template = "pwa/_self_register.html" if request.headers.get("HX-Request") else None
    page = render_template(
        template or "pwa/self_register.html",
        site=site,
        form=form,
        retention_days=records.retention_days(get_db()),
    )
    response = Response(page, status=status)
    response.vary.add("HX-Request")
    return response


@bp.route("/s/<code>/register", methods=["GET", "POST"])
def self_register(code: str):
    """A visitor registers themself at a site's gate: own details only, nobody else's."""
    conn = get_db()
    site = devices.site_by_code(conn, code)
    if site is None:
        abort(404)
    form = selfreg.for_site(conn, site)
    if request.method == "POST":
        if form.validate_on_submit():
            done, error = selfreg.save(conn, site, form)
            if done:
                if request.headers.get("HX-Request"):
                    response = Response(render_template("pwa/_self_registered.html", site=site))
                    response.vary.add("HX-Request")
                    return response
                return redirect(url_for("pwa.self_registered", code=code), 303)
            form.form_errors.append(error)
        return _register_response(site, form, 422)
    return _register_response(site, form)


@bp.route("/s/<code>/registered")
def self_registered(code: str):
    """The visitor's confirmation (POST-redirect-GET without JavaScript)."""
    site = devices.site_by_code(get_db(), code)
    if site is None:
        abort(404)
    return render_template("pwa/self_registered.html", site=site)


@bp.route("/scan")
def scan():
    """The in-app QR scanner, to switch to another site's gate; typing the code also works."""
    return render_template("pwa/scan.html")


@bp.route("/go")
def go():
    """Open the gate page of a typed or scanned site code (or a gate URL)."""
    code = (request.args.get("code") or "").strip()
    if "/s/" in code:  # a whole scanned URL: its path ends in /s/<code>
        code = code.rsplit("/s/", 1)[1].split("/")[0].split("?")[0]
    site = devices.site_by_code(get_db(), code) if code else None
    if site is None:
        flash(_("There is no site with that code."), "error")
        return redirect(url_for("pwa.scan"), 303)
    return redirect("/s/" + site["code"], 303)
