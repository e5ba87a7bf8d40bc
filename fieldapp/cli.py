"""The `fieldapp` command: Flask's command group over the app; each area adds its commands."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup

from fieldapp import settings
from fieldapp.app import create_app
from fieldapp.i18n import cli_locale


def _create_app() -> Flask:
    """The app, or a plain error in the user's language when a setting cannot be used."""
    try:
        return create_app()
    except settings.SettingError as exc:
        raise click.ClickException(exc.translated(cli_locale())) from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """fieldapp: gate registration that works offline and syncs up the chain."""


if __name__ == "__main__":
    main()
