"""Visitors registering themselves from the gate poster: their own details, nothing else."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

import sync
from fieldapp import records, rules
from sync.store import iso


class SelfRegisterForm(FlaskForm):
    """What a visitor tells the gate about themself; judged by the rules of every entry."""

    name = StringField(_l("Your name"))
    phone = StringField(_l("Mobile number"))
    direction = RadioField(
        _l("Entering or leaving"),
        choices=[SelectChoice(k, v) for k, v in rules.DIRECTIONS.items()],
        default="in",
        validate_choice=False,
    )
    temperature = StringField(_l("Temperature (°C)"))
    health_code = RadioField(
        _l("Health code colour"),
        choices=[SelectChoice(k, v) for k, v in rules.HEALTH_CODES.items()],
        validate_choice=False,
    )
    travel = BooleanField(_l("I have been to a medium- or high-risk area in the last 14 days"))
    travel_where = StringField(_l("Where?"))
    destination = StringField(_l("Whom or where are you visiting?"))
    consent = BooleanField(
        _l("I have read the notice and agree that my details are recorded for this purpose."),
        validators=[DataRequired(_l("Please read the notice and agree to it."))],
    )

    def field_rules(self) -> tuple[rules.Field, ...]:
        """The rules of an entry for the fields this form asks."""
        return tuple(f for f in rules.entry_fields() if f.name in self and f.name != "consent")

    def validate(self, extra_validators: Any = None) -> bool:
        """Consent and CSRF, then the rules of every entry, messages by field."""
        valid = super().validate(extra_validators)
        _clean, errors = rules.check(
            {f.name: self[f.name].data for f in self.field_rules()}, self.field_rules()
        )
        for name, text in errors.items():
            self[name].errors.append(text)
        return valid and not errors


def for_site(conn: sqlite3.Connection, site: sqlite3.Row) -> SelfRegisterForm:
    """The form without the optional fields the site does not collect (minimum collection)."""
    form = SelfRegisterForm()
    row = conn.execute("SELECT optional_fields FROM sites WHERE id = ?", (site["id"],)).fetchone()
    shown = set((row[0] if row else "").split(","))
    for name in ("phone", "destination"):
        if name not in shown:
            delattr(form, name)
    return form


def _value(form: SelfRegisterForm, name: str) -> str:
    """A field's text, or "" when the site does not ask for it."""
    return (form[name].data or "") if name in form else ""


def save(conn: sqlite3.Connection, site: sqlite3.Row, form: SelfRegisterForm) -> tuple[bool, str]:
    """Store the visitor's entry through records.save; (True, "") or (False, the reason)."""
    temperature = rules.parse_temperature(form.temperature.data)
    record = {
        "uuid": str(uuid.uuid4()),
        "kind": "entry",
        "recorded_at": iso(sync.utcnow()),
        "data": {
            "site_id": site["id"],
            "direction": form.direction.data,
            "person_type": "visitor",
            "name": form.name.data,
            "phone": _value(form, "phone"),
            "id_number": "",
            "temperature": temperature,
            # A visitor cannot act on their own fever; the gate staff follow it up.
            "fever_action": "other" if rules.is_fever(temperature) else "",
            "health_code": form.health_code.data,
            "travel": bool(form.travel.data),
            "travel_where": form.travel_where.data or "",
            "plate": "",
            "destination": _value(form, "destination"),
            "note": "",
            "volunteer": "",
            "self_registered": True,
        },
    }
    result = records.save(conn, [record], source="self-registration")[0]
    if result.status == "applied":
        return True, ""
    return False, result.reason
