"""HTTP to an OpenRouter-compatible gateway: our headers, the provider's shared client, and reading a
non-streamed answer whole.

The machinery itself — the aiohttp-backed client, bounded sends and SSE reads, closing responses,
mapping transport failures to :class:`~gateway_core.errors.GatewayError` — is
:mod:`gateway_core.upstream`, shared with every provider; this module adds the gateway's own headers and
the strict read of one JSON body. Error messages name the gateway by its host (``OpenRouterSettings.host``).
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import httpx

from gateway_core import upstream
from gateway_core.errors import UpstreamError, UpstreamTimeoutError
from gateway_providers.openrouter.config import OpenRouterSettings

APP_TITLE = "relaygate"
"""Sent as ``X-Title``: OpenRouter's app attribution header (Kilo passes it through). No
``HTTP-Referer``: OpenRouter expects a site URL there, and relaygate runs on the user's machine."""
USER_AGENT = "relaygate"
MAX_CONNECTIONS = 256
"""Concurrent connections to the gateway (aiohttp's default of 100 would queue long streams)."""


@dataclass(frozen=True, slots=True)
class _Backstops:
    """The client's own timeouts (:class:`gateway_core.upstream.UpstreamTimeouts`), which only back up
    the provider's deadlines."""

    connect_timeout: float
    first_event_timeout: float
    idle_timeout: float


def create_http_client(settings: OpenRouterSettings) -> httpx.AsyncClient:
    """The provider's shared client (:func:`gateway_core.upstream.create_http_client`); no I/O.

    The client's read timeout is a backstop on each network read. A non-streamed answer's headers may
    come only when the whole answer is ready, so that first read may last up to
    ``settings.whole_answer_timeout``: the backstop is raised to it, or it would cut such answers
    before the provider's own deadline does."""
    backstops = _Backstops(
        connect_timeout=settings.connect_timeout,
        first_event_timeout=settings.first_event_timeout,
        idle_timeout=max(settings.idle_timeout, settings.whole_answer_timeout),
    )
    return upstream.create_http_client(backstops, max_connections=MAX_CONNECTIONS)


def base_headers(settings: OpenRouterSettings) -> dict[str, str]:
    """Headers of every call: the bearer key only when one is configured (Kilo serves ``:free``
    models keylessly), and our app name. Nothing of the client's request is ever forwarded."""
    headers = {"user-agent": USER_AGENT, "x-title": APP_TITLE}
    if settings.api_key:
        headers["authorization"] = f"Bearer {settings.api_key}"
    return headers


def chat_headers(settings: OpenRouterSettings, *, stream: bool = True) -> dict[str, str]:
    """Headers of ``POST {base}/chat/completions``: an SSE answer when ``stream``, else one JSON body."""
    headers = base_headers(settings)
    headers["accept"] = "text/event-stream" if stream else "application/json"
    headers["content-type"] = "application/json"
    return headers


async def read_whole_body(response: httpx.Response, deadline: float, *, limit: int, host: str) -> bytes:
    """The whole body of a successful non-streamed answer, by ``deadline``.

    Unlike :func:`gateway_core.upstream.read_body` (for error bodies, where a part is still worth
    reporting), a part of an answer is no answer: running out of time is an
    :class:`UpstreamTimeoutError`, a broken connection or a body over ``limit`` bytes an
    :class:`UpstreamError`. A body read whole closes its response, as httpx's ``aread`` does: the
    connection goes back to the pool at once, and closing it later costs nothing.
    """
    chunks: list[bytes] = []
    size = 0
    with anyio.CancelScope(deadline=deadline) as scope:
        try:
            async for chunk in upstream.body_chunks(response):
                size += len(chunk)
                if size > limit:
                    raise UpstreamError(f"{host} sent an answer larger than {limit} bytes")
                chunks.append(chunk)
        except upstream.TRANSPORT_ERRORS as exc:
            raise upstream.transport_error(exc, "reading the answer", host) from exc
    if scope.cancelled_caught:
        raise UpstreamTimeoutError(f"{host} did not finish its answer in time")
    await response.aclose()
    return b"".join(chunks)
