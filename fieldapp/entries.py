"""Gate entries: the record kind, its validation for the sync path, and its queries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import sqlite3
from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _

import sync

from . import rules

# Wire fields of an entry, in the order of the entries table's columns after the common ones.
COLUMNS = (
    "site_id",
    "direction",
    "person_type",
    "name",
    "phone",
    "id_masked",
    "id_hash",
    "id_cipher",
    "temperature",
    "fever_action",
    "health_code",
    "travel",
    "travel_where",
    "plate",
    "destination",
    "note",
    "volunteer",
    "self_registered",
)
TEXT_LIMITS = {"name": 50, "travel_where": 100, "destination": 50, "note": 200, "volunteer": 50}


def _text(data: Mapping[str, Any], key: str, required: bool = False) -> str:
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise sync.Invalid(_("%(field)s must be text", field=key))
    value = value.strip()
    if required and not value:
        raise sync.Invalid(_("%(field)s is required", field=key))
    limit = TEXT_LIMITS.get(key, 40)
    if len(value) > limit:
        raise sync.Invalid(_("%(field)s is longer than %(n)d characters", field=key, n=limit))
    return value


def _choice(data: Mapping[str, Any], key: str, choices: Mapping[str, Any]) -> str:
    value = data.get(key)
    if value not in choices:
        raise sync.Invalid(
            _("%(field)s must be one of %(choices)s", field=key, choices=", ".join(choices))
        )
    return value


# A browser form sends booleans as strings; the normalised data is typed either way, so the
# content hash of a record does not depend on whether it came from a form or from JSON.
BOOL_STRINGS = {
    "true": True,
    "y": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "n": False,
    "no": False,
    "off": False,
    "0": False,
    "": False,
}


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if value is None:
        return False
    if isinstance(value, str) and value.strip().lower() in BOOL_STRINGS:
        return BOOL_STRINGS[value.strip().lower()]
    if not isinstance(value, bool):
        raise sync.Invalid(_("%(field)s must be true or false", field=key))
    return value


def validate(conn: sqlite3.Connection, data: dict[str, Any]) -> dict[str, Any]:
    """Check an entry from any source and return its normalised wire form."""
    site_id = _text(data, "site_id", required=True)
    if conn.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone() is None:
        raise sync.Invalid(_("unknown site"))
    temperature = data.get("temperature")
    if isinstance(temperature, str):
        try:
            temperature = float(temperature.strip().replace(",", "."))
        except ValueError:
            temperature = None
    if isinstance(temperature, float) and temperature != temperature:  # NaN
        temperature = None
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise sync.Invalid(_("temperature must be a number"))
    temperature = round(float(temperature), 1)
    if not rules.TEMP_MIN <= temperature <= rules.TEMP_MAX:
        raise sync.Invalid(_("temperature must be between 34.0 and 43.0 °C"))
    fever_action = data.get("fever_action") or ""
    if rules.is_fever(temperature):
        fever_action = _choice({"fever_action": fever_action}, "fever_action", rules.FEVER_ACTIONS)
    else:
        fever_action = ""
    phone = rules.normalise_phone(_text(data, "phone"))
    if phone and not rules.valid_mobile(phone):
        raise sync.Invalid(_("phone must be an 11-digit mobile number"))
    id_number = _text(data, "id_number").upper()
    if id_number and not rules.valid_resident_id(id_number):
        raise sync.Invalid(_("ID number is not a valid 18-digit resident ID"))
    plate = rules.normalise_plate(_text(data, "plate"))
    if plate and not rules.valid_plate(plate):
        raise sync.Invalid(_("vehicle plate is not a valid plate number"))
    travel = _bool(data, "travel")
    travel_where = _text(data, "travel_where")
    if travel and not travel_where:
        raise sync.Invalid(_("say where the person travelled"))
    self_registered = _bool(data, "self_registered")
    return {
        "site_id": site_id,
        "direction": _choice(data, "direction", rules.DIRECTIONS),
        "person_type": _choice(data, "person_type", rules.PERSON_TYPES),
        "name": _text(data, "name", required=True),
        "phone": phone,
        "id_number": id_number,
        "temperature": temperature,
        "fever_action": fever_action,
        "health_code": _choice(data, "health_code", rules.HEALTH_CODES),
        "travel": travel,
        "travel_where": travel_where if travel else "",
        "plate": plate,
        "destination": _text(data, "destination"),
        "note": _text(data, "note"),
        "volunteer": _text(data, "volunteer"),
        "self_registered": self_registered,
    }


class IdVault:
    """Full ID numbers at rest: encrypted, with a keyed hash for look-ups and a masked form."""

    def __init__(self, key: str | None) -> None:
        from cryptography.fernet import Fernet

        if not key:
            raise RuntimeError("ID_KEY is not set: run `fieldapp init`")
        self._fernet = Fernet(key.encode())
        self._mac_key = hashlib.sha256(b"fieldapp-id-hash" + base64.urlsafe_b64decode(key)).digest()

    def hash(self, id_number: str) -> str:
        """Keyed hash of an ID number (same input, same hash on this instance)."""
        return hmac.new(self._mac_key, id_number.encode(), hashlib.sha256).hexdigest()[:32]

    def seal(self, id_number: str) -> tuple[str, str, str]:
        """(masked, keyed hash, ciphertext) of an ID number; three empty strings for none."""
        if not id_number:
            return "", "", ""
        cipher = self._fernet.encrypt(id_number.encode()).decode()
        return rules.mask_id(id_number), self.hash(id_number), cipher

    def open(self, cipher: str) -> str:
        """The full ID number back from its ciphertext."""
        return self._fernet.decrypt(cipher.encode()).decode() if cipher else ""


def record_kinds(config: Mapping[str, Any]) -> list[sync.RecordKind]:
    """The entry kind, bound to this instance's ID key."""
    key = config.get("ID_KEY")
    # Before `fieldapp init` writes the key the app must still start (to run init itself).
    holder: list[IdVault] = []

    def vault_() -> IdVault:
        if not holder:
            holder.append(IdVault(key))
        return holder[0]

    def to_row(data: Mapping[str, Any]) -> dict[str, Any]:
        masked, digest, cipher = vault_().seal(data["id_number"])
        row = {k: data[k] for k in COLUMNS if k in data}
        row.update(id_masked=masked, id_hash=digest, id_cipher=cipher)
        row["travel"] = int(data["travel"])
        row["self_registered"] = int(data["self_registered"])
        return row

    def from_row(row: sqlite3.Row) -> dict[str, Any]:
        data = {k: row[k] for k in COLUMNS if k not in ("id_masked", "id_hash", "id_cipher")}
        data["id_number"] = vault_().open(row["id_cipher"])
        data["travel"] = bool(row["travel"])
        data["self_registered"] = bool(row["self_registered"])
        return data

    return [
        sync.RecordKind(
            name="entry",
            table="entries",
            validate=validate,
            to_row=to_row,
            from_row=from_row,
            columns=COLUMNS,
        )
    ]


def exists(conn: sqlite3.Connection, record_uuid: str) -> bool:
    """Whether an entry with that UUID is stored here already."""
    return (
        conn.execute("SELECT 1 FROM entries WHERE uuid = ?", (record_uuid,)).fetchone() is not None
    )


def last_at_site(conn: sqlite3.Connection, site_id: str, limit: int = 10) -> list[sqlite3.Row]:
    """The latest entries at a site, newest first (ID numbers only in their masked form)."""
    return conn.execute(
        "SELECT uuid, recorded_at, received_at, direction, person_type, name, phone, id_masked,"
        " temperature, fever_action, health_code, travel, travel_where, plate, destination"
        " FROM entries WHERE site_id = ? ORDER BY recorded_at DESC, id DESC LIMIT ?",
        (site_id, limit),
    ).fetchall()
