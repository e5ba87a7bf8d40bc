"""The rules of the gate, in one place: what a valid entry is, for the form, the sync path and
the phone.

Each field of an entry is described once here (FIELDS): its kind, choices, length, how it is
normalised, the pattern it must match and the message a volunteer reads when it does not.
`check()` applies the rules in Python (the gate form, self-registration, every record that
arrives by sync); `for_phone()` hands the same rules to the phone as JSON, where
static/js/rules.js applies them before the phone says "saved". The patterns are written in the
common subset of Python's and JavaScript's regular expressions (ASCII classes, no look-arounds),
so both read them the same way.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from sync.store import UUID_PATTERN

DIRECTIONS = {"in": _l("In"), "out": _l("Out")}
PERSON_TYPES = {
    "resident": _l("Resident"),
    "worker": _l("Worker"),
    "visitor": _l("Visitor"),
    "delivery": _l("Delivery"),
    "other": _l("Other"),
}
HEALTH_CODES = {
    "green": _l("Green"),
    "yellow": _l("Yellow"),
    "red": _l("Red"),
    "none": _l("Not shown"),
}
FEVER_ACTIONS = {
    "refused": _l("Entry refused"),
    "clinic": _l("Sent to clinic"),
    "remeasured": _l("Re-measured"),
    "other": _l("Other"),
}
SITE_KINDS = {
    "residential": _l("Residential compound"),
    "construction": _l("Construction site"),
    "other": _l("Other"),
}
OPTIONAL_FIELDS = ("id_number", "phone", "plate", "destination")

TEMP_MIN, TEMP_MAX, FEVER_AT = 34.0, 43.0, 37.3
# The fever condition in SQL, written with the threshold as a literal: the partial index
# entries_fever (fieldapp/schema/0004_console.sql) says the same, and SQLite uses a partial
# index only for a query whose condition matches it as written (a new threshold: a new index).
FEVER_SQL = f"temperature >= {FEVER_AT}"
# A typed reading: whole degrees and up to two decimals, with a point, a comma ("37,5") or the
# ideographic full stop a Chinese keyboard types for a point ("37。5"); read after typed() and
# without its unit (reading()).
TEMPERATURE = r"([0-9]{1,2})(?:[.,。]([0-9]{0,2}))?"
# What may follow a reading, after typed() ("℃" is "°C" then): the unit, dropped.
TEMPERATURE_UNITS = ("°C", "°", "度", "C")
MOBILE = r"1[3-9][0-9]{9}"
# Province abbreviation, a letter, then 5 (ordinary) or 6 (new-energy) letters/digits.
PLATE = (
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领]"
    r"[A-HJ-NP-Z][A-HJ-NP-Z0-9]{4,5}[A-HJ-NP-Z0-9挂学警港澳]"
)
RESIDENT_ID = r"[0-9]{17}[0-9X]"
# A date as forms and records carry it: 2020-02-15 (this century; the calendar checks the rest).
DATE = r"20[0-9]{2}-[0-9]{2}-[0-9]{2}"
# A record's id in its stored form (after lower-casing), as the sync store checks it.
UUID = UUID_PATTERN
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
# What is trimmed from typed text, and what a phone number or plate may carry between its
# characters: the same explicit sets in Python and JavaScript (their \s differ).
SPACES = " \t\r\n\u00a0\u3000"


# The classes below are written as escapes, not the characters themselves, so that the phone's
# rules carry no invisible mark, and in the common subset of both languages' regular expressions.
#
# REMOVED: the invisible marks pasted in with a name or an address from a chat, a web page or a
# file, that nobody sees and no name, address or note needs: the zero-width space (U+200B), the
# byte order mark (U+FEFF), the word joiner and the invisible operators (U+2060-U+2064) and the
# direction marks (LRM U+200E, RLM U+200F, ALM U+061C: they only move punctuation and digits
# around them). Free text is stored without them: they are removed as the spaces around the text
# are trimmed, so a volunteer is never sent hunting for a character they cannot see, and two
# names that look the same are the same to a search, a count and a dedupe. Not among them: the
# zero-width joiner (U+200D: emoji sequences, Indic scripts), the non-joiner (U+200C: Persian,
# Indic scripts) and the Mongolian vowel separator (U+180E: written in Mongolian words, as in
# Inner Mongolia), which a script needs and which are kept.
_REMOVED = r"\u061c\u200b\u200e\u200f\u2060-\u2064\ufeff"
REMOVED = "[" + _REMOVED + "]"
# UNPRINTABLE: what one line of text may not hold once they are removed: every control character
# (Unicode's Cc: C0, DEL and C1: a tab, a line break, a bell, a terminal's escape); the bidi
# embeddings, overrides and isolates, which reorder the text shown after them ("\u202e" makes
# "gpj.exe" read "exe.jpg"); the line and paragraph separators (U+2028, U+2029: a line break in
# a page, in a CSV Excel reads, in a terminal; in a textarea they become the line break they show
# as, LINE_SEPARATORS); the deprecated format controls U+206A-U+206F and the unassigned U+2065.
# (U+2028-U+202E: the separators, embeddings and overrides; U+2065-U+206F: the isolates among
# them.)
_CONTROLS = r"\x00-\x1f\x7f-\x9f"
_REFUSED = r"\u2028-\u202e\u2065-\u206f"
UNPRINTABLE = "[" + _CONTROLS + _REFUSED + "]"
# The same for text typed in a textarea (a Field's lines): line breaks as a browser sends them
# ("\n", "\r\n") are its own; a lone "\r" is not (trimmed text never ends with one). A line or
# paragraph separator there shows as a line break: it becomes one ("\n") before this class is
# looked at, as the marks are removed.
_TEXTAREA_CONTROLS = r"\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f"
UNPRINTABLE_LINES = "[" + _TEXTAREA_CONTROLS + _REFUSED + r"]|\r[^\n]"
LINE_SEPARATORS = r"[\u2028\u2029]"
_UNPRINTABLE_RE = re.compile(UNPRINTABLE)
_UNPRINTABLE_LINES_RE = re.compile(UNPRINTABLE_LINES)
_REMOVED_RE = re.compile(REMOVED)
_LINE_SEPARATORS_RE = re.compile(LINE_SEPARATORS)
# Either: what a free-text field is searched for, once; only text found to hold one is looked
# at again (the sync ingest path checks every field of every record).
_EITHER_RE = re.compile("[" + _CONTROLS + _REFUSED + _REMOVED + "]")
_EITHER_LINES_RE = re.compile("[" + _TEXTAREA_CONTROLS + _REFUSED + _REMOVED + r"]|\r[^\n]")


def one_line(text: str) -> bool:
    """Whether text holds no control character (a tab, a line break, an escape), no mark that
    reverses what follows it and no other invisible mark, removable or not: what check() and
    clean_line() give back never does."""
    return _EITHER_RE.search(text) is None


def clean_line(text: str) -> str | None:
    """A name shown in a list, a tab-separated listing, a poster or a table column (a site's,
    a phone's, an instance's, a campaign's, a site's address), as an admin typed or pasted it:
    without the invisible marks free text drops (REMOVED) and the whitespace around it;
    None if what is left still holds a control character (a tab, a line break inside it, an
    escape), a mark that reorders what follows it or another refused mark (UNPRINTABLE)."""
    if _EITHER_RE.search(text) is None:
        return text.strip()  # nearly every name: one search
    value = _REMOVED_RE.sub("", text).strip()
    return value if _UNPRINTABLE_RE.search(value) is None else None


def _visible(value: str, lines: bool) -> tuple[str, bool]:
    """(free text without its removable marks, whether it is one line, or lines for a textarea:
    free of UNPRINTABLE or UNPRINTABLE_LINES)."""
    if (_EITHER_LINES_RE if lines else _EITHER_RE).search(value) is None:
        return value, True  # nearly all text: one search
    value = _REMOVED_RE.sub("", value)
    if lines:
        value = _LINE_SEPARATORS_RE.sub("\n", value)
    value = value.strip(SPACES)
    return value, (_UNPRINTABLE_LINES_RE if lines else _UNPRINTABLE_RE).search(value) is None


# What is dropped from a phone number and a plate wherever it is: the spaces, dashes and dots
# typed between their characters and the invisible marks free text drops (REMOVED), pasted in
# with a number from a chat as with a name. (In the one substitution a number always gets: no
# look more on the sync ingest path.)
PHONE_JUNK = r"[ \t\u00a0\u3000" + _REMOVED + "-]"
PLATE_JUNK = r"[ \t\u00a0\u3000·." + _REMOVED + "-]"
YES = ("true", "yes", "on", "1", "y")
NO = ("false", "no", "off", "0", "n", "")

_RANGE = (f"{TEMP_MIN:.1f}", f"{TEMP_MAX:.1f}")  # as the messages show them
_TEMPERATURE_RE = re.compile(TEMPERATURE)
_MOBILE_RE = re.compile(MOBILE)
_ID_RE = re.compile(RESIDENT_ID)
_DATE_RE = re.compile(DATE)
_PHONE_JUNK_RE = re.compile(PHONE_JUNK)
_PLATE_JUNK_RE = re.compile(PLATE_JUNK)


def is_fever(temperature: float) -> bool:
    """A reading that needs follow-up (≥ FEVER_AT)."""
    return temperature >= FEVER_AT


def typed(value: str) -> str:
    """Text as a keyboard in full-width mode or a paste from a chat may bring it, read as the
    rules read digits, points and letters: NFKC ("１３８" is "138", "．" is ".", "℃" is "°C"),
    spaces around it trimmed."""
    return unicodedata.normalize("NFKC", value).strip(SPACES)


def reading(value: str) -> str:
    """A typed reading's text without the unit typed after it: "36.5℃", "３６．５ 度" → "36.5"."""
    value = typed(value)
    for unit in TEMPERATURE_UNITS:
        if value.endswith(unit):
            return value[: -len(unit)].strip(SPACES)
    return value


def missing_point(value: str) -> str:
    """The reading a volunteer meant who left the point out ("365": "36.5"), if it is one a
    person can have; else ""."""
    value = reading(value)
    if len(value) != 3 or not value.isascii() or not value.isdigit():
        return ""
    meant = f"{value[:2]}.{value[2]}"
    return meant if temperature_in_range(float(meant)) else ""


def parse_temperature(value: Any) -> float | None:
    """A reading in °C from a form's text ("36.5", "36,5", "３６．５", "36.5℃") or a JSON
    number; None if it is not one. The only temperature parser: the form, sync, the console and
    the phone use it."""
    if isinstance(value, str):
        m = _TEMPERATURE_RE.fullmatch(reading(value))
        if m is None:
            return None
        # To tenths, half up, on the typed digits: the phone does the same in JavaScript.
        digits = (m.group(2) or "") + "00"
        return (int(m.group(1)) * 10 + int(digits[0]) + (digits[1] >= "5")) / 10
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):  # a JSON integer, however long: no float overflows
        value = float(value) if abs(value) < 1000 else (1000.0 if value > 0 else -1000.0)
    if not math.isfinite(value):
        return None
    if abs(value) >= 1000:  # no reading (refused as out of range): nothing to round
        return value
    tenths = round(value * 10)
    if abs(value * 10 - tenths) < 1e-6:  # already in tenths (36.5), as instances send them
        return tenths / 10
    # A number the same way, on its decimal digits: 37.25 is a fever whether it came as text or
    # as a number (round() would make it 37.2: halves to even, and on the binary value).
    return float(Decimal(repr(float(value))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def temperature_in_range(value: float) -> bool:
    """Whether a reading is possible on a living person at a gate."""
    return TEMP_MIN <= value <= TEMP_MAX


def normalise_phone(value: str) -> str:
    """Digits only (full-width ones as ASCII), without a +86 / 86 prefix."""
    digits = _PHONE_JUNK_RE.sub("", typed(value or ""))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def valid_mobile(value: str) -> bool:
    """A Chinese 11-digit mobile number."""
    return bool(_MOBILE_RE.fullmatch(value))


def valid_resident_id(value: str) -> bool:
    """An 18-digit resident ID whose GB 11643 check digit is right."""
    if not _ID_RE.fullmatch(value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == value[17]


def normalise_plate(value: str) -> str:
    """Upper case, no spaces or dots."""
    return _PLATE_JUNK_RE.sub("", value or "").upper()


def mask_id(value: str) -> str:
    """Only the first 6 and last 4 characters of an ID number are ever shown."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_phone(value: str) -> str:
    """138****5678."""
    return value[:3] + "****" + value[-4:] if len(value) == 11 else value


# ---- the fields of an entry ---------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One field of a record: how its value is read and checked, and what is said if not.

    kind: choice (one of choices), text, temperature, yesno (a boolean) or date (DATE, a real
    day of the calendar, not after the date in the earlier field not_after). A text is trimmed,
    without a pattern, stripped of the invisible marks nobody typed on purpose (REMOVED; for a
    textarea, lines, with its line separators as line breaks), limited to max_len characters
    and to one line (UNPRINTABLE; several if lines, for a textarea: UNPRINTABLE_LINES); then
    normalised (phone, plate, upper) and, unless empty, must match pattern whole and pass
    checksum. only_if names the condition under which the field applies at all ("fever",
    "travel", or "name=a|b": an earlier field's value is a or b, a yes/no field's being "true"
    or "false"); otherwise its value is empty.
    """

    name: str
    kind: str
    label: Any
    choices: tuple[str, ...] = ()
    required: bool = False
    max_len: int = 0
    normalise: str = ""
    pattern: str = ""
    checksum: str = ""
    only_if: str = ""
    messages: Mapping[str, Any] = field(default_factory=dict)
    not_after: str = ""
    lines: bool = False


# A field's own messages, like the rules' (message()), are shown beside it, under its label, or
# after its name (first_problem: "手机号：须为 1 开头的 11 位数字…"): they never name it again;
# a field with nothing to add to "Fill this in." / "Choose one of the answers." has none.
# The mobile number's, shared with a screening's newcomer (fieldapp/screening/questions.py).
MOBILE_MESSAGE = _l("Must be 11 digits starting with 1, e.g. 13800138000.")


def _entry_fields() -> tuple[Field, ...]:
    # fmt: off
    return (
        Field("direction", "choice", _l("Direction"), tuple(DIRECTIONS), required=True,
              messages={"choice": _l("Choose in or out.")}),
        Field("person_type", "choice", _l("Who"), tuple(PERSON_TYPES), required=True),
        Field("name", "text", _l("Name"), required=True, max_len=50),
        Field("phone", "text", _l("Mobile phone"), max_len=40, normalise="phone", pattern=MOBILE,
              messages={"pattern": MOBILE_MESSAGE}),
        Field("id_number", "text", _l("ID number"), max_len=40, normalise="upper",
              pattern=RESIDENT_ID, checksum="resident_id", messages={
                  "pattern": _l("Must be 18 characters: 17 digits, then a digit or X."),
                  "checksum": _l("The check digit is wrong: check every digit.")}),
        Field("temperature", "temperature", _l("Temperature (°C)"), required=True,
              messages={"number": _l("Enter a number, e.g. 36.5.")}),
        # Its message names the reading: see _fever_message.
        Field("fever_action", "choice", _l("Fever: what was done?"), tuple(FEVER_ACTIONS),
              required=True, only_if="fever"),
        Field("health_code", "choice", _l("Health code"), tuple(HEALTH_CODES), required=True,
              messages={"choice": _l("Choose the colour it shows.")}),
        Field("travel", "yesno", _l("Been to a risk area in the last 14 days?")),
        Field("travel_where", "text", _l("Where?"), required=True, max_len=100, only_if="travel",
              messages={"required": _l("Say which city or area.")}),
        Field("plate", "text", _l("Vehicle plate"), max_len=40, normalise="plate", pattern=PLATE,
              messages={"pattern": _l("Wrong format, e.g. 苏D12345.")}),
        Field("destination", "text", _l("Building / unit"), max_len=50),
        Field("note", "text", _l("Note"), max_len=200),
        Field("volunteer", "text", _l("On duty"), max_len=50),
        # Who the form was filled from: a roster person (pass or search), a visitor's own
        # registration (their pass). Only the form of the id is checked: what it names may
        # arrive later, or have been purged.
        Field("roster_id", "text", _l("Roster person"), max_len=40, normalise="lower",
              pattern=UUID, messages={"pattern": _l("Not a valid id.")}),
        Field("registration_uuid", "text", _l("Visitor's registration"), max_len=40,
              normalise="lower", pattern=UUID,
              messages={"pattern": _l("Not a valid id.")}),
        Field("self_registered", "yesno", _l("Registered by the visitor")),
    )
    # fmt: on


FIELDS: tuple[Field, ...] = _entry_fields()
BY_NAME = {f.name: f for f in FIELDS}
# How many characters an input lets be typed (its maxlength): each text field's limit, and the
# longest reading TEMPERATURE matches with a unit after it ("37.25 °C"). Phone numbers and plates may carry spaces,
# dashes and dots the rules strip, so their inputs must not cut them shorter than the rule.
MAX_LEN = {f.name: f.max_len for f in FIELDS if f.max_len} | {"temperature": len("37.25 °C")}


def message(f: Field, problem: str, **params: Any) -> str:
    """What a volunteer reads when field f has that problem, in their language.

    Shown beside the field, under its label, or after the field's name (first_problem: a sync
    reason, a console's message): the words do not name the field again."""
    if f.name == "fever_action" and problem in ("choice", "required"):
        return _fever_message(params.get("t", ""))
    if problem == "range":
        return _(
            "%(t)s °C is impossible: accept %(min)s to %(max)s °C; measure again.",
            t=params.get("t", ""),
            min=_RANGE[0],
            max=_RANGE[1],
        )
    if problem == "long":
        return _("At most %(n)d characters.", n=f.max_len)
    if problem == "control":  # UNPRINTABLE: a control character or an invisible mark
        if f.lines:
            return _("Cannot hold tabs or invisible characters.")
        return _("Must be one line, without tabs or invisible characters.")
    if problem == "point":
        return _("Put in the decimal point: is it %(t)s?", t=params.get("t", ""))
    worded = f.messages.get(problem)
    if worded is None and problem == "required":
        worded = f.messages.get("choice")
    if worded is not None:
        return str(worded)
    if problem in ("choice", "required") and f.kind == "choice":
        return _("Choose one of the answers.")
    if problem == "required":
        return _("Fill this in.")
    if problem == "yesno":
        return _("Choose yes or no.")
    if problem == "number":
        return _("Enter a number.")
    if problem == "date":
        return _("Enter a date like 2020-02-15.")
    if problem == "after":
        return _("This date is later than it can be.")
    return _("Enter text here.")


def _fever_message(t: str) -> str:
    return _("%(t)s °C is a fever: choose one before saving.", t=t)


def yesno(value: Any) -> bool | None:
    """True or False from a boolean or a form's word for one ("true", "on"…); None if neither."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str) and value.strip(SPACES).lower() in YES + NO:
        return value.strip(SPACES).lower() in YES
    return None


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _text(f: Field, value: Any) -> tuple[str | None, str]:
    """(normalised text, problem) of a text field's raw value."""
    if value is None or value == "":  # most of a record's text fields: nothing to normalise
        return "", "required" if f.required else ""
    if not isinstance(value, str):
        return None, "text"
    value = value.strip(SPACES)
    # Free text is shown on the console's pages and the gate's list, printed on passes and
    # written to exports: one line (one_line), no escape a terminal obeys, no mark reordering
    # what follows, and the invisible marks nobody typed on purpose removed (REMOVED).
    # An entry's note too: an input, shown on one line, so a line break is none of its; only a
    # textarea's text (lines) keeps its line breaks. A field with a pattern needs no look: what
    # matches it holds none, and a tab between a number's digits is dropped as a space is.
    shown = True
    if not f.pattern:
        value, shown = _visible(value, f.lines)
    if f.max_len and len(value) > f.max_len:
        return None, "long"
    if not shown:
        return None, "control"
    if f.pattern:  # a number, a plate, an id: full-width digits and letters as ASCII
        value = typed(value)
    if f.normalise == "phone":
        value = normalise_phone(value)
    elif f.normalise == "plate":
        value = normalise_plate(value)
    elif f.normalise == "upper":
        value = value.upper()
    elif f.normalise == "lower":
        value = value.lower()
    if not value:
        return value, "required" if f.required else ""
    if f.pattern and not _compiled(f.pattern).fullmatch(value):
        return None, "pattern"
    if f.checksum == "resident_id" and not valid_resident_id(value):
        return None, "checksum"
    return value, ""


def _applies(condition: str, clean: Mapping[str, Any]) -> bool:
    """Whether a field's only_if holds for the values checked so far: "fever", "travel" or
    "name=a|b"."""
    if condition == "fever":
        temperature = clean.get("temperature")
        return isinstance(temperature, float) and is_fever(temperature)
    if condition == "travel":
        return clean.get("travel") is True
    name, sep, values = condition.partition("=")
    if not sep:
        return True
    value = clean.get(name)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return isinstance(value, str) and value in values.split("|")


def _date(f: Field, value: Any, clean: Mapping[str, Any]) -> tuple[str | None, str]:
    """(the date as YYYY-MM-DD, problem) of a date field's raw value."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        return None, "date"
    value = value.strip(SPACES)
    if not value:
        return value, "required" if f.required else ""
    if not _DATE_RE.fullmatch(value):
        return None, "date"
    try:
        date.fromisoformat(value)
    except ValueError:
        return None, "date"
    limit = clean.get(f.not_after) if f.not_after else None
    if isinstance(limit, str) and limit and value > limit:
        return None, "after"
    return value, ""


def check(
    data: Mapping[str, Any], fields: Iterable[Field] = FIELDS
) -> tuple[dict[str, Any], dict[str, str]]:
    """(normalised values, {field: message}) for a record's data, any JSON in any field.

    A field that does not apply (no fever, no travel) is empty whatever was sent; values of
    keys no field names are dropped.
    """
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        if f.only_if and not _applies(f.only_if, clean):
            clean[f.name] = ""
            continue
        raw = data.get(f.name)
        if f.kind == "choice":
            if isinstance(raw, str) and raw in f.choices:
                clean[f.name] = raw
            elif raw in (None, "") and not f.required:
                clean[f.name] = ""
            else:
                t = clean.get("temperature")
                errors[f.name] = message(f, "choice", t=f"{t:.1f}" if isinstance(t, float) else "")
        elif f.kind == "yesno":
            value = yesno(raw)
            if value is None:
                errors[f.name] = message(f, "yesno")
            else:
                clean[f.name] = value
        elif f.kind == "temperature":
            if raw is None or (isinstance(raw, str) and not raw.strip(SPACES)):
                errors[f.name] = message(f, "required")
                continue
            value = parse_temperature(raw)
            meant = missing_point(raw) if value is None and isinstance(raw, str) else ""
            if meant:
                errors[f.name] = message(f, "point", t=meant)
            elif value is None:
                errors[f.name] = message(f, "number")
            elif not temperature_in_range(value):
                shown = reading(raw) if isinstance(raw, str) else f"{value:.1f}"
                errors[f.name] = message(f, "range", t=shown)
            else:
                clean[f.name] = value
        elif f.kind == "date":
            value, problem = _date(f, raw, clean)
            if problem:
                errors[f.name] = message(f, problem)
            else:
                clean[f.name] = value
        else:
            value, problem = _text(f, raw)
            if problem:
                errors[f.name] = message(f, problem)
            else:
                clean[f.name] = value
    return clean, errors


def entry_fields(shown: Iterable[str] | None = None, *, form: bool = False) -> tuple[Field, ...]:
    """The fields of an entry as a form asks them: without the optional fields the site does not
    collect (shown), and in the volunteer's form with the phone number required where asked."""
    out = []
    for f in FIELDS:
        if shown is not None and f.name in OPTIONAL_FIELDS and f.name not in shown:
            continue
        if form and f.name == "phone":
            f = replace(f, required=True)
        out.append(f)
    return tuple(out)


def first_problem(errors: Mapping[str, str], fields: Iterable[Field] = FIELDS) -> str:
    """The first refusal of a record, as a sentence naming its field (for sync reasons)."""
    for f in fields:
        if f.name in errors:
            return _("%(field)s: %(message)s", field=f.label, message=errors[f.name])
    return ""


def for_phone(fields: Iterable[Field]) -> dict[str, Any]:
    """The rules as the phone applies them (static/js/rules.js), messages in this language.

    Messages that name the typed reading carry {t} for the phone to fill in.
    """
    out = []
    for f in fields:
        rule: dict[str, Any] = {
            "name": f.name,
            "kind": f.kind,
            "choices": list(f.choices),
            "required": f.required,
            "max_len": f.max_len,
            "normalise": f.normalise,
            "pattern": f.pattern,
            "checksum": f.checksum,
            "only_if": f.only_if,
            "not_after": f.not_after,
            "lines": f.lines,
        }
        problems = {
            "choice": ("choice",),
            "yesno": ("yesno",),
            "temperature": ("required", "number", "range", "point"),
            "text": ("required", "long", "control", "pattern", "checksum"),
            "date": ("required", "date", "after"),
        }[f.kind]
        rule["messages"] = {p: message(f, p, t="{t}") for p in problems}
        out.append(rule)
    return {
        "fields": out,
        "temperature": {
            "pattern": TEMPERATURE,
            "units": list(TEMPERATURE_UNITS),
            "min": TEMP_MIN,
            "max": TEMP_MAX,
        },
        "fever_at": FEVER_AT,
        "spaces": SPACES,
        "unprintable": UNPRINTABLE,
        "unprintable_lines": UNPRINTABLE_LINES,
        "removed": REMOVED,
        "line_separators": LINE_SEPARATORS,
        "phone_junk": PHONE_JUNK,
        "plate_junk": PLATE_JUNK,
        "yes": list(YES),
        "no": list(NO),
        "id_weights": list(ID_WEIGHTS),
        "id_check": ID_CHECK,
        "date": DATE,
    }
