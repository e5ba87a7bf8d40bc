"""Which user-visible strings lack a translation. Run directly to list them:

    .venv/bin/python tests/i18n_catalog.py

Every area keeps its own catalog, fieldapp/translations/<area>/<lang>/LC_MESSAGES/messages.po;
Flask-Babel merges them. A string may be translated in any one area's catalog.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "fieldapp" / "translations"
LANGS = ("zh_Hans", "zh_Hant")
METHODS = [("**.py", "python"), ("**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "_l": None, "ngettext": (1, 2)}


def source_messages() -> dict[str, str]:
    """msgid -> where it is first used, across fieldapp/ and templates/."""
    found: dict[str, str] = {}
    for folder in ("fieldapp", "templates"):
        for filename, lineno, message, _comments, _ctx in extract_from_dir(
            ROOT / folder,
            METHODS,
            keywords=KEYWORDS,
            options_map={"**.html": {"extensions": "jinja2.ext.do"}},
        ):
            for msgid in message if isinstance(message, tuple) else (message,):
                if msgid:
                    found.setdefault(msgid, f"{folder}/{filename}:{lineno}")
    return found


def translated(lang: str) -> dict[str, str]:
    """msgid -> msgstr merged over every area's catalog for a language."""
    merged: dict[str, str] = {}
    for po in sorted(TRANSLATIONS.glob(f"*/{lang}/LC_MESSAGES/messages.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang)
        for message in catalog:
            if not message.id:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strs = message.string if isinstance(message.string, tuple) else (message.string,)
            if all(strs):
                for msgid in ids:
                    merged[msgid] = strs[0]
    return merged


def missing() -> dict[str, list[tuple[str, str]]]:
    """lang -> [(msgid, where used)] for every untranslated string."""
    sources = source_messages()
    out = {}
    for lang in LANGS:
        have = translated(lang)
        out[lang] = [(m, where) for m, where in sorted(sources.items()) if m not in have]
    return out


if __name__ == "__main__":
    gaps = missing()
    for lang, items in gaps.items():
        for msgid, where in items:
            print(f"{lang}\t{where}\t{msgid!r}")
    sys.exit(1 if any(gaps.values()) else 0)
