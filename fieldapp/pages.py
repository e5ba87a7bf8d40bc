"""Pages for browsers and for HTMX: the one helper that answers a request with the whole page
or, for an HTMX request, only the fragment it swaps in (templates/<area>/_name.html)."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

from flask import Response, render_template, request


def is_htmx() -> bool:
    """Whether htmx sent this request (it then wants a fragment, not a page)."""
    return request.headers.get("HX-Request") == "true"


def page_or_fragment(page: str, fragment: str, status: int = 200, **context: Any) -> Response:
    """The page, or only its fragment for an HTMX request; Vary: HX-Request either way, so a
    cache never hands one to the other.

    A refused form (a 4xx status) is the page with that status, but its fragment goes to HTMX
    as a 200: htmx swaps in only a 2xx answer, and the user would see nothing happen."""
    htmx = is_htmx()
    template = fragment if htmx else page
    if htmx and 400 <= status < 500:
        status = 200
    response = Response(render_template(template, **context), status=status)
    response.vary.add("HX-Request")
    return response


# What an export is sent as, by its format. Werkzeug adds "; charset=utf-8" to a text/ type
# itself (a charset here came out twice).
MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def table_download(table: Any, formats: Any, kind: str, name: str) -> Response:
    """A console table (the roll-call, a campaign's coverage) as a CSV or XLSX file saved as
    name.kind; formats is its module (to_csv, to_xlsx), as commands.write_table takes it."""
    body = formats.to_csv(table) if kind == "csv" else formats.to_xlsx(table)
    return download(body, f"{name}.{kind}", MIMETYPES[kind])


def download(body: bytes | str, filename: str, mimetype: str, *, inline: bool = False) -> Response:
    """A file the console hands over (an export, a PDF of passes): saved under filename, or
    shown by the browser (inline); personal data, so never kept by a cache."""
    response = Response(body, mimetype=mimetype)
    names = {"filename": filename}
    if not filename.isascii():
        # A header is Latin-1 (a server refuses anything else: a district's name in the file's
        # name was a 500). Browsers take filename* (RFC 6266); others the ASCII fallback.
        plain = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
        names = {"filename": plain, "filename*": "UTF-8''" + quote(filename, safe="!#$&+^`|~")}
    response.headers.set("Content-Disposition", "inline" if inline else "attachment", **names)
    response.headers["Cache-Control"] = "no-store"
    return response
