"""The questions a screening may ask: one fixed, well-designed set, each a handful of choices.

A campaign asks a subset (QUESTIONS). Every field an answer may carry is a rules.Field, so the
instance (answers.validate) and the phone (static/js/rules.js, handed for_phone()) refuse the
same answers with the same words. Questions a campaign does not ask are stored empty: a campaign
collects only what it asks (minimum necessary).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from fieldapp import rules

WHEREABOUTS = {
    "district": _l("Stayed in the district"),
    "city": _l("Elsewhere in the city"),
    "province": _l("Elsewhere in the province"),
    "other_province": _l("Another province"),
    "risk_area": _l("A risk area"),
}
CONTACT = {"no": _l("No"), "yes": _l("Yes")}
STATUSES = {
    "here": _l("Here and well"),
    "home_isolation": _l("Home isolation"),
    "medical_observation": _l("Medical observation"),
    "away": _l("Away, told not to come back yet"),
    "left": _l("Left the site"),
}
NAT_RESULTS = {
    "none": _l("Not tested"),
    "negative": _l("Negative"),
    "positive": _l("Positive"),
    "pending": _l("Result pending"),
}
DOSES = {"0": _l("No dose"), "1": _l("1 dose"), "2": _l("2 doses"), "3": _l("3 or more")}

# An answer with one of these statuses opens a follow-up (followup.py).
FOLLOWED = ("home_isolation", "medical_observation")

# What a campaign may ask, by the key it is chosen with, in the order the form asks it.
QUESTIONS = {
    "whereabouts": _l("Where in the last 14 days"),
    "contact": _l("Contact with people from risk areas"),
    "status": _l("Present status"),
    "nat": _l("Nucleic acid test"),
    "vaccine": _l("Vaccination"),
}
# The answer's columns each question fills.
COLUMNS_OF = {
    "whereabouts": ("whereabouts", "whereabouts_where"),
    "contact": ("contact",),
    "status": ("status",),
    "nat": ("nat_result", "nat_date"),
    "vaccine": ("vaccine_doses",),
}
ANSWER_COLUMNS = tuple(c for cols in COLUMNS_OF.values() for c in cols)
# The answers counted, per site and in total: (column, question, labels of its values).
BREAKDOWN = (
    ("whereabouts", "whereabouts", WHEREABOUTS),
    ("contact", "contact", CONTACT),
    ("status", "status", STATUSES),
    ("nat_result", "nat", NAT_RESULTS),
    ("vaccine_doses", "vaccine", DOSES),
)
LABELS = {column: labels for column, _q, labels in BREAKDOWN}
# A column of the coverage table says more than the answer's own word ("Yes").
TABLE_LABELS = {
    ("contact", "no"): _l("No contact with risk areas"),
    ("contact", "yes"): _l("Met people from risk areas"),
}
PERSON_FIELDS = ("name", "phone", "unit", "person_type")


# fmt: off
def _question_fields() -> dict[str, tuple[rules.Field, ...]]:
    return {
        "whereabouts": (
            rules.Field("whereabouts", "choice", _l("Where in the last 14 days?"),
                        tuple(WHEREABOUTS), required=True),
            rules.Field("whereabouts_where", "text", _l("Which province or risk area?"),
                        required=True, max_len=100,
                        only_if="whereabouts=other_province|risk_area"),
        ),
        "contact": (
            rules.Field("contact", "choice", _l("Met anyone from a risk area in the last 14 days?"),
                        tuple(CONTACT), required=True,
                        messages={"choice": _l("Choose yes or no.")}),
        ),
        "status": (
            rules.Field("status", "choice", _l("Now"), tuple(STATUSES), required=True),
        ),
        "nat": (
            rules.Field("nat_result", "choice", _l("Last nucleic acid test"), tuple(NAT_RESULTS),
                        required=True, messages={"choice": _l("Choose the test result.")}),
            rules.Field("nat_date", "date", _l("Test date"), required=True,
                        only_if="nat_result=negative|positive|pending", not_after="day",
                        messages={"after": _l("Cannot be after the day of screening.")}),
        ),
        "vaccine": (
            rules.Field("vaccine_doses", "choice", _l("Vaccine doses"), tuple(DOSES),
                        required=True),
        ),
    }


def _person_fields() -> tuple[rules.Field, ...]:
    return (
        rules.Field("day", "date", _l("Day of screening"), required=True),
        rules.Field("added", "yesno", _l("Not on the roster")),
        rules.Field("name", "text", _l("Name"), required=True, max_len=50, only_if="added=true"),
        rules.Field("phone", "text", _l("Mobile phone"), max_len=40, normalise="phone",
                    pattern=rules.MOBILE, only_if="added=true",
                    messages={"pattern": rules.MOBILE_MESSAGE}),
        rules.Field("unit", "text", _l("Unit or team"), max_len=50, only_if="added=true"),
        rules.Field("person_type", "choice", _l("Who"), tuple(rules.PERSON_TYPES), required=True,
                    only_if="added=true"),
    )


def _closing_fields() -> tuple[rules.Field, ...]:
    return (
        rules.Field("screener", "text", _l("Screened by"), max_len=50),
        rules.Field("note", "text", _l("Note"), max_len=200),
    )
# fmt: on


QUESTION_FIELDS = _question_fields()
PERSON = _person_fields()
CLOSING = _closing_fields()
WIRE_KEYS = (
    "campaign_id",
    "site_id",
    "person_id",
    *(f.name for f in PERSON),
    *ANSWER_COLUMNS,
    *(f.name for f in CLOSING),
)


def parse(value: Any) -> tuple[str, ...]:
    """The question keys of a comma list, in the form's order; ValueError (worded) if any is
    unknown or none is given."""
    if isinstance(value, str):
        given = [q.strip() for q in value.split(",") if q.strip()]
    elif isinstance(value, list | tuple):
        given = [str(q).strip() for q in value]
    else:
        given = []
    unknown = [q for q in given if q not in QUESTIONS]
    if unknown or not given:
        raise ValueError(
            _(
                "Questions must be some of %(choices)s, not “%(value)s”.",
                choices=", ".join(QUESTIONS),
                value=", ".join(unknown) or "",
            )
        )
    return tuple(q for q in QUESTIONS if q in given)


def fields_for(asked: Iterable[str]) -> tuple[rules.Field, ...]:
    """The fields of an answer to a campaign asking these questions, in the form's order."""
    asked = set(asked)
    chosen = tuple(f for q, fs in QUESTION_FIELDS.items() if q in asked for f in fs)
    return PERSON + chosen + CLOSING


def for_phone(asked: Iterable[str]) -> dict[str, Any]:
    """The rules of such an answer as the phone applies them (static/js/rules.js)."""
    return rules.for_phone(fields_for(asked))


def table_label(column: str, value: str) -> str:
    """A value as the heading of its column in the coverage table."""
    return str(TABLE_LABELS.get((column, value)) or LABELS[column][value])
