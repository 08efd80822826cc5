"""Accounts of providers that have them: the interface the admin routes call (DESIGN §1, §6.1, §7).

A provider whose upstream is reached through user accounts (the Codex provider over ChatGPT OAuth)
registers an :class:`AccountPool` next to itself. The server's ``/accounts*``, ``/auth/callback`` and
``/settings/account-strategy`` routes speak only to this interface, never to the provider's code, so
a third-party plugin with accounts gets the same routes for free.

Everything here is in core terms: frozen value objects with aware UTC datetimes, and
:class:`~gateway_core.errors.GatewayError` for failures (an unknown email is a ``NotFoundError``
whose ``param`` is ``"email"``). No value ever holds a token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from gateway_core.errors import GatewayError
from gateway_core.models import ModelInfo
from gateway_core.store.base import UsageCounters as UsageCounters  # part of this interface

AccountStatus = Literal["ok", "cooling", "invalid"]
Strategy = Literal["sticky", "round-robin", "quota-aware"]
STRATEGIES: tuple[Strategy, ...] = ("sticky", "round-robin", "quota-aware")
"""Rotation strategies, the default first (DESIGN §7)."""


@dataclass(frozen=True, slots=True)
class QuotaWindow:
    """One rate-limit window: the 5-hour one (primary) or the weekly one (secondary)."""

    used_percent: float
    window_minutes: int | None = None
    resets_at: datetime | None = None
    resets_in_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Credits:
    """The account's credit balance, when the plan has credits."""

    has_credits: bool | None = None
    unlimited: bool | None = None
    balance: float | None = None


@dataclass(frozen=True, slots=True)
class Quota:
    """What the upstream said about an account's limits, and when."""

    updated_at: datetime
    source: Literal["headers", "usage"]
    """``headers``: read off a normal answer for free; ``usage``: fetched from the usage endpoint."""
    primary: QuotaWindow | None = None
    secondary: QuotaWindow | None = None
    credits: Credits | None = None
    plan_type: str | None = None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """An account as the admin routes show it (DESIGN §6.1 Account)."""

    email: str
    account_id: str | None
    plan_type: str | None
    added_at: datetime
    last_used: datetime | None
    is_active: bool
    token_expired: bool
    status: AccountStatus
    cooling_until: datetime | None = None
    invalid_reason: str | None = None
    quota: Quota | None = None


@dataclass(frozen=True, slots=True)
class LoginStart:
    """A browser login in progress: open ``oauth_url``; the upstream redirects to the local listener.

    The PKCE verifier stays inside the pool: it is never part of this value.
    """

    oauth_url: str
    state: str
    callback_port: int


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Usage of one account (or all): the gateway's counters and the last upstream usage snapshot."""

    totals: UsageCounters
    """The gateway's own counters (DESIGN §6.1 Counters), as the store sums them."""
    by_model: Mapping[str, UsageCounters] = field(default_factory=dict)
    by_day: Sequence[tuple[str, UsageCounters]] = ()
    """``(YYYY-MM-DD, counters)`` in date order."""
    upstream: Any = None
    """The provider's own usage payload as last fetched (opaque JSON), or ``None``."""


@runtime_checkable
class AccountPool(Protocol):
    """The accounts of one provider. Every method may raise :class:`GatewayError`."""

    @property
    def provider(self) -> str:
        """The name of the provider these accounts serve."""
        ...

    async def accounts(self) -> list[AccountInfo]:
        """Every account, oldest first."""
        ...

    async def begin_login(self) -> LoginStart:
        """Start a browser login: a one-shot callback listener and the URL to open."""
        ...

    async def finish_login(self, *, code: str, state: str) -> AccountInfo:
        """Complete a pending login from its callback; a wrong or unknown ``state`` stores nothing."""
        ...

    async def finish_login_manual(self, pasted: str) -> AccountInfo:
        """Complete a pending login from a pasted callback URL or bare authorization code."""
        ...

    async def import_credentials(self, path: str | None = None) -> AccountInfo:
        """Add the account from a credentials file its own CLI wrote (``None``: the default location)."""
        ...

    async def switch(self, email: str) -> AccountInfo:
        """Make ``email`` the active account."""
        ...

    async def remove(self, email: str) -> None:
        """Forget ``email`` and its tokens."""
        ...

    async def refresh(self, email: str | None = None) -> AccountInfo:
        """Refresh one account's tokens (the active one by default); success clears an invalid mark."""
        ...

    async def refresh_all(self) -> dict[str, GatewayError | None]:
        """Refresh every account concurrently: email -> ``None`` on success, else the error."""
        ...

    async def models(self, email: str) -> list[ModelInfo]:
        """The models this account may use."""
        ...

    async def quota(self, email: str, *, refresh: bool = False) -> tuple[Quota, bool]:
        """The account's quota and whether it came from the cache (``refresh`` fetches it now)."""
        ...

    async def quota_all(self) -> dict[str, Quota | GatewayError]:
        """Every account's quota, fetched now, concurrently: email -> quota, or the error that stopped it."""
        ...

    async def usage(self, email: str | None = None) -> UsageSummary:
        """Recorded usage of one account, or of all accounts when ``email`` is ``None``."""
        ...

    async def strategy(self) -> Strategy:
        """The rotation strategy in force."""
        ...

    async def set_strategy(self, strategy: Strategy) -> None:
        """Change the rotation strategy (persisted)."""
        ...
