"""A scripted in-memory :class:`~gateway_core.accounts.AccountPool`, and a plugin that installs it.

It behaves as the interface promises — unknown emails are a ``NotFoundError`` on ``email``, a wrong or
unknown login ``state`` stores nothing — and records every call, so the admin routes and the CLI can
be tested without a provider. A completed login stores ``<code>@example.com``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gateway_core.accounts import (
    STRATEGIES,
    AccountInfo,
    Credits,
    LoginStart,
    Quota,
    QuotaWindow,
    Strategy,
    UsageCounters,
    UsageSummary,
)
from gateway_core.errors import GatewayError, InvalidRequestError, NotFoundError, UpstreamError
from gateway_core.models import ModelInfo
from gateway_core.plugins import ProviderRegistry, hookimpl
from tests.unit._fake_provider import FakeProvider

ADDED_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)

QUOTA = Quota(
    updated_at=datetime(2025, 6, 1, 11, 59, 0, tzinfo=UTC),
    source="headers",
    primary=QuotaWindow(used_percent=7.0, window_minutes=300, resets_at=None, resets_in_seconds=4851),
    secondary=QuotaWindow(
        used_percent=2.5,
        window_minutes=10080,
        resets_at=datetime(2030, 1, 1, tzinfo=UTC),
        resets_in_seconds=1,
    ),
    credits=Credits(has_credits=False, unlimited=False, balance=None),
    plan_type="plus",
)


def account(email: str, **changes: Any) -> AccountInfo:
    base = AccountInfo(
        email=email,
        account_id=f"acct-{email.split('@')[0]}",
        plan_type="plus",
        added_at=ADDED_AT,
        last_used=None,
        is_active=False,
        token_expired=False,
        status="ok",
    )
    return dataclasses.replace(base, **changes)


def default_accounts() -> list[AccountInfo]:
    return [
        account("alice@example.com", is_active=True, quota=QUOTA, last_used=NOW),
        account(
            "bob@example.com",
            plan_type="pro",
            status="cooling",
            cooling_until=datetime(2030, 1, 1, tzinfo=UTC),
        ),
        account(
            "carol@example.com", status="invalid", invalid_reason="refresh_token_reused", token_expired=True
        ),
    ]


class FakeAccountPool:
    """Accounts in a list; every call is appended to ``calls`` as ``(method, args...)``."""

    def __init__(self, provider: str = "codex", accounts: list[AccountInfo] | None = None) -> None:
        self._provider = provider
        self.items: list[AccountInfo] = default_accounts() if accounts is None else accounts
        self.pending: list[str] = []
        self.calls: list[tuple[Any, ...]] = []
        self.current_strategy: Strategy = STRATEGIES[0]
        self.refresh_errors: dict[str, GatewayError] = {}
        self.quota_errors: dict[str, GatewayError] = {}
        self.fail_with: GatewayError | None = None
        """Raised by every method when set (e.g. a store error)."""
        self.complete_on_poll = False
        """When set, listing accounts completes the pending login as a browser would (code ``polled``)."""

    @property
    def provider(self) -> str:
        return self._provider

    # --- helpers ---

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if self.fail_with is not None:
            raise self.fail_with

    def _find(self, email: str) -> AccountInfo:
        for item in self.items:
            if item.email == email:
                return item
        raise NotFoundError(f"account {email} not found", param="email")

    def _active(self) -> AccountInfo:
        for item in self.items:
            if item.is_active:
                return item
        raise NotFoundError("no account is active", param="email")

    def _replace(self, new: AccountInfo) -> AccountInfo:
        self.items = [new if item.email == new.email else item for item in self.items]
        return new

    def _store(self, email: str) -> AccountInfo:
        self.items = [
            dataclasses.replace(item, is_active=False) for item in self.items if item.email != email
        ]
        added = account(email, is_active=True)
        self.items.append(added)
        return added

    # --- AccountPool ---

    async def accounts(self) -> list[AccountInfo]:
        self._record("accounts")
        if self.complete_on_poll and self.pending:
            self._store(f"polled{len(self.pending)}@example.com")
            self.pending.clear()
        return list(self.items)

    async def begin_login(self) -> LoginStart:
        self._record("begin_login")
        state = f"state-{len(self.pending) + 1}"
        self.pending.append(state)
        return LoginStart(
            oauth_url=f"https://auth.example/oauth/authorize?state={state}", state=state, callback_port=1455
        )

    async def finish_login(self, *, code: str, state: str) -> AccountInfo:
        self._record("finish_login", code, state)
        if state not in self.pending:
            raise InvalidRequestError("state: unknown or expired login state", param="state")
        self.pending.remove(state)
        return self._store(f"{code}@example.com")

    async def finish_login_manual(self, pasted: str) -> AccountInfo:
        self._record("finish_login_manual", pasted)
        if "?" in pasted:
            query = parse_qs(urlsplit(pasted).query)
            if "code" not in query or "state" not in query:
                raise InvalidRequestError("the pasted address has no code and state")
            return await self.finish_login(code=query["code"][0], state=query["state"][0])
        if not self.pending:
            raise InvalidRequestError("no login is in progress; start one with POST /accounts/add")
        return await self.finish_login(code=pasted, state=self.pending[-1])

    async def import_credentials(self, path: str | None = None) -> AccountInfo:
        self._record("import_credentials", path)
        if path is not None and path.endswith("missing.json"):
            raise InvalidRequestError(f"path: {path} does not exist", param="path")
        return self._store("imported@example.com")

    async def switch(self, email: str) -> AccountInfo:
        self._record("switch", email)
        target = self._find(email)
        self.items = [dataclasses.replace(item, is_active=item.email == email) for item in self.items]
        return dataclasses.replace(target, is_active=True)

    async def remove(self, email: str) -> None:
        self._record("remove", email)
        self._find(email)
        self.items = [item for item in self.items if item.email != email]

    async def refresh(self, email: str | None = None) -> AccountInfo:
        self._record("refresh", email)
        target = self._active() if email is None else self._find(email)
        if target.email in self.refresh_errors:
            raise self.refresh_errors[target.email]
        return self._replace(
            dataclasses.replace(target, token_expired=False, status="ok", invalid_reason=None)
        )

    async def refresh_all(self) -> dict[str, GatewayError | None]:
        self._record("refresh_all")
        return {item.email: self.refresh_errors.get(item.email) for item in self.items}

    async def models(self, email: str) -> list[ModelInfo]:
        self._record("models", email)
        self._find(email)
        return [
            ModelInfo(id="gpt-5.5", provider=self._provider, context_window=272000),
            ModelInfo(id="gpt-5.4-mini", provider=self._provider),
        ]

    async def quota(self, email: str, *, refresh: bool = False) -> tuple[Quota, bool]:
        self._record("quota", email, refresh)
        found = self._find(email)
        if email in self.quota_errors:
            raise self.quota_errors[email]
        snapshot = found.quota or QUOTA
        if refresh:
            snapshot = dataclasses.replace(snapshot, source="usage", updated_at=NOW + timedelta(minutes=1))
        return snapshot, not refresh

    async def quota_all(self) -> dict[str, Quota | GatewayError]:
        self._record("quota_all")
        return {item.email: self.quota_errors.get(item.email) or item.quota or QUOTA for item in self.items}

    async def usage(self, email: str | None = None) -> UsageSummary:
        self._record("usage", email)
        if email is not None:
            self._find(email)
        day = UsageCounters(
            requests=3, input_tokens=1200, cached_tokens=800, output_tokens=90, reasoning_tokens=40
        )
        other = UsageCounters(requests=1, input_tokens=100, output_tokens=10, errors=1, latency_ms_total=250)
        return UsageSummary(
            totals=UsageCounters(
                requests=4,
                input_tokens=1300,
                cached_tokens=800,
                output_tokens=100,
                reasoning_tokens=40,
                errors=1,
                latency_ms_total=250,
            ),
            by_model={"gpt-5.5": day, "gpt-5.4-mini": other},
            by_day=[("2025-05-31", other), ("2025-06-01", day)],
            upstream={"plan_type": "plus"} if email is not None else None,
        )

    async def strategy(self) -> Strategy:
        self._record("strategy")
        return self.current_strategy

    async def set_strategy(self, strategy: Strategy) -> None:
        self._record("set_strategy", strategy)
        self.current_strategy = strategy


class AccountsPlugin:
    """A plugin registering a fake provider and its account pool, as a provider with accounts would."""

    def __init__(self, *pools: FakeAccountPool) -> None:
        self.pools = pools

    @hookimpl
    def relaygate_register_providers(self, registry: ProviderRegistry) -> None:
        for pool in self.pools:
            registry.register(FakeProvider(pool.provider, models=["gpt-5.5"]))
            registry.register_account_pool(pool)


def failing(message: str = "upstream said no") -> GatewayError:
    return UpstreamError(message)
