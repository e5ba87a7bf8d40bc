"""Languages: zh-Hans by default, zh-Hant and English, chosen per request and remembered."""

from __future__ import annotations

import gettext
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, has_request_context, redirect, request
from flask_babel import Babel, get_locale

LANGUAGES = {"zh_Hans": "简体中文", "zh_Hant": "繁體中文", "en": "English"}
DEFAULT = "zh_Hans"
COOKIE = "lang"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"

bp = Blueprint("i18n", __name__)


def _from_tag(tag: str) -> str | None:
    """Map a language tag (zh-CN, zh-Hant-TW, en-GB…) to one of ours."""
    tag = tag.replace("_", "-").lower()
    if tag.startswith("zh"):
        traditional = ("hant", "-tw", "-hk", "-mo")
        return "zh_Hant" if any(t in tag for t in traditional) else "zh_Hans"
    if tag.startswith("en"):
        return "en"
    return None


def select_locale() -> str:
    """?lang= for this page, else the remembered choice, else Accept-Language, else zh-Hans.

    Outside a request (a background sync, a command) the language of the server's user."""
    if not has_request_context():
        return cli_locale()
    for candidate in (request.args.get("lang"), request.cookies.get(COOKIE)):
        if candidate in LANGUAGES:
            return candidate
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
    import click

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
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
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
