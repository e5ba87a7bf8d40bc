"""Error answers in the user's language, for every area at once (create_app wires them): a page
(the console's, with its menu, under /console), a short fragment for htmx (which swaps in no
error: unsent.js says it failed, and the page stays as it was), and JSON under /sync/ and /pwa/,
as the sync endpoints answer their own errors ({"error": code, "message": text}).

An answer a view made itself (abort(response), a poster's 404 page, a JSON 401) is left as it is.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from fieldapp.pages import is_htmx

# status -> (code in JSON, title, what the user reads)
ERRORS = {
    400: (
        "bad_request",
        _l("Bad request"),
        _l("The page sent something the instance cannot read. Go back, reload it and try again."),
    ),
    403: ("forbidden", _l("Not allowed"), _l("This page or action is not open to you.")),
    404: (
        "not_found",
        _l("Page not found"),
        _l("Nothing is at this address. Check the link, or start again from the menu."),
    ),
    405: (
        "method_not_allowed",
        _l("Not possible here"),
        _l("This address does not take this kind of request. Go back and use the page's buttons."),
    ),
    413: (
        "too_large",
        _l("Too large"),
        _l("What was sent is larger than the instance accepts. Send less at a time."),
    ),
    500: (
        "server_error",
        _l("Something went wrong"),
        _l(
            "The instance failed on this request, so it may not have been saved. Try again, and"
            " ask for help if it happens again."
        ),
    ),
}
CONSOLE_403 = _l(
    "Your account may not open this page or do this. Ask an administrator if you need it."
)
JSON_PATHS = ("/sync/", "/pwa/")


def _wants_json() -> bool:
    if request.path.startswith(JSON_PATHS):
        return True
    best = request.accept_mimetypes.best_match(("text/html", "application/json"))
    return best == "application/json"


def answer(error: HTTPException) -> Response:
    """The answer to an HTTP error of one of ERRORS' statuses (an unexpected exception is a 500)."""
    status = error.code if error.code in ERRORS else 500
    code, title, message = ERRORS[status]
    console = (request.path + "/").startswith("/console/")
    if status == 403 and console:
        message = CONSOLE_403
    if _wants_json():
        # The status is in the text too: a sender keeps the text as the reason it was refused.
        response = jsonify(error=code, message=f"{message} (HTTP {status})")
    elif is_htmx():
        response = Response(render_template("errors/_http.html", message=message))
    else:
        # The console's page has its menu, which reads the account: not after a failure, which
        # may be the database's.
        layout = "console/base.html" if console and status != 500 else "base.html"
        page = render_template("errors/http.html", layout=layout, title=title, message=message)
        response = Response(page)
    response.status_code = status
    response.vary.add("HX-Request")
    allowed = getattr(error, "valid_methods", None)  # a 405 says what the address takes
    if allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


def init_app(app: Flask) -> None:
    """Answer ERRORS' statuses with answer(), whichever area the request was for."""
    for status in ERRORS:  # 500 includes any exception a view did not handle
        app.register_error_handler(status, answer)
