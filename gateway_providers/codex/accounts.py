"""The Codex account pool: ChatGPT OAuth accounts, the rotation between them, their tokens, marks,
quota and usage (DESIGN §7). It implements :class:`gateway_core.accounts.AccountPool` for the admin
routes and the lease API the Codex provider's failover loop uses.

How it behaves, and why:

- **Memory first, store behind.** State is loaded from the store once, on first use, and kept in
  memory; every change is written through. The request path (:meth:`CodexAccountPool.acquire`,
  :meth:`~CodexAccountPool.observe_headers`, :meth:`~CodexAccountPool.record_usage`) does no store
  call unless a token must be refreshed or a mark set; quota snapshots, last-use times, usage
  counters and an automatic change of the active account are written by a background task.
- **Choosing.** ``sticky`` (default) serves from the active account while it is neither cooling nor
  invalid. When it is, the next usable account in pool order becomes the active account — persisted
  and logged at WARNING, so the change is visible in ``GET /accounts`` (``isActive``) and in the log,
  and the pool then sticks to the new one (the upstream prompt cache stays warm) rather than jumping
  back when the old one recovers. An account that is only excluded from one request (it failed that
  request) does not lose the active role. ``round-robin`` and ``quota-aware`` never change the
  active account. No account at all is a 401 at once; every account cooling (or cooling and invalid)
  is a 429 whose ``retry_after`` is the earliest reset; every account invalid is a 401 naming the
  reasons; the remaining accounts all excluded by the caller is a 401 with
  ``code="accounts_exhausted"`` (the provider may prefer to raise the last upstream error it saw).
- **Tokens.** An access token is refreshed when it expires within 5 minutes (without an expiry: when
  the last refresh is over 8 days old), and once after a 401. Refreshes are single-flight per
  account: ``store.refresh_lock`` plus a re-read after acquiring it, so a waiter picks up the token
  a concurrent refresh produced instead of spending the rotated refresh token again. The new tokens
  are on durable storage before the new access token is used; the refresh and that write are
  shielded from cancellation (a client hanging up must not lose a rotated token). A permanent refusal
  (``refresh_token_expired/reused/invalidated``) marks the account invalid; any successful refresh,
  including ``POST /accounts/{email}/refresh``, clears that mark. A transient failure leaves the
  account alone and serves its current token while it is still valid.
- **Logins.** Browser logins through :class:`~gateway_providers.codex.login.LoginFlow` (the one-shot
  listener, the gateway's ``/auth/callback`` and the manual paste all end in :meth:`finish_login`),
  or an import of the Codex CLI's ``auth.json``. Adding an email that exists updates that account.
  The first account becomes active; removing the active one hands the role to another.

Tokens, codes and verifiers never appear in a log line, an error or a returned value.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import anyio
import anyio.to_thread
import httpx

from gateway_core.accounts import AccountInfo, LoginStart, Quota, Strategy, UsageSummary
from gateway_core.errors import AuthenticationError, GatewayError, InvalidRequestError, NotFoundError
from gateway_core.models import ModelInfo
from gateway_core.store import AccountRecord, Clock, MarkKind, Store, Tokens, utcnow
from gateway_providers.codex._account import PoolAccount, usage_summary
from gateway_providers.codex._pool import PoolCore
from gateway_providers.codex.config import CodexSettings
from gateway_providers.codex.credentials import read_auth_json
from gateway_providers.codex.lease import Lease, ModelsSource
from gateway_providers.codex.login import LOGIN_TIMEOUT, LoginFlow, parse_pasted
from gateway_providers.codex.oauth import LoginFailed, read_claims
from gateway_providers.codex.quota import as_of, fetch_usage, quota_from_usage, quota_to_json
from gateway_providers.codex.strategies import parse_strategy
from gateway_providers.codex.usage import BATCH_SIZE, FLUSH_INTERVAL

__all__ = ["CodexAccountPool", "Lease", "ModelLister", "ModelsSource"]

logger = logging.getLogger(__name__)

QUOTA_TTL: Final = timedelta(minutes=3)
"""``quota()`` fetches the usage endpoint at most this often per account unless asked to."""


class ModelLister(Protocol):
    """A model catalog that can list one account's models (the provider's ``ModelCatalog``)."""

    async def model_infos(self, credentials: Lease) -> list[ModelInfo]: ...


class CodexAccountPool(PoolCore):
    """ChatGPT accounts of the Codex provider: :class:`gateway_core.accounts.AccountPool` plus the
    lease API (see the module docstring for the rules).

    ``http`` is the provider's shared client (for the issuer and the usage endpoint).
    ``models_source`` lists one account's models for :meth:`models`: a callable taking a
    :class:`Lease`, or a catalog with ``model_infos(lease)``. ``callback_listener=False`` opens no
    local listener: logins then complete through the gateway's ``GET /auth/callback`` or
    :meth:`finish_login_manual`.
    """

    def __init__(
        self,
        store: Store,
        settings: CodexSettings,
        http: httpx.AsyncClient,
        *,
        clock: Clock = utcnow,
        models_source: ModelsSource | ModelLister | None = None,
        provider: str = "codex",
        callback_listener: bool = True,
        login_timeout: float = LOGIN_TIMEOUT,
        quota_ttl: timedelta = QUOTA_TTL,
        flush_interval: float = FLUSH_INTERVAL,
        flush_batch: int = BATCH_SIZE,
    ) -> None:
        super().__init__(
            store,
            settings,
            http,
            clock=clock,
            provider=provider,
            flush_interval=flush_interval,
            flush_batch=flush_batch,
        )
        self._models_source = models_source
        self._quota_ttl = quota_ttl
        self._login = LoginFlow(
            issuer=settings.oauth_issuer,
            port=settings.callback_port,
            complete=self._complete_login,
            listen=callback_listener,
            timeout=login_timeout,
        )

    # --- AccountPool: listing, logins, imports ---------------------------------------------------

    def _info(self, account: PoolAccount) -> AccountInfo:
        return account.info(self._clock(), active=account.email == self._active)

    async def accounts(self) -> list[AccountInfo]:
        await self._ensure_loaded()
        return [self._info(a) for a in self._accounts.values()]

    async def begin_login(self) -> LoginStart:
        await self._ensure_loaded()
        return await self._login.begin()

    async def _complete_login(self, code: str, state: str) -> str:
        return (await self.finish_login(code=code, state=state)).email

    async def finish_login(self, *, code: str, state: str) -> AccountInfo:
        await self._ensure_loaded()
        pending = self._login.take(state)
        grant = await self._oauth.exchange_code(
            code=code, verifier=pending.pkce.verifier, redirect=pending.redirect_uri
        )
        claims = read_claims(grant.id_token, grant.access_token)
        if claims.email is None or grant.access_token is None or grant.refresh_token is None:
            raise LoginFailed("the tokens from the OAuth issuer name no email; cannot add the account")
        account = await self._save_login(
            email=claims.email,
            account_id=claims.account_id,
            plan_type=claims.plan_type,
            tokens=Tokens(
                access_token=grant.access_token, refresh_token=grant.refresh_token, id_token=grant.id_token
            ),
            expires_at=claims.expires_at,
            last_refresh=None,
            how="browser login",
        )
        return self._info(account)

    async def finish_login_manual(self, pasted: str) -> AccountInfo:
        """Complete a login from the callback URL the browser landed on (pasted whole, or its query),
        or from the bare code, which belongs to the most recently started login."""
        code, state, error, description = parse_pasted(pasted)
        if state is None:
            latest = self._login.latest()
            if latest is None:
                raise InvalidRequestError(
                    "no login in progress: start one with POST /accounts/add, then paste its callback URL",
                    param="url",
                )
            state = latest.state
        if error is not None:
            raise self._login.fail(state, error, description)
        if not code:
            raise InvalidRequestError("the pasted callback URL carries no code", param="url")
        return await self.finish_login(code=code, state=state)

    async def import_credentials(self, path: str | None = None) -> AccountInfo:
        """Add the login of the Codex CLI's ``auth.json``. The CLI and relaygate then share one refresh
        token: whichever refreshes first spends it, and the other must log in (or import) again."""
        await self._ensure_loaded()
        source = path if path is not None else self._settings.auth_file
        login = await anyio.to_thread.run_sync(read_auth_json, source)
        account = await self._save_login(
            email=login.email,
            account_id=login.account_id,
            plan_type=login.plan_type,
            tokens=login.tokens,
            expires_at=login.access_expires_at,
            last_refresh=login.last_refresh,
            how="imported",
        )
        return self._info(account)

    async def _save_login(
        self,
        *,
        email: str,
        account_id: str | None,
        plan_type: str | None,
        tokens: Tokens,
        expires_at: datetime | None,
        last_refresh: datetime | None,
        how: str,
    ) -> PoolAccount:
        """Store a login: a new account, or new tokens for the account with that email."""
        now = self._clock()
        async with self._store.refresh_lock(email):
            stored = await self._store.get_account(email)
            base = stored or AccountRecord(email=email, tokens=tokens, added_at=now)
            record = dataclasses.replace(
                base,
                tokens=tokens,
                account_id=account_id or base.account_id,
                plan_type=plan_type or base.plan_type,
                access_expires_at=expires_at,
                last_refresh=last_refresh or now,
            )
            saved = await self._store.upsert_account(record)
            await self._store.clear_mark(email, MarkKind.INVALID)
            account = self._accounts.get(email)
            if account is None:
                marks = await self._store.list_marks(email)
                account = self._accounts[email] = PoolAccount.from_record(saved, marks)
            else:
                account.record = saved
                account.invalid = None
                account.unsaved_tokens = False
        if self._active is None or self._active not in self._accounts:
            self._active = email
            await self._writer.write_setting(self._active_key, email)
        logger.info("Codex account %s %s (%s)", email, "updated" if stored is not None else "added", how)
        return account

    # --- AccountPool: maintenance ----------------------------------------------------------------

    async def switch(self, email: str) -> AccountInfo:
        await self._ensure_loaded()
        account = self._require(email)
        await self._writer.write_setting(self._active_key, email)
        self._active = email
        logger.info("active Codex account switched to %s", email)
        return self._info(account)

    async def remove(self, email: str) -> None:
        await self._ensure_loaded()
        self._require(email)
        await self._store.delete_account(email)
        self._forget(email)
        logger.info("Codex account %s removed", email)
        if self._active != email:
            return
        now = self._clock()
        usable = [e for e, a in self._accounts.items() if a.status(now) == "ok"]
        self._active = next(iter(usable or self._accounts), None)
        await self._writer.write_setting(self._active_key, self._active)
        logger.info("active Codex account is now %s", self._active)

    async def refresh(self, email: str | None = None) -> AccountInfo:
        await self._ensure_loaded()
        target = email if email is not None else self._active
        if target is None:
            raise NotFoundError("no active Codex account to refresh: add one first", param="email")
        account = self._require(target)
        await self._refresh_tokens(target, seen=account.record.tokens.access_token, force=True)
        return self._info(account)

    async def refresh_all(self) -> dict[str, GatewayError | None]:
        await self._ensure_loaded()
        results: dict[str, GatewayError | None] = {}

        async def one(email: str) -> None:
            try:
                await self.refresh(email)
            except GatewayError as exc:
                results[email] = exc
            else:
                results[email] = None

        async with anyio.create_task_group() as group:
            for email in list(self._accounts):
                group.start_soon(one, email)
        return {email: results[email] for email in self._accounts if email in results}

    # --- AccountPool: models, quota, usage -------------------------------------------------------

    async def models(self, email: str) -> list[ModelInfo]:
        """The account's models from the provider's listing; empty when the pool was built without one."""
        await self._ensure_loaded()
        lease = await self._lease_for(email)
        source = self._models_source
        if source is None:
            return []
        if callable(source):
            return await source(lease)
        return await source.model_infos(lease)

    async def quota(self, email: str, *, refresh: bool = False) -> tuple[Quota, bool]:
        """The account's quota. Fetches the usage endpoint when asked, when none is known, or when
        the last fetch is older than the TTL; otherwise answers the latest quota (headers included)
        from memory with ``cached=True``. A failed fetch falls back to a cached quota unless
        ``refresh`` was asked."""
        await self._ensure_loaded()
        account = self._require(email)
        if not refresh and (cached := self._cached_quota(account)) is not None:
            return cached, True
        async with account.quota_lock:
            if not refresh and (cached := self._cached_quota(account)) is not None:
                return cached, True  # fetched by a concurrent caller
            try:
                payload = await self._fetch_usage(email)
            except GatewayError:
                if refresh or account.quota is None:
                    raise
                logger.warning(
                    "could not fetch the quota of Codex account %s; answering the cached one", email
                )
                return as_of(account.quota, self._clock()), True
            now = self._clock()
            quota = quota_from_usage(payload, now=now)
            account.quota, account.upstream_usage, account.usage_fetched_at = quota, payload, now
            await self._guard(
                f"save the quota of {email}", self._store.set_quota(email, quota_to_json(quota), at=now)
            )
            await self._guard(
                f"save the usage of {email}", self._store.set_upstream_usage(email, payload, at=now)
            )
            return as_of(quota, now), False

    def _cached_quota(self, account: PoolAccount) -> Quota | None:
        now = self._clock()
        fetched = account.usage_fetched_at
        if account.quota is None or fetched is None or now - fetched >= self._quota_ttl:
            return None
        return as_of(account.quota, now)

    async def _fetch_usage(self, email: str) -> dict[str, Any]:
        lease = await self._lease_for(email)
        try:
            return await fetch_usage(
                self._http,
                self._settings.base_url,
                access_token=lease.access_token,
                account_id=lease.account_id,
            )
        except AuthenticationError as exc:
            if exc.code != "unauthorized":
                raise
        retry = await self.refresh_after_unauthorized(lease)
        if retry is None:
            raise AuthenticationError(
                f"the Codex backend refused account {email}; log in again", param="email"
            )
        return await fetch_usage(
            self._http, self._settings.base_url, access_token=retry.access_token, account_id=retry.account_id
        )

    async def quota_all(self) -> dict[str, Quota | GatewayError]:
        await self._ensure_loaded()
        results: dict[str, Quota | GatewayError] = {}

        async def one(email: str) -> None:
            try:
                results[email] = (await self.quota(email, refresh=True))[0]
            except GatewayError as exc:
                results[email] = exc

        async with anyio.create_task_group() as group:
            for email in list(self._accounts):
                group.start_soon(one, email)
        return {email: results[email] for email in self._accounts if email in results}

    async def usage(self, email: str | None = None) -> UsageSummary:
        """Recorded usage (queued counters flushed first) and the last ``/wham/usage`` snapshot: the
        account's own, or for all accounts a mapping email -> snapshot (``None`` when there is none)."""
        await self._ensure_loaded()
        upstream: Any
        if email is not None:
            upstream = self._require(email).upstream_usage
        else:
            snapshots = {
                e: a.upstream_usage for e, a in self._accounts.items() if a.upstream_usage is not None
            }
            upstream = snapshots or None
        await self._writer.flush()
        report = await self._store.usage_report(email)
        return usage_summary(report, upstream)

    async def strategy(self) -> Strategy:
        await self._ensure_loaded()
        return self._strategy

    async def set_strategy(self, strategy: Strategy) -> None:
        await self._ensure_loaded()
        chosen = parse_strategy(strategy)
        await self._writer.write_setting(self._strategy_key, chosen)
        self._strategy = chosen
        logger.info("Codex account strategy set to %s", chosen)

    async def aclose(self) -> None:
        """Close the login listener and write what is still queued, refreshed tokens a failed save
        left in memory included (the store's refresh tokens of those accounts are spent)."""
        await self._login.aclose()
        for account in list(self._accounts.values()):
            if account.unsaved_tokens:
                await self._guard(
                    f"save the refreshed tokens of {account.email}", self._save_unsaved_tokens(account)
                )
        await self._writer.aclose()
