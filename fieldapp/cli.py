"""The `fieldapp` command: Flask's command group over the app; each area adds its commands."""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup

from fieldapp import settings
from fieldapp.app import create_app
from fieldapp.db import postgres
from fieldapp.i18n import cli_locale, localise_click, localise_paths
from fieldapp.settings import _


def _create_app() -> Flask:
    """The app, or a plain error in the user's language when a setting cannot be used."""
    try:
        return create_app()
    except settings.SettingError as exc:
        raise click.ClickException(exc.translated(cli_locale())) from None


class _Group(FlaskGroup):
    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Before Click reads the arguments: its own messages in the user's language."""
        localise_click()
        return super().main(*args, **kwargs)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """A command, with the word for a path Click refuses in the user's language."""
        command = super().get_command(ctx, name)
        localise_paths(command)
        return command

    def invoke(self, ctx: click.Context) -> object:
        """A PostgreSQL server that cannot be reached (DATABASE_URL) is said in one line."""
        try:
            return super().invoke(ctx)
        except postgres.OperationalError as exc:
            reason = (str(exc).strip() or type(exc).__name__).splitlines()[0]  # libpq's why
            problem = settings.SettingError(
                _("Cannot reach the database of DATABASE_URL: %(error)s"), error=reason
            )
            raise click.ClickException(problem.translated(cli_locale())) from None


@click.group(cls=_Group, create_app=_create_app, add_version_option=False)
def main() -> None:
    """fieldapp: gate registration that works offline and syncs up the chain."""


if __name__ == "__main__":
    main()
