"""The sync protocol: append-only records merged by UUID, over a sqlite3.Connection.

Pure Python, no Flask: fieldapp imports sync, never the other way round.
See docs/sync-protocol.md.
"""

from .records import Invalid, Record, RecordKind, Registry
from .store import Result, apply_batch, content_hash, horizon_for, utcnow

__all__ = [
    "Invalid",
    "Record",
    "RecordKind",
    "Registry",
    "Result",
    "apply_batch",
    "content_hash",
    "horizon_for",
    "utcnow",
]
