"""Pages for browsers and for HTMX: the one helper that answers a request with the whole page
or, for an HTMX request, only the fragment it swaps in (templates/<area>/_name.html)."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request


def is_htmx() -> bool:
    """Whether htmx sent this request (it then wants a fragment, not a page)."""
    return request.headers.get("HX-Request") == "true"


def page_or_fragment(page: str, fragment: str, status: int = 200, **context: Any) -> Response:
    """The page, or only its fragment for an HTMX request; Vary: HX-Request either way, so a
    cache never hands one to the other."""
    template = fragment if is_htmx() else page
    response = Response(render_template(template, **context), status=status)
    response.vary.add("HX-Request")
    return response
