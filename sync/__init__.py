"""The sync protocol: append-only records merged by UUID, over a sqlite3.Connection.

Pure Python, no Flask: fieldapp imports sync, never the other way round.
See docs/sync-protocol.md.
"""

from . import wire
from .client import HttpTransport, PushReport, SyncError, Transport, push_pending
from .records import Invalid, NotYet, Record, RecordKind, Registry
from .server import BatchError, Push, parse_push, receive
from .store import Result, apply_batch, content_hash, horizon_for, utcnow

__all__ = [
    "BatchError",
    "HttpTransport",
    "Push",
    "PushReport",
    "SyncError",
    "Transport",
    "parse_push",
    "push_pending",
    "receive",
    "Invalid",
    "NotYet",
    "Record",
    "RecordKind",
    "Registry",
    "Result",
    "apply_batch",
    "content_hash",
    "horizon_for",
    "utcnow",
    "wire",
]
