"""ID numbers at rest: encrypted with ID_KEY, a keyed hash for look-ups, the masked form shown.

A full ID number is nowhere in the database in clear: entries keep it sealed, and a record sync
refused is kept for review with it masked (for_review, which records.save hands to sync).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask_babel import gettext as _

from fieldapp import rules


class IdVault:
    """Full ID numbers at rest: encrypted, with a keyed hash for look-ups and a masked form."""

    def __init__(self, key: str | None) -> None:
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


def check_key(conn: Any, key: str | None, path: Any) -> None:
    """Refuse (ValueError) a database, at path, whose ID numbers this key cannot open: another
    instance's backup, or this one's restored after `fieldapp init` made a new key."""
    row = conn.execute(
        "SELECT id_cipher FROM entries WHERE id_cipher <> '' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return
    try:
        IdVault(key).open(row[0])
    except (InvalidToken, RuntimeError, ValueError):
        raise ValueError(
            _(
                "%(path)s was sealed with another ID_KEY: this instance's ID_KEY cannot read the"
                " ID numbers in it. Put back the instance/config.py kept apart from the backups,"
                " then restore again. Nothing was changed.",
                path=path,
            )
        ) from None


def for_review(record: Any) -> Any:
    """A refused record as it is kept for review: a full ID number in its data masked."""
    data = record.get("data") if isinstance(record, dict) else None
    value = data.get("id_number") if isinstance(data, dict) else None
    # Whatever its length or what it holds: a short or partial number (a passport number, an
    # old ID) is personal data too, and mask_id leaves a masked value as it is.
    if not isinstance(value, str) or not value.strip():
        return record
    return {**record, "data": {**data, "id_number": rules.mask_id(value.strip())}}
