"""The bundled server: a thin Litestar app over a :class:`~gateway_core.gateway.Gateway` (DESIGN §6).

Controllers map HTTP to Gateway calls and nothing else; providers are reached only through the
plugin manager (DESIGN §1), so a pip-installed plugin is served exactly like a built-in one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State

from gateway_core.gateway import Gateway
from gateway_core.lane_settings import PersistedLanes
from gateway_core.settings import Settings
from gateway_core.store import SQLiteStore, Store, StoreError
from gateway_server.claude_api import ClaudeConfig
from gateway_server.claude_config import settings_path
from gateway_server.config import ServerConfig
from gateway_server.controllers.accounts import AccountsController
from gateway_server.controllers.anthropic import AnthropicController
from gateway_server.controllers.auth import AuthController
from gateway_server.controllers.claude import ClaudeConfigController
from gateway_server.controllers.lanes import LaneSettingsController
from gateway_server.controllers.openai import OpenAIController
from gateway_server.controllers.settings import AccountStrategyController
from gateway_server.controllers.system import SystemController
from gateway_server.errors import app_errors
from gateway_server.security import guard


async def open_state_store(home: Path) -> SQLiteStore:
    """The state store in ``home`` (``RELAYGATE_HOME``); a failure says where and what to check."""
    try:
        return await SQLiteStore.open(home)
    except StoreError as exc:
        raise StoreError(
            f"cannot open the state store in {home}: {exc.message} "
            "(check RELAYGATE_HOME and the folder's permissions)",
            code=exc.code,
            retry_after=exc.retry_after,
        ) from exc


async def build_gateway(settings: Settings, home: Path, stack: AsyncExitStack) -> tuple[Gateway, Store]:
    """Open the state store and build the gateway from the installed plugins on it; ``stack`` closes
    both (the gateway first)."""
    store = await open_state_store(home)
    stack.push_async_callback(store.aclose)
    gateway = Gateway.from_plugins(settings=settings, store=store)
    stack.push_async_callback(gateway.aclose)
    return gateway, store


def create_app(
    gateway: Gateway | None = None,
    *,
    config: ServerConfig | None = None,
    settings: Settings | None = None,
    store: Store | None = None,
) -> Litestar:
    """The ASGI app.

    Without ``gateway``, one is built from the installed plugins and ``settings`` (default: the
    ``RELAYGATE_*`` environment) when the app starts, and closed when it stops; it keeps its state in
    ``store``, or in the SQLite store in ``config.home`` (``RELAYGATE_HOME``), which the app opens and
    closes itself. A caller who brings its own ``gateway`` (and ``store``) keeps owning them.

    At start the lane choices stored in the store (``/settings/haiku-model``, ``/settings/model-map``)
    are applied to the gateway's lanes; ``/claude/config`` edits ``RELAYGATE_CLAUDE_SETTINGS``.
    """
    resolved = Settings.from_environ() if settings is None else settings
    server_config = ServerConfig.from_settings(resolved) if config is None else config

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if gateway is not None:
                app.state.gateway, app.state.store = gateway, store
            elif store is not None:
                app.state.gateway, app.state.store = (
                    Gateway.from_plugins(settings=resolved, store=store),
                    store,
                )
                stack.push_async_callback(app.state.gateway.aclose)
            else:
                app.state.gateway, app.state.store = await build_gateway(resolved, server_config.home, stack)
            app.state.lanes = PersistedLanes(app.state.gateway, app.state.store)
            await app.state.lanes.load()
            app.state.claude_config = ClaudeConfig(
                settings_path(resolved), app.state.store, api_key=server_config.api_key
            )
            app.state.started_at = time.monotonic()
            yield

    return Litestar(
        route_handlers=[
            AnthropicController,
            OpenAIController,
            SystemController,
            AccountsController,
            AccountStrategyController,
            LaneSettingsController,
            ClaudeConfigController,
            AuthController,
        ],
        lifespan=[lifespan],
        before_request=guard,
        exception_handlers={Exception: app_errors},
        request_max_body_size=server_config.max_body_bytes,
        state=State({"config": server_config}),
        openapi_config=None,
        debug=False,
        logging_config=None,
    )
