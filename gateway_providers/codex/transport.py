"""HTTP to the ChatGPT Codex backend: the Codex CLI's headers and the provider's shared client.

The machinery itself — the aiohttp-backed client, bounded sends and SSE reads, closing responses,
mapping transport failures to :class:`~gateway_core.errors.GatewayError` — is
:mod:`gateway_core.upstream`, shared with every provider; this module adds what is the Codex
backend's own: the account's credentials, the headers the backend expects from the Codex CLI, and the
name the backend goes by in error messages.
"""

from __future__ import annotations

import functools
import platform
from typing import Protocol

import httpx

from gateway_core import upstream
from gateway_providers.codex.config import ORIGINATOR, CodexSettings

UPSTREAM = "the Codex backend"
"""How error messages name the upstream (``could not reach the Codex backend``)."""
MAX_CONNECTIONS = 512
"""Concurrent connections to the backend (aiohttp's default of 100 would queue long streams)."""


class Credentials(Protocol):
    """What one upstream call needs from an account (the pool's lease satisfies it)."""

    @property
    def email(self) -> str: ...

    @property
    def account_id(self) -> str:
        """Empty when the account's tokens name no ChatGPT account: no header is sent then."""
        ...

    @property
    def access_token(self) -> str: ...


def create_http_client(settings: CodexSettings) -> httpx.AsyncClient:
    """The provider's shared client (:func:`gateway_core.upstream.create_http_client`); no I/O."""
    return upstream.create_http_client(settings, max_connections=MAX_CONNECTIONS)


@functools.cache
def user_agent(version: str) -> str:
    """``codex_cli_rs/<ver> (<OS> <ver>; <arch>) relaygate``: the Codex CLI's shape (protocols §4.1),
    with our name where Codex names the terminal."""
    system = platform.system() or "Unknown"
    release = platform.release() or "unknown"
    machine = platform.machine() or "unknown"
    return f"codex_cli_rs/{version} ({system} {release}; {machine}) relaygate"


def auth_headers(settings: CodexSettings, credentials: Credentials) -> dict[str, str]:
    """The headers of every backend call: the account's bearer token and id, and the Codex CLI's
    identity. Nothing of the client's request (its credentials, its Anthropic betas) is ever added."""
    headers = {"authorization": f"Bearer {credentials.access_token}"}
    if credentials.account_id:
        headers["chatgpt-account-id"] = credentials.account_id
    headers["originator"] = ORIGINATOR
    headers["user-agent"] = user_agent(settings.client_version)
    headers["version"] = settings.client_version
    return headers


def responses_headers(
    settings: CodexSettings, credentials: Credentials, session_id: str | None
) -> dict[str, str]:
    """Headers of ``POST {base}/codex/responses``; ``session_id`` is the conversation key (the same
    value as the body's ``prompt_cache_key``), so the backend routes turns to a warm cache."""
    headers = auth_headers(settings, credentials)
    headers["accept"] = "text/event-stream"
    headers["content-type"] = "application/json"
    # Sent by older Codex releases and most proxies; the backend ignores it.
    headers["openai-beta"] = "responses=experimental"
    if session_id:
        headers["session_id"] = session_id
    return headers
