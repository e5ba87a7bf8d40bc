"""The audit log of console actions: who did what, when, from where. Append-only."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from flask_babel import lazy_gettext as _l

import sync
from sync.store import UUID_PATTERN, iso

# action -> label shown on the admin's audit page
ACTIONS = {
    "login": _l("Logged in"),
    "login_failed": _l("Failed login"),
    "logout": _l("Logged out"),
    "unmask": _l("Showed personal data"),
    "correct": _l("Corrected an entry"),
    "void": _l("Voided an entry"),
    "case_action": _l("Fever case follow-up"),
    "export": _l("Export"),
    "user_add": _l("Account created"),
    "user_passwd": _l("Password changed"),
    "user_disable": _l("Account disabled"),
    "site_change": _l("Site changed"),
    "pass_print": _l("Passes printed"),
    "pass_reissue": _l("Passes reissued"),
    "roster_deactivate": _l("Taken off a roster"),
    "roster_activate": _l("Put back on a roster"),
    "purge": _l("Expired data purged"),
    "screening_campaign": _l("Screening campaign made or ended"),
    "screening_view": _l("Screening answers looked at"),
    "screening_action": _l("Screening follow-up"),
}
PAGE_SIZE = 100
DETAIL_LIMIT = 1000
# What ends the detail of a line written for a console form that carries its uuid: the same form
# sent twice (a double click, a retry after a lost answer) finds it there (form_done).
FORM_MARK = "form="


def write(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    target: str = "",
    detail: str = "",
    ip: str = "",
    *,
    form: str = "",
) -> None:
    """Append one line to the audit log (joins the caller's transaction if there is one).
    form: the uuid of the console form that did it (a canonical one), kept at the end of the
    detail, whatever its length."""
    if form:
        head = detail[: DETAIL_LIMIT - len(FORM_MARK) - len(form) - 1]
        detail = f"{head} {FORM_MARK}{form}".lstrip()
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, target, detail, ip) VALUES (?, ?, ?, ?, ?, ?)",
        (iso(sync.utcnow()), actor, action, target, detail[:DETAIL_LIMIT], ip),
    )


def form_done(conn: sqlite3.Connection, action: str, target: str, form: str) -> bool:
    """Whether a line of this action on this target was written for the console form of this
    uuid (a canonical one): the form is sent again, and what it did is done already. Look in
    the transaction that would do it."""
    return (
        conn.execute(
            "SELECT 1 FROM audit_log WHERE action = ? AND target = ? AND detail LIKE ? LIMIT 1",
            (action, target, f"%{FORM_MARK}{form}"),
        ).fetchone()
        is not None
    )


def page(
    conn: sqlite3.Connection, before: int | None = None, action: str | None = None
) -> list[dict[str, Any]]:
    """A page of the audit log, newest first, older than the id `before`; each line's detail
    as shown (shown)."""
    sql = "SELECT * FROM audit_log WHERE id < ?"
    params: list = [before if before else 2**62]
    if action:
        sql += " AND action = ?"
        params.append(action)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(PAGE_SIZE)
    return [
        {**{k: row[k] for k in row.keys()}, "detail": shown(row["detail"])}
        for row in conn.execute(sql, params)
    ]


def shown(detail: str) -> str:
    """A line's detail as an admin reads it: without the form's uuid a double click is told by
    (FORM_MARK), which says nothing to a person."""
    head, mark, form = detail.rpartition(f" {FORM_MARK}")
    if not mark and detail.startswith(FORM_MARK):
        head, form = "", detail[len(FORM_MARK) :]
    return head if re.fullmatch(UUID_PATTERN, form) else detail
