"""`fieldapp instance …` (downstreams allowed to push here), `fieldapp upstream set` and
`fieldapp sync` (push, pull, --watch, --status)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _
from tqdm import tqdm

import sync
from fieldapp import db, rules
from fieldapp.commands import cannot_write, ensure_ready, localised, opened
from fieldapp.i18n import argument, option
from fieldapp.i18n import lazy_cli_gettext as _l
from fieldapp.settings import is_downstream
from fieldapp.syncing import status, upstream
from sync import peers


@click.group("instance", help=_l("Downstream instances allowed to push here."))
def instance_group() -> None:
    pass


@instance_group.command(
    "add", help=_l("Allow a downstream instance NAME to push here; print its token once.")
)
@argument("name", help=_l("The downstream instance's name."))
@with_appcontext
@localised
def instance_add(name: str) -> None:
    clean = rules.clean_line(name)
    if clean is None:
        raise click.UsageError(
            _("The name must be one line, without tabs or invisible characters.")
        )
    name = clean
    if not name or len(name) > 80:
        raise click.UsageError(_("The name must be 1 to 80 characters."))
    with opened() as conn:
        live = [r for r in peers.listing(conn, "instance") if r["revoked_at"] is None]
        if any(r["name"] == name for r in live):
            raise click.ClickException(_("An instance named “%(name)s” exists already.", name=name))
        with db.transaction(conn):
            peer, token = peers.create(conn, "instance", name)
    click.echo(_("Instance “%(name)s” added (id %(id)s).", name=name, id=peer.id))
    click.echo(_("Its token, shown only this once:"))
    click.echo(token)
    click.echo(_("On that instance run: fieldapp upstream set %(url)s TOKEN", url=_base_url()))


def _base_url() -> str:
    return str(current_app.config.get("BASE_URL") or "http://127.0.0.1:5000")


@instance_group.command(
    "revoke", help=_l("Revoke instance NAME's token: its pushes are refused from now on.")
)
@argument("name", help=_l("The downstream instance's name."))
@with_appcontext
@localised
def instance_revoke(name: str) -> None:
    with opened() as conn, db.transaction(conn):
        n = peers.revoke(conn, "instance", name)
    if not n:
        raise click.ClickException(_("No live instance named “%(name)s”.", name=name))
    click.echo(_("Instance “%(name)s” revoked.", name=name))


@instance_group.command(
    "list", help=_l("List downstream instances: last push and records received.")
)
@with_appcontext
@localised
def instance_list() -> None:
    with opened() as conn:
        rows = peers.listing(conn, "instance")
    if not rows:
        click.echo(_("No downstream instances yet: fieldapp instance add NAME"))
    for row in rows:
        state = _("revoked") if row["revoked_at"] else _("active")
        click.echo(f"{row['name']}\t{row['id']}\t{state}\t" + _pushes(row, "\t"))


def _pushes(peer, sep: str) -> str:
    """When a downstream last pushed here and how many records it brought."""
    when = _("last push: %(when)s", when=peer["last_push_at"] or _("never"))
    return when + sep + _("records received: %(n)d", n=peer["records_in"])


@click.group("upstream", help=_l("The instance this one pushes to."))
def upstream_group() -> None:
    pass


@upstream_group.command(
    "set",
    help=_l("Push to the instance at URL with the TOKEN it issued (fieldapp instance add there)."),
)
@argument("url", help=_l("The upstream's address, e.g. https://city.example.org"))
@argument("token", help=_l("The token the upstream printed for this instance."))
@with_appcontext
@localised
def upstream_set(url: str, token: str) -> None:
    problem = upstream.check_upstream(url, token)
    if problem:
        raise click.UsageError(problem)
    app = current_app._get_current_object()
    try:
        upstream.set_upstream(app, url, token)
    except OSError as exc:  # config.py stays as it was
        raise cannot_write(Path(app.instance_path) / "config.py", exc) from None
    click.echo(_("Upstream set to %(url)s. Run fieldapp sync to push and pull now.", url=url))


def _print_status(conn: sqlite3.Connection) -> None:
    info = status.status(conn)
    up = info["upstream"]
    if up is None:
        click.echo(_("Upstream: none (this instance is a central)."))
    else:
        click.echo(_("Upstream: %(url)s", url=up["url"]))
        click.echo("  " + _("records waiting to go: %(n)d", n=up["waiting"]))
        if up["held"]:
            click.echo(
                "  "
                + _(
                    "records held back: %(n)d (the upstream could not store them; they are"
                    " tried again every round):",
                    n=len(up["held"]),
                )
            )
            for row in up["held"]:
                click.echo(f"    {row['kind']} {row['uuid']}: {row['reason']}")
        click.echo("  " + _("last success: %(when)s", when=up["last_success_at"] or _("never")))
        if up["last_error"]:
            click.echo("  " + _("last error: %(error)s", error=up["last_error"]))
        if up["retention_notice"]:
            click.echo("  " + up["retention_notice"])
    shown = [p for p in info["downstream"] if not p["revoked"]]
    if not shown:
        click.echo(_("Downstream: none."))
    for p in shown:
        kind = _("instance") if p["kind"] == "instance" else _("phone")
        click.echo(f"{kind} {p['name']}: " + _pushes(p, ", "))


@click.command("sync", help=_l("Push every record the upstream lacks, then pull configuration."))
@option("--watch", is_flag=True, help=_l("Keep syncing, backing off after failures."))
@option("--status", "show_status", is_flag=True, help=_l("Show where sync stands and exit."))
@with_appcontext
@localised
def sync_command(watch: bool, show_status: bool) -> None:
    app = current_app._get_current_object()
    if show_status:
        with opened() as conn:
            _print_status(conn)
        return
    if not is_downstream(app.config):
        raise click.ClickException(_("No upstream is set. Run: fieldapp upstream set URL TOKEN"))
    ensure_ready()
    failures = 0
    while True:
        try:
            done = _one_round(app)
        except (sync.SyncError, *db.Error) as exc:
            # The upstream, or this instance's own database (busy with a long write, or a
            # PostgreSQL server failing over): either way nothing was lost, the next round retries.
            if isinstance(exc, sync.SyncError):
                exc = upstream.describe(exc)
            else:
                exc = _("this instance's database: %(error)s", error=str(exc).strip())
            if not watch:
                raise click.ClickException(_("Sync failed: %(error)s", error=str(exc))) from None
            failures += 1
            wait = upstream.backoff(failures, upstream.interval(app))
            click.echo(
                _("Sync failed: %(error)s. Next try in %(s)d s.", error=str(exc), s=int(wait)),
                err=True,
            )
        else:
            failures = 0
            wait = upstream.interval(app)
            click.echo(
                _(
                    "Pushed %(sent)d records (%(new)d new upstream); pulled %(sites)d sites and"
                    " %(roster)d roster rows.",
                    sent=done["pushed"],
                    new=done["applied"],
                    sites=done["pulled"]["sites"],
                    roster=done["pulled"]["roster"],
                )
            )
            refused = _(
                "%(n)d records were refused by the upstream: it keeps them for review"
                " (sync_rejects there), they are not sent again.",
                n=done["refused"],
            )
            held = _(
                "%(n)d records are held back: the upstream could not store them. They"
                " are tried again every round; fieldapp sync --status lists them.",
                n=done["held"],
            )
            for n, line in ((done["refused"], refused), (done["held"], held)):
                if n:
                    click.echo(line, err=True)
            if done.get("retention_notice"):
                click.echo(done["retention_notice"], err=True)
        if not watch:
            return
        time.sleep(wait)


def _one_round(app: Flask) -> dict[str, Any]:
    """A round with a progress bar on a terminal."""
    bar: list[Any] = []

    def start(total: int) -> None:
        if total:
            bar.append(tqdm(total=total, unit=" records", disable=None, leave=False))

    def step(n: int) -> None:
        if bar:
            bar[0].update(n)

    try:
        return upstream.sync_round(app, on_start=start, on_batch=step)
    finally:
        if bar:
            bar[0].close()


commands = [instance_group, upstream_group, sync_command]
