"""The gate's entry form (Flask-WTF): its field names are the wire data keys of an entry.

The offline outbox (issue 3) reads this form as it is, so a field's name is the key it has in
`data` on the wire (docs/sync-protocol.md, "The gate form"); values stay strings here and
entries.validate() normalises them to typed values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField, TelField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from . import entries, rules


def _choices(labels) -> list[SelectChoice]:
    """Radio choices from a value -> label mapping (or pairs)."""
    items = labels.items() if hasattr(labels, "items") else labels
    return [SelectChoice(value, label) for value, label in items]


TRAVEL_CHOICES = _choices([("false", _l("No")), ("true", _l("Yes"))])
# Every wire key of an entry the form carries, in the order of docs/sync-protocol.md.
WIRE_KEYS = (
    "site_id",
    "direction",
    "person_type",
    "name",
    "phone",
    "id_number",
    "temperature",
    "fever_action",
    "health_code",
    "travel",
    "travel_where",
    "plate",
    "destination",
    "note",
    "volunteer",
)


def parse_temperature(value: str | None) -> float | None:
    """A typed temperature as a number (36.5 or 36,5), or None if it is not one."""
    value = (value or "").strip().replace(",", ".")
    if not re.fullmatch(r"\d{1,2}(\.\d{0,2})?", value):
        return None
    return round(float(value), 1)


def _limit(field: Any, limit: int) -> None:
    if len((field.data or "").strip()) > limit:
        raise ValidationError(_("At most %(n)d characters.", n=limit))


class EntryForm(FlaskForm):
    """One person passing the gate."""

    site_id = HiddenField()
    uuid = HiddenField()
    recorded_at = HiddenField()
    direction = RadioField(
        _l("Direction"), choices=_choices(rules.DIRECTIONS), validate_choice=False
    )
    person_type = RadioField(_l("Who"), choices=_choices(rules.PERSON_TYPES), validate_choice=False)
    name = StringField(_l("Name"), render_kw={"autocomplete": "off", "maxlength": 50})
    phone = TelField(
        _l("Mobile phone"),
        render_kw={"autocomplete": "off", "inputmode": "numeric", "maxlength": 16},
    )
    id_number = StringField(
        _l("ID number (optional)"), render_kw={"autocomplete": "off", "maxlength": 18}
    )
    temperature = StringField(
        _l("Temperature (°C)"),
        render_kw={"inputmode": "decimal", "autocomplete": "off", "maxlength": 5},
    )
    fever_action = RadioField(
        _l("Fever: what was done?"),
        choices=_choices(rules.FEVER_ACTIONS),
        validate_choice=False,
    )
    health_code = RadioField(
        _l("Health code"),
        choices=_choices(rules.HEALTH_CODES),
        default="green",
        validate_choice=False,
    )
    travel = RadioField(
        _l("Been to a risk area in the last 14 days?"),
        choices=TRAVEL_CHOICES,
        default="false",
        validate_choice=False,
    )
    travel_where = StringField(_l("Where?"), render_kw={"maxlength": 100})
    plate = StringField(
        _l("Vehicle plate (optional)"), render_kw={"autocomplete": "off", "maxlength": 10}
    )
    destination = StringField(_l("Building / unit"), render_kw={"maxlength": 50})
    note = StringField(_l("Note"), render_kw={"maxlength": 200})
    volunteer = StringField(_l("On duty"), render_kw={"maxlength": 50})

    def keep_only(self, shown: Iterable[str]) -> None:
        """Drop the optional fields a site does not ask for."""
        shown = set(shown)
        for key in rules.OPTIONAL_FIELDS:
            if key not in shown and key in self:
                delattr(self, key)

    def is_fever(self) -> bool:
        """Whether the typed temperature is a fever (for showing it in red)."""
        value = parse_temperature(self.temperature.data)
        return (
            value is not None
            and rules.TEMP_MIN <= value <= rules.TEMP_MAX
            and rules.is_fever(value)
        )

    def validate_direction(self, field: Any) -> None:
        """In or out."""
        if field.data not in rules.DIRECTIONS:
            raise ValidationError(_("Choose in or out."))

    def validate_person_type(self, field: Any) -> None:
        """One of the person types."""
        if field.data not in rules.PERSON_TYPES:
            raise ValidationError(_("Choose who this is."))

    def validate_name(self, field: Any) -> None:
        """A name, not too long."""
        if not (field.data or "").strip():
            raise ValidationError(_("Enter the name."))
        _limit(field, entries.TEXT_LIMITS["name"])

    def validate_phone(self, field: Any) -> None:
        """A Chinese 11-digit mobile number (the field exists only where the site asks)."""
        phone = rules.normalise_phone((field.data or "").strip())
        if not phone:
            raise ValidationError(_("Enter a mobile number."))
        if not rules.valid_mobile(phone):
            raise ValidationError(
                _("A mobile number has 11 digits and starts with 1, e.g. 13800138000.")
            )

    def validate_id_number(self, field: Any) -> None:
        """Empty, or an 18-digit resident ID with the right GB 11643 check digit."""
        value = (field.data or "").strip().upper()
        if not value:
            return
        if not re.fullmatch(r"\d{17}[\dX]", value):
            raise ValidationError(
                _("A resident ID has 18 characters: 17 digits, then a digit or X.")
            )
        if not rules.valid_resident_id(value):
            raise ValidationError(_("This ID number's check digit is wrong: check every digit."))

    def validate_temperature(self, field: Any) -> None:
        """A number from 34.0 to 43.0 °C."""
        if not (field.data or "").strip():
            raise ValidationError(_("Enter the temperature."))
        value = parse_temperature(field.data)
        if value is None:
            raise ValidationError(_("Enter the temperature as a number, e.g. 36.5."))
        if not rules.TEMP_MIN <= value <= rules.TEMP_MAX:
            raise ValidationError(
                _("%(t)s °C is impossible: accept 34.0 to 43.0 °C; measure again.", t=field.data)
            )

    def validate_fever_action(self, field: Any) -> None:
        """A fever needs what was done before it saves."""
        if self.is_fever() and field.data not in rules.FEVER_ACTIONS:
            raise ValidationError(
                _(
                    "%(t).1f °C is a fever: choose what was done before saving.",
                    t=parse_temperature(self.temperature.data),
                )
            )

    def validate_health_code(self, field: Any) -> None:
        """One of the health code colours."""
        if field.data not in rules.HEALTH_CODES:
            raise ValidationError(_("Choose the health code colour."))

    def validate_travel(self, field: Any) -> None:
        """Yes or no."""
        if field.data not in ("true", "false"):
            raise ValidationError(_("Choose yes or no."))

    def validate_travel_where(self, field: Any) -> None:
        """Where, when the answer is yes."""
        if self.travel.data == "true" and not (field.data or "").strip():
            raise ValidationError(_("Say where the person travelled."))
        _limit(field, entries.TEXT_LIMITS["travel_where"])

    def validate_plate(self, field: Any) -> None:
        """Empty, or a Chinese vehicle plate."""
        plate = rules.normalise_plate(field.data or "")
        if plate and not rules.valid_plate(plate):
            raise ValidationError(_("Not a vehicle plate number, e.g. 苏D12345."))

    def validate_destination(self, field: Any) -> None:
        """Not too long."""
        _limit(field, entries.TEXT_LIMITS["destination"])

    def validate_note(self, field: Any) -> None:
        """Not too long."""
        _limit(field, entries.TEXT_LIMITS["note"])

    def validate_volunteer(self, field: Any) -> None:
        """Not too long."""
        _limit(field, entries.TEXT_LIMITS["volunteer"])

    def wire_data(self, site_id: str) -> dict[str, Any]:
        """The entry's wire data, straight from the form's fields (strings; validate() types them)."""
        data: dict[str, Any] = {}
        for key in WIRE_KEYS:
            data[key] = (self[key].data or "") if key in self else ""
        data["site_id"] = site_id
        data["self_registered"] = False
        return data
