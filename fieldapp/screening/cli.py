"""`fieldapp screening campaign add|list|end` and `fieldapp screening coverage`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

from fieldapp import days
from fieldapp.commands import opened, table_options, write_table
from fieldapp.screening import campaigns, coverage, questions


@click.group("screening")
def screening_group() -> None:
    """Screening (排查): campaigns, and their coverage of a day."""


@screening_group.group("campaign")
def campaign_group() -> None:
    """Campaigns: made at the central, they flow down to every instance and site phone."""


@campaign_group.command("add")
@click.option("--name", required=True, help="e.g. 复工人员排查")
@click.option("--start", default=None, help="First day, YYYY-MM-DD (default: today)")
@click.option("--end", default="", help="Last day, YYYY-MM-DD (default: until ended)")
@click.option(
    "--once",
    is_flag=True,
    help="Screen each person once over the campaign (default: everyone every day)",
)
@click.option("--all-sites", is_flag=True, help="Every site")
@click.option("--district", "districts", multiple=True, help="A district it covers (repeatable)")
@click.option("--site", "sites", multiple=True, help="A site code it covers (repeatable)")
@click.option(
    "--questions",
    "asked",
    default=",".join(questions.QUESTIONS),
    show_default=True,
    help="The questions it asks (comma list)",
)
@with_appcontext
def campaign_add(
    name: str,
    start: str | None,
    end: str,
    once: bool,
    all_sites: bool,
    districts: tuple[str, ...],
    sites: tuple[str, ...],
    asked: str,
) -> None:
    """Make a campaign; prints its id."""
    config = current_app.config
    with opened() as conn:
        made = campaigns.add(
            conn,
            config,
            name,
            start=start or days.today(config["TIMEZONE"]),
            end=end,
            daily=not once,
            all_sites=all_sites,
            districts=districts,
            sites=sites,
            asked=asked,
        )
    click.echo(f"{made.id}\t{made.name}")


@campaign_group.command("list")
@with_appcontext
def campaign_list() -> None:
    """List campaigns: id, name, dates, daily or once, questions, running or ended."""
    with opened() as conn:
        for c in campaigns.listing(conn):
            end = c.end_day.isoformat() if c.end_day else "…"
            how = _("every day") if c.daily else _("once per person")
            state = "" if c.active else "\t" + _("(ended)")
            click.echo(
                f"{c.id}\t{c.name}\t{c.start_day.isoformat()}–{end}\t{how}"
                f"\t{','.join(c.questions)}{state}"
            )


@campaign_group.command("end")
@click.argument("campaign")
@with_appcontext
def campaign_end(campaign: str) -> None:
    """End a campaign (by id or name); its answers are kept."""
    with opened() as conn:
        found = campaigns.find(conn, campaign)
        changed = campaigns.end(conn, current_app.config, found)
    click.echo(
        _("%(name)s has ended.", name=found.name)
        if changed
        else _("%(name)s had ended already.", name=found.name)
    )


@screening_group.command("coverage")
@click.argument("campaign")
@click.option("--date", "day", default=None, help="Local date YYYY-MM-DD (default: today)")
@click.option("--district", default=None, help="Only the sites of this district")
@table_options
@with_appcontext
def coverage_command(
    campaign: str, day: str | None, district: str | None, fmt: str, out: str | None
) -> None:
    """Print a campaign's coverage of a day (table and summary paragraph), or write CSV/XLSX."""
    config = current_app.config
    with opened() as conn:
        try:
            when = days.parse_day(day) if day else days.today(config["TIMEZONE"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--date") from None
        found = campaigns.find(conn, campaign)
        cov = coverage.build(conn, found, when, tz=config["TIMEZONE"], district=district)
    write_table(cov, coverage, fmt, out)


commands = [screening_group]
