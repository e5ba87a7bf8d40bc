"""`fieldapp site …`, `fieldapp roster import` and `fieldapp demo`."""

from __future__ import annotations

import getpass
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

from fieldapp import days, records, rules
from fieldapp.commands import check_qr_file, opened, output_file, pdf_lang_option, read_input
from fieldapp.db import transaction
from fieldapp.gate import demo, passes, qr, roster, sites
from fieldapp.i18n import argument, option
from fieldapp.i18n import lazy_cli_gettext as _l
from fieldapp.phones import devices
from fieldapp.settings import is_downstream


def _url(code: str) -> str:
    return sites.gate_url(current_app.config["BASE_URL"], code)


@click.group(
    "site",
    help=_l("Sites: add, list, rotate a code, close or reopen, choose fields, write a QR poster."),
)
def site_group() -> None:
    pass


@site_group.command("add", help=_l("Create a site and print its code and gate URL."))
@option("--name", required=True, help=_l("Site name, e.g. 阳光花园小区"))
@option(
    "--kind",
    type=click.Choice(list(rules.SITE_KINDS)),
    default="residential",
    show_default=True,
    help=_l("What the site is: a residential compound, a construction site, or other"),
)
@option("--address", default="", help=_l("Street address, shown on the site's poster"))
@option("--district", default="", help=_l("District the site reports to, e.g. 金坛区"))
@option("--contact", default="", help=_l("Who to ask (shown on an out-of-date poster)"))
@option(
    "--fields",
    default=",".join(rules.OPTIONAL_FIELDS),
    show_default=True,
    help=_l("Optional gate-form fields to show (comma list; empty for none)"),
)
@with_appcontext
def site_add(name: str, kind: str, address: str, district: str, contact: str, fields: str) -> None:
    with opened() as conn:
        sites.refuse_if_downstream(current_app.config)
        site = sites.add_site(
            conn,
            name,
            kind,
            address=address,
            district=district,
            contact=contact,
            optional_fields=fields,
        )
    click.echo(f"{site['code']}\t{site['name']}\t{_url(site['code'])}")


@site_group.command(
    "list", help=_l("List sites: code, kind, district, name, gate URL (closed ones marked).")
)
@with_appcontext
def site_list() -> None:
    with opened() as conn:
        closed = "\t" + _("(closed)")
        for site in sites.listing(conn):
            flag = "" if site["active"] else closed
            click.echo(
                f"{site['code']}\t{site['kind']}\t{site['district'] or '-'}\t{site['name']}"
                f"\t{_url(site['code'])}{flag}"
            )


@site_group.command(
    "rotate-code", help=_l("Give the site a new code (old posters then say they are out of date).")
)
@argument("code", help=_l("The site: its code or its id."))
@with_appcontext
def site_rotate_code(code: str) -> None:
    with opened() as conn:
        sites.refuse_if_downstream(current_app.config)
        site = sites.find(conn, code)
        new = sites.rotate_code(conn, site["id"])
    click.echo(f"{new}\t{site['name']}\t{_url(new)}")


def _set_active(code: str, active: bool) -> None:
    with opened() as conn:
        sites.refuse_if_downstream(current_app.config)
        site = sites.find(conn, code)
        changed = sites.set_active(conn, site["id"], active)
        name = site["name"]
        if active and changed:
            message = _(
                "%(name)s is active again: its gate page takes entries and it is back in the roll call.",
                name=name,
            )
        elif active:
            message = _("%(name)s is already active.", name=name)
        elif changed:
            message = _(
                "%(name)s is closed: its gate page says so, no phone can enrol there and it leaves the roll call from tomorrow (today's and earlier days' keep it). Its records are kept.",
                name=name,
            )
        else:
            message = _("%(name)s is already closed.", name=name)
    click.echo(message)


@site_group.command(
    "deactivate",
    help=_l(
        "Close a site that no longer keeps a gate (it leaves the roll call from tomorrow; "
        "records are kept)."
    ),
)
@argument("code", help=_l("The site: its code or its id."))
@with_appcontext
def site_deactivate(code: str) -> None:
    _set_active(code, False)


@site_group.command("activate", help=_l("Open a closed site again."))
@argument("code", help=_l("The site: its code or its id."))
@with_appcontext
def site_activate(code: str) -> None:
    _set_active(code, True)


@site_group.command(
    "fields",
    help=_l("Choose which optional fields a site's gate form asks for (minimum collection)."),
)
@argument("code", help=_l("The site: its code or its id."))
@option(
    "--set",
    "chosen",
    required=True,
    help=_l(
        "Comma-separated optional fields the gate asks for: id_number,phone,plate,destination"
        " (an empty string for none)"
    ),
)
@with_appcontext
def site_fields_command(code: str, chosen: str) -> None:
    with opened() as conn:
        site = sites.set_optional_fields(conn, current_app.config, code, chosen)
    click.echo(f"{site['code']}\t{site['name']}\t{site['optional_fields'] or '-'}")


@site_group.command(
    "self-service",
    help=_l("Whether visitors at a site's gate take their own temperature (self-service)."),
)
@argument("code", help=_l("The site: its code or its id."))
@option(
    "--on/--off",
    "on",
    required=True,
    help=_l(
        "--on: nobody keeps this gate, visitors take their own temperature; --off: the gate"
        " staff take it (the default)"
    ),
)
@with_appcontext
def site_self_service(code: str, on: bool) -> None:
    with opened() as conn:
        site = sites.set_self_service(conn, current_app.config, code, on)
    if on:
        message = _(
            "%(name)s is self-service: visitors take their own temperature, and a fever shows"
            " on their pass.",
            name=site["name"],
        )
    else:
        message = _(
            "%(name)s has gate staff: visitors register without a temperature; the staff scan"
            " their pass and take it.",
            name=site["name"],
        )
    click.echo(message)


@site_group.command("qr", help=_l("Write the site's QR code (its gate URL) as SVG or PNG."))
@argument("code", help=_l("The site: its code or its id."))
@option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=_l("File to write: .svg or .png"),
)
@with_appcontext
def site_qr(code: str, out: Path) -> None:
    check_qr_file(out, "--out")
    with opened() as conn:
        site = sites.find(conn, code)
        note = sites.unreachable_note(current_app.config["BASE_URL"])
    url = _url(site["code"])
    with output_file(out) as f:
        f.write(qr.image(url, out))
    click.echo(f"{out}\t{url}")
    if note:
        click.echo(note, err=True)


@click.group("roster", help=_l("Site rosters (known residents and workers)."))
def roster_group() -> None:
    pass


@roster_group.command(
    "import",
    help=_l(
        "Import FILE.csv (name,phone,unit[,person_type]) into the roster of SITE (code or id)."
    ),
)
@argument("site", help=_l("The site: its code or its id."))
@argument(
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=_l("The roster as a CSV file: name,phone,unit[,person_type] columns."),
)
@with_appcontext
def roster_import(site: str, file: Path) -> None:
    with opened() as conn:
        sites.refuse_if_downstream(current_app.config)
        found = sites.find(conn, site)
        try:
            result = roster.import_csv(
                conn, found, read_input(file), actor=f"cli:{getpass.getuser()}"
            )
        except roster.RosterError as exc:
            for problem in [_("Nothing imported; fix these lines and run again:"), *exc.problems]:
                click.echo(problem, err=True)
            raise SystemExit(1) from None
        click.echo(
            _(
                "%(site)s: %(added)d added, %(updated)d updated, %(unchanged)d unchanged.",
                site=found["name"],
                added=result.added,
                updated=result.updated,
                unchanged=result.unchanged,
            )
        )
        if result.restored:
            click.echo(
                _(
                    "%(n)d people taken off the roster are back on it, with their own roster id"
                    " and pass.",
                    n=result.restored,
                )
            )


@roster_group.command(
    "list", help=_l("List SITE's roster: id, name, unit, person type, date the pass was issued.")
)
@argument("site", help=_l("The site: its code or its id."))
@with_appcontext
def roster_list(site: str) -> None:
    tz = current_app.config["TIMEZONE"]
    with opened() as conn:
        found = sites.find(conn, site)
        for person in passes.roster_of(conn, found["id"]):
            issued = (
                days.local(person["pass_issued_at"], tz).date().isoformat()
                if person["pass_token"]
                else _("no pass")
            )
            click.echo(
                f"{person['id']}\t{person['name']}\t{person['unit'] or '-'}"
                f"\t{person['person_type']}\t{issued}"
            )


@roster_group.command(
    "passes",
    help=_l(
        "Print SITE's passes (出入证): a card per roster person with a QR code the gate scans."
    ),
)
@argument("site", help=_l("The site: its code or its id."))
@option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=_l("The PDF to write (A4, ten cards a page)"),
)
@option(
    "--person",
    "persons",
    multiple=True,
    help=_l("Only this person (roster id or exact name); repeat for more. Default: everyone"),
)
@pdf_lang_option
@with_appcontext
def roster_passes(site: str, out: Path, persons: tuple[str, ...], lang: str) -> None:
    with opened() as conn:
        found = sites.find(conn, site)
        ids = passes.find_people(conn, found["id"], persons) if persons else None
        if not is_downstream(current_app.config):
            passes.issue_missing(conn, found["id"])  # people from before passes existed
        people = passes.people(conn, found["id"], ids)
        wanted = len(ids) if ids is not None else len(passes.roster_of(conn, found["id"]))
        missing = wanted - len(people)
        pdf = passes.render(
            found,
            people,
            printed=days.today(current_app.config["TIMEZONE"]),
            tz_name=current_app.config["TIMEZONE"],
            language=lang,
        )
        with output_file(out) as f:
            f.write(pdf)
        passes.printed(conn, found["id"], len(people), actor=f"cli:{getpass.getuser()}")
        click.echo(
            _(
                "%(file)s: %(n)d passes of %(site)s.",
                file=str(out),
                n=len(people),
                site=found["name"],
            )
        )
        if missing:
            click.echo(
                _(
                    "%(n)d people have no pass yet: they are issued on the instance that keeps"
                    " the roster (the central).",
                    n=missing,
                ),
                err=True,
            )


@roster_group.command(
    "reissue",
    help=_l("Give new passes: the old cards stop working at the gate once the roster reaches it."),
)
@argument("site", help=_l("The site: its code or its id."))
@option("--person", "persons", multiple=True, help=_l("Roster id or exact name; repeat for more"))
@option("--all", "everyone", is_flag=True, help=_l("Every person of the roster"))
@with_appcontext
def roster_reissue(site: str, persons: tuple[str, ...], everyone: bool) -> None:
    if bool(persons) == everyone:
        raise click.UsageError(_("Name the people with --person, or give --all."))
    with opened() as conn:
        sites.refuse_if_downstream(current_app.config)
        found = sites.find(conn, site)
        ids = None if everyone else passes.find_people(conn, found["id"], persons)
        n = passes.reissue(conn, found["id"], ids, actor=f"cli:{getpass.getuser()}")
    click.echo(
        _(
            "%(n)d passes of %(site)s reissued: print them with `fieldapp roster passes`; the"
            " old cards no longer open the gate.",
            n=n,
            site=found["name"],
        )
    )


@roster_group.command(
    "deactivate",
    help=_l(
        "Take people off SITE's roster (moved out, left the site): the gates no longer know"
        " them; they are deleted RETENTION_DAYS later."
    ),
)
@argument("site", help=_l("The site: its code or its id."))
@argument("persons", nargs=-1, required=True, help=_l("The people: roster ids or exact names."))
@with_appcontext
def roster_deactivate(site: str, persons: tuple[str, ...]) -> None:
    _set_people_active(site, persons, False)


@roster_group.command(
    "activate",
    help=_l("Put people taken off SITE's roster back on it (roster id or exact name)."),
)
@argument("site", help=_l("The site: its code or its id."))
@argument("persons", nargs=-1, required=True, help=_l("The people: roster ids or exact names."))
@with_appcontext
def roster_activate(site: str, persons: tuple[str, ...]) -> None:
    _set_people_active(site, persons, True)


def _set_people_active(site: str, persons: tuple[str, ...], active: bool) -> None:
    with opened() as conn:
        sites.refuse_if_downstream(current_app.config)
        found = sites.find(conn, site)
        ids = passes.find_people(conn, found["id"], persons, active=not active)
        n = roster.set_active(conn, found["id"], ids, active, actor=f"cli:{getpass.getuser()}")
        kept = records.retention_days(conn, current_app.config)
    if active:
        click.echo(_("%(site)s: %(n)d people back on the roster.", site=found["name"], n=n))
        return
    click.echo(
        _(
            "%(site)s: %(n)d people taken off the roster; they are deleted %(days)d days"
            " from now unless put back.",
            site=found["name"],
            n=n,
            days=kept,
        )
    )


@click.command(
    "demo",
    help=_l(
        "Seed a demo compound and construction site when there are no sites; print gate URLs "
        "and a one-time link per site to enrol a phone (without one a gate URL shows the "
        "visitor's form)."
    ),
)
@with_appcontext
def demo_command() -> None:
    with opened() as conn:
        if is_downstream(current_app.config):
            click.echo(
                _("This instance has an upstream: its sites come from there; no demo seeded.")
            )
            return
        made = demo.seed(conn)
        shown = [site for site in made or sites.listing(conn) if site["active"]]
        click.echo(_("Demo sites created:") if made else _("Sites exist already; nothing seeded."))
        for site in shown:
            click.echo(f"  {site['name']}: {_url(site['code'])}")
        with transaction(conn):
            links = [
                (site, devices.create_enrolment(conn, site["code"], _("Demo phone"))[0])
                for site in shown
            ]
        for site, token in links:
            click.echo(_("Enrol a phone for %(site)s (one-time link, 24 h):", site=site["name"]))
            click.echo(f"  {devices.enrol_url(token)}")


commands = [site_group, roster_group, demo_command]
