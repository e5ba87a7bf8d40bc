"""`fieldapp screening campaign add|list|end` and `fieldapp screening coverage`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

from fieldapp import days
from fieldapp.commands import given_day, opened, table_options, write_table
from fieldapp.i18n import argument, option
from fieldapp.i18n import lazy_cli_gettext as _l
from fieldapp.screening import campaigns, coverage, questions


@click.group("screening", help=_l("Screening (排查): campaigns, and their coverage of a day."))
def screening_group() -> None:
    pass


@screening_group.group(
    "campaign",
    help=_l("Campaigns: made at the central, they flow down to every instance and site phone."),
)
def campaign_group() -> None:
    pass


@campaign_group.command("add", help=_l("Make a campaign; prints its id."))
@option("--name", required=True, help=_l("e.g. 复工人员排查"))
@option("--start", default=None, help=_l("First day, YYYY-MM-DD (default: today)"))
@option("--end", default=None, help=_l("Last day, YYYY-MM-DD (default: until ended)"))
@option(
    "--once",
    is_flag=True,
    help=_l("Screen each person once over the campaign (default: everyone every day)"),
)
@option("--all-sites", is_flag=True, help=_l("Every site"))
@option("--district", "districts", multiple=True, help=_l("A district it covers (repeatable)"))
@option("--site", "sites", multiple=True, help=_l("A site code it covers (repeatable)"))
@option(
    "--questions",
    "asked",
    default=",".join(questions.QUESTIONS),
    show_default=True,
    help=_l("The questions it asks (comma list)"),
)
@with_appcontext
def campaign_add(
    name: str,
    start: str | None,
    end: str | None,
    once: bool,
    all_sites: bool,
    districts: tuple[str, ...],
    sites: tuple[str, ...],
    asked: str,
) -> None:
    config = current_app.config
    first = given_day(start, "--start", days.today(config["TIMEZONE"]))
    last = given_day(end, "--end")
    with opened() as conn:
        made = campaigns.add(
            conn,
            config,
            name,
            start=first,
            end=last or "",
            daily=not once,
            all_sites=all_sites,
            districts=districts,
            sites=sites,
            asked=asked,
        )
    click.echo(f"{made.id}\t{made.name}")


@campaign_group.command(
    "list", help=_l("List campaigns: id, name, dates, daily or once, questions, running or ended.")
)
@with_appcontext
def campaign_list() -> None:
    with opened() as conn:
        for c in campaigns.listing(conn):
            end = c.end_day.isoformat() if c.end_day else "…"
            how = _("every day") if c.daily else _("once per person")
            state = "" if c.active else "\t" + _("(ended)")
            click.echo(
                f"{c.id}\t{c.name}\t{c.start_day.isoformat()}–{end}\t{how}"
                f"\t{','.join(c.questions)}{state}"
            )


@campaign_group.command("end", help=_l("End a campaign (by id or name); its answers are kept."))
@argument("campaign", help=_l("The campaign: its id or its name."))
@with_appcontext
def campaign_end(campaign: str) -> None:
    with opened() as conn:
        found = campaigns.find(conn, campaign)
        changed = campaigns.end(conn, current_app.config, found)
    click.echo(
        _("%(name)s has ended.", name=found.name)
        if changed
        else _("%(name)s had ended already.", name=found.name)
    )


@screening_group.command(
    "coverage",
    help=_l(
        "Print a campaign's coverage of a day (table and summary paragraph), or write CSV/XLSX."
    ),
)
@argument("campaign", help=_l("The campaign: its id or its name."))
@option("--date", "day", default=None, help=_l("Local date YYYY-MM-DD (default: today)"))
@option("--district", default=None, help=_l("Only the sites of this district"))
@table_options
@with_appcontext
def coverage_command(
    campaign: str, day: str | None, district: str | None, fmt: str, out: str | None
) -> None:
    config = current_app.config
    with opened() as conn:
        when = given_day(day, "--date", days.today(config["TIMEZONE"]))
        found = campaigns.find(conn, campaign)
        cov = coverage.build(conn, found, when, tz=config["TIMEZONE"], district=district)
        if district is not None and not cov.rows:  # a typo would read as everyone screened
            raise click.ClickException(
                _(
                    "“%(campaign)s” screens no site of %(district)s on %(day)s.",
                    campaign=found.name,
                    district=district,
                    day=when.isoformat(),
                )
            )
    write_table(cov, coverage, fmt, out)


commands = [screening_group]
