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
    clean = _validate_plain(conn, data)
    if clean is not None:
        return clean
    return _validate_full(conn, data)


# Text fields checked the same way by the fast path: key, length limit, required.
_PLAIN_TEXTS = (
    ("name", TEXT_LIMITS["name"], True),
    ("destination", TEXT_LIMITS["destination"], False),
    ("note", TEXT_LIMITS["note"], False),
    ("volunteer", TEXT_LIMITS["volunteer"], False),
)
_MOBILE_SECOND = frozenset("3456789")


def _plain_bool(value: Any) -> bool | None:
    """_bool's answer for a value it accepts, None for anything else."""
    if value is True or value is False:
        return value
    if value is None:
        return False
    if type(value) is str:
        return BOOL_STRINGS.get(value.strip().lower())
    return None


def _validate_plain(conn: sqlite3.Connection, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """validate()'s answer for a valid entry in the usual shape, in one pass without per-field
    calls; None for anything else (an error, an unusual type), which the full path then checks
    and words. It only ever accepts what _validate_full accepts, and returns what it returns."""
    get = data.get
    site_id = get("site_id", "")
    if type(site_id) is not str:
        return None
    site_id = site_id.strip()
    if not site_id or len(site_id) > 40:
        return None
    if conn.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone() is None:
        return None
    temperature = get("temperature")
    kind = type(temperature)
    if kind is float or kind is int:
        temperature = round(float(temperature), 1)
    elif kind is str:
        try:
            temperature = round(float(temperature.strip().replace(",", ".")), 1)
        except ValueError:
            return None
    else:
        return None
    if not rules.TEMP_MIN <= temperature <= rules.TEMP_MAX:  # False for NaN too
        return None
    if temperature >= rules.FEVER_AT:
        fever_action = get("fever_action") or ""
        if type(fever_action) is not str or fever_action not in rules.FEVER_ACTIONS:
            return None
    else:
        fever_action = ""
    phone = get("phone", "")
    if phone is None:
        phone = ""
    elif type(phone) is not str:
        return None
    if phone:
        phone = phone.strip()
        # 11 ASCII digits, 1 then 3-9: normalise_phone leaves it as it is, valid_mobile passes.
        if not (
            len(phone) == 11
            and phone.isdigit()
            and phone.isascii()
            and phone[0] == "1"
            and phone[1] in _MOBILE_SECOND
        ):
            if len(phone) > 40:
                return None
            phone = rules.normalise_phone(phone)
            if phone and not rules.valid_mobile(phone):
                return None
    id_number = get("id_number", "")
    if id_number is None:
        id_number = ""
    elif type(id_number) is not str:
        return None
    if id_number:
        id_number = id_number.strip()
        if len(id_number) > 40:
            return None
        id_number = id_number.upper()
        if id_number and not rules.valid_resident_id(id_number):
            return None
    plate = get("plate", "")
    if plate is None:
        plate = ""
    elif type(plate) is not str:
        return None
    if plate:
        plate = plate.strip()
        if len(plate) > 40:
            return None
        plate = rules.normalise_plate(plate)
        if plate and not rules.valid_plate(plate):
            return None
    travel = _plain_bool(get("travel", False))
    self_registered = _plain_bool(get("self_registered", False))
    if travel is None or self_registered is None:
        return None
    travel_where = get("travel_where", "")
    if travel_where is None:
        travel_where = ""
    elif type(travel_where) is not str:
        return None
    if travel_where:
        travel_where = travel_where.strip()
        if len(travel_where) > TEXT_LIMITS["travel_where"]:
            return None
    if travel and not travel_where:
        return None
    direction = get("direction")
    person_type = get("person_type")
    health_code = get("health_code")
    if (
        type(direction) is not str
        or direction not in rules.DIRECTIONS
        or type(person_type) is not str
        or person_type not in rules.PERSON_TYPES
        or type(health_code) is not str
        or health_code not in rules.HEALTH_CODES
    ):
        return None
    texts = []
    for key, limit, required in _PLAIN_TEXTS:
        value = get(key, "")
        if value is None:
            value = ""
        elif type(value) is not str:
            return None
        elif value:
            value = value.strip()
            if len(value) > limit:
                return None
        if required and not value:
            return None
        texts.append(value)
    name, destination, note, volunteer = texts
    return {
        "site_id": site_id,
        "direction": direction,
        "person_type": person_type,
        "name": name,
        "phone": phone,
        "id_number": id_number,
        "temperature": temperature,
        "fever_action": fever_action,
        "health_code": health_code,
        "travel": travel,
        "travel_where": travel_where if travel else "",
        "plate": plate,
        "destination": destination,
        "note": note,
        "volunteer": volunteer,
        "self_registered": self_registered,
    }


def checked_temperature(value: Any) -> float:
    """A reading in °C to one decimal, from a number or a form's text ("37,5" too); else Invalid."""
    if isinstance(value, str):
        try:
            value = float(value.strip().replace(",", "."))
        except ValueError:
            value = None
    if isinstance(value, float) and value != value:  # NaN
        value = None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise sync.Invalid(_("temperature must be a number"))
    value = round(float(value), 1)
    if not rules.TEMP_MIN <= value <= rules.TEMP_MAX:
        raise sync.Invalid(_("temperature must be between 34.0 and 43.0 °C"))
    return value


def _validate_full(conn: sqlite3.Connection, data: Mapping[str, Any]) -> dict[str, Any]:
    """Every check one by one, raising the first failure in the order the form shows them."""
    site_id = _text(data, "site_id", required=True)
    if conn.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone() is None:
        raise sync.Invalid(_("unknown site"))
    temperature = checked_temperature(data.get("temperature"))
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
        id_number = data["id_number"]
        if id_number or not key:  # without a key, refuse as the vault does
            masked, digest, cipher = vault_().seal(id_number)
        else:  # most entries carry none: no need to build the vault (and load cryptography)
            masked, digest, cipher = "", "", ""
        row = dict(data)  # the store picks COLUMNS out of it; id_number itself is never one
        row["id_masked"], row["id_hash"], row["id_cipher"] = masked, digest, cipher
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
