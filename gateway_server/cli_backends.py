"""Where ``relaygate accounts`` sends its operations: the running gateway, or an in-process one.

A running gateway owns the accounts (and the OAuth callback listener), so the command line talks to
its admin API over HTTP (``http://RELAYGATE_HOST:RELAYGATE_PORT``, ``x-api-key`` from
``RELAYGATE_API_KEY``). When nothing answers there, it builds the same Gateway the server would (the
installed plugins on the SQLite store in ``RELAYGATE_HOME``) and runs the operation in-process on the
account pool. Both backends return the admin API's JSON bodies, so output never depends on which
one ran.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson

from gateway_core.accounts import AccountPool
from gateway_core.gateway import Gateway
from gateway_core.settings import Settings
from gateway_server import accounts_api
from gateway_server.config import ServerConfig

# Addresses a server binds to mean "every interface"; a client reaches it on loopback.
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}

# How long the CLI waits for the gateway: a quick probe, then room for upstream calls (quota, refresh).
PROBE_TIMEOUT = 2.0
CALL_TIMEOUT = 120.0


class CommandError(Exception):
    """A failure to report to the user as one line (no traceback)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def admin_request(
    http: httpx.AsyncClient,
    where: str,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The body of a running gateway's successful admin answer; its error message as
    :class:`CommandError` otherwise. ``where`` names the gateway in messages."""
    try:
        answer = await http.request(method, path, params=params, json=body)
    except httpx.HTTPError as exc:
        raise CommandError(f"{where} did not answer {method} {path}: {exc}") from exc
    try:
        content = orjson.loads(answer.content)
    except orjson.JSONDecodeError:
        content = None
    if answer.is_success and isinstance(content, dict):
        return content
    if isinstance(content, dict) and isinstance(content.get("error"), str):
        raise CommandError(content["error"])
    raise CommandError(f"{where} answered {method} {path} with HTTP {answer.status_code}")


class Accounts(Protocol):
    """The account operations of the admin API; every method returns the route's JSON body."""

    where: str
    """Human description of the backend (``the gateway at http://…`` or ``this process``)."""

    async def list_accounts(self) -> dict[str, Any]: ...
    async def begin_login(self) -> dict[str, Any]: ...
    async def finish_login_manual(self, pasted: str) -> dict[str, Any]: ...
    async def import_credentials(self, path: str | None) -> dict[str, Any]: ...
    async def switch(self, email: str) -> dict[str, Any]: ...
    async def remove(self, email: str) -> dict[str, Any]: ...
    async def refresh(self, email: str | None) -> dict[str, Any]: ...
    async def refresh_all(self) -> dict[str, Any]: ...
    async def quota(self, email: str | None, *, refresh: bool) -> dict[str, Any]: ...
    async def quota_all(self) -> dict[str, Any]: ...
    async def usage(self, email: str | None) -> dict[str, Any]: ...
    async def strategy(self) -> dict[str, Any]: ...
    async def set_strategy(self, strategy: str) -> dict[str, Any]: ...


class RemoteAccounts:
    """The admin API of a running gateway."""

    def __init__(self, http: httpx.AsyncClient, provider: str | None = None) -> None:
        self._http = http
        self._provider = provider
        self.where = f"the gateway at {http.base_url}"

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        query = dict(params or {})
        if self._provider is not None:
            query["provider"] = self._provider
        return await admin_request(self._http, self.where, method, path, params=query, body=body)

    async def list_accounts(self) -> dict[str, Any]:
        return await self._call("GET", "/accounts")

    async def begin_login(self) -> dict[str, Any]:
        return await self._call("POST", "/accounts/add")

    async def finish_login_manual(self, pasted: str) -> dict[str, Any]:
        return await self._call("POST", "/accounts/add/manual", body={"input": pasted})

    async def import_credentials(self, path: str | None) -> dict[str, Any]:
        return await self._call("POST", "/accounts/import", body=None if path is None else {"path": path})

    async def switch(self, email: str) -> dict[str, Any]:
        return await self._call("POST", "/accounts/switch", body={"email": email})

    async def remove(self, email: str) -> dict[str, Any]:
        return await self._call("DELETE", f"/accounts/{quote(email, safe='@')}")

    async def refresh(self, email: str | None) -> dict[str, Any]:
        if email is None:
            return await self._call("POST", "/accounts/refresh")
        return await self._call("POST", f"/accounts/{quote(email, safe='@')}/refresh")

    async def refresh_all(self) -> dict[str, Any]:
        return await self._call("POST", "/accounts/refresh/all")

    async def quota(self, email: str | None, *, refresh: bool) -> dict[str, Any]:
        params = {"refresh": "true"} if refresh else {}
        if email is not None:
            params["email"] = email
        return await self._call("GET", "/accounts/quota", params=params)

    async def quota_all(self) -> dict[str, Any]:
        return await self._call("GET", "/accounts/quota/all")

    async def usage(self, email: str | None) -> dict[str, Any]:
        return await self._call("GET", "/accounts/usage", params={} if email is None else {"email": email})

    async def strategy(self) -> dict[str, Any]:
        return await self._call("GET", "/settings/account-strategy")

    async def set_strategy(self, strategy: str) -> dict[str, Any]:
        return await self._call("POST", "/settings/account-strategy", body={"strategy": strategy})


class LocalAccounts:
    """An account pool in this process, answered exactly as the admin API would."""

    where = "this process"

    def __init__(self, pool: AccountPool) -> None:
        self.pool = pool

    async def list_accounts(self) -> dict[str, Any]:
        return await accounts_api.list_accounts(self.pool)

    async def begin_login(self) -> dict[str, Any]:
        return await accounts_api.begin_login(self.pool)

    async def finish_login_manual(self, pasted: str) -> dict[str, Any]:
        return await accounts_api.finish_login_manual(self.pool, pasted)

    async def import_credentials(self, path: str | None) -> dict[str, Any]:
        return await accounts_api.import_credentials(self.pool, path)

    async def switch(self, email: str) -> dict[str, Any]:
        return await accounts_api.switch(self.pool, email)

    async def remove(self, email: str) -> dict[str, Any]:
        return await accounts_api.remove(self.pool, email)

    async def refresh(self, email: str | None) -> dict[str, Any]:
        return await accounts_api.refresh(self.pool, email)

    async def refresh_all(self) -> dict[str, Any]:
        return await accounts_api.refresh_all(self.pool)

    async def quota(self, email: str | None, *, refresh: bool) -> dict[str, Any]:
        return await accounts_api.quota(self.pool, email, refresh=refresh)

    async def quota_all(self) -> dict[str, Any]:
        return await accounts_api.quota_all(self.pool)

    async def usage(self, email: str | None) -> dict[str, Any]:
        return await accounts_api.usage(self.pool, email)

    async def strategy(self) -> dict[str, Any]:
        return await accounts_api.get_strategy(self.pool)

    async def set_strategy(self, strategy: str) -> dict[str, Any]:
        return await accounts_api.set_strategy(self.pool, strategy)


def gateway_url(settings: Settings) -> str:
    """Where the running gateway is reached: ``RELAYGATE_HOST:RELAYGATE_PORT``, loopback for a
    server bound to every interface."""
    config = ServerConfig.from_settings(settings)
    return ServerConfig(host=_ANY_ADDRESS.get(config.host, config.host), port=config.port).base_url


@asynccontextmanager
async def open_local_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """The gateway the server would build (installed plugins, SQLite store in ``RELAYGATE_HOME``),
    closed with its store on exit. Tests replace this to run the CLI on a fake pool."""
    from gateway_server.app import build_gateway

    async with AsyncExitStack() as stack:
        gateway, _ = await build_gateway(settings, ServerConfig.from_settings(settings).home, stack)
        yield gateway


async def _gateway_answers(http: httpx.AsyncClient) -> bool:
    """Whether a relaygate gateway answers ``GET /health`` at the client's base URL."""
    try:
        answer = await http.get("/health", timeout=PROBE_TIMEOUT)
    except httpx.TransportError:
        return False
    try:
        health = orjson.loads(answer.content)
    except orjson.JSONDecodeError:
        health = None
    if answer.status_code != 200 or not isinstance(health, dict) or health.get("status") != "ok":
        raise CommandError(f"something answers at {http.base_url}, but it is not a relaygate gateway")
    return True


@asynccontextmanager
async def connect(settings: Settings, provider: str | None = None) -> AsyncIterator[Accounts]:
    """The running gateway's accounts, or else an in-process gateway's."""
    api_key = settings.get("RELAYGATE_API_KEY")
    headers = {"x-api-key": api_key} if api_key else {}
    async with httpx.AsyncClient(
        base_url=gateway_url(settings), headers=headers, timeout=CALL_TIMEOUT, trust_env=False
    ) as http:
        if await _gateway_answers(http):
            yield RemoteAccounts(http, provider)
            return
    async with open_local_gateway(settings) as gateway:
        yield LocalAccounts(accounts_api.select_pool(gateway.account_pools, provider))
