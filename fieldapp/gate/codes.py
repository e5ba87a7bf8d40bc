"""The site code in a gate address (/s/<code>/…), resolved once per request; an old code of a
site followed by that site's own phone.

A phone keeps pages made under the code its site had then (the gate page in the service
worker's cache, with its roster's and its visitors' passes' addresses, its link to the daily
report). After `fieldapp site rotate-code` those addresses carry an old code: the site's own
enrolled phone is sent to the same address under the new code; anyone else (a visitor with an
old poster, another site's phone) gets what the view answers to an old code."""

from __future__ import annotations

import sqlite3

from flask import abort, redirect, request, url_for

from fieldapp.db import get_db
from fieldapp.gate import sites
from fieldapp.phones import devices


def enrolled_at(site_id: str) -> bool:
    """Whether this browser is a phone enrolled at that site."""
    phone = devices.peer_from_cookie(get_db())
    return phone is not None and phone.site_id == site_id


def followed(status: str, site: sqlite3.Row | None) -> bool:
    """Whether this request's phone follows site from the code sites.by_code() found it by: an
    old code of an open site, and the phone enrolled there."""
    return status == "old" and site["active"] and enrolled_at(site["id"])


def resolve(code: str, follow: bool = False) -> tuple[str, sqlite3.Row | None]:
    """sites.by_code(code) for this request's address. follow: when `code` is an old code of an
    open site and this is a phone enrolled there, the answer is a redirect (aborts) to this
    request's own address under the site's current code, query kept: a page is opened there,
    and a script's fetch (roster.json, a registration) follows it to the current answer. Only
    an old code costs the phone's look-up."""
    status, site = sites.by_code(get_db(), code)
    if follow and followed(status, site):
        args = {**(request.view_args or {}), "code": site["code"]}
        moved = url_for(request.endpoint, **args)
        query = request.query_string.decode()
        response = redirect(f"{moved}?{query}" if query else moved)
        response.headers["Cache-Control"] = "private, no-cache"
        abort(response)
    return status, site
