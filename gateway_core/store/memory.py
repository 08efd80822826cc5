"""A :class:`~gateway_core.store.base.Store` that keeps everything in memory.

For tests and for library users who want no disk. It has the same semantics as the SQLite store —
including JSON round trips (snapshots and settings are stored serialised, so a tuple comes back a
list and a later mutation of the caller's dict changes nothing stored) — and loses everything when
the process ends. Each operation runs without awaiting in the middle, so it is atomic on its event
loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime

from anyio.lowlevel import checkpoint

from gateway_core.store._locks import KeyedLocks
from gateway_core.store.base import (
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
    dump_json,
    load_json,
    utcnow,
)

SCHEMA_VERSION = 1
"""The in-memory layout never changes shape on disk, so its version is fixed."""


def _copy_snapshot(value: Mapping[str, JSONValue] | None, what: str) -> Mapping[str, JSONValue] | None:
    """A deep, JSON-only copy: what the SQLite store would give back after a round trip."""
    return None if value is None else load_json(dump_json(value, what))


def _copy_record(record: AccountRecord) -> AccountRecord:
    return dataclasses.replace(
        record,
        quota=_copy_snapshot(record.quota, "quota"),
        upstream_usage=_copy_snapshot(record.upstream_usage, "upstream usage"),
    )


class MemoryStore(Store):
    """State in dictionaries; ``clock`` decides what "now" is (for defaults and mark expiry)."""

    def __init__(self, *, clock: Clock = utcnow) -> None:
        self._clock = clock
        self._closed = False
        self._accounts: dict[str, AccountRecord] = {}
        self._marks: dict[tuple[str, MarkKind], Mark] = {}
        self._settings: dict[str, bytes] = {}
        self._usage: dict[tuple[str, str, date], UsageCounters] = {}
        self._locks = KeyedLocks()

    async def _enter(self, what: str) -> None:
        """Yield to the loop like a real backend would, and refuse work once closed."""
        await checkpoint()
        if self._closed:
            raise StoreError(f"could not {what}: the store is closed")

    def _require(self, email: str) -> AccountRecord:
        record = self._accounts.get(email)
        if record is None:
            raise AccountNotFoundError(email)
        return record

    # --- lifecycle ---

    async def schema_version(self) -> int:
        await self._enter("read the schema version")
        return SCHEMA_VERSION

    async def aclose(self) -> None:
        self._closed = True

    # --- accounts ---

    async def list_accounts(self) -> list[AccountRecord]:
        await self._enter("list accounts")
        records = sorted(self._accounts.values(), key=lambda r: (r.added_at, r.email))
        return [_copy_record(r) for r in records]

    async def get_account(self, email: str) -> AccountRecord | None:
        await self._enter(f"read account {email}")
        record = self._accounts.get(email)
        return None if record is None else _copy_record(record)

    async def upsert_account(self, record: AccountRecord) -> AccountRecord:
        await self._enter(f"save account {record.email}")
        old = self._accounts.get(record.email)
        if old is not None:
            record = dataclasses.replace(record, added_at=old.added_at)
        stored = self._accounts[record.email] = _copy_record(record)
        return _copy_record(stored)

    async def delete_account(self, email: str) -> bool:
        await self._enter(f"delete account {email}")
        for kind in MarkKind:
            self._marks.pop((email, kind), None)
        return self._accounts.pop(email, None) is not None

    async def update_tokens(
        self,
        email: str,
        tokens: Tokens,
        *,
        access_expires_at: datetime | None,
        refreshed_at: datetime | None = None,
    ) -> AccountRecord:
        await self._enter(f"save tokens of account {email}")
        record = dataclasses.replace(
            self._require(email),
            tokens=tokens,
            access_expires_at=access_expires_at,
            last_refresh=refreshed_at or self._clock(),
        )
        self._accounts[email] = record
        return _copy_record(record)

    async def touch_last_used(self, email: str, at: datetime | None = None) -> None:
        await self._enter(f"update last use of account {email}")
        self._accounts[email] = dataclasses.replace(self._require(email), last_used=at or self._clock())

    async def set_quota(
        self, email: str, quota: Mapping[str, JSONValue] | None, *, at: datetime | None = None
    ) -> None:
        await self._enter(f"save quota of account {email}")
        self._accounts[email] = dataclasses.replace(
            self._require(email),
            quota=_copy_snapshot(quota, "quota"),
            quota_updated_at=None if quota is None else at or self._clock(),
        )

    async def set_upstream_usage(
        self, email: str, snapshot: Mapping[str, JSONValue] | None, *, at: datetime | None = None
    ) -> None:
        await self._enter(f"save upstream usage of account {email}")
        self._accounts[email] = dataclasses.replace(
            self._require(email),
            upstream_usage=_copy_snapshot(snapshot, "upstream usage"),
            upstream_usage_updated_at=None if snapshot is None else at or self._clock(),
        )

    # --- marks ---

    async def set_mark(self, mark: Mark) -> None:
        await self._enter(f"mark account {mark.email} {mark.kind}")
        self._require(mark.email)
        self._marks[(mark.email, mark.kind)] = mark

    async def clear_mark(self, email: str, kind: MarkKind | None = None) -> bool:
        await self._enter(f"clear marks of account {email}")
        kinds = list(MarkKind) if kind is None else [MarkKind(kind)]
        removed = [self._marks.pop((email, k), None) for k in kinds]
        return any(m is not None for m in removed)

    async def list_marks(self, email: str | None = None) -> list[Mark]:
        await self._enter("list account marks")
        now = self._clock()
        marks = [m for m in self._marks.values() if (email is None or m.email == email) and m.is_active(now)]
        return sorted(marks, key=lambda m: (m.email, m.kind.value))

    # --- settings ---

    async def get_setting(self, key: str) -> JSONValue | None:
        await self._enter(f"read setting {key}")
        return load_json(self._settings.get(key))

    async def set_setting(self, key: str, value: JSONValue) -> None:
        await self._enter(f"save setting {key}")
        self._settings[key] = dump_json(value, f"setting {key}")

    async def delete_setting(self, key: str) -> bool:
        await self._enter(f"delete setting {key}")
        return self._settings.pop(key, None) is not None

    # --- usage ---

    async def add_usage(self, increments: Iterable[UsageIncrement]) -> None:
        batch = list(increments)
        await self._enter("record usage")
        for inc in batch:
            bucket = (inc.email, inc.model, inc.day)
            self._usage[bucket] = self._usage.get(bucket, UsageCounters()) + inc.counters

    async def usage_report(self, email: str | None = None) -> UsageReport:
        await self._enter("read usage")
        return UsageReport.from_buckets(
            (model, day, counters)
            for (owner, model, day), counters in self._usage.items()
            if email is None or owner == email
        )

    # --- coordination ---

    def refresh_lock(self, email: str) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(email)
