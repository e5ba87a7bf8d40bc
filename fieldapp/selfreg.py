"""Visitors registering themselves from the gate poster: their own details, nothing else."""

from __future__ import annotations

import sqlite3
import uuid

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

import sync
from sync.store import iso

from . import records, rules


def _temperature(form, field) -> None:
    try:
        value = float((field.data or "").replace(",", "."))
    except ValueError:
        raise ValidationError(_l("Enter your temperature as a number, e.g. 36.5")) from None
    if not rules.TEMP_MIN <= value <= rules.TEMP_MAX:
        raise ValidationError(_l("The temperature must be between 34.0 and 43.0 °C."))


def _phone(form, field) -> None:
    if field.data and not rules.valid_mobile(rules.normalise_phone(field.data)):
        raise ValidationError(_l("Enter an 11-digit mobile number."))


class SelfRegisterForm(FlaskForm):
    """What a visitor tells the gate about themself."""

    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=50)])
    phone = StringField(_l("Mobile number"), validators=[Optional(), _phone])
    direction = RadioField(
        _l("Entering or leaving"),
        choices=[SelectChoice(k, v) for k, v in rules.DIRECTIONS.items()],
        default="in",
        validators=[InputRequired()],
    )
    temperature = StringField(_l("Temperature (°C)"), validators=[DataRequired(), _temperature])
    health_code = RadioField(
        _l("Health code colour"),
        choices=[SelectChoice(k, v) for k, v in rules.HEALTH_CODES.items()],
        validators=[InputRequired()],
    )
    travel = BooleanField(_l("I have been to a medium- or high-risk area in the last 14 days"))
    travel_where = StringField(_l("Where?"), validators=[Length(max=100)])
    destination = StringField(_l("Whom or where are you visiting?"), validators=[Length(max=50)])
    consent = BooleanField(
        _l("I have read the notice and agree that my details are recorded for this purpose."),
        validators=[DataRequired(_l("Please read the notice and agree to it."))],
    )

    def validate_travel_where(self, field) -> None:
        """Someone who travelled says where."""
        if self.travel.data and not (field.data or "").strip():
            raise ValidationError(_l("Say where you travelled."))


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
    temperature = float(form.temperature.data.replace(",", "."))
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
