"""HTTP to an OpenRouter-compatible gateway: our headers and the provider's shared client.

The machinery itself — the aiohttp-backed client, bounded sends and SSE reads, closing responses,
mapping transport failures to :class:`~gateway_core.errors.GatewayError` — is
:mod:`gateway_core.upstream`, shared with every provider; this module adds the gateway's own headers.
Error messages name the gateway by its host (``OpenRouterSettings.host``).
"""

from __future__ import annotations

import httpx

from gateway_core import upstream
from gateway_providers.openrouter.config import OpenRouterSettings

APP_TITLE = "relaygate"
"""Sent as ``X-Title``: OpenRouter's app attribution header (Kilo passes it through). No
``HTTP-Referer``: OpenRouter expects a site URL there, and relaygate runs on the user's machine."""
USER_AGENT = "relaygate"
MAX_CONNECTIONS = 256
"""Concurrent connections to the gateway (aiohttp's default of 100 would queue long streams)."""


def create_http_client(settings: OpenRouterSettings) -> httpx.AsyncClient:
    """The provider's shared client (:func:`gateway_core.upstream.create_http_client`); no I/O."""
    return upstream.create_http_client(settings, max_connections=MAX_CONNECTIONS)


def base_headers(settings: OpenRouterSettings) -> dict[str, str]:
    """Headers of every call: the bearer key only when one is configured (Kilo serves ``:free``
    models keylessly), and our app name. Nothing of the client's request is ever forwarded."""
    headers = {"user-agent": USER_AGENT, "x-title": APP_TITLE}
    if settings.api_key:
        headers["authorization"] = f"Bearer {settings.api_key}"
    return headers


def chat_headers(settings: OpenRouterSettings) -> dict[str, str]:
    """Headers of ``POST {base}/chat/completions`` (always streamed)."""
    headers = base_headers(settings)
    headers["accept"] = "text/event-stream"
    headers["content-type"] = "application/json"
    return headers
