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
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from fieldapp.db import get_db
from fieldapp.gate import sites
from fieldapp.i18n import html_lang
from fieldapp.phones import devices, outbox_import
from fieldapp.settings import ROOT

bp = Blueprint("phones", __name__)

STATIC = ROOT / "static"
# What the service worker fetches into its versioned app-shell cache when it installs, on the
# phone's first visit: only what a volunteer's gate page needs, so that visit stays small.
SHELL_GLOBS = ("css/app.css", "css/gate.css", "css/pwa.css", "js/*.js")
SHELL_EXTRA = ("icons/icon-192.png",)
# Kept in the same cache the first time they are used, not before: the jsQR fallback (57 KB
# gzip, only for phones without the native BarcodeDetector), htmx (no page kept for offline use
# has hx- attributes: the daily report and the visitor's form use it online), the console's and
# reports' styles, the large icons the installer asks for.
LAZY_GLOBS = ("css/*.css", "vendor/*.js", "icons/*")
# A "/static/..." string in sw.js (its importScripts): served with the file's hashed URL.
STATIC_LITERAL = re.compile(r'"/static/([^"]+)"')


def _files(globs: tuple[str, ...]) -> list[Path]:
    return sorted({p for g in globs for p in STATIC.glob(g) if p.is_file()})


def _url(path: Path) -> str:
    """The file's hashed URL (fieldapp.assets): what the pages ask for, cached for a year."""
    return url_for("static", filename=path.relative_to(STATIC).as_posix())


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
    # Its importScripts by hashed URL too: a new outbox.js is a new sw.js, so phones update.
    body = STATIC_LITERAL.sub(lambda m: json.dumps(url_for("static", filename=m[1])), body)
    body = body.replace("__VERSION__", version).replace('"__SHELL__"', json.dumps(urls))
    body = body.replace('"__LAZY__"', json.dumps(lazy))
    return Response(
        body,
        mimetype="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


def _icon(name: str) -> str:
    return url_for("static", filename="icons/" + name)


@bp.route("/manifest.webmanifest")
def manifest():
    """The web app manifest, in the phone's language."""
    data = {
        "name": _("Gate register"),
        "short_name": _("Gate"),
        "description": _("Register everyone at the gate, even with no network."),
        "lang": html_lang(),  # the language of the names above, whatever chose it
        "start_url": "/start",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0b1f3a",
        "icons": [
            {"src": _icon("icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": _icon("icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {
                "src": _icon("icon-maskable.png"),
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
    site = sites.get_site(conn, peer.site_id) if peer is not None and peer.site_id else None
    if site is None or not site["active"]:
        return redirect(url_for("phones.outbox"))
    return redirect("/s/" + site["code"])


@bp.route("/enrol/<token>", methods=["GET", "POST"])
def enrol(token: str):
    """Show what a one-time link enrols; on POST, enrol this phone and open its site's gate."""
    conn = get_db()
    try:
        if request.method == "POST":
            before = devices.peer_from_cookie(conn)  # enrolled already: this link replaces it
            _peer, device_token, site_code = devices.redeem(
                conn, token, replacing=before.id if before else None
            )
            response = redirect(url_for("phones.enrolled", code=site_code), 303)
            devices.set_cookie(response, device_token)
            return response
        pending = devices.pending(conn, token)
    except devices.EnrolError as exc:
        code = devices.redeemed_here(conn, token)
        if code is not None:  # the link tapped again on the phone it enrolled
            return redirect(url_for("phones.enrolled", code=code), 303)
        return render_template("phones/enrol.html", error=str(exc)), 410
    return render_template("phones/enrol.html", pending=pending)


@bp.route("/enrolled/<code>")
def enrolled(code: str):
    """After enrolment: a same-site page, so the strict device cookie goes with the next tap."""
    site = sites.active_by_code(get_db(), code)
    if site is None:
        abort(404)
    return render_template("phones/enrolled.html", site=site)


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
    return render_template("phones/outbox.html")


@bp.route("/outbox/import", methods=["GET", "POST"])
def outbox_upload():
    """Upload a phone's exported outbox file; only from an enrolled phone or browser."""
    conn = get_db()
    peer = devices.peer_from_cookie(conn)
    if peer is None:
        return render_template("phones/import.html", forbidden=True), 403
    if request.method == "POST":
        upload = request.files.get("file")
        try:
            if upload is None or not upload.filename:
                raise outbox_import.OutboxFileError(_("Choose the exported file first."))
            summary = outbox_import.import_bytes(conn, upload.read(), source=f"upload:{peer.id}")
        except outbox_import.OutboxFileError as exc:
            return render_template("phones/import.html", error=str(exc)), 400
        flash(outbox_import.describe(summary))
        return redirect(url_for("phones.outbox_upload"), 303)
    return render_template("phones/import.html")


@bp.route("/scan")
def scan():
    """The in-app QR scanner, to switch to another site's gate; typing the code also works."""
    return render_template("phones/scan.html")


@bp.route("/go")
def go():
    """Open the gate page of a typed or scanned site code (or a gate URL)."""
    code = (request.args.get("code") or "").strip()
    if "/s/" in code:  # a gate page's address: the code follows its last /s/ (as scanner.js)
        code = re.split(r"[/?#]", code.rsplit("/s/", 1)[1])[0]
    site = sites.by_code(get_db(), code)[1] if code else None
    if site is None:
        flash(_("There is no site with that code."), "error")
        return redirect(url_for("phones.scan"), 303)
    # An old code or a closed site's: its gate page says so and who to ask (or, for an old
    # code, sends the site's own phone on to the new one), as when the scanner opens it.
    return redirect("/s/" + code, 303)
