"""The ``/accounts*`` routes: manage a provider's accounts through its AccountPool (DESIGN §6, §6.1).

The server never sees a provider's code (DESIGN §1): it reaches the accounts through
``Gateway.account_pools``. Every route takes an optional ``?provider=`` naming the pool; without it,
the only pool installed, or ``codex``'s when there are several. Where ``email`` is optional (models,
quota) the active account is meant, and for usage all accounts together.

``POST /accounts/add/manual`` takes the pasted callback URL or bare authorization code in any of the
fields ``callbackUrl``, ``url``, ``code`` or ``input``. Errors answer ``{"success": false, "error": …}``
with the status of the failure (400 naming the field, 404 for an unknown account, 5xx for the store or
the upstream).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, FromQuery

from gateway_core.accounts import AccountPool
from gateway_server import accounts_api
from gateway_server.admin_requests import (
    first_string,
    optional_string,
    query_flag,
    query_string,
    read_body,
    required_string,
)
from gateway_server.errors import admin_errors
from gateway_server.requests import gateway_of


def pool_of(request: Request[Any, Any, Any], provider: str | None) -> AccountPool:
    """The account pool a request addresses (see :func:`accounts_api.select_pool`)."""
    return accounts_api.select_pool(gateway_of(request).account_pools, query_string(provider))


class AccountsController(Controller):
    """Listing, adding, switching, refreshing and removing accounts; their models, quota and usage."""

    path = "/accounts"
    exception_handlers = {Exception: admin_errors}

    @get("/")
    async def list_accounts(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        return await accounts_api.list_accounts(pool_of(request, provider))

    @get("/status")
    async def status(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        return await accounts_api.status(pool_of(request, provider))

    @post("/add", status_code=200)
    async def add(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        pool = pool_of(request, provider)
        await read_body(request, required=False)  # optional; a malformed body is still a 400
        return await accounts_api.begin_login(pool)

    @post("/add/manual", status_code=200)
    async def add_manual(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        pool = pool_of(request, provider)
        pasted = first_string(await read_body(request), accounts_api.PASTED_LOGIN_FIELDS)
        return await accounts_api.finish_login_manual(pool, pasted)

    @post("/import", status_code=200)
    async def import_credentials(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        pool = pool_of(request, provider)
        path = optional_string(await read_body(request, required=False), "path")
        return await accounts_api.import_credentials(pool, path)

    @post("/switch", status_code=200)
    async def switch(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        pool = pool_of(request, provider)
        email = required_string(await read_body(request), "email")
        return await accounts_api.switch(pool, email)

    @post("/refresh", status_code=200)
    async def refresh_active(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        pool = pool_of(request, provider)
        email = optional_string(await read_body(request, required=False), "email")
        return await accounts_api.refresh(pool, email)

    @post("/refresh/all", status_code=200)
    async def refresh_all(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        return await accounts_api.refresh_all(pool_of(request, provider))

    @post("/{email:str}/refresh", status_code=200)
    async def refresh_one(
        self, request: Request[Any, Any, Any], email: FromPath[str], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        return await accounts_api.refresh(pool_of(request, provider), email)

    @delete("/{email:str}", status_code=200)
    async def remove(
        self, request: Request[Any, Any, Any], email: FromPath[str], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        return await accounts_api.remove(pool_of(request, provider), email)

    @get("/models")
    async def models(
        self,
        request: Request[Any, Any, Any],
        email: FromQuery[str | None] = None,
        provider: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        return await accounts_api.models(pool_of(request, provider), query_string(email))

    @get("/quota")
    async def quota(
        self,
        request: Request[Any, Any, Any],
        email: FromQuery[str | None] = None,
        refresh: FromQuery[str | None] = None,
        provider: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        pool = pool_of(request, provider)
        return await accounts_api.quota(pool, query_string(email), refresh=query_flag(refresh, "refresh"))

    @get("/quota/all")
    async def quota_all(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        return await accounts_api.quota_all(pool_of(request, provider))

    @get("/usage")
    async def usage(
        self,
        request: Request[Any, Any, Any],
        email: FromQuery[str | None] = None,
        provider: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        return await accounts_api.usage(pool_of(request, provider), query_string(email))
