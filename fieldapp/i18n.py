"""Languages: zh-Hans by default, zh-Hant and English, chosen per request and remembered."""

from __future__ import annotations

import functools
import gettext
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from babel import support
from flask import Blueprint, Flask, has_request_context, redirect, request
from flask_babel import Babel, get_locale
from flask_babel.speaklater import LazyString

LANGUAGES = {"zh_Hans": "简体中文", "zh_Hant": "繁體中文", "en": "English"}
DEFAULT = "zh_Hans"
COOKIE = "lang"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"

bp = Blueprint("i18n", __name__)


# Regions whose Chinese is written in Traditional characters when a tag names no script.
TRADITIONAL_REGIONS = ("tw", "hk", "mo")


def language(code: Any) -> str | None:
    """One of ours from a language's code as a link, a cookie or ?lang= gives it: zh_Hant as
    the pages write it, zh-Hant as BCP 47 does, in any case (ZH-HANT, en, EN); else None."""
    if not isinstance(code, str):
        return None
    wanted = code.replace("-", "_").lower()
    return next((ours for ours in LANGUAGES if ours.lower() == wanted), None)


def _from_tag(tag: str) -> str | None:
    """Map a language tag (zh-CN, zh-Hant-TW, zh-Hans-TW, en-GB…) to one of ours: for Chinese
    the script subtag decides (Hant, Hans), else the region (TW, HK, MO: Traditional), else
    Simplified."""
    subtags = tag.replace("_", "-").lower().split("-")
    if subtags[0] == "zh":
        named = []
        for sub in subtags[1:]:
            if len(sub) == 1:  # an extension or private use follows: no script nor region
                break
            named.append(sub)
        if "hant" in named:
            return "zh_Hant"
        if "hans" in named:
            return "zh_Hans"
        return "zh_Hant" if any(sub in TRADITIONAL_REGIONS for sub in named) else "zh_Hans"
    if subtags[0] == "en":
        return "en"
    return None


def select_locale() -> str:
    """?lang= for this page, else the remembered choice, else Accept-Language, else zh-Hans.

    Outside a request (a background sync, a command) the language of the server's user."""
    if not has_request_context():
        return cli_locale()
    for candidate in (request.args.get("lang"), request.cookies.get(COOKIE)):
        found = language(candidate)
        if found:
            return found
    for tag, _quality in request.accept_languages:
        found = _from_tag(tag)
        if found:
            return found
    return DEFAULT


def html_lang() -> str:
    """The language of this answer as HTML and the manifest name it (zh-Hans, zh-Hant, en)."""
    locale = str(get_locale())
    return {"zh_Hans": "zh-Hans", "zh_Hant": "zh-Hant"}.get(locale, locale)


def cli_locale() -> str:
    """The language of a command-line user, from LC_ALL / LC_MESSAGES / LANG."""
    for var in ("FIELDAPP_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value and value not in ("C", "POSIX", "C.UTF-8"):
            return _from_tag(value.split(".")[0]) or DEFAULT
    return DEFAULT


def localise_click() -> None:
    """Click's own messages (a missing option, a value it cannot read, "Usage:") in the
    command-line user's language too: Click asks Python's gettext, which reads LANGUAGE."""
    os.environ["LANGUAGE"] = cli_locale()
    gettext.bindtextdomain("messages", str(TRANSLATIONS / "click"))


def localise_paths(command: Any) -> None:
    """The word Click puts before a path it refuses ("File 'x.csv' does not exist.") in the
    user's language: Click translates it once, as a command is defined, before localise_click
    has chosen a language; this says it again, now, for command and its subcommands."""
    for param in getattr(command, "params", ()):
        kind = param.type
        if isinstance(kind, click.Path):
            if kind.file_okay and not kind.dir_okay:
                kind.name = gettext.gettext("file")
            elif kind.dir_okay and not kind.file_okay:
                kind.name = gettext.gettext("directory")
            else:
                kind.name = gettext.gettext("path")
    for sub in getattr(command, "commands", {}).values():
        localise_paths(sub)


@functools.cache
def cli_catalog(locale: str) -> support.Translations:
    """Every area's catalog for locale, merged as Flask-Babel merges them for a page."""
    merged = support.Translations()
    for folder in sorted(p for p in TRANSLATIONS.iterdir() if p.is_dir() and p.name != "click"):
        found = support.Translations.load(str(folder), [locale])
        if isinstance(found, support.Translations):
            merged.merge(found)
    return merged


def cli_gettext(message: str, **params: Any) -> str:
    """message in the command-line user's language, whether or not an app exists yet (the
    help of `fieldapp` and its commands is shown before any app is made, or without one)."""
    text = cli_catalog(cli_locale()).gettext(message)
    return text % params if params else text


class CliText(LazyString):
    """A command's or an option's help (the English text is the msgid), translated each time
    Click shows it: `fieldapp --help`, `fieldapp site add --help`."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(cli_gettext, message, **params)
        self.message = message


def lazy_cli_gettext(message: str, **params: Any) -> CliText:
    """Mark a command's or an option's help; import it as _l so the catalogs find it."""
    return CliText(message, **params)


class HelpOption(click.Option):
    """click.Option with its help kept as given: Click tidies an option's help as the
    command is defined, which would translate a CliText then, once, not when it is shown."""

    def __init__(self, *args: Any, help: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = help

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        """Click's record, with the help as the text it is now (Click measures it as a str)."""
        record = super().get_help_record(ctx)
        return None if record is None else (record[0], str(record[1]))


def option(*param_decls: str, **attrs: Any) -> Callable[[Any], Any]:
    """click.option for fieldapp's commands: help=_l("…") is shown in the user's language."""
    return click.option(*param_decls, cls=HelpOption, **attrs)


class HelpArgument(click.Argument):
    """click.Argument with its help kept as given, as HelpOption (Click lists an argument that
    has a help under "Positional arguments", before the options)."""

    def __init__(self, *args: Any, help: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = help

    def get_help_record(self, ctx: click.Context) -> tuple[str, str]:
        metavar, text = super().get_help_record(ctx)
        return metavar, str(text)


def argument(*param_decls: str, **attrs: Any) -> Callable[[Any], Any]:
    """click.argument for fieldapp's commands: help=_l("…") is shown in the user's language."""
    return click.argument(*param_decls, cls=HelpArgument, **attrs)


def summary(text: Any) -> str:
    """The first sentence of a command's help, for the listing of its group: up to a Chinese
    full stop, an English one before a capital letter, or a semicolon (what follows is detail),
    outside brackets. Click's own cut knows only the English full stop, and shortens a Chinese
    text mid-word with "..."."""
    words = " ".join(str(text).partition("\n\n")[0].split())
    depth = 0
    for i, char in enumerate(words):
        if char in "(（":
            depth += 1
        elif char in ")）":
            depth = max(depth - 1, 0)
        elif depth == 0 and char == "。":
            return words[: i + 1]
        elif depth == 0 and char in ";；":
            return words[:i]
        elif depth == 0 and char == "." and re.match(r"\s+[A-Z]", words[i + 1 :]):
            return words[: i + 1]
    return words


def localise_summaries(command: Any) -> None:
    """Give command and its subcommands, whose help is a CliText, a summary in the user's
    language for their group's listing (the first sentence of the help, translated)."""
    if command is not None and isinstance(command.help, CliText) and command.short_help is None:
        command.short_help = LazyString(summary, command.help)
    for sub in getattr(command, "commands", {}).values():
        localise_summaries(sub)


def local_path(target: str | None, fallback: str) -> str:
    r"""target if it is a path on this site, else fallback: a redirect never leads elsewhere
    (a browser reads a backslash as a slash and drops tabs and line breaks: "/\evil.example"
    and "/\t/evil.example" are other sites to it)."""
    target = target or ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return fallback
    return target


@bp.route("/lang/<code>")
def choose(code: str):
    """Remember a language choice and go back to the page it was made on."""
    response = redirect(local_path(request.args.get("next", "/"), "/"))
    chosen = language(code)
    if chosen:
        response.set_cookie(COOKIE, chosen, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response


def init_app(app: Flask) -> None:
    """Set up Flask-Babel over every area's catalog folder."""
    directories = sorted(str(p) for p in TRANSLATIONS.iterdir() if p.is_dir())
    Babel(
        app,
        locale_selector=select_locale,
        default_locale=DEFAULT,
        default_translation_directories=";".join(directories) or str(TRANSLATIONS),
    )
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.register_blueprint(bp)

    @app.context_processor
    def _language():
        return {"current_language": str(get_locale()), "html_lang": html_lang()}

    @app.after_request
    def _vary_language(response):
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
        return response
