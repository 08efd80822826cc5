"""Liveness: ``GET /health`` (never needs the API key), ``HEAD /`` (Claude Code's preconnect), ``GET /``."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, MediaType, Request, get, head

from gateway_server.errors import admin_errors

VERSION = "0.1.0"


class SystemController(Controller):
    """Health and the root page."""

    exception_handlers = {Exception: admin_errors}

    @get("/health")
    async def health(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        gateway = request.app.state.gateway
        return {
            "status": "ok",
            "version": VERSION,
            "uptime": round(time.monotonic() - request.app.state.started_at, 3),
            "providers": sorted(gateway.providers),
        }

    @head("/", status_code=200)
    async def preconnect(self) -> None:
        return None

    @get("/", media_type=MediaType.TEXT)
    async def root(self) -> str:
        return "relaygate is running. Point ANTHROPIC_BASE_URL here; GET /health for status.\n"
