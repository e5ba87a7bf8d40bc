"""Minimum collection: the optional fields a site's gate form asks for, and nothing more."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from fieldapp import rules

LABELS = {
    "id_number": _l("ID number"),
    "phone": _l("Phone"),
    "plate": _l("Vehicle plate"),
    "destination": _l("Destination (building / unit)"),
}


def clean(value: str | None) -> str:
    """A comma list of optional fields, checked and in the form's order; ValueError if unknown."""
    chosen = [f.strip() for f in (value or "").split(",") if f.strip()]
    unknown = [f for f in chosen if f not in rules.OPTIONAL_FIELDS]
    if unknown:
        raise ValueError(
            _(
                "Unknown optional field %(field)s; choose from %(choices)s.",
                field=", ".join(unknown),
                choices=", ".join(rules.OPTIONAL_FIELDS),
            )
        )
    return ",".join(f for f in rules.OPTIONAL_FIELDS if f in chosen)


def shown(site: Mapping[str, Any]) -> set[str]:
    """The optional gate-form fields this site asks for."""
    return {f for f in (site["optional_fields"] or "").split(",") if f}
