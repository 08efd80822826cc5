"""Writes the request path must not wait for: usage counters, quota snapshots, last-use times and the
active-account setting, queued in memory and written to the store by one background task.

The queue merges as it goes (one usage bucket per account, model and day; the latest quota and
last-use time per account), so a burst of requests becomes a handful of store calls. It is flushed
every ``interval`` seconds, as soon as ``batch_size`` usage buckets wait, on demand (before a usage
report) and on close. A failing store is logged, never raised into a request; usage that could not
be written is kept for the next flush (up to a bound), and writes for an account that has since
been removed are dropped quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Mapping
from datetime import date, datetime
from typing import Final

import anyio

from gateway_core.models import NO_USAGE, Usage
from gateway_core.store import COUNTER_FIELDS, AccountNotFoundError, JSONValue, Store, UsageIncrement

logger = logging.getLogger(__name__)

FLUSH_INTERVAL: Final = 1.0
BATCH_SIZE: Final = 100
MAX_PENDING: Final = 10_000
"""Usage buckets kept while the store keeps failing; beyond this the oldest are dropped (logged)."""

_Bucket = tuple[str, str, date]


def increment_for(
    email: str, model: str, day: date, usage: Usage | None, *, latency_ms: float, error: bool
) -> UsageIncrement:
    """One request's counters. The canonical ``input_tokens`` are the uncached ones; the store
    counts input with cached tokens included (as the Codex backend reports it)."""
    u = usage or NO_USAGE
    return UsageIncrement(
        email=email,
        model=model or "unknown",
        day=day,
        requests=1,
        input_tokens=max(0, u.prompt_tokens),
        cached_tokens=max(0, u.cached_input_tokens),
        output_tokens=max(0, u.output_tokens),
        reasoning_tokens=max(0, u.reasoning_tokens or 0),
        errors=1 if error else 0,
        latency_ms_total=max(0, round(latency_ms)),
        cost=max(0.0, u.cost or 0.0),
    )


def _merge(a: UsageIncrement, b: UsageIncrement) -> UsageIncrement:
    return dataclasses.replace(a, **{name: getattr(a, name) + getattr(b, name) for name in COUNTER_FIELDS})


class WriteBehind:
    """The queue and its flusher. Call the ``queue_*`` methods from the event loop; they never block."""

    def __init__(
        self, store: Store, *, interval: float = FLUSH_INTERVAL, batch_size: int = BATCH_SIZE
    ) -> None:
        self._store = store
        self._interval = interval
        self._batch_size = batch_size
        self._usage: dict[_Bucket, UsageIncrement] = {}
        self._quotas: dict[str, tuple[Mapping[str, JSONValue], datetime]] = {}
        self._last_used: dict[str, datetime] = {}
        self._settings: dict[str, JSONValue] = {}
        self._wake = asyncio.Event()
        self._flush_lock = anyio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # --- queueing --------------------------------------------------------------------------------

    def queue_usage(self, increment: UsageIncrement) -> None:
        key = (increment.email, increment.model, increment.day)
        old = self._usage.get(key)
        self._usage[key] = increment if old is None else _merge(old, increment)
        if len(self._usage) >= self._batch_size:
            self._wake.set()
        self._kick()

    def queue_quota(self, email: str, snapshot: Mapping[str, JSONValue], at: datetime) -> None:
        self._quotas[email] = (snapshot, at)
        self._kick()

    def queue_last_used(self, email: str, at: datetime) -> None:
        self._last_used[email] = at
        self._kick()

    def queue_setting(self, key: str, value: JSONValue) -> None:
        self._settings[key] = value
        self._kick()

    async def write_setting(self, key: str, value: JSONValue | None) -> None:
        """Write (``None``: delete) a setting now, in order with the queued writes of the same key: a
        value queued earlier can no longer overwrite it. Store errors are raised to the caller."""
        async with self._flush_lock:
            self._settings.pop(key, None)
            if value is None:
                await self._store.delete_setting(key)
            else:
                await self._store.set_setting(key, value)

    def forget(self, email: str) -> None:
        """Drop queued per-account writes of a removed account (its usage history is kept)."""
        self._quotas.pop(email, None)
        self._last_used.pop(email, None)

    @property
    def pending(self) -> int:
        return len(self._usage) + len(self._quotas) + len(self._last_used) + len(self._settings)

    def _kick(self) -> None:
        """Start the flusher on first use (it needs the running loop, which ``__init__`` may lack)."""
        if self._task is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next flush() or aclose() writes the queue
        self._task = loop.create_task(self._run(), name="relaygate-codex-write-behind")

    # --- flushing --------------------------------------------------------------------------------

    async def _run(self) -> None:
        # Never cancelled: a flush cut short would lose the batch it had taken off the queue.
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write everything queued so far; failures are logged (usage is kept for the next try)."""
        async with self._flush_lock:
            usage, self._usage = self._usage, {}
            quotas, self._quotas = self._quotas, {}
            last_used, self._last_used = self._last_used, {}
            settings, self._settings = self._settings, {}
            if usage:
                await self._write_usage(usage)
            for email, (snapshot, at) in quotas.items():
                await self._write(f"quota of {email}", self._store.set_quota(email, snapshot, at=at))
            for email, at in last_used.items():
                await self._write(f"last use of {email}", self._store.touch_last_used(email, at))
            for key, value in settings.items():
                await self._write(f"setting {key}", self._store.set_setting(key, value))

    async def _write_usage(self, usage: dict[_Bucket, UsageIncrement]) -> None:
        try:
            await self._store.add_usage(list(usage.values()))
        except Exception:
            logger.exception(
                "could not record usage of %d bucket(s); keeping them for the next try", len(usage)
            )
            for key, increment in usage.items():
                old = self._usage.get(key)
                self._usage[key] = increment if old is None else _merge(increment, old)
            overflow = len(self._usage) - MAX_PENDING
            if overflow > 0:
                for key in list(self._usage)[:overflow]:
                    del self._usage[key]
                logger.error("dropped %d usage bucket(s): the store keeps failing", overflow)

    async def _write(self, what: str, write: Awaitable[None]) -> None:
        try:
            await write
        except AccountNotFoundError:
            pass  # removed meanwhile: nothing to update
        except Exception:
            logger.exception("could not save %s", what)

    async def aclose(self) -> None:
        """Stop the flusher and write what is left."""
        self._closed = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await task
        await self.flush()
