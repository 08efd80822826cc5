"""HTTP to the ChatGPT Codex backend: the shared client, the Codex CLI's headers, bounded SSE reads.

One ``httpx.AsyncClient`` per provider, on the aiohttp-backed transport of ``httpx-aiohttp`` (DESIGN
§8: httpx's default transport costs 2–3× the CPU per request and collapses under concurrency). It is
built without I/O when the plugin registers (no request, no event loop needed) and closed by the
provider's ``aclose()``. Every wait here is bounded: a backend that stalls must never hang a request
(protocols §9 "Stalls"), so reads take a deadline and report :class:`EventTimeout` when it passes.

Transport failures become :class:`~gateway_core.errors.GatewayError` here, at the boundary: nothing
above this module sees an ``httpx`` or ``aiohttp`` exception.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import anyio
import httpx
from httpx_aiohttp import AiohttpTransport

from gateway_core.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from gateway_core.sse import ServerSentEvent, SSEDecoder
from gateway_providers.codex.config import ORIGINATOR, CodexSettings

MAX_CONNECTIONS = 512
"""Concurrent connections to the backend (aiohttp's default of 100 would queue long streams)."""
KEEPALIVE_SECONDS = 90.0
MAX_ERROR_BODY = 256 * 1024
"""Error answers are small JSON; a larger body (an HTML page) is cut here, which parse_error tolerates."""
DRAIN_SECONDS = 2.0
"""How long we keep reading after the terminal event so the connection can be reused."""


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


TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, aiohttp.ClientError, OSError)
"""What a call may raise on the wire: httpx's errors, and the aiohttp and socket errors the aiohttp
transport does not translate."""


class EventTimeout(Exception):
    """No SSE event arrived before the deadline."""


def create_http_client(settings: CodexSettings) -> httpx.AsyncClient:
    """The provider's shared client. No I/O: aiohttp's session is created on the first request.

    ``trust_env=False``: proxies and netrc from the environment are not consulted (the aiohttp
    transport would ignore them anyway, and reading ``~/.netrc`` is disk I/O per request). The read
    timeout is only a backstop behind the per-event deadlines of :class:`EventReader`.
    """
    backstop = max(settings.idle_timeout, settings.first_event_timeout)
    timeout = httpx.Timeout(
        connect=settings.connect_timeout, read=backstop, write=backstop, pool=settings.first_event_timeout
    )
    transport = AiohttpTransport(
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, keepalive_expiry=KEEPALIVE_SECONDS)
    )
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False)


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


def transport_error(exc: Exception, what: str) -> GatewayError:
    """A wire failure (one of :data:`TRANSPORT_ERRORS`) as the GatewayError it means. The aiohttp
    transport reports most connection failures as ``ConnectTimeout``, so only read/write/pool timeouts
    count as timeouts."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout | TimeoutError):
        return UpstreamTimeoutError(f"{what}: the Codex backend did not answer in time ({detail})")
    return UpstreamError(f"{what}: could not reach the Codex backend ({detail})")


async def send_streaming(
    client: httpx.AsyncClient, url: str, *, headers: Mapping[str, str], body: bytes, deadline: float
) -> httpx.Response:
    """POST ``body`` and return the open response (status and headers read, body not yet).

    ``deadline`` is on :func:`anyio.current_time`'s clock. The caller must close the response.
    Raises :class:`UpstreamTimeoutError` when the headers do not come in time, :class:`UpstreamError`
    when the backend cannot be reached.
    """
    request = client.build_request("POST", url, headers=headers, content=body)
    with anyio.CancelScope(deadline=deadline) as scope:
        try:
            return await client.send(request, stream=True)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, "POST /codex/responses") from exc
    assert scope.cancelled_caught
    raise UpstreamTimeoutError("the Codex backend sent no answer in time")


async def read_error_body(response: httpx.Response, deadline: float) -> bytes:
    """The body of an error answer, at most :data:`MAX_ERROR_BODY` bytes, by ``deadline``; whatever
    arrived when the time or the connection runs out (parse_error copes with partial bodies)."""
    chunks: list[bytes] = []
    size = 0
    with anyio.CancelScope(deadline=deadline):
        try:
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_ERROR_BODY:
                    break
        except TRANSPORT_ERRORS:
            pass
    return b"".join(chunks)[:MAX_ERROR_BODY]


async def close_response(response: httpx.Response) -> None:
    """Close a response even from a cancelled scope (a client that went away): the connection is
    released, or dropped when its body was not read to the end, which cancels the upstream call."""
    # Closing is best effort: the connection is dropped either way.
    with anyio.CancelScope(shield=True), anyio.move_on_after(DRAIN_SECONDS), contextlib.suppress(Exception):
        await response.aclose()


class EventReader:
    """The SSE events of one streamed response, each read bounded by a deadline."""

    __slots__ = ("_chunks", "_decoder", "_done", "_pending")

    def __init__(self, response: httpx.Response) -> None:
        self._chunks: AsyncIterator[bytes] = response.aiter_bytes()
        self._decoder = SSEDecoder()
        self._pending: deque[ServerSentEvent] = deque()
        self._done = False

    async def next(self, deadline: float) -> ServerSentEvent | None:
        """The next event, or ``None`` at the end of the body.

        Raises :class:`EventTimeout` when no event is complete by ``deadline`` (keep-alive comments
        do not count: only events do), :class:`UpstreamError` when the connection breaks.
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
                    raise transport_error(exc, "reading the answer") from exc
            if scope.cancelled_caught:
                self._done = True
                raise EventTimeout
            if chunk is None:
                self._pending.extend(self._decoder.flush())
            else:
                self._pending.extend(self._decoder.feed(chunk))
        return self._pending.popleft()

    async def drain(self, seconds: float = DRAIN_SECONDS) -> None:
        """Read what is left of the body (after the terminal event) so the connection can be reused."""
        if self._done:
            return
        with anyio.move_on_after(seconds):
            try:
                async for _ in self._chunks:
                    pass
            except TRANSPORT_ERRORS:
                pass
        self._done = True
