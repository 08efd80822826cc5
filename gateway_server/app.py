"""The bundled server: a thin Litestar app over a :class:`~gateway_core.gateway.Gateway` (DESIGN §6).

Controllers map HTTP to Gateway calls and nothing else; providers are reached only through the
plugin manager (DESIGN §1), so a pip-installed plugin is served exactly like a built-in one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State

from gateway_core.gateway import Gateway
from gateway_core.settings import Settings
from gateway_server.config import ServerConfig
from gateway_server.controllers.anthropic import AnthropicController
from gateway_server.controllers.openai import OpenAIController
from gateway_server.controllers.system import SystemController
from gateway_server.errors import app_errors
from gateway_server.security import guard


def create_app(
    gateway: Gateway | None = None,
    *,
    config: ServerConfig | None = None,
    settings: Settings | None = None,
) -> Litestar:
    """The ASGI app. Without ``gateway``, one is built from the installed plugins and ``settings``
    (default: the ``RELAYGATE_*`` environment) when the app starts, and closed when it stops."""
    resolved = Settings.from_environ() if settings is None else settings
    server_config = ServerConfig.from_settings(resolved) if config is None else config

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = gateway is None
        app.state.gateway = Gateway.from_plugins(settings=resolved) if owned else gateway
        app.state.started_at = time.monotonic()
        try:
            yield
        finally:
            if owned:
                await app.state.gateway.aclose()

    return Litestar(
        route_handlers=[AnthropicController, OpenAIController, SystemController],
        lifespan=[lifespan],
        before_request=guard,
        exception_handlers={Exception: app_errors},
        request_max_body_size=server_config.max_body_bytes,
        state=State({"config": server_config}),
        openapi_config=None,
        debug=False,
    )
