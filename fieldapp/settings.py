"""Every setting an instance reads, declared as data so they are documented in one place.

A setting comes from, in order of precedence: the test_config given to create_app(), the
environment variable FIELDAPP_<NAME>, instance/config.py (written by `fieldapp init`), the default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfoNotFoundError

from flask_babel import gettext

from fieldapp import days
from fieldapp.i18n import cli_catalog

# The checkout: templates/ and static/ sit at its top, beside this package (DESIGN.md).
ROOT = Path(__file__).resolve().parent.parent


def _(message: str) -> str:
    """Marks a message for the catalog; SettingError translates it when it is shown."""
    return message


class SettingError(ValueError):
    """A setting with a value fieldapp cannot use; says which, and what it must be."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message % params)
        self.message = message
        self.params = params

    def translated(self, locale: str) -> str:
        """The message in locale (a command-line user's language, before any app exists)."""
        return cli_catalog(locale).gettext(self.message) % self.params


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE", None, "Path of the SQLite file (default: instance/fieldapp.sqlite3)"),
    Setting(
        "DATABASE_URL",
        None,
        "postgresql://user@host/db: keep everything in PostgreSQL instead of the SQLite file"
        " (a central that outgrows one machine; README)",
    ),
    Setting(
        "BACKUP_DIR",
        None,
        "Folder where `fieldapp serve` writes a backup of the SQLite file once a day (keys"
        " not included; backups older than RETENTION_DAYS deleted)",
    ),
    Setting(
        "BASE_URL", "http://127.0.0.1:5000", "Absolute URL phones use; site QR codes encode it"
    ),
    Setting("SECRET_KEY", None, "Signs sessions and CSRF tokens; created by `fieldapp init`"),
    Setting("ID_KEY", None, "Encrypts full ID numbers at rest; created by `fieldapp init`"),
    Setting("INSTANCE_NAME", None, "This instance's name as upstreams know it"),
    Setting("UPSTREAM_URL", None, "Base URL of the instance this one pushes to (none: central)"),
    Setting("UPSTREAM_TOKEN", None, "Token the upstream issued to this instance"),
    Setting("SYNC_BATCH_SIZE", 500, "Records per push batch"),
    Setting("SYNC_MAX_BATCH_BYTES", 1_048_576, "Largest push body accepted, in bytes"),
    Setting(
        "SYNC_INTERVAL", 10, "Seconds between sync rounds of `fieldapp serve` / `sync --watch`"
    ),
    Setting("RETENTION_DAYS", 21, "Days entries are kept before purge (7-60)"),
    Setting("REPORT_RETENTION_DAYS", 365, "Days daily reports are kept"),
    Setting("REPORT_CUTOFF", "20:00", "Local time after which a daily report counts as late"),
    Setting("TIMEZONE", "Asia/Shanghai", "Time zone of the gates: days and reports follow it"),
    Setting("SESSION_COOKIE_SECURE", False, "Set true when served over HTTPS"),
    Setting(
        "TRUSTED_PROXIES",
        0,
        "Reverse proxies in front (e.g. 1 behind Caddy): the sign-in limit per address then"
        " reads the client's address from X-Forwarded-For",
    ),
    Setting(
        "APP_VERSION",
        None,
        "Label of this deployment; phones refresh their app shell when it (or a static file) changes",
    ),
)


def instance_folder(environ: Mapping[str, str] = os.environ) -> str:
    """This instance's folder: FIELDAPP_INSTANCE (a relative path is taken from the current
    folder, as a shell user means it; empty is unset), else instance/ in the checkout."""
    given = environ.get("FIELDAPP_INSTANCE", "")
    return str(Path(given).expanduser().resolve()) if given else str(ROOT / "instance")


_BOOL = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def from_environment(environ: os._Environ[str] | dict[str, str] = os.environ) -> dict[str, Any]:
    """Settings given as FIELDAPP_<NAME> environment variables, typed like their defaults."""
    found: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(f"FIELDAPP_{setting.name}")
        if raw is None:
            continue
        name = f"FIELDAPP_{setting.name}"
        if isinstance(setting.default, bool):
            if raw.lower() not in _BOOL:
                raise SettingError(
                    _("%(name)s must be true or false, not %(value)r"), name=name, value=raw
                )
            found[setting.name] = _BOOL[raw.lower()]
        elif isinstance(setting.default, int):
            try:
                found[setting.name] = int(raw)
            except ValueError:
                raise SettingError(
                    _("%(name)s must be a whole number, not %(value)r"), name=name, value=raw
                ) from None
        else:
            found[setting.name] = raw
    return found


RETENTION_RANGE = (7, 60)  # days entries are kept, at least and at most
REPORT_RETENTION_RANGE = (30, 3660)  # days daily reports are kept, at least and at most

# Whole-number settings that break the instance outside a range: 0 records a batch sends
# nothing, ever; a body limit below a record's size refuses every push (and above the 16 MB any
# request may be, it is never reached); a retention outside its range makes every save and
# every purge fail (records.retention_days, privacy.retention) while the instance runs on.
RANGES = {
    "SYNC_BATCH_SIZE": (1, 10_000),
    "SYNC_MAX_BATCH_BYTES": (1024, 16 * 1024 * 1024),
    "RETENTION_DAYS": RETENTION_RANGE,
    "REPORT_RETENTION_DAYS": REPORT_RETENTION_RANGE,
}


def check(config: Mapping[str, Any]) -> None:
    """Refuse settings that would fail later and quietly: BASE_URL goes into every QR poster;
    TIMEZONE makes every day; the sync batch limits decide whether records ever leave; the
    retentions and REPORT_CUTOFF are read by every save, purge and roll-call."""
    base = config.get("BASE_URL")
    try:
        parts = urlsplit(base) if isinstance(base, str) else None
    except ValueError:  # http://[::1
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        raise SettingError(
            _(
                "BASE_URL must be the address phones open, like https://gate.example.cn, not %(value)r"
            ),
            value=base,
        )
    zone = config.get("TIMEZONE")
    try:
        days.zone(zone)  # read as every day is made
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        raise SettingError(
            _("TIMEZONE must be a time zone name like Asia/Shanghai, not %(value)r"), value=zone
        ) from None
    for name, (low, high) in RANGES.items():
        value = config.get(name)
        try:
            number = None if isinstance(value, bool) else int(str(value).strip())
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise SettingError(
                _("%(name)s must be a whole number from %(min)d to %(max)d, not %(value)r"),
                name=name,
                min=low,
                max=high,
                value=value,
            )
    cutoff = config.get("REPORT_CUTOFF")
    try:
        days.parse_cutoff(cutoff)  # read as every report's lateness is
    except ValueError:
        raise SettingError(
            _("REPORT_CUTOFF must be a time of day like 20:00, not %(value)s"), value=cutoff
        ) from None


def check_retention_days(value: Any) -> int:
    """Days of retention as a whole number from 7 to 60; ValueError (worded) otherwise."""
    try:
        days = int(str(value).strip())
    except ValueError:
        days = None
    if days is None or not RETENTION_RANGE[0] <= days <= RETENTION_RANGE[1]:
        raise ValueError(
            gettext(
                "Retention must be a whole number of days from %(min)d to %(max)d, not %(value)s",
                min=RETENTION_RANGE[0],
                max=RETENTION_RANGE[1],
                value=value,
            )
        )
    return days


def is_downstream(config: Mapping[str, Any]) -> bool:
    """Whether this instance has an upstream. Its configuration (sites, rosters, campaigns) is
    then owned there and flows down: it is not edited here, and no demo is seeded."""
    return bool(config.get("UPSTREAM_URL"))
