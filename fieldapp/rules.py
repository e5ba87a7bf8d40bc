"""Field rules shared by the gate form and the sync path: one definition of a valid entry."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

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
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
# Province abbreviation, a letter, then 5 (ordinary) or 6 (new-energy) letters/digits.
PLATE_RE = re.compile(
    r"^[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领]"
    r"[A-HJ-NP-Z][A-HJ-NP-Z0-9]{4,5}[A-HJ-NP-Z0-9挂学警港澳]$"
)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def is_fever(temperature: float) -> bool:
    """A reading that needs follow-up (≥ 37.3 °C)."""
    return temperature >= FEVER_AT


def normalise_phone(value: str) -> str:
    """Digits only, without a +86 / 86 prefix."""
    digits = re.sub(r"[\s-]", "", value or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def valid_mobile(value: str) -> bool:
    """A Chinese 11-digit mobile number."""
    return bool(MOBILE_RE.match(value))


def valid_resident_id(value: str) -> bool:
    """An 18-digit resident ID whose GB 11643 check digit is right."""
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == value[17]


def mask_id(value: str) -> str:
    """Only the first 6 and last 4 characters of an ID number are ever shown."""
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


def mask_phone(value: str) -> str:
    """138****5678."""
    return value[:3] + "****" + value[-4:] if len(value) == 11 else value


def normalise_plate(value: str) -> str:
    """Upper case, no spaces or dots."""
    return re.sub(r"[\s·.\-]", "", value or "").upper()


def valid_plate(value: str) -> bool:
    """A Chinese vehicle plate."""
    return bool(PLATE_RE.match(value))
