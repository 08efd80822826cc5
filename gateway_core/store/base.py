"""The state storage interface and the records it keeps (DESIGN §7, §10).

Everything relaygate remembers between requests lives behind :class:`Store`: accounts and their
tokens, cooling/invalid marks, runtime settings, usage counters and the per-account refresh lock.
The interface speaks in core terms only — no SQL, no file paths, no rows — so that an embedded
SQLite store (the zero-setup default), an in-memory store (tests, library users who want no disk)
and, later, a Redis store shared by several gateway instances are interchangeable.

How each operation maps onto Redis, so nothing here assumes a local database:

- account: one hash per email plus a set of emails; ``upsert_account`` / ``update_tokens`` are one
  ``MULTI``/``EXEC`` (``HSETNX`` keeps ``added_at``); durability comes from ``appendfsync always``.
- mark: one key per (email, kind); a cooling mark expires by itself (``SET … PXAT until``), an invalid
  mark has no expiry. "Active" is exactly "the key still exists".
- setting: one hash of JSON strings.
- usage: one hash per (email, model, day) bumped with ``HINCRBY`` / ``HINCRBYFLOAT`` in one pipeline.
- refresh lock: a lease (``SET key token NX PX ttl``, released only by its holder) instead of the
  local :class:`anyio.Lock`, so one instance refreshes while the others wait and then re-read.
- schema version: one key, migrated forward by the first instance that sees an older one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

import orjson

from gateway_core.errors import ApiError, NotFoundError

JSONValue = Any
"""Anything :mod:`orjson` can serialise: dict, list, str, int, float, bool or None."""

Clock = Callable[[], datetime]
"""Returns the current time as an aware datetime; stores take one so tests can move time."""


def utcnow() -> datetime:
    """The default clock: now, in UTC."""
    return datetime.now(UTC)


# --- errors --------------------------------------------------------------------------------------


class StoreError(ApiError):
    """The state storage failed: database locked, disk full, read-only file, closed store (500).

    It is an internal failure of the gateway, so it answers as ``api_error`` / 500 (a 503 would read
    as "upstream overloaded" in our error table). ``code`` carries the engine's error name (e.g.
    ``SQLITE_BUSY``) and ``retry_after`` is set when waiting may help (a lock held by another
    process). The message says which operation failed and why; it never contains a token.
    """


class AccountNotFoundError(NotFoundError):
    """An operation named an account the store does not hold (404)."""

    def __init__(self, email: str) -> None:
        super().__init__(f"account {email} not found", param="email")
        self.email = email


# --- records -------------------------------------------------------------------------------------


def as_utc(value: datetime | None, name: str) -> datetime | None:
    """Normalise an aware datetime to UTC; naive datetimes are refused (their zone is a guess)."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _normalise_times(record: object, names: Iterable[str]) -> None:
    for name in names:
        object.__setattr__(record, name, as_utc(getattr(record, name), name))


@dataclass(frozen=True, slots=True, kw_only=True)
class Tokens:
    """The OAuth tokens of one account. Its repr masks every token, so logging a record is safe."""

    access_token: str
    """Bearer token for upstream requests."""
    refresh_token: str
    """Single-use: every refresh returns a new one, which must be stored before anything else."""
    id_token: str | None = None
    """OpenID token the email, account id and plan were read from; absent for manually added accounts."""

    def __repr__(self) -> str:
        id_token = "None" if self.id_token is None else "'***'"
        return f"Tokens(access_token='***', refresh_token='***', id_token={id_token})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountRecord:
    """One upstream account as stored. The key is ``email``, exactly as given (the HTTP API uses it)."""

    email: str
    """The account's email: the key the HTTP API addresses accounts by."""
    tokens: Tokens
    """Current OAuth tokens (masked in repr)."""
    account_id: str | None = None
    """ChatGPT account id, sent upstream as ``chatgpt-account-id``."""
    plan_type: str | None = None
    """ChatGPT plan (``plus``, ``pro``, ``team``...), as read from the id token."""
    added_at: datetime = field(default_factory=utcnow)
    """When the account was first stored; ``upsert_account`` never changes it."""
    last_used: datetime | None = None
    """When the account last served a request."""
    access_expires_at: datetime | None = None
    """When the access token expires; ``None`` when unknown."""
    last_refresh: datetime | None = None
    """When the tokens were last refreshed."""
    quota: Mapping[str, JSONValue] | None = None
    """Last quota snapshot (rate-limit windows, credits), opaque to the store."""
    quota_updated_at: datetime | None = None
    """When ``quota`` was taken."""
    upstream_usage: Mapping[str, JSONValue] | None = None
    """Last upstream usage answer (``wham/usage``), opaque to the store."""
    upstream_usage_updated_at: datetime | None = None
    """When ``upstream_usage`` was taken."""

    def __post_init__(self) -> None:
        if not self.email:
            raise ValueError("email must not be empty")
        _normalise_times(
            self,
            (
                "added_at",
                "last_used",
                "access_expires_at",
                "last_refresh",
                "quota_updated_at",
                "upstream_usage_updated_at",
            ),
        )


class MarkKind(StrEnum):
    """Why an account is skipped by rotation."""

    COOLING = "cooling"
    """Rate limited until a known time (``usage_limit_reached`` with ``resets_at``)."""
    INVALID = "invalid"
    """Credentials rejected; skipped until the mark is cleared (a successful refresh or re-login)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark:
    """A cooling or invalid mark on one account. An account holds at most one mark of each kind."""

    email: str
    """The account marked."""
    kind: MarkKind
    """Cooling (expires at ``until``) or invalid (until cleared)."""
    reason: str
    """Human-readable cause, shown by the admin API; never a token."""
    until: datetime | None = None
    """End of a cooling mark (required for cooling, must be ``None`` for invalid)."""
    set_at: datetime = field(default_factory=utcnow)
    """When the mark was set."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", MarkKind(self.kind))
        _normalise_times(self, ("until", "set_at"))
        if self.kind is MarkKind.COOLING and self.until is None:
            raise ValueError("a cooling mark needs an end time (until)")
        if self.kind is MarkKind.INVALID and self.until is not None:
            raise ValueError("an invalid mark lasts until cleared; until must be None")

    def is_active(self, now: datetime) -> bool:
        """Whether the mark still applies at ``now``: cooling marks lapse at ``until``."""
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageCounters:
    """Summed usage of some requests. Adding two gives the counters of both."""

    requests: int = 0
    """Requests served (successful or not)."""
    input_tokens: int = 0
    """Input tokens, cached ones included."""
    cached_tokens: int = 0
    """Input tokens read from the upstream prompt cache."""
    output_tokens: int = 0
    """Output tokens, reasoning included."""
    reasoning_tokens: int = 0
    """Output tokens spent on reasoning."""
    errors: int = 0
    """Requests that ended in an error."""
    latency_ms_total: int = 0
    """Summed latency in milliseconds; divide by ``requests`` for the mean."""
    cost: float = 0.0
    """Summed cost in USD, where the provider reports one."""

    def __add__(self, other: UsageCounters) -> UsageCounters:
        return UsageCounters(**{name: getattr(self, name) + getattr(other, name) for name in COUNTER_FIELDS})


COUNTER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(UsageCounters))
"""The counter names, in storage order."""


def _today() -> date:
    return utcnow().date()


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageIncrement:
    """Counters to add to one (account, model, UTC day) bucket."""

    email: str
    """The account that served the requests."""
    model: str
    """The upstream model that answered."""
    day: date = field(default_factory=_today)
    """The UTC day the requests belong to."""
    requests: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    errors: int = 0
    latency_ms_total: int = 0
    cost: float = 0.0

    def __post_init__(self) -> None:
        if not self.email or not self.model:
            raise ValueError("a usage increment needs an email and a model")
        for name in COUNTER_FIELDS:
            if getattr(self, name) < 0:
                raise ValueError(f"usage counter {name} must not be negative")

    @property
    def counters(self) -> UsageCounters:
        """The increment without its key."""
        return UsageCounters(**{name: getattr(self, name) for name in COUNTER_FIELDS})


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Usage of one account (or all), summed three ways."""

    totals: UsageCounters
    """Everything."""
    by_model: Mapping[str, UsageCounters]
    """Per upstream model, sorted by model name."""
    by_day: Mapping[date, UsageCounters]
    """Per UTC day, oldest first."""

    @classmethod
    def from_buckets(cls, buckets: Iterable[tuple[str, date, UsageCounters]]) -> UsageReport:
        """Sum (model, day, counters) buckets; stores use it so they all report alike."""
        totals = UsageCounters()
        by_model: dict[str, UsageCounters] = {}
        by_day: dict[date, UsageCounters] = {}
        for model, day, counters in buckets:
            totals += counters
            by_model[model] = by_model.get(model, UsageCounters()) + counters
            by_day[day] = by_day.get(day, UsageCounters()) + counters
        return cls(
            totals=totals,
            by_model=dict(sorted(by_model.items())),
            by_day=dict(sorted(by_day.items())),
        )


# --- JSON ----------------------------------------------------------------------------------------


def dump_json(value: JSONValue, what: str) -> bytes:
    """Serialise an opaque JSON value; a value JSON cannot carry is a programming error (TypeError)."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(f"{what} is not JSON-serialisable: {exc}") from exc


def load_json(raw: bytes | str | None) -> JSONValue:
    """Parse a value written by :func:`dump_json`; ``None`` stays ``None``."""
    return None if raw is None else orjson.loads(raw)


# --- the interface -------------------------------------------------------------------------------


class Store(ABC):
    """Async state storage. Every method may raise :class:`StoreError` when the backend fails.

    Writes are atomic: a multi-field or multi-row write is applied entirely or not at all. A write
    has reached durable storage when its coroutine returns (for tokens: even across power loss).
    Per-account writes raise :class:`AccountNotFoundError` for an unknown email. Returned records
    are copies: mutating their JSON snapshots never changes what is stored.
    """

    # --- lifecycle ---

    @abstractmethod
    async def schema_version(self) -> int:
        """The version of the stored layout (migrated forward when the store is opened)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the backend; idempotent. Later calls raise :class:`StoreError`."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- accounts ---

    @abstractmethod
    async def list_accounts(self) -> list[AccountRecord]:
        """All accounts, oldest ``added_at`` first (ties by email)."""

    @abstractmethod
    async def get_account(self, email: str) -> AccountRecord | None:
        """The account stored under ``email``, or ``None``."""

    @abstractmethod
    async def upsert_account(self, record: AccountRecord) -> AccountRecord:
        """Insert ``record``, or replace every field of the stored one except ``added_at``.

        Returns the record as stored (with the original ``added_at`` when it existed).
        """

    @abstractmethod
    async def delete_account(self, email: str) -> bool:
        """Remove the account and its marks (usage history stays); ``False`` if it was not stored."""

    @abstractmethod
    async def update_tokens(
        self,
        email: str,
        tokens: Tokens,
        *,
        access_expires_at: datetime | None,
        refreshed_at: datetime | None = None,
    ) -> AccountRecord:
        """Store refreshed tokens, their expiry and ``last_refresh`` (default now) in one transaction.

        Refresh tokens rotate: the new one is on durable storage when this returns, so a crash right
        after cannot leave the account holding a refresh token the upstream has already spent.
        """

    @abstractmethod
    async def touch_last_used(self, email: str, at: datetime | None = None) -> None:
        """Record that the account served a request at ``at`` (default now)."""

    @abstractmethod
    async def set_quota(
        self, email: str, quota: Mapping[str, JSONValue] | None, *, at: datetime | None = None
    ) -> None:
        """Replace the quota snapshot and its time (default now); ``None`` forgets it."""

    @abstractmethod
    async def set_upstream_usage(
        self, email: str, snapshot: Mapping[str, JSONValue] | None, *, at: datetime | None = None
    ) -> None:
        """Replace the upstream usage snapshot and its time (default now); ``None`` forgets it."""

    # --- marks ---

    @abstractmethod
    async def set_mark(self, mark: Mark) -> None:
        """Set (or replace) the account's mark of ``mark.kind``."""

    @abstractmethod
    async def clear_mark(self, email: str, kind: MarkKind | None = None) -> bool:
        """Remove the account's mark of ``kind`` (both kinds when ``None``); ``False`` if none was set."""

    @abstractmethod
    async def list_marks(self, email: str | None = None) -> list[Mark]:
        """Active marks of one account (or all), by email then kind; lapsed cooling marks are left out."""

    # --- settings ---

    @abstractmethod
    async def get_setting(self, key: str) -> JSONValue | None:
        """The JSON value stored under ``key``, or ``None``."""

    @abstractmethod
    async def set_setting(self, key: str, value: JSONValue) -> None:
        """Store a JSON value under ``key`` (TypeError if it is not JSON-serialisable)."""

    @abstractmethod
    async def delete_setting(self, key: str) -> bool:
        """Remove ``key``; ``False`` if it was not set."""

    # --- usage ---

    @abstractmethod
    async def add_usage(self, increments: Iterable[UsageIncrement]) -> None:
        """Add a batch of increments to their buckets, all in one transaction.

        Buckets need no account: usage of a since removed account is still history.
        """

    @abstractmethod
    async def usage_report(self, email: str | None = None) -> UsageReport:
        """Usage of one account, or of all accounts together when ``email`` is ``None``."""

    # --- coordination ---

    @abstractmethod
    def refresh_lock(self, email: str) -> AbstractAsyncContextManager[None]:
        """Single-flight token refresh: ``async with store.refresh_lock(email):``.

        Holders of the same email run one at a time; different emails do not wait for each other.
        Not reentrant. Local stores use one :class:`anyio.Lock` per email, which serialises the
        tasks of this process only; a shared store uses a lease with an expiry, which another
        instance may take over once it lapses — so keep the critical section short, and re-read the
        account after acquiring: someone else may already have refreshed it.
        """
