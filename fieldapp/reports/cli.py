"""`fieldapp report daily` (the roll-call of a day) and `fieldapp posters` (QR posters, PDF)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

from fieldapp import days
from fieldapp.commands import (
    given_day,
    opened,
    output_file,
    pdf_lang_option,
    table_options,
    write_table,
)
from fieldapp.gate.sites import unreachable_note
from fieldapp.i18n import lazy_cli_gettext as _l
from fieldapp.i18n import option
from fieldapp.reports import posters, rollcall


@click.group("report", help=_l("Daily reports and the roll-call."))
def report_group() -> None:
    pass


@report_group.command(
    "daily", help=_l("Print the roll-call of a day: reported, zero, late, missing, with totals.")
)
@option("--date", "day", default=None, help=_l("Local date YYYY-MM-DD (default: today)"))
@option("--district", default=None, help=_l("Only the sites of this district"))
@table_options
@with_appcontext
def report_daily(day: str | None, district: str | None, fmt: str, out: str | None) -> None:
    config = current_app.config
    with opened() as conn:
        try:
            days.parse_cutoff(config["REPORT_CUTOFF"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--date") from None
        today = days.today(config["TIMEZONE"])
        when = given_day(day, "--date", today)
        if when > today:  # every site would read "missing", as the console says too
            raise click.BadParameter(
                _(
                    "%(day)s has not come yet: the roll-call shows today and the days before.",
                    day=when.isoformat(),
                ),
                param_hint="--date",
            )
        rc = rollcall.build(
            conn,
            when,
            tz_name=config["TIMEZONE"],
            cutoff=config["REPORT_CUTOFF"],
            district=district,
        )
        if district and not rc.rows:
            raise click.ClickException(
                _(
                    "No site of district %(d)s was open on %(day)s.",
                    d=district,
                    day=when.isoformat(),
                )
            )
    write_table(rc, rollcall, fmt, out)


@click.command(
    "posters", help=_l("Write an A4 poster per active site (QR code, instructions) into one PDF.")
)
@option("--out", required=True, type=click.Path(dir_okay=False), help=_l("PDF file to write"))
@option("--district", default=None, help=_l("Only the sites of this district"))
@pdf_lang_option
@with_appcontext
def posters_command(out: str, district: str | None, lang: str) -> None:
    config = current_app.config
    with opened() as conn:  # a missing font (pdffont.FontMissing) is said, not a traceback
        sites = posters.sites_for(conn, district)
        if district and not sites:
            raise click.ClickException(_("No active site in district %(d)s.", d=district))
        pdf = posters.render(
            sites,
            base_url=config["BASE_URL"],
            printed=days.today(config["TIMEZONE"]),
            language=lang,
        )
        note = unreachable_note(config["BASE_URL"])
    with output_file(out) as f:
        f.write(pdf)
    click.echo(f"{out}\t{len(sites)}")
    if note:
        click.echo(note, err=True)


commands = [report_group, posters_command]
