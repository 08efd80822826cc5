"""A small in-memory account pool with the Codex lease API, for provider tests.

It follows the contract of ``CodexAccountPool`` (acquire / observe_headers / mark_rate_limited /
refresh_after_unauthorized / mark_invalid / record_usage / aclose) and records every call, so a test
can check what the provider told the pool. Accounts are served in the order given (sticky).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from gateway_core.errors import AuthenticationError, RateLimitError
from gateway_core.models import Usage


@dataclass(frozen=True)
class FakeLease:
    email: str
    account_id: str
    access_token: str = field(repr=False)


@dataclass(frozen=True)
class UsageRecord:
    email: str
    model: str
    usage: Usage | None
    latency_ms: float
    error: bool


Refresher = Callable[[FakeLease], "FakeLease | None"]


class FakeLeasePool:
    """Accounts in order; ``refresher`` mints the token a refresh returns (``None``: refresh fails)."""

    def __init__(
        self,
        leases: Sequence[FakeLease],
        *,
        refresher: Refresher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._leases = {lease.email: lease for lease in leases}
        self._refresher = refresher
        self._clock = clock
        self.cooling: dict[str, datetime | None] = {}
        self.invalid: dict[str, str] = {}
        self.acquired: list[str] = []
        self.observed: list[tuple[str, dict[str, str]]] = []
        self.statuses: list[int | None] = []
        self.limited: list[tuple[str, datetime | None, str]] = []
        self.refreshes: list[str] = []
        self.usage: list[UsageRecord] = []
        self.closed = False

    async def acquire(self, *, exclude: frozenset[str] = frozenset()) -> FakeLease:
        """Sticky: the first usable account. None at all: 401; every valid account cooling: 429 with
        the earliest reset; otherwise (all excluded or invalid): 401."""
        if not self._leases:
            raise AuthenticationError("no Codex account: add one with POST /accounts/add")
        now = self._clock()
        valid = [lease for email, lease in self._leases.items() if email not in self.invalid]
        usable = [
            lease for lease in valid if lease.email not in exclude and not self._cooling(lease.email, now)
        ]
        if usable:
            self.acquired.append(usable[0].email)
            return usable[0]
        resets = [self.cooling[lease.email] for lease in valid if self._cooling(lease.email, now)]
        known = [until for until in resets if until is not None]
        if known:
            delay = (min(known) - now).total_seconds()
            raise RateLimitError("every Codex account is rate limited", retry_after=delay)
        raise AuthenticationError("no usable Codex account left")

    def _cooling(self, email: str, now: datetime) -> bool:
        if email not in self.cooling:
            return False
        until = self.cooling[email]
        return until is None or until > now

    def observe_headers(
        self, lease: FakeLease, headers: Mapping[str, str], *, status: int | None = None
    ) -> None:
        self.observed.append((lease.email, {k.lower(): v for k, v in headers.items()}))
        self.statuses.append(status)

    async def mark_rate_limited(self, lease: FakeLease, *, resets_at: datetime | None, reason: str) -> None:
        self.cooling[lease.email] = resets_at
        self.limited.append((lease.email, resets_at, reason))

    async def refresh_after_unauthorized(self, lease: FakeLease) -> FakeLease | None:
        self.refreshes.append(lease.email)
        renewed = self._refresher(lease) if self._refresher is not None else None
        if renewed is None:
            self.invalid[lease.email] = "refresh failed"
            return None
        self._leases[lease.email] = renewed
        return renewed

    async def mark_invalid(self, lease: FakeLease, reason: str) -> None:
        self.invalid[lease.email] = reason

    def record_usage(
        self, lease: FakeLease, *, model: str, usage: Usage | None, latency_ms: float, error: bool
    ) -> None:
        self.usage.append(UsageRecord(lease.email, model, usage, latency_ms, error))

    async def aclose(self) -> None:
        self.closed = True

    def with_token(self, email: str, token: str) -> FakeLease:
        """Replace an account's token (as a refresh elsewhere would) and return the new lease."""
        lease = replace(self._leases[email], access_token=token)
        self._leases[email] = lease
        return lease

    def headers_seen(self) -> list[dict[str, Any]]:
        return [headers for _, headers in self.observed]
