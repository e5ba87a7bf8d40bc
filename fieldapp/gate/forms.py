"""The gate's entry form (Flask-WTF): its field names are the wire data keys of an entry.

The offline outbox reads this form as it is, so a field's name is the key it has in `data` on
the wire (docs/sync-protocol.md, "The gate form"); values stay strings here and rules.check()
normalises them to typed values, here, in entries.validate() and on the phone alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField, TelField
from wtforms.fields.choices import SelectChoice

from fieldapp import rules
from fieldapp.rules import MAX_LEN


def _choices(labels: Mapping[str, Any]) -> list[SelectChoice]:
    """Radio choices from a value -> label mapping."""
    return [SelectChoice(value, label) for value, label in labels.items()]


TRAVEL_CHOICES = _choices({"false": _l("No"), "true": _l("Yes")})
# Every wire key of an entry the form carries: those of rules.FIELDS but the one only a
# visitor's own registration sets.
WIRE_KEYS = ("site_id",) + tuple(f.name for f in rules.FIELDS if f.name != "self_registered")


class EntryForm(FlaskForm):
    """One person passing the gate. The fields render the form; rules.check() judges it, the
    same rules the sync path and the phone apply."""

    site_id = HiddenField()
    uuid = HiddenField()
    recorded_at = HiddenField()
    # Set when the form is filled from a roster person or a visitor's pass (gate.js).
    roster_id = HiddenField()
    registration_uuid = HiddenField()
    direction = RadioField(
        _l("Direction"), choices=_choices(rules.DIRECTIONS), validate_choice=False
    )
    person_type = RadioField(_l("Who"), choices=_choices(rules.PERSON_TYPES), validate_choice=False)
    name = StringField(_l("Name"), render_kw={"autocomplete": "off", "maxlength": MAX_LEN["name"]})
    phone = TelField(
        _l("Mobile phone"),
        render_kw={"autocomplete": "off", "inputmode": "numeric", "maxlength": MAX_LEN["phone"]},
    )
    id_number = StringField(
        _l("ID number (optional)"),
        # A resident ID is 18 characters (rules.RESIDENT_ID), and its rule strips no spaces.
        render_kw={"autocomplete": "off", "maxlength": 18},
    )
    temperature = StringField(
        _l("Temperature (°C)"),
        render_kw={
            "inputmode": "decimal",
            "autocomplete": "off",
            "maxlength": MAX_LEN["temperature"],
        },
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
    travel_where = StringField(_l("Where?"), render_kw={"maxlength": MAX_LEN["travel_where"]})
    plate = StringField(
        _l("Vehicle plate (optional)"),
        render_kw={"autocomplete": "off", "maxlength": MAX_LEN["plate"]},
    )
    destination = StringField(
        _l("Building / unit"), render_kw={"maxlength": MAX_LEN["destination"]}
    )
    note = StringField(_l("Note"), render_kw={"maxlength": MAX_LEN["note"]})
    volunteer = StringField(_l("On duty"), render_kw={"maxlength": MAX_LEN["volunteer"]})

    def keep_only(self, shown: Iterable[str]) -> None:
        """Drop the optional fields a site does not ask for."""
        shown = set(shown)
        for key in rules.OPTIONAL_FIELDS:
            if key not in shown and key in self:
                delattr(self, key)

    def field_rules(self) -> tuple[rules.Field, ...]:
        """The rules this form is judged by: the entry's, for the fields it shows."""
        return rules.entry_fields([k for k in rules.OPTIONAL_FIELDS if k in self], form=True)

    def validate(self, extra_validators: Any = None) -> bool:
        """CSRF and the fields' own checks, then the rules of an entry, messages by field."""
        valid = super().validate(extra_validators)
        _clean, errors = rules.check(self.wire_data(self.site_id.data or ""), self.field_rules())
        for name, text in errors.items():
            if name in self and not isinstance(self[name], HiddenField):
                self[name].errors.append(text)
            else:  # a link the page set (roster_id…): said above the form, not beside nothing
                self.form_errors.append(rules.first_problem({name: text}))
        return valid and not errors

    def is_fever(self) -> bool:
        """Whether the typed temperature is a fever (for showing it in red)."""
        value = rules.parse_temperature(self.temperature.data or "")
        return value is not None and rules.temperature_in_range(value) and rules.is_fever(value)

    def wire_data(self, site_id: str) -> dict[str, Any]:
        """The entry's wire data, straight from the form's fields (strings; validate() types them).

        A field the browser did not send at all (no radio checked) is empty, not its default:
        the phone reads the same form the same way."""
        data: dict[str, Any] = {}
        for key in WIRE_KEYS:
            field = self[key] if key in self else None
            sent = field is not None and (field.raw_data is None or field.raw_data != [])
            data[key] = (field.data or "") if sent else ""
        data["site_id"] = site_id
        data["self_registered"] = False
        return data
