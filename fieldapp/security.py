"""Security headers on every answer, CSRF on every form."""

from __future__ import annotations

from flask import Flask, Response, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect

from fieldapp.assets import INSTANCE_MARK, inline_styles_hash

csrf = CSRFProtect()

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        f"style-src 'self' {inline_styles_hash()}",  # and the gate page's own styles
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # site codes are in URLs: never leak them to others
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    """Turn on CSRF protection, refuse NUL characters in forms and queries and add the
    security headers to every response."""
    csrf.init_app(app)

    @app.before_request
    def _no_nul():
        """A NUL character (U+0000) in a form, a query or the path: refused before any view.
        PostgreSQL's text cannot hold one (a 500 there); no browser form sends one."""
        parts = [str(v) for v in (request.view_args or {}).values()]
        for key, values in [*request.values.lists(), ("", parts)]:
            if "\x00" in key or any("\x00" in v for v in values):
                words = _("The request holds a NUL character (U+0000): nothing was saved.")
                return Response(words, 400, mimetype="text/plain")
        return None

    @app.after_request
    def _headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers[INSTANCE_MARK[0]] = INSTANCE_MARK[1]  # (assets.py)
        if request.path.startswith("/console/"):
            # A coordinator's pages show names and phone numbers: no browser keeps them (the
            # back button after sign-out) and no proxy. An export says so itself as well.
            response.headers.setdefault("Cache-Control", "private, no-store")
        return response
