"""The mechanics of the Codex account pool: state, choice of an account, tokens, and what the
provider reports back (DESIGN §7). :class:`~gateway_providers.codex.accounts.CodexAccountPool` adds
the admin side on top; the rules are described there.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

import anyio
import httpx

from gateway_core.accounts import Quota, Strategy
from gateway_core.errors import AuthenticationError, GatewayError, InvalidRequestError, RateLimitError
from gateway_core.models import Usage
from gateway_core.store import (
    AccountNotFoundError,
    AccountRecord,
    Clock,
    Mark,
    MarkKind,
    Store,
    Tokens,
    utcnow,
)
from gateway_providers.codex._account import PoolAccount
from gateway_providers.codex.config import CodexSettings
from gateway_providers.codex.lease import Lease
from gateway_providers.codex.oauth import OAuthClient, RefreshTokenRejected, read_claims
from gateway_providers.codex.quota import (
    as_of,
    binding_percent,
    limit_reset,
    quota_from_headers,
    quota_to_json,
)
from gateway_providers.codex.strategies import parse_strategy, pick
from gateway_providers.codex.usage import BATCH_SIZE, FLUSH_INTERVAL, WriteBehind, increment_for

logger = logging.getLogger("gateway_providers.codex.accounts")

REFRESH_MARGIN: Final = timedelta(minutes=5)
"""Refresh an access token this long before its ``exp`` (current Codex does the same)."""
STALE_REFRESH: Final = timedelta(days=8)
"""Without an ``exp``, refresh tokens last refreshed longer ago than this (Codex's rule)."""
REFRESH_BACKOFF: Final = timedelta(seconds=30)
"""After a transient refresh failure, serve the still-valid token this long before trying again."""
DEFAULT_COOLDOWN: Final = timedelta(minutes=1)
"""How long a usage limit without a known reset time cools an account."""


class PoolCore:
    """Accounts in memory over the store, and the lease API the provider's failover loop uses."""

    def __init__(
        self,
        store: Store,
        settings: CodexSettings,
        http: httpx.AsyncClient,
        *,
        clock: Clock = utcnow,
        provider: str = "codex",
        flush_interval: float = FLUSH_INTERVAL,
        flush_batch: int = BATCH_SIZE,
    ) -> None:
        self._store = store
        self._settings = settings
        self._http = http
        self._oauth = OAuthClient(http, settings.oauth_issuer)
        self._clock = clock
        self._provider = provider
        self._strategy_key = f"{provider}.account_strategy"
        self._active_key = f"{provider}.active_account"
        self._writer = WriteBehind(store, interval=flush_interval, batch_size=flush_batch)
        self._accounts: dict[str, PoolAccount] = {}
        self._active: str | None = None
        self._strategy: Strategy = "sticky"
        self._last_pick: str | None = None
        self._loaded = False
        self._load_lock = anyio.Lock()

    @property
    def provider(self) -> str:
        return self._provider

    # --- loading ---------------------------------------------------------------------------------

    async def _ensure_loaded(self) -> None:
        if not self._loaded:
            async with self._load_lock:
                if not self._loaded:
                    await self._load()

    async def _load(self) -> None:
        """Read accounts, marks and settings once; later changes are written through."""
        records = await self._store.list_accounts()
        marks = await self._store.list_marks()
        stored_strategy = await self._store.get_setting(self._strategy_key)
        stored_active = await self._store.get_setting(self._active_key)
        by_email: dict[str, list[Mark]] = {}
        for mark in marks:
            by_email.setdefault(mark.email, []).append(mark)
        self._accounts = {r.email: PoolAccount.from_record(r, by_email.get(r.email)) for r in records}
        if stored_strategy is not None:
            try:
                self._strategy = parse_strategy(stored_strategy)
            except InvalidRequestError:
                logger.warning("ignoring the stored account strategy %r: not a strategy", stored_strategy)
        if isinstance(stored_active, str) and stored_active in self._accounts:
            self._active = stored_active
        elif self._accounts:
            self._active = next(iter(self._accounts))
            self._writer.queue_setting(self._active_key, self._active)
        self._loaded = True

    def _require(self, email: str) -> PoolAccount:
        account = self._accounts.get(email)
        if account is None:
            raise AccountNotFoundError(email)
        return account

    # --- choosing an account ---------------------------------------------------------------------

    async def acquire(self, *, exclude: frozenset[str] = frozenset()) -> Lease:
        """A lease on the account the strategy picks, skipping ``exclude``, cooling and invalid
        accounts, with a token that stays valid for at least 5 minutes. Raises at once when no
        account can serve (see the module docstring); never waits for a reset."""
        if not self._loaded:
            await self._ensure_loaded()
        skip = set(exclude)
        transient: GatewayError | None = None
        while True:
            now = self._clock()
            try:
                account = self._choose(skip, now)
            except GatewayError as exc:
                if transient is not None and exc.code == "accounts_exhausted":
                    raise transient from None
                raise
            try:
                await self._ensure_fresh(account, now)
            except (RefreshTokenRejected, AccountNotFoundError):
                skip.add(account.email)  # marked invalid, or removed meanwhile: next one
                continue
            except GatewayError as exc:
                transient = exc
                skip.add(account.email)
                continue
            return account.lease()

    def _choose(self, skip: set[str], now: datetime) -> PoolAccount:
        if not self._accounts:
            raise AuthenticationError(
                "no ChatGPT account yet: log in with `relaygate accounts add` (POST /accounts/add), or "
                "import the Codex CLI's login with `relaygate accounts import` (POST /accounts/import)",
                code="no_accounts",
            )
        candidates = [e for e, a in self._accounts.items() if e not in skip and a.status(now) == "ok"]
        if not candidates:
            raise self._exhausted(now)
        percents: Mapping[str, float | None] = {}
        if self._strategy == "quota-aware":
            percents = {e: binding_percent(_current(self._accounts[e].quota, now)) for e in candidates}
        email = pick(
            self._strategy,
            candidates,
            order=list(self._accounts),
            active=self._active,
            last=self._last_pick,
            percents=percents,
        )
        self._last_pick = email
        if self._strategy == "sticky" and email != self._active:
            current = self._accounts.get(self._active) if self._active is not None else None
            if current is None or current.status(now) != "ok":
                why = "none was active" if current is None else f"{current.email} is {current.status(now)}"
                self._move_active(email, why)
        return self._accounts[email]

    def _exhausted(self, now: datetime) -> GatewayError:
        """The error when no candidate is left: 429 if waiting helps, else 401."""
        accounts = list(self._accounts.values())
        resets = [
            until for a in accounts if a.invalid is None and (until := a.cooling_until(now)) is not None
        ]
        if resets:
            earliest = min(resets)
            seconds = max(1, math.ceil((earliest - now).total_seconds()))
            return RateLimitError(
                f"every Codex account is rate limited; the first one resets at "
                f"{earliest.astimezone(UTC).isoformat(timespec='seconds')} (in {seconds} s)",
                retry_after=seconds,
                code="usage_limit_reached",
            )
        invalid = [a for a in accounts if a.invalid is not None]
        if len(invalid) == len(accounts):
            reasons = "; ".join(f"{a.email}: {a.invalid.reason}" for a in invalid if a.invalid is not None)
            return AuthenticationError(
                f"every Codex account is invalid ({reasons}); log in again with POST /accounts/add",
                code="accounts_invalid",
            )
        return AuthenticationError(
            "no other Codex account can serve this request (the others are invalid, rate limited or "
            "already failed it)",
            code="accounts_exhausted",
        )

    def _move_active(self, email: str, why: str) -> None:
        old, self._active = self._active, email
        self._writer.queue_setting(self._active_key, email)
        logger.warning("active Codex account is now %s (was %s: %s)", email, old, why)

    # --- tokens ----------------------------------------------------------------------------------

    def _needs_refresh(self, record: AccountRecord, now: datetime) -> bool:
        expires = record.access_expires_at
        if expires is not None:
            return expires - now <= REFRESH_MARGIN
        return record.last_refresh is None or now - record.last_refresh > STALE_REFRESH

    def _backing_off(self, account: PoolAccount, now: datetime) -> bool:
        """A recent transient failure, and a token that still works: do not try again yet."""
        retry_at = account.refresh_retry_at
        return retry_at is not None and now < retry_at and not account.token_expired(now)

    async def _ensure_fresh(self, account: PoolAccount, now: datetime) -> None:
        record = account.record
        if not self._needs_refresh(record, now) or self._backing_off(account, now):
            return
        try:
            await self._refresh_tokens(account.email, seen=record.tokens.access_token, force=False)
        except (RefreshTokenRejected, AccountNotFoundError):
            raise
        except GatewayError as exc:
            if account.token_expired(self._clock()):
                raise
            logger.warning(
                "could not refresh Codex account %s (%s); using its current token until it expires",
                account.email,
                exc.message,
            )

    async def _refresh_tokens(self, email: str, *, seen: str, force: bool) -> AccountRecord:
        """Refresh ``email``'s tokens unless someone else did since we saw the access token ``seen``.

        ``force`` refreshes even a token that is not near its expiry (after a 401, or on request).
        """
        async with self._store.refresh_lock(email):
            account = self._require(email)
            now = self._clock()
            if self._replaced(account.record, seen, now, force=force):
                return account.record  # refreshed in this process while we waited
            if not force and self._backing_off(account, now):
                return account.record  # the refresh we waited for failed: not again right away
            stored = await self._store.get_account(email)
            if stored is None:
                self._forget(email)
                raise AccountNotFoundError(email)
            if account.unsaved_tokens:
                stored = await self._save_unsaved_tokens(account)
            if self._replaced(stored, seen, now, force=force) or (
                not force and not self._needs_refresh(stored, now)
            ):
                account.record = stored  # refreshed by another gateway instance
                return stored
            # The issuer rotates the refresh token the moment it answers: nothing may interrupt us
            # between its answer and the durable write of the new one.
            with anyio.CancelScope(shield=True):
                saved = await self._rotate(account, stored, now)
        if account.invalid is not None:
            account.invalid = None
            await self._guard(
                f"clear the invalid mark of {email}", self._store.clear_mark(email, MarkKind.INVALID)
            )
        logger.info("refreshed the tokens of Codex account %s", email)
        return saved

    async def _save_unsaved_tokens(self, account: PoolAccount) -> AccountRecord:
        """Write the tokens of a refresh whose save failed earlier (the store's refresh token is spent:
        the one in memory is the only live one). Raises the store's error when it still fails."""
        record = account.record
        saved = await self._store.update_tokens(
            record.email,
            record.tokens,
            access_expires_at=record.access_expires_at,
            refreshed_at=record.last_refresh,
        )
        account.record, account.unsaved_tokens = saved, False
        logger.info("saved the refreshed tokens of Codex account %s", record.email)
        return saved

    def _replaced(self, record: AccountRecord, seen: str, now: datetime, *, force: bool) -> bool:
        return record.tokens.access_token != seen and (force or not self._needs_refresh(record, now))

    async def _rotate(self, account: PoolAccount, stored: AccountRecord, now: datetime) -> AccountRecord:
        email = stored.email
        try:
            grant = await self._oauth.refresh(stored.tokens.refresh_token)
        except RefreshTokenRejected as exc:
            await self._set_invalid(account, f"refresh token rejected ({exc.code}); log in again")
            raise
        except GatewayError:
            account.refresh_retry_at = now + REFRESH_BACKOFF
            raise
        account.refresh_retry_at = None
        tokens = Tokens(
            access_token=grant.access_token or stored.tokens.access_token,
            refresh_token=grant.refresh_token or stored.tokens.refresh_token,
            id_token=grant.id_token or stored.tokens.id_token,
        )
        claims = read_claims(grant.id_token, grant.access_token)
        expires = claims.expires_at
        if expires is None and grant.expires_in is not None:
            expires = now + timedelta(seconds=grant.expires_in)
        try:
            saved = await self._store.update_tokens(
                email, tokens, access_expires_at=expires, refreshed_at=now
            )
        except BaseException:
            # The old refresh token is spent upstream: keep the new one at least for this process.
            account.record = dataclasses.replace(
                stored, tokens=tokens, access_expires_at=expires, last_refresh=now
            )
            account.unsaved_tokens = True
            logger.error("could not save the refreshed tokens of Codex account %s; kept in memory", email)
            raise
        account.unsaved_tokens = False
        if (claims.plan_type and claims.plan_type != saved.plan_type) or (
            claims.account_id and claims.account_id != saved.account_id
        ):
            changed = dataclasses.replace(
                saved,
                plan_type=claims.plan_type or saved.plan_type,
                account_id=claims.account_id or saved.account_id,
            )
            try:
                saved = await self._store.upsert_account(changed)
            except Exception:
                logger.exception("could not save the new plan of Codex account %s", email)
                saved = changed
        account.record = saved
        return saved

    async def refresh_after_unauthorized(self, lease: Lease) -> Lease | None:
        """After a 401: a lease with a refreshed token (or the one a concurrent refresh already
        produced), or ``None`` when the account cannot serve now — its refresh token was refused (the
        account is then marked invalid) or the refresh failed transiently (no mark). A second 401 with
        the returned lease is the provider's cue to call :meth:`mark_invalid`."""
        await self._ensure_loaded()
        account = self._accounts.get(lease.email)
        if account is None or account.invalid is not None:
            return None
        try:
            await self._refresh_tokens(lease.email, seen=lease.access_token, force=True)
        except RefreshTokenRejected:
            return None
        except GatewayError as exc:
            logger.warning("could not refresh Codex account %s after a 401: %s", lease.email, exc.message)
            return None
        return account.lease()

    # --- what the provider reports ---------------------------------------------------------------

    def observe_headers(self, lease: Lease, headers: Mapping[str, str], *, status: int | None = None) -> None:
        """Read an upstream answer's ``x-codex-*`` headers into the account's quota (at once in memory,
        saved in the background). Pass the HTTP ``status``: a 2xx also records the account's last use."""
        account = self._accounts.get(lease.email)
        if account is None:
            return
        now = self._clock()
        quota = quota_from_headers(headers, now=now)
        if quota is not None:
            if quota.plan_type is None and account.quota is not None:
                quota = dataclasses.replace(quota, plan_type=account.quota.plan_type)
            account.quota = quota
            self._writer.queue_quota(account.email, quota_to_json(quota), now)
        if status is not None and 200 <= status < 300:
            self._touch(account, now)

    async def mark_rate_limited(self, lease: Lease, *, resets_at: datetime | None, reason: str) -> None:
        """A 429 ``usage_limit_reached``: the account cools until ``resets_at`` (when missing or past:
        the reset of an exhausted quota window, else one minute). Store failures are logged only."""
        account = self._accounts.get(lease.email)
        if account is None:
            return
        now = self._clock()
        until = _aware(resets_at) or limit_reset(account.quota)
        if until is None or until <= now:
            until = now + DEFAULT_COOLDOWN
        mark = Mark(
            email=account.email,
            kind=MarkKind.COOLING,
            reason=reason or "usage limit reached",
            until=until,
            set_at=now,
        )
        account.cooling = mark
        logger.warning(
            "Codex account %s is rate limited until %s (%s)", account.email, until.isoformat(), mark.reason
        )
        await self._guard(f"save the cooling mark of {account.email}", self._store.set_mark(mark))

    async def mark_invalid(self, lease: Lease, reason: str) -> None:
        """The upstream refused the account for good (e.g. a 401 right after a refresh). Ignored when
        the lease's token has been replaced since: the refusal was of an old token."""
        account = self._accounts.get(lease.email)
        if account is None:
            return
        if account.record.tokens.access_token != lease.access_token:
            logger.info(
                "not marking Codex account %s invalid: its token was refreshed meanwhile", lease.email
            )
            return
        await self._set_invalid(account, reason)

    async def _set_invalid(self, account: PoolAccount, reason: str) -> None:
        mark = Mark(
            email=account.email, kind=MarkKind.INVALID, reason=reason or "refused", set_at=self._clock()
        )
        account.invalid = mark
        logger.warning("Codex account %s is invalid: %s", account.email, mark.reason)
        await self._guard(f"save the invalid mark of {account.email}", self._store.set_mark(mark))

    def record_usage(
        self, lease: Lease, *, model: str, usage: Usage | None, latency_ms: float, error: bool
    ) -> None:
        """Count one request (queued; written in batches off the request path). Usage of an account
        removed meanwhile is dropped."""
        account = self._accounts.get(lease.email)
        if account is None:
            return
        now = self._clock()
        try:
            increment = increment_for(
                account.email, model, now.date(), usage, latency_ms=latency_ms, error=error
            )
        except ValueError:
            logger.warning("dropped unrecordable usage of Codex account %s", account.email)
            return
        self._writer.queue_usage(increment)
        if not error:
            self._touch(account, now)

    def _touch(self, account: PoolAccount, now: datetime) -> None:
        account.last_used = now
        self._writer.queue_last_used(account.email, now)

    async def _guard(self, what: str, write: Awaitable[object]) -> None:
        """Await a store write whose failure must not fail the caller's request: log it instead."""
        try:
            await write
        except AccountNotFoundError:
            pass
        except Exception:
            logger.exception("could not %s", what)

    def _forget(self, email: str) -> None:
        self._accounts.pop(email, None)
        self._writer.forget(email)
        if self._last_pick == email:
            self._last_pick = None

    async def _lease_for(self, email: str) -> Lease:
        """A lease on one named account (admin calls), refreshing its token if needed."""
        account = self._require(email)
        if account.invalid is not None:
            raise AuthenticationError(
                f"Codex account {email} is invalid ({account.invalid.reason}); log in again or "
                f"POST /accounts/{email}/refresh",
                param="email",
            )
        now = self._clock()
        if self._needs_refresh(account.record, now):
            await self._refresh_tokens(email, seen=account.record.tokens.access_token, force=False)
        return account.lease()


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _current(quota: Quota | None, now: datetime) -> Quota | None:
    return None if quota is None else as_of(quota, now)
