"""``GET|POST /settings/account-strategy``: how requests rotate over a provider's accounts (DESIGN §7).

``sticky`` (the default) keeps the active account until it is limited or invalid, ``round-robin``
takes turns, ``quota-aware`` picks the account with the lowest used percent. The pool persists the
choice in the store. ``?provider=`` picks the pool as on the ``/accounts`` routes.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery

from gateway_server import accounts_api
from gateway_server.admin_requests import read_body, required_string
from gateway_server.controllers.accounts import pool_of
from gateway_server.errors import admin_errors


class AccountStrategyController(Controller):
    """The rotation strategy of an account pool."""

    path = "/settings/account-strategy"
    exception_handlers = {Exception: admin_errors}

    @get("/")
    async def get_strategy(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        return await accounts_api.get_strategy(pool_of(request, provider))

    @post("/", status_code=200)
    async def set_strategy(
        self, request: Request[Any, Any, Any], provider: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        pool = pool_of(request, provider)
        strategy = required_string(await read_body(request), "strategy")
        return await accounts_api.set_strategy(pool, strategy)
