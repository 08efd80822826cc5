"""HTTP to an OpenRouter-compatible gateway: the shared client, our headers, bounded SSE reads.

One ``httpx.AsyncClient`` per provider, on the aiohttp-backed transport of ``httpx-aiohttp`` (DESIGN
§8: httpx's default transport costs 2–3× the CPU per request and collapses under concurrency). It is
built without I/O when the plugin registers and closed by the provider's ``aclose()``. Every wait is
bounded: a gateway that stalls must never hang a request (protocols §9 "Stalls").

Transport failures become :class:`~gateway_core.errors.GatewayError` here, at the boundary: nothing
above this module sees an ``httpx`` or ``aiohttp`` exception.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping

import aiohttp
import anyio
import httpx
from httpx_aiohttp import AiohttpTransport

from gateway_core.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from gateway_core.sse import ServerSentEvent, SSEDecoder
from gateway_providers.openrouter.config import OpenRouterSettings

APP_TITLE = "relaygate"
"""Sent as ``X-Title``: OpenRouter's app attribution header (Kilo passes it through). No
``HTTP-Referer``: OpenRouter expects a site URL there, and relaygate runs on the user's machine."""
USER_AGENT = "relaygate"
MAX_CONNECTIONS = 256
"""Concurrent connections to the gateway (aiohttp's default of 100 would queue long streams)."""
KEEPALIVE_SECONDS = 90.0
MAX_ERROR_BODY = 256 * 1024
"""Error answers are small JSON; a larger body (an HTML page) is cut here, which parse_error tolerates."""
DRAIN_SECONDS = 2.0
"""How long we keep reading after ``[DONE]`` so the connection can be reused."""

TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, aiohttp.ClientError, OSError)
"""What a call may raise on the wire: httpx's errors, and the aiohttp and socket errors the aiohttp
transport does not translate (``TimeoutError`` is an ``OSError``)."""


class EventTimeout(Exception):
    """No SSE event arrived before the deadline."""


def create_http_client(settings: OpenRouterSettings) -> httpx.AsyncClient:
    """The provider's shared client. No I/O: aiohttp's session is created on the first request.

    ``trust_env=False``: proxies and netrc from the environment are not consulted (reading ``~/.netrc``
    is disk I/O per request). The read timeout is only a backstop behind the per-event deadlines.
    """
    backstop = max(settings.idle_timeout, settings.first_event_timeout)
    timeout = httpx.Timeout(
        connect=settings.connect_timeout, read=backstop, write=backstop, pool=settings.first_event_timeout
    )
    transport = AiohttpTransport(
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, keepalive_expiry=KEEPALIVE_SECONDS)
    )
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False)


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


def transport_error(exc: Exception, what: str, host: str) -> GatewayError:
    """A wire failure (one of :data:`TRANSPORT_ERRORS`) as the GatewayError it means. The aiohttp
    transport reports most connection failures as ``ConnectTimeout``, so only read/write/pool
    timeouts count as timeouts; both kinds let the Haiku lane fall back."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout | TimeoutError):
        return UpstreamTimeoutError(f"{what}: {host} did not answer in time ({detail})")
    return UpstreamError(f"{what}: could not reach {host} ({detail})")


async def send_streaming(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    body: bytes,
    deadline: float,
    host: str,
) -> httpx.Response:
    """POST ``body`` and return the open response (status and headers read, body not yet).

    ``deadline`` is on :func:`anyio.current_time`'s clock. The caller must close the response.
    Raises :class:`UpstreamTimeoutError` when the headers do not come in time, :class:`UpstreamError`
    when the gateway cannot be reached.
    """
    request = client.build_request("POST", url, headers=headers, content=body)
    with anyio.CancelScope(deadline=deadline) as scope:
        try:
            return await client.send(request, stream=True)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, "POST /chat/completions", host) from exc
    assert scope.cancelled_caught
    raise UpstreamTimeoutError(f"{host} sent no answer in time")


async def read_body(response: httpx.Response, deadline: float, limit: int = MAX_ERROR_BODY) -> bytes:
    """The body of a (small) answer, at most ``limit`` bytes, by ``deadline``; whatever arrived when
    the time or the connection runs out (parse_error copes with partial bodies)."""
    chunks: list[bytes] = []
    size = 0
    with anyio.CancelScope(deadline=deadline):
        try:
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= limit:
                    break
        except TRANSPORT_ERRORS:
            pass
    return b"".join(chunks)[:limit]


async def close_response(response: httpx.Response) -> None:
    """Close a response even from a cancelled scope (a client that went away): the connection is
    released, or dropped when its body was not read to the end, which cancels the upstream call."""
    # Closing is best effort: the connection is dropped either way.
    with anyio.CancelScope(shield=True), anyio.move_on_after(DRAIN_SECONDS), contextlib.suppress(Exception):
        await response.aclose()


class EventReader:
    """The SSE events of one streamed response, each read bounded by a deadline.

    Comment lines (OpenRouter's ``: OPENROUTER PROCESSING`` keep-alives) are dropped by the decoder
    and never count as an event, so they cannot keep a stalled answer alive forever.
    """

    __slots__ = ("_chunks", "_decoder", "_done", "_host", "_pending")

    def __init__(self, response: httpx.Response, host: str) -> None:
        self._chunks: AsyncIterator[bytes] = response.aiter_bytes()
        self._decoder = SSEDecoder()
        self._pending: deque[ServerSentEvent] = deque()
        self._done = False
        self._host = host

    async def next(self, deadline: float) -> ServerSentEvent | None:
        """The next event, or ``None`` at the end of the body.

        Raises :class:`EventTimeout` when no event is complete by ``deadline``, :class:`UpstreamError`
        when the connection breaks.
        """
        while not self._pending:
            if self._done:
                return None
            chunk: bytes | None = None
            with anyio.CancelScope(deadline=deadline) as scope:
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    self._done = True
                except TRANSPORT_ERRORS as exc:
                    self._done = True
                    raise transport_error(exc, "reading the answer", self._host) from exc
            if scope.cancelled_caught:
                self._done = True
                raise EventTimeout
            if chunk is None:
                self._pending.extend(self._decoder.flush())
            else:
                self._pending.extend(self._decoder.feed(chunk))
        return self._pending.popleft()

    async def drain(self, seconds: float = DRAIN_SECONDS) -> None:
        """Read what is left of the body (after ``[DONE]``) so the connection can be reused."""
        if self._done:
            return
        with anyio.move_on_after(seconds):
            try:
                async for _ in self._chunks:
                    pass
            except TRANSPORT_ERRORS:
                pass
        self._done = True
