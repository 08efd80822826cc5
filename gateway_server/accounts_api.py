"""What each account route answers, without the web framework (DESIGN §6, §6.1, §7).

Every function takes an :class:`~gateway_core.accounts.AccountPool` and returns the route's JSON body;
failures are :class:`~gateway_core.errors.GatewayError` (an unknown email is the pool's 404). The
``/accounts*`` controllers call these, and so does ``relaygate accounts`` when no gateway is running,
so the command line prints exactly what the HTTP API answers.

Conventions the routes document:

- Which pool: the only one installed; with several, the one named ``codex`` unless ``provider`` names
  another. No pool at all is a 404 "no provider with accounts is installed".
- Where ``email`` is optional (models, quota), the active account is meant; for usage, all accounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway_core.accounts import STRATEGIES, AccountInfo, AccountPool, Strategy
from gateway_core.errors import GatewayError, InvalidRequestError, NotFoundError
from gateway_server.admin_shapes import (
    active_email,
    render_account,
    render_account_list,
    render_model,
    render_quota,
    render_status,
    render_usage,
)

DEFAULT_POOL = "codex"
"""The pool used when several providers have accounts and the caller names none."""

NO_POOL_MESSAGE = "no provider with accounts is installed"

PASTED_LOGIN_FIELDS: tuple[str, ...] = ("callbackUrl", "url", "code", "input")
"""Body fields ``POST /accounts/add/manual`` accepts for the pasted callback URL or bare code."""


def select_pool(pools: Mapping[str, AccountPool], provider: str | None = None) -> AccountPool:
    """The pool a request addresses: ``provider``'s, else the only one, else ``codex``'s."""
    if not pools:
        raise NotFoundError(NO_POOL_MESSAGE)
    names = ", ".join(sorted(pools))
    if provider is not None:
        if provider not in pools:
            raise NotFoundError(
                f'provider: "{provider}" has no accounts (providers with accounts: {names})', param="provider"
            )
        return pools[provider]
    if len(pools) == 1:
        return next(iter(pools.values()))
    if DEFAULT_POOL in pools:
        return pools[DEFAULT_POOL]
    raise InvalidRequestError(
        f"provider: several providers have accounts ({names}); choose one with ?provider=", param="provider"
    )


async def resolve_email(pool: AccountPool, email: str | None) -> str:
    """``email``, or the active account's when it is omitted."""
    if email is not None:
        return email
    current = active_email(await pool.accounts())
    if current is None:
        raise NotFoundError(
            "email: no account is active; add one (POST /accounts/add) or pass ?email=", param="email"
        )
    return current


def _action(message: str, account: AccountInfo | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"success": True, "message": message}
    if account is not None:
        body["email"] = account.email
        body["account"] = render_account(account)
    body.update(extra)
    return body


# --- listing --------------------------------------------------------------------------------------


async def list_accounts(pool: AccountPool) -> dict[str, Any]:
    """``GET /accounts``."""
    return render_account_list(await pool.accounts())


async def status(pool: AccountPool) -> dict[str, Any]:
    """``GET /accounts/status``."""
    return render_status(await pool.accounts())


# --- adding ---------------------------------------------------------------------------------------


async def begin_login(pool: AccountPool) -> dict[str, Any]:
    """``POST /accounts/add``: the URL to open; the PKCE verifier stays in the pool."""
    start = await pool.begin_login()
    return {
        "status": "oauth_url",
        "oauth_url": start.oauth_url,
        "state": start.state,
        "callback_port": start.callback_port,
    }


async def finish_login(pool: AccountPool, *, code: str, state: str) -> dict[str, Any]:
    """``GET /auth/callback`` as JSON (the route itself answers an HTML page)."""
    account = await pool.finish_login(code=code, state=state)
    return _action(f"Account {account.email} added", account)


async def finish_login_manual(pool: AccountPool, pasted: str) -> dict[str, Any]:
    """``POST /accounts/add/manual`` with the pasted callback URL or bare code."""
    account = await pool.finish_login_manual(pasted)
    return _action(f"Account {account.email} added", account)


async def import_credentials(pool: AccountPool, path: str | None) -> dict[str, Any]:
    """``POST /accounts/import``: ``path`` or the pool's default credentials file."""
    account = await pool.import_credentials(path)
    return _action(f"Account {account.email} imported", account)


# --- managing -------------------------------------------------------------------------------------


async def switch(pool: AccountPool, email: str) -> dict[str, Any]:
    """``POST /accounts/switch``."""
    account = await pool.switch(email)
    return _action(f"Switched to account: {account.email}", account)


async def remove(pool: AccountPool, email: str) -> dict[str, Any]:
    """``DELETE /accounts/{email}``."""
    await pool.remove(email)
    return _action(f"Account {email} removed", email=email)


async def refresh(pool: AccountPool, email: str | None) -> dict[str, Any]:
    """``POST /accounts/refresh`` (the active account) and ``POST /accounts/{email}/refresh``."""
    account = await pool.refresh(email)
    return _action(f"Tokens of {account.email} refreshed", account)


async def refresh_all(pool: AccountPool) -> dict[str, Any]:
    """``POST /accounts/refresh/all``: ``{success, results: {email: {success, error?}}}``."""
    results: dict[str, dict[str, Any]] = {}
    for email, error in (await pool.refresh_all()).items():
        results[email] = {"success": True} if error is None else {"success": False, "error": error.message}
    return {"success": True, "results": results}


# --- reading --------------------------------------------------------------------------------------


async def models(pool: AccountPool, email: str | None) -> dict[str, Any]:
    """``GET /accounts/models``: the models ``email`` (default: the active account) may use."""
    resolved = await resolve_email(pool, email)
    listed = await pool.models(resolved)
    return {"success": True, "email": resolved, "models": [render_model(model) for model in listed]}


async def quota(pool: AccountPool, email: str | None, *, refresh: bool = False) -> dict[str, Any]:
    """``GET /accounts/quota``: ``email``'s (default: the active account's) quota; ``refresh`` asks
    the upstream now instead of answering the last snapshot."""
    resolved = await resolve_email(pool, email)
    snapshot, cached = await pool.quota(resolved, refresh=refresh)
    return {"success": True, "email": resolved, "quota": render_quota(snapshot), "cached": cached}


async def quota_all(pool: AccountPool) -> dict[str, Any]:
    """``GET /accounts/quota/all``: ``{accounts: [{email, quota|null, error?}]}``."""
    entries: list[dict[str, Any]] = []
    for email, result in (await pool.quota_all()).items():
        if isinstance(result, GatewayError):
            entries.append({"email": email, "quota": None, "error": result.message})
        else:
            entries.append({"email": email, "quota": render_quota(result)})
    return {"accounts": entries}


async def usage(pool: AccountPool, email: str | None) -> dict[str, Any]:
    """``GET /accounts/usage``: one account's recorded usage, or every account's when ``email`` is omitted."""
    return render_usage(await pool.usage(email), email=email)


# --- strategy -------------------------------------------------------------------------------------


def parse_strategy(value: str) -> Strategy:
    """``value`` as a rotation strategy; anything else is a 400 listing the allowed ones."""
    for strategy in STRATEGIES:
        if value == strategy:
            return strategy
    allowed = ", ".join(f'"{name}"' for name in STRATEGIES)
    raise InvalidRequestError(f"strategy: must be one of {allowed}; got {value!r}", param="strategy")


async def get_strategy(pool: AccountPool) -> dict[str, Any]:
    """``GET /settings/account-strategy``."""
    return {"success": True, "strategy": await pool.strategy(), "strategies": list(STRATEGIES)}


async def set_strategy(pool: AccountPool, value: str) -> dict[str, Any]:
    """``POST /settings/account-strategy`` with ``{"strategy": …}``."""
    strategy = parse_strategy(value)
    await pool.set_strategy(strategy)
    return {
        "success": True,
        "message": f"Account strategy set to {strategy}",
        "strategy": strategy,
        "strategies": list(STRATEGIES),
    }
