"""Visitors registering themselves from the gate poster: their own details, nothing else.

What they get is a pass for their screen (templates/gate/_visitor_pass.html): the gate staff scan
it, take the temperature and save the entry (registrations.py). Only at a self-service site
(sites.self_service) does the visitor type a temperature, and the registration comes with its
entry at once.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid as uuidlib
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import BooleanField, HiddenField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired

import sync
from fieldapp import days, records, rules
from fieldapp.db import transaction
from fieldapp.gate import passes, qr, registrations
from fieldapp.privacy import fields as site_fields
from sync.store import UUID_PATTERN, iso

_FORM_ID = re.compile(UUID_PATTERN)


def new_id() -> str:
    """A registration's id, made when its form is shown."""
    return str(uuidlib.uuid4())


def is_form_id(value: object) -> bool:
    """Whether value is an id this page gives a form (new_id): a random (version 4) UUID in
    its stored form. Anything else was not sent by a form of ours."""
    return (
        isinstance(value, str)
        and _FORM_ID.fullmatch(value) is not None
        and uuidlib.UUID(value).version == 4
    )


class SelfRegisterForm(FlaskForm):
    """What a visitor tells the gate about themself; judged by the rules of every entry."""

    # The registration's id, made when the form is shown: the same form sent again (its
    # answer lost when the signal dropped) is the same registration, not a second visit.
    uuid = HiddenField()
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
        if not is_form_id(self.uuid.data):
            self.form_errors.append(
                _(
                    "This form arrived damaged, so nothing was saved. Check your details and"
                    " tap “Register” again."
                )
            )
            self.uuid.data = new_id()  # the next tap sends a form as this page makes it
            valid = False
        return valid and not errors


def for_site(site: sqlite3.Row) -> SelfRegisterForm:
    """The form without the optional fields the site (its row) does not collect (minimum
    collection), and without a temperature unless the site is self-service (the gate staff
    take it)."""
    form = SelfRegisterForm()
    if not form.uuid.raw_data:  # a new form (or one shown before forms carried their id)
        form.uuid.data = new_id()
    shown = site_fields.shown(site)
    for name in ("phone", "destination"):
        if name not in shown:
            delattr(form, name)
    if not site["self_service"]:
        delattr(form, "temperature")
    return form


def _value(form: SelfRegisterForm, name: str) -> str:
    """A field's text, or "" when the site does not ask for it."""
    return (form[name].data or "") if name in form else ""


def save(conn: sqlite3.Connection, site: sqlite3.Row, form: SelfRegisterForm) -> tuple[str, str]:
    """Store the visitor's registration (and at a self-service site its entry) through
    records.save; (the registration's uuid, "") or ("", the reason).

    The registration's uuid is the form's: the same form sent again is the registration stored
    the first time (its answer was lost), and nothing is stored twice. A form whose uuid names
    a registration of other details is refused, and gets a new uuid for the next tap: nobody
    reaches someone else's registration by sending its uuid."""
    self_service = "temperature" in form
    temperature = rules.parse_temperature(form.temperature.data) if self_service else None
    now = iso(sync.utcnow())
    data = {
        "site_id": site["id"],
        "direction": form.direction.data,
        "name": form.name.data,
        "phone": _value(form, "phone"),
        "health_code": form.health_code.data,
        "travel": bool(form.travel.data),
        "travel_where": form.travel_where.data or "",
        "destination": _value(form, "destination"),
    }
    registration = records.new(
        "registration", {**data, "temperature": temperature}, uuid=form.uuid.data, recorded_at=now
    )
    batch = [registration]
    if self_service:
        # Nobody keeps this gate: the visitor's own reading is the entry, linked to the pass.
        entry = {
            **data,
            "person_type": "visitor",
            "id_number": "",
            "temperature": temperature,
            # A visitor cannot act on their own fever; the site's staff follow it up.
            "fever_action": "other" if rules.is_fever(temperature) else "",
            "plate": "",
            "note": "",
            "volunteer": "",
            "self_registered": True,
            "registration_uuid": registration["uuid"],
        }
        batch.append(records.new("entry", entry, recorded_at=now))
    try:
        # The registration and its entry, or neither; under the write lock, so two sends of
        # one form take turns and the second finds the first's registration.
        with transaction(conn):
            if _sent_before(conn, registration):
                return registration["uuid"], ""
            results = records.save(conn, batch, source="self-registration")
            refused = next((r for r in results if r.status != "applied"), None)
            if refused is not None:
                raise _Refused(refused.reason or refused.status)
    except _Refused as exc:
        return "", str(exc)
    except _Conflict:
        form.uuid.data = new_id()
        return "", _(
            "This form was sent before with other details, and that registration stands; what"
            " you sent now was not saved. To register these details as a new visit, tap"
            " “Register” again."
        )
    return registration["uuid"], ""


def _sent_before(conn: sqlite3.Connection, registration: Mapping[str, Any]) -> bool:
    """Whether this registration is stored already (the same form sent again: True); _Conflict
    if its uuid is stored with other details (another form, or someone else's pass)."""
    stored = registrations.get(conn, registration["uuid"])
    if stored is None:
        return False
    if registrations.same(conn, stored, registration["data"]):
        return True
    raise _Conflict


class _Conflict(Exception):
    """The form's uuid is that of a registration of other details."""


class _Refused(Exception):
    """A record of the registration was not stored: nothing of it is kept."""


def mask_name(name: str) -> str:
    """张*国, 张*: enough for the gate staff to match the face's answer, not a whole name to
    anyone who sees the screen over a shoulder."""
    chars = list(name.strip())
    if len(chars) <= 1:
        return "".join(chars)
    if len(chars) == 2:
        return chars[0] + "*"
    return chars[0] + "*" * (len(chars) - 2) + chars[-1]


def pass_text(site_id: str, registration_uuid: str) -> str:
    """What the visitor's pass's QR code says: which site and which registration, no more."""
    return f"{passes.VISIT_PREFIX}{site_id}:{registration_uuid}"


def pass_context(
    conn: sqlite3.Connection,
    site: Mapping[str, Any],
    row: Mapping[str, Any],
    tz: str,
    checked: list[Mapping[str, Any]],
) -> dict[str, Any]:
    """What the visitor's pass screen shows (templates/gate/_visitor_pass.html)."""
    when = days.local(row["recorded_at"], tz)
    temperature = row["temperature"]
    return {
        "site": site,
        "registration": row,
        "masked": mask_name(row["name"]),
        "registered": when.strftime("%m-%d %H:%M"),
        "registered_day": when.date().isoformat(),
        "expired": when.date() != days.today(tz),
        "temperature": temperature,
        "fever": temperature is not None and rules.is_fever(temperature),
        "checked": [
            {"time": days.local(c["recorded_at"], tz).strftime("%H:%M"), **dict(c)}
            for c in checked
            if not c["self_registered"]
        ],
        "qr": Markup(qr.svg_inline(pass_text(site["id"], row["uuid"]), _("Visitor pass"))),
        "now_ms": int(time.time() * 1000),
        "tz": tz,
        "clock": days.local(iso(sync.utcnow()), tz).strftime("%H:%M:%S"),
    }
