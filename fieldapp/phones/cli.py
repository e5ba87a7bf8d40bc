"""`fieldapp device …` (enrol, list, revoke phones) and `fieldapp import-outbox FILE`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale
from flask_babel import gettext as _

from fieldapp.commands import check_qr_file, opened, output_file, read_input
from fieldapp.db import transaction
from fieldapp.gate import qr, sites
from fieldapp.i18n import argument, cli_locale, option
from fieldapp.i18n import lazy_cli_gettext as _l
from fieldapp.phones import devices, outbox_import


@click.group("device", help=_l("Enrol, list and revoke volunteers' phones."))
def device_group() -> None:
    pass


@device_group.command(
    "enrol",
    help=_l("Print a one-time enrolment link for a phone (and write it as a QR code with --qr)."),
)
@option("--site", "site_code", required=True, help=_l("The site's code (as on its poster)."))
@option("--name", required=True, help=_l("A name for the phone, e.g. 东门 1 号机."))
@option(
    "--hours",
    default=devices.ENROL_HOURS,
    show_default=True,
    type=int,
    help=_l("Hours the link works (it works once)"),
)
@option(
    "--qr",
    "qr_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=_l("Also write the link as a QR code to this file: .svg or .png"),
)
@with_appcontext
def enrol_command(site_code: str, name: str, hours: int, qr_path: Path | None) -> None:
    if qr_path is not None:
        check_qr_file(qr_path, "--qr")
    with opened() as conn, transaction(conn):  # no enrolment unless its QR file is written
        token, expires = devices.create_enrolment(conn, site_code, name, hours)
        link = devices.enrol_url(token)
        if qr_path is not None:
            with output_file(qr_path) as f:
                f.write(qr.image(link, qr_path))
    click.echo(link)
    with force_locale(cli_locale()):
        click.echo(_("Open it on the phone once, before %(when)s (UTC).", when=expires), err=True)
        if qr_path is not None:
            click.echo(_("QR code written to %(path)s", path=str(qr_path)), err=True)
        note = sites.unreachable_note(current_app.config["BASE_URL"])
        if note:
            click.echo(note, err=True)


@device_group.command("list", help=_l("List enrolled phones."))
@with_appcontext
def list_command() -> None:
    with opened() as conn:
        for r in devices.listing(conn):
            state = "revoked" if r["revoked_at"] else "active"
            click.echo(
                f"{r['id']}\t{r['name']}\t{r['site_code'] or '-'}\t{state}\t"
                f"{r['created_at']}\t{r['last_push_at'] or '-'}\t{r['records_in']}"
            )


@device_group.command(
    "revoke",
    help=_l(
        "Revoke a phone by name or id: its pushes are refused until it is enrolled again. The"
        " unused enrolment links of that name stop working too."
    ),
)
@argument("name_or_id", help=_l("The phone: its name or its id."))
@option("--site", "site_code", help=_l("The site's code: only its phone of that name is revoked."))
@with_appcontext
def revoke_command(name_or_id: str, site_code: str | None) -> None:
    with opened() as conn:
        count, links = devices.revoke(conn, name_or_id, site_code)
        if not count and not links:
            raise click.ClickException(_("No active phone is called %(name)s.", name=name_or_id))
        if count:
            click.echo(_("Revoked %(n)d phone(s).", n=count))
        if links:
            click.echo(_("Cancelled %(n)d unused enrolment link(s).", n=links))


@click.command(
    "import-outbox",
    help=_l(
        "Import an outbox file exported from a phone (safe to run twice). Exits with 1 when "
        "some of its records are not stored yet: keep the file and import it again later."
    ),
)
@argument(
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=_l("The outbox file the phone exported."),
)
@with_appcontext
def import_outbox_command(file: Path) -> None:
    with opened() as conn:
        summary = outbox_import.import_bytes(conn, read_input(file), source=f"import:{file.name}")
        click.echo(outbox_import.describe(summary))
    for uuid, reason in summary[1]:
        click.echo(f"{uuid}\t{reason}", err=True)
    if summary[0]["held"]:  # `import-outbox f && rm f` must keep a file still needed
        raise SystemExit(1)


commands = [device_group, import_outbox_command]
