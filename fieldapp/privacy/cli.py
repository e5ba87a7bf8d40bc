"""`fieldapp purge`: delete what is past the retention horizons now (serve does it daily)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

from fieldapp import days
from fieldapp.commands import ensure_ready, localised
from fieldapp.i18n import lazy_cli_gettext as _l
from fieldapp.privacy import retention


@click.command(
    "purge",
    help=_l(
        "Delete entries (and what points at them) and people taken off a roster past"
        " RETENTION_DAYS, reports past theirs."
    ),
)
@with_appcontext
@localised
def purge_command() -> None:
    ensure_ready()
    try:
        result = retention.purge_app(current_app._get_current_object(), trigger="cli")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        _(
            "Purged %(entries)d entries recorded before %(horizon)s, %(dependents)d records "
            "that pointed at them, %(reports)d daily reports before %(day)s, %(rejects)d "
            "refused sync records.",
            entries=result.entries,
            horizon=days.local_text(result.horizon, current_app.config["TIMEZONE"]),
            dependents=result.dependents,
            reports=result.reports,
            day=result.report_horizon,
            rejects=result.rejects,
        )
    )
    click.echo(
        _(
            "Deleted %(n)d people taken off a roster before %(horizon)s.",
            n=result.roster,
            horizon=days.local_text(result.horizon, current_app.config["TIMEZONE"]),
        )
    )
    if result.lingering:
        click.echo(
            _(
                "The write-ahead log could not be emptied (the database was busy): the purged"
                " rows may linger in its files until the next checkpoint. Run `fieldapp purge`"
                " again later."
            ),
            err=True,
        )


commands = [purge_command]
