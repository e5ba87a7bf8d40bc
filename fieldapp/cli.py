"""The `fieldapp` command: Flask's command group over the app; each area adds its commands."""

from __future__ import annotations

import copy
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup

from fieldapp import settings
from fieldapp.app import create_app
from fieldapp.db import postgres
from fieldapp.helptext import CliContext, use_help_formatter
from fieldapp.i18n import (
    HelpOption,
    cli_locale,
    localise_click,
    localise_paths,
    localise_summaries,
)
from fieldapp.i18n import lazy_cli_gettext as _l
from fieldapp.settings import _

# Flask's own options and commands in `fieldapp --help`, in fieldapp's words and so in the
# user's language (the options of `fieldapp run` itself stay Flask's).
_FLASK_OPTIONS = {
    "env_file": _l("Load environment variables from this file (needs python-dotenv)."),
    "app": _l("The Flask application to load, as module:name; fieldapp's by default."),
    "debug": _l("Set debug mode."),
}
_FLASK_COMMANDS = {
    "routes": _l("Show the routes for the app."),
    "run": _l("Run Flask's development server (an instance uses `fieldapp serve`)."),
    "shell": _l("Run a Python shell in the app context."),
}


def _create_app() -> Flask:
    """The app, or a plain error in the user's language when a setting cannot be used."""
    try:
        return create_app()
    except settings.SettingError as exc:
        raise click.ClickException(exc.translated(cli_locale())) from None


class _Group(FlaskGroup):
    context_class = CliContext  # help wrapped in display columns (fieldapp/helptext.py)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Flask's options and commands, with their help said by fieldapp (copies: Flask's
        own objects are left as they are)."""
        super().__init__(*args, **kwargs)
        for i, param in enumerate(self.params):
            if param.name in _FLASK_OPTIONS:
                ours = copy.copy(param)
                ours.__class__ = HelpOption
                ours.help = _FLASK_OPTIONS[param.name]
                self.params[i] = ours
        for name, summary in _FLASK_COMMANDS.items():
            if name in self.commands:
                command = copy.copy(self.commands[name])
                command.short_help = summary
                self.add_command(command, name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Before Click reads the arguments: its own messages in the user's language."""
        localise_click()
        return super().main(*args, **kwargs)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """A command, with the word for a path Click refuses in the user's language."""
        command = super().get_command(ctx, name)
        localise_paths(command)
        localise_summaries(command)
        use_help_formatter(command)
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


@click.group(
    cls=_Group,
    create_app=_create_app,
    add_version_option=False,
    help=_l("fieldapp: gate registration that works offline and syncs up the chain."),
)
def main() -> None:
    pass


if __name__ == "__main__":
    main()
