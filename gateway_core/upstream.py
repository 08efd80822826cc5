"""Calling an upstream API over HTTP: the shared client, bounded sends and reads, held answers.

What every provider that posts a request and reads a server-sent event stream needs, written once so
the built-in providers and third-party plugins behave alike:

- **One shared client per provider**, an ``httpx.AsyncClient`` on the aiohttp-backed transport of
  ``httpx-aiohttp`` (DESIGN §8: httpx's default transport costs 2–3× the CPU per request and collapses
  under concurrency). It is built without I/O, so a plugin can create it when it registers, and is
  closed by the provider's ``aclose()``.
- **Every wait is bounded**: a stalled upstream must fail instead of hanging a request (protocols §9
  "Stalls"). Sends and reads take a deadline on :func:`anyio.current_time`'s clock; the answer's
  first event has one deadline, each later event the idle timeout.
- **Responses are always closed**, also from a cancelled scope (a client that went away), so the
  connection is released or dropped, which cancels the upstream call.
- **Transport failures become** :class:`~gateway_core.errors.GatewayError` here, at the boundary:
  nothing above sees an ``httpx`` or ``aiohttp`` exception.
- **An answer is held until it commits** (:func:`read_until_committed`): until the upstream sent its
  first content event every failure is raised, so the caller can still try elsewhere and answer with a
  proper status; after it (:class:`CommittedAnswer`), failures end the stream in-band.

What differs between upstreams is a parameter: ``upstream`` names it in error messages (``"the Codex
backend"``, ``"api.kilo.ai"``), ``what`` names the call (``"POST /chat/completions"``).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import anyio
import httpx
from httpx_aiohttp import AiohttpTransport

from gateway_core.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from gateway_core.models import Usage
from gateway_core.sse import ServerSentEvent, SSEDecoder
from gateway_core.streaming import ErrorEvent, MessageDelta, MessageStart, MessageStop, StreamEvent

KEEPALIVE_SECONDS = 90.0
MAX_ERROR_BODY = 256 * 1024
"""Error answers are small JSON; a larger body (an HTML page) is cut here, which parse_error tolerates."""
DRAIN_SECONDS = 2.0
"""How long we keep reading after the terminal event so the connection can be reused."""

TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, aiohttp.ClientError, OSError)
"""What a call may raise on the wire: httpx's errors, and the aiohttp and socket errors the aiohttp
transport does not translate (``TimeoutError`` is an ``OSError``)."""


class EventTimeout(Exception):
    """No SSE event arrived before the deadline."""


class UpstreamTimeouts(Protocol):
    """How long a provider waits for its upstream, in seconds (the provider's settings satisfy it)."""

    @property
    def connect_timeout(self) -> float: ...

    @property
    def first_event_timeout(self) -> float: ...

    @property
    def idle_timeout(self) -> float: ...


class EventDecoder(Protocol):
    """A wire format's incremental stream decoder (``gateway_core.formats.*.StreamDecoder``)."""

    def feed(self, event: ServerSentEvent) -> Iterable[StreamEvent]: ...

    def close(self) -> Iterable[StreamEvent]: ...


def create_http_client(timeouts: UpstreamTimeouts, *, max_connections: int) -> httpx.AsyncClient:
    """A provider's shared client. No I/O: aiohttp's session is created on the first request.

    ``trust_env=False``: proxies and netrc from the environment are not consulted (the aiohttp
    transport would ignore them anyway, and reading ``~/.netrc`` is disk I/O per request). The read
    timeout is only a backstop behind the per-event deadlines of :class:`EventReader`.
    ``max_connections`` is set above aiohttp's default of 100, which would queue long streams.
    """
    backstop = max(timeouts.idle_timeout, timeouts.first_event_timeout)
    timeout = httpx.Timeout(
        connect=timeouts.connect_timeout, read=backstop, write=backstop, pool=timeouts.first_event_timeout
    )
    transport = AiohttpTransport(
        limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=KEEPALIVE_SECONDS)
    )
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False)


def transport_error(exc: Exception, what: str, upstream: str) -> GatewayError:
    """A wire failure (one of :data:`TRANSPORT_ERRORS`) as the GatewayError it means. The aiohttp
    transport reports most connection failures as ``ConnectTimeout``, so only read/write/pool timeouts
    count as timeouts; both kinds are upstream failures a fallback may answer instead."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout | TimeoutError):
        return UpstreamTimeoutError(f"{what}: {upstream} did not answer in time ({detail})")
    return UpstreamError(f"{what}: could not reach {upstream} ({detail})")


async def send_streaming(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    body: bytes,
    deadline: float,
    upstream: str,
    what: str,
) -> httpx.Response:
    """POST ``body`` and return the open response (status and headers read, body not yet).

    The caller must close the response (:func:`close_response`). Raises :class:`UpstreamTimeoutError`
    when the headers do not come by ``deadline``, :class:`UpstreamError` when ``upstream`` cannot be
    reached.

    A pooled keep-alive connection that the upstream closed while it sat idle fails the moment it is
    reused ("Server disconnected", "Can not write request body"): no answer was read, so the request
    is sent once more — the pool has dropped the dead connection and opens a fresh one.
    """
    request = client.build_request("POST", url, headers=headers, content=body)
    with anyio.CancelScope(deadline=deadline) as scope:
        for attempt in (1, 2):
            try:
                return await client.send(request, stream=True)
            except TRANSPORT_ERRORS as exc:
                error = transport_error(exc, what, upstream)
                if attempt == 2 or isinstance(error, UpstreamTimeoutError):
                    raise error from exc
    assert scope.cancelled_caught
    raise UpstreamTimeoutError(f"{upstream} sent no answer in time")


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

    Comment lines (keep-alives such as OpenRouter's ``: OPENROUTER PROCESSING``) are dropped by the
    decoder and never count as an event, so they cannot keep a stalled answer alive forever.
    """

    __slots__ = ("_chunks", "_decoder", "_done", "_pending", "_upstream")

    def __init__(self, response: httpx.Response, upstream: str) -> None:
        self._chunks: AsyncIterator[bytes] = response.aiter_bytes()
        self._decoder = SSEDecoder()
        self._pending: deque[ServerSentEvent] = deque()
        self._done = False
        self._upstream = upstream

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
                    raise transport_error(exc, "reading the answer", self._upstream) from exc
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


# --- a streamed answer, held until it commits ------------------------------------------------------------
#
# A provider holds an answer until the upstream said 200 and sent its first content event: until then
# any failure is raised, so the Gateway can still try elsewhere (another account, a fallback lane) and
# answer the client with a proper status. After the commit, failures are in-band ErrorEvents.


async def read_until_committed(
    reader: EventReader, decoder: EventDecoder, *, deadline: float, idle_timeout: float, upstream: str
) -> list[StreamEvent]:
    """The events up to the first content event (anything but ``MessageStart``). Raises the failure
    when the answer fails, stalls or ends before it: the first event must come by ``deadline``, each
    later one within ``idle_timeout`` seconds."""
    held: list[StreamEvent] = []
    while True:
        try:
            sse = await reader.next(deadline)
        except EventTimeout:
            waited = "its first event" if not held else "any content"
            raise UpstreamTimeoutError(f"{upstream} did not send {waited} in time") from None
        events = decoder.close() if sse is None else decoder.feed(sse)
        for event in events:
            if isinstance(event, ErrorEvent):
                raise event.error
            held.append(event)
        if any(not isinstance(event, MessageStart) for event in held):
            return held
        if sse is None:
            raise UpstreamError(f"{upstream} ended its answer before it started")
        deadline = anyio.current_time() + idle_timeout


async def follow_committed(
    reader: EventReader, decoder: EventDecoder, *, idle_timeout: float, upstream: str
) -> AsyncGenerator[StreamEvent, None]:
    """The rest of a committed answer, until ``MessageStop``, an ``ErrorEvent`` or the end of the body.

    Nothing is raised: a silence longer than ``idle_timeout`` seconds or a broken connection ends the
    stream with an in-band :class:`~gateway_core.streaming.ErrorEvent`. Iterate it inside
    ``contextlib.aclosing`` so it is closed with the provider's own stream (or use
    :meth:`CommittedAnswer.events`, which does).
    """
    while True:
        try:
            sse = await reader.next(anyio.current_time() + idle_timeout)
        except EventTimeout:
            message = f"{upstream} sent nothing for {idle_timeout:g} s; the answer was cut short"
            yield ErrorEvent(UpstreamTimeoutError(message))
            return
        except GatewayError as exc:
            yield ErrorEvent(exc)
            return
        finished = False
        for event in decoder.close() if sse is None else decoder.feed(sse):
            finished = finished or isinstance(event, MessageStop | ErrorEvent)
            yield event
        if finished or sse is None:
            return


@dataclass(slots=True)
class CommittedAnswer:
    """An answer past its commit: the open response, what reads the rest of it, the events held so far,
    and what the events said. The provider closes :attr:`response` (:func:`close_response`)."""

    response: httpx.Response
    reader: EventReader | None
    """``None`` when :attr:`held` is the whole answer (a JSON body answered to a streamed request)."""
    decoder: EventDecoder | None
    held: list[StreamEvent]
    usage: Usage | None = None
    """The usage of the last ``MessageDelta`` passed on."""
    completed: bool = False
    """A ``MessageStop`` was passed on: the answer is whole."""
    finished: bool = False
    """The answer ended: completed, or cut short by an ``ErrorEvent``."""

    async def events(self, *, idle_timeout: float, upstream: str) -> AsyncGenerator[StreamEvent, None]:
        """The held events, then the rest of the answer (:func:`follow_committed`). After a complete
        answer the rest of the body is drained, so the connection can be reused."""
        for event in self.held:
            yield self._note(event)
        if not self.finished and self.reader is not None and self.decoder is not None:
            rest = follow_committed(self.reader, self.decoder, idle_timeout=idle_timeout, upstream=upstream)
            async with contextlib.aclosing(rest):
                async for event in rest:
                    yield self._note(event)
        if self.completed and self.reader is not None:
            await self.reader.drain()

    def _note(self, event: StreamEvent) -> StreamEvent:
        if isinstance(event, MessageDelta):
            self.usage = event.usage
        elif isinstance(event, MessageStop):
            self.completed = self.finished = True
        elif isinstance(event, ErrorEvent):
            self.finished = True
        return event
