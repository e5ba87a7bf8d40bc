"""`fieldapp user …` (console accounts) and `fieldapp export` (the log to CSV or XLSX)."""

from __future__ import annotations

import getpass
import os
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _
from tqdm import tqdm

from fieldapp import audit, days, rules
from fieldapp.commands import given_day, opened, output_file
from fieldapp.console import accounts, exports, logbook
from fieldapp.db import transaction
from fieldapp.gate import sites
from fieldapp.i18n import argument, cli_locale, option
from fieldapp.i18n import lazy_cli_gettext as _l
from fieldapp.privacy.ids import IdVault


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        try:
            password = sys.stdin.readline().rstrip("\r\n")
            password.encode("utf-8")  # bytes that are not UTF-8 may arrive as lone surrogates
        except UnicodeError:
            with force_locale(cli_locale()):
                message = _("The password read from standard input is not UTF-8 text.")
            raise click.ClickException(message) from None
        return password
    with force_locale(cli_locale()):
        label, again = _("Password"), _("Repeat for confirmation")
    return click.prompt(label, hide_input=True, confirmation_prompt=again)


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v.strip()]


@click.group("user", help=_l("Console accounts."))
def user_group() -> None:
    pass


@user_group.command(
    "add", help=_l("Create a console account; the password is asked for (or read from stdin).")
)
@argument("name", help=_l("The console account's name."))
@option(
    "--role",
    required=True,
    type=click.Choice(list(accounts.ROLES)),
    help=_l("admin: everything; coordinator: their sites or districts; viewer: reads those only"),
)
@option("--sites", help=_l("Comma-separated site codes (coordinators, viewers)"))
@option("--districts", help=_l("Comma-separated district names (coordinators, viewers)"))
@option("--password-stdin", is_flag=True, help=_l("Read the password from standard input"))
@with_appcontext
def user_add(
    name: str, role: str, sites: str | None, districts: str | None, password_stdin: bool
) -> None:
    password = _read_password(password_stdin)
    with opened() as conn:
        user = accounts.create_user(conn, name, role, password, _split(sites), _split(districts))
        click.echo(_("The account %(name)s is created.", name=user.name))


@user_group.command("passwd", help=_l("Set a new password for a console account."))
@argument("name", help=_l("The console account's name."))
@option("--password-stdin", is_flag=True, help=_l("Read the password from standard input"))
@with_appcontext
def user_passwd(name: str, password_stdin: bool) -> None:
    password = _read_password(password_stdin)
    with opened() as conn:
        accounts.set_password(conn, name, password)
        click.echo(_("The password of %(name)s is changed.", name=name))


@user_group.command("disable", help=_l("Disable a console account (it stays in the audit log)."))
@argument("name", help=_l("The console account's name."))
@with_appcontext
def user_disable(name: str) -> None:
    with opened() as conn:
        accounts.disable_user(conn, name)
        click.echo(_("The account %(name)s is disabled.", name=name))


@user_group.command("list", help=_l("List console accounts with their role and scope."))
@with_appcontext
def user_list() -> None:
    with opened() as conn:
        for user in accounts.active_users(conn):
            scope = ",".join(user.districts + user.sites) or "*"
            click.echo(f"{user.name}\t{user.role}\t{scope}")


@click.command("export", help=_l("Export the log (all sites) to CSV or XLSX, with a progress bar."))
@option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx"]),
    default="csv",
    show_default=True,
    help=_l("File format"),
)
@option("-o", "--output", required=True, type=click.Path(dir_okay=False), help=_l("File to write"))
@option("--site", "site_code", help=_l("Only this site (its code)"))
@option("--from", "date_from", help=_l("First local day, YYYY-MM-DD"))
@option("--to", "date_to", help=_l("Last local day, YYYY-MM-DD"))
@option("--fever", is_flag=True, help=_l("Only temperatures ≥ %(fever)s °C", fever=rules.FEVER_AT))
@option("--travel", is_flag=True, help=_l("Only people with travel to a risk area"))
@option("--full", is_flag=True, help=_l("Full phone and ID numbers (written to the audit log)"))
@with_appcontext
def export_command(fmt, output, site_code, date_from, date_to, fever, travel, full) -> None:
    tz = days.zone(current_app.config["TIMEZONE"])
    args = {}
    for key, value, hint in (("date_from", date_from, "--from"), ("date_to", date_to, "--to")):
        day = given_day(value, hint)
        args[key] = day.isoformat() if day else ""
    with opened() as conn:
        if site_code:
            args["site"] = sites.find(conn, site_code)["id"]
        if fever:
            args["fever"] = "1"
        if travel:
            args["travel"] = "1"
        filters, errors = logbook.parse_filters(args, None)
        if errors:
            raise click.ClickException(" ".join(errors))
        vault = IdVault(current_app.config.get("ID_KEY")) if full else None
        written = 0  # what the file holds, as said and logged (the count sizes the bar)
        with tqdm(total=logbook.count(conn, filters, None, tz), unit="rows", disable=None) as bar:

            def progress(k: int) -> None:
                nonlocal written
                written += k
                bar.update(k)

            # A CSV file quotes text that would start a formula; an XLSX cell holds it as is.
            guard = fmt == "csv"
            chunks = exports.rows(conn, filters, None, tz, "admin", full, vault, guard=guard)
            with output_file(output, private=full) as out:  # full numbers: its owner only
                if fmt == "csv":
                    for piece in exports.csv_chunks(chunks, progress):
                        out.write(piece.encode("utf-8"))
                else:
                    written = exports.write_xlsx(chunks, out, bar.update)
        # Logged once the file is in place: a failed export leaves neither file nor row. Should
        # the row fail, the file goes too: no full export without its line in the audit log.
        try:
            with transaction(conn):
                detail = f"{fmt} full={int(full)} rows={written} {filters.audited()}"
                audit.write(conn, f"cli:{getpass.getuser()}", "export", output, detail)
        except BaseException:
            os.unlink(output)
            raise
        click.echo(_("%(n)d entries written to %(path)s", n=written, path=output), err=True)


commands = [user_group, export_command]
