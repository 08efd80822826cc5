"""State storage: the :class:`Store` interface, its records, and the two local implementations.

``SQLiteStore`` is the embedded default (``await SQLiteStore.open(home)``); ``MemoryStore`` keeps
everything in memory. Nothing outside the store touches the database or the file system for state
(DESIGN §10), so a shared store (Redis) can replace either without changes elsewhere.
"""

from gateway_core.store.base import (
    COUNTER_FIELDS,
    AccountNotFoundError,
    AccountRecord,
    Clock,
    JSONValue,
    Mark,
    MarkKind,
    Store,
    StoreError,
    Tokens,
    UsageCounters,
    UsageIncrement,
    UsageReport,
    utcnow,
)
from gateway_core.store.memory import MemoryStore
from gateway_core.store.sqlite import DB_FILENAME, SQLiteStore

__all__ = [
    "COUNTER_FIELDS",
    "DB_FILENAME",
    "AccountNotFoundError",
    "AccountRecord",
    "Clock",
    "JSONValue",
    "Mark",
    "MarkKind",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "StoreError",
    "Tokens",
    "UsageCounters",
    "UsageIncrement",
    "UsageReport",
    "utcnow",
]
