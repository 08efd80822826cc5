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

import asyncio
import contextlib
import functools
import math
import socket
import ssl
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import anyio
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from gateway_core.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from gateway_core.models import Usage
from gateway_core.sse import ServerSentEvent, SSEDecoder
from gateway_core.streaming import (
    ErrorEvent,
    MessageDelta,
    MessageStart,
    MessageStop,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
)

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
    limits = httpx.Limits(max_connections=max_connections, keepalive_expiry=KEEPALIVE_SECONDS)
    transport = AiohttpTransport(limits=limits)
    transport.client = functools.partial(_session, limits, transport.ssl_context)
    client = httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False)
    _DIRECT_TRANSPORTS[client] = transport
    return client


READ_BUFFER = 16 * 1024
"""How much of an answer aiohttp keeps ahead of the gateway, per connection: it stops reading the
socket at twice this (its default is 64 KiB)."""
RECEIVE_BUFFER = 64 * 1024
"""The kernel's receive buffer of an upstream connection (``SO_RCVBUF``): 128 KiB once Linux doubles
it for its bookkeeping, the kernel's usual initial buffer, here not grown by autotuning.

Both bound what an upstream that writes faster than the gateway forwards can push into the gateway's
memory: the loop reads everything the kernel holds at once (up to 256 KiB), and aiohttp parses all of
it before it pauses. When 256 answers were released at once, each connection's whole answer (~200 KB)
sat in the process; now the rest waits in the upstream's send buffer. A model's stream needs a tiny
fraction of what a 64 KiB window carries, even across an ocean (~400 KB/s at 150 ms)."""


def _session(limits: httpx.Limits, tls: ssl.SSLContext) -> aiohttp.ClientSession:
    """The aiohttp session behind a shared client, made on its first request (it needs a running loop):
    the one the transport would make (its connection limit, keep-alive and TLS context), reading
    ahead at most :data:`READ_BUFFER` and :data:`RECEIVE_BUFFER`."""
    connector = aiohttp.TCPConnector(
        limit=limits.max_connections or 0,
        keepalive_timeout=limits.keepalive_expiry,
        ssl=tls,
        socket_factory=_upstream_socket,
    )
    return aiohttp.ClientSession(connector=connector, read_bufsize=READ_BUFFER)


def _upstream_socket(address: tuple[Any, ...]) -> socket.socket:
    """A socket for an upstream connection (aiohttp's ``socket_factory``), with :data:`RECEIVE_BUFFER`."""
    family, kind, protocol = address[:3]
    sock = socket.socket(family=family, type=kind, proto=protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    return sock


_DIRECT_TRANSPORTS: weakref.WeakKeyDictionary[httpx.AsyncClient, httpx.AsyncBaseTransport] = (
    weakref.WeakKeyDictionary()
)
"""The transports of the clients :func:`create_http_client` built, which :func:`send_streaming` posts
through directly.

An upstream call needs nothing of what ``AsyncClient.send`` adds around its transport — no auth flow,
no redirects (they are off), no cookie jar (the upstream APIs are stateless; the cookies a CDN sets
would only grow the jar) — and that wrapping, URL merging and cookie bookkeeping above all, cost more
CPU than the gateway's own work on a small request. A client a plugin built itself is used as it is.
"""


@functools.lru_cache(maxsize=64)
def _parsed_url(url: str) -> httpx.URL:
    """``url`` parsed once: a provider posts to the same few URLs, and httpx's parser is slow."""
    return httpx.URL(url)


def _direct_request(
    client: httpx.AsyncClient, url: str, headers: Mapping[str, str], body: bytes
) -> httpx.Request:
    """The request :func:`send_streaming` hands to a direct transport, built at the least cost.

    Given as a stream, the body skips httpx's content encoding and the two header copies that add
    ``Host`` and ``Content-Length``, which aiohttp adds itself; read at once, it is sent as bytes of
    known length (the same object, not a copy), never chunked.
    """
    extensions = {"timeout": client.timeout.as_dict()}
    request = httpx.Request(
        "POST", _parsed_url(url), headers=headers, stream=httpx.ByteStream(body), extensions=extensions
    )
    request.read()
    return request


@functools.lru_cache(maxsize=64)
def _bodiless_request(url: str) -> httpx.Request:
    """What an open answer keeps as its request: the method and URL it was asked at, nothing else."""
    return httpx.Request("POST", _parsed_url(url))


def json_body(value: Any) -> bytes:
    """``value`` as the JSON bytes of a request body, in memory of exactly their size.

    orjson hands back its whole growth buffer (a 75 KB body holds 254 KiB), and a request body stays
    alive as long as its answer streams: with hundreds of answers open the copy saves tens of MB.
    """
    return bytes(memoryview(orjson.dumps(value)))


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
    transport = None if client.is_closed else _DIRECT_TRANSPORTS.get(client)
    if transport is not None:
        request = _direct_request(client, url, headers, body)
    else:
        request = client.build_request("POST", _parsed_url(url), headers=headers, content=body)
    with anyio.CancelScope(deadline=deadline) as scope:
        for attempt in (1, 2):
            try:
                if transport is not None:
                    response = await transport.handle_async_request(request)
                    # The response keeps its request for as long as the answer streams: not this one,
                    # with the body (tens of KB per open answer) and the credentials it was sent with.
                    response.request = _bodiless_request(url)
                    return response
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
            async for chunk in body_chunks(response):
                chunks.append(chunk)
                size += len(chunk)
                if size >= limit:
                    break
        except TRANSPORT_ERRORS:
            pass
    return b"".join(chunks)[:limit]


async def close_response(response: httpx.Response) -> None:
    """Close a response even from a cancelled scope (a client that went away): the connection is
    released, or dropped when its body was not read to the end, which cancels the upstream call.
    A response closed already (a body read whole) costs nothing here."""
    if response.is_closed:
        return
    # Closing is best effort: the connection is dropped either way.
    deadline = anyio.current_time() + DRAIN_SECONDS
    with anyio.CancelScope(shield=True, deadline=deadline), contextlib.suppress(Exception):
        await response.aclose()


class _ReadDeadline:
    """The deadlines of one reader's network reads: one loop timer, moved lazily, instead of one per read.

    A stream is read once per network chunk, often once per event, and arming and cancelling a timer
    for each read (an anyio ``CancelScope``, or ``asyncio.timeout``) was a large share of the gateway's
    CPU per event. Here a read only records its deadline; the timer, when it fires, re-arms itself at
    the current read's deadline until a read really is late, and only then cancels the waiting task —
    the same outcome as a timeout around each read.

    asyncio only, like the aiohttp transport; anyio's clock on asyncio is the loop's, so deadlines from
    :func:`anyio.current_time` mean the same here. The timer refers to this object weakly, so a reader
    dropped mid-stream is not kept alive until its deadline.
    """

    __slots__ = ("__weakref__", "_armed", "_deadline", "_expired", "_timer", "_waiter")

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None
        self._armed = math.inf
        """When the timer fires (infinity: not armed)."""
        self._deadline = math.inf
        self._waiter: asyncio.Task[Any] | None = None
        """The task waiting in :meth:`read`, the one a late read cancels."""
        self._expired = False

    async def read(self, chunks: AsyncIterator[bytes], deadline: float) -> bytes:
        """The next chunk (``StopAsyncIteration`` at the end); :class:`EventTimeout` when it did not
        come by ``deadline``."""
        task = asyncio.current_task()
        assert task is not None, "read from a task"
        self._deadline = deadline
        self._expired = False
        if deadline < self._armed:
            self._arm(asyncio.get_running_loop(), deadline)
        cancelling = task.cancelling()
        self._waiter = task
        try:
            return await chunks.__anext__()
        except asyncio.CancelledError:
            # Our cancel, and no other one pending (as asyncio.timeout decides): the read was late.
            if self._expired and task.uncancel() <= cancelling:
                raise EventTimeout from None
            raise
        finally:
            self._waiter = None

    def stop(self) -> None:
        """No more reads: drop the timer, so a finished stream leaves nothing on the loop."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed = math.inf

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self.stop()
        self._armed = when
        self._timer = loop.call_at(when, _fire, weakref.ref(self))

    def _fire(self) -> None:
        fired_at, self._armed, self._timer = self._armed, math.inf, None
        waiter = self._waiter
        if waiter is None:
            return  # between reads: the next read arms the timer again
        if self._deadline > fired_at:
            self._arm(asyncio.get_running_loop(), self._deadline)  # the read was given more time
            return
        self._expired = True
        waiter.cancel()


def _fire(ref: weakref.ref[_ReadDeadline]) -> None:
    deadline = ref()
    if deadline is not None:
        deadline._fire()


def body_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    """The chunks of ``response``'s body as the transport delivers them.

    Without a content encoding they come straight from the response's stream: ``aiter_bytes`` would
    add three generator layers per chunk (content decoding, re-chunking, byte counting) that do
    nothing here, and a streamed answer is hundreds of small chunks. Encoded bodies go through it.
    """
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity") and isinstance(response.stream, httpx.AsyncByteStream):
        return aiter(response.stream)
    return response.aiter_bytes()


class EventReader:
    """The SSE events of one streamed response, each read bounded by a deadline.

    Comment lines (keep-alives such as OpenRouter's ``: OPENROUTER PROCESSING``) are dropped by the
    decoder and never count as an event, so they cannot keep a stalled answer alive forever. All the
    events a network chunk completes are decoded at once and handed out from a buffer; only a read from
    the network waits, and only it is bounded by the deadline.

    ``skip_events``: event names the caller has no use for (a whole answer's repeated deltas,
    e.g. ``openai_responses.WHOLE_ANSWER_SKIPPABLE``), dropped by the decoder before they are built.
    A skipped event is still an event for the deadline: it shows the upstream is answering, so the
    wait starts over with the time it was given, and a long answer made of skipped deltas never looks
    stalled.
    """

    __slots__ = ("_buffer", "_chunks", "_decoder", "_done", "_reads", "_skipped", "_upstream")

    def __init__(
        self, response: httpx.Response, upstream: str, *, skip_events: frozenset[str] = frozenset()
    ) -> None:
        self._chunks: AsyncIterator[bytes] = body_chunks(response)
        self._decoder = SSEDecoder(skip_events=skip_events)
        self._buffer: Iterator[ServerSentEvent] = iter(())
        """The events of the last chunk not handed out yet."""
        self._skipped: int | None = 0 if skip_events else None
        """How many skipped frames the deadline has seen (``None``: nothing is skipped)."""
        self._done = False
        self._upstream = upstream
        self._reads = _ReadDeadline()

    def buffered(self) -> ServerSentEvent | None:
        """An event already decoded from the last chunk, or ``None`` when the next one needs a read.
        No waiting and no clock: the answer's consumer takes buffered events without a suspension."""
        return next(self._buffer, None)

    async def next(self, deadline: float) -> ServerSentEvent | None:
        """The next event, or ``None`` at the end of the body.

        Raises :class:`EventTimeout` when no event is complete by ``deadline``, :class:`UpstreamError`
        when the connection breaks.
        """
        event = next(self._buffer, None)
        if event is not None:
            return event
        return await self._read(deadline)

    async def next_within(self, seconds: float) -> ServerSentEvent | None:
        """:meth:`next` with a deadline ``seconds`` from now. An event already decoded from the last
        chunk is handed out at once, without reading the clock."""
        event = next(self._buffer, None)
        if event is not None:
            return event
        return await self._read(asyncio.get_running_loop().time() + seconds)

    async def _read(self, deadline: float) -> ServerSentEvent | None:
        """Read chunks until one completes an event (the buffer is empty)."""
        window = None if self._skipped is None else deadline - asyncio.get_running_loop().time()
        while not self._done:
            try:
                chunk = await self._reads.read(self._chunks, deadline)
            except StopAsyncIteration:
                self._finish()
                events = self._decoder.flush()
            except EventTimeout:
                self._finish()
                raise
            except TRANSPORT_ERRORS as exc:
                self._finish()
                raise transport_error(exc, "reading the answer", self._upstream) from exc
            except BaseException:
                self._reads.stop()
                raise
            else:
                events = self._decoder.feed(chunk)
                if window is not None and self._decoder.skipped != self._skipped:
                    self._skipped = self._decoder.skipped
                    deadline = max(deadline, asyncio.get_running_loop().time() + window)
            if events:
                self._buffer = iter(events)
                return next(self._buffer)
        return None

    def close(self) -> None:
        """Stop reading (the answer is abandoned): no timer is left behind."""
        self._finish()

    def _finish(self) -> None:
        self._done = True
        self._reads.stop()

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
        self._finish()


# --- a streamed answer, held until it commits ------------------------------------------------------------
#
# A provider holds an answer until the upstream said 200 and sent its first content event: until then
# any failure is raised, so the Gateway can still try elsewhere (another account, a fallback lane) and
# answer the client with a proper status. After the commit, failures are in-band ErrorEvents.

_DELTAS: frozenset[type[StreamEvent]] = frozenset({TextDelta, ReasoningDelta, ToolArgumentsDelta})
"""Events that say nothing about how the answer ends, tested by exact type on the hot path."""


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
                reader.close()  # the answer is given up: leave no read deadline behind
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
        events, ended = await _next_events(reader, decoder, idle_timeout, upstream)
        finished = ended
        for event in events:
            finished = finished or isinstance(event, MessageStop | ErrorEvent)
            yield event
        if finished:
            return


async def _next_events(
    reader: EventReader, decoder: EventDecoder, idle_timeout: float, upstream: str
) -> tuple[Iterable[StreamEvent], bool]:
    """The stream events of the next SSE event, and whether the body ended with them. Nothing is raised:
    a stall or a broken connection is an ``ErrorEvent``. A plain coroutine, so that
    :meth:`CommittedAnswer.next_batch` and :func:`follow_committed` share it without an extra async
    generator between the upstream and the client (every event crossing one costs a suspension)."""
    try:
        sse = await reader.next_within(idle_timeout)
    except EventTimeout:
        message = f"{upstream} sent nothing for {idle_timeout:g} s; the answer was cut short"
        return (ErrorEvent(UpstreamTimeoutError(message)),), True
    except GatewayError as exc:
        return (ErrorEvent(exc),), True
    if sse is None:
        return decoder.close(), True
    return decoder.feed(sse), False


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
        """The held events, then the rest of the answer, one by one (:meth:`next_batch` in a loop).
        After a complete answer the rest of the body is drained, so the connection can be reused."""
        try:
            while batch := await self.next_batch(idle_timeout=idle_timeout, upstream=upstream):
                for event in batch:
                    yield event
        finally:
            self.close()

    async def next_batch(self, *, idle_timeout: float, upstream: str) -> list[StreamEvent]:
        """The next events of the answer: the held ones first, then every event decodable from what was
        already read, else those of the next read; ``[]`` once the answer ended.

        A provider that loops over batches itself (rather than over :meth:`events`) spares its answer
        one generator resumption per event, which on a long answer is a measurable share of the
        gateway's CPU. Nothing is raised: a stall or a broken connection is an ``ErrorEvent``, and a
        complete answer's body is drained before the end is reported. Call :meth:`close` when done.
        """
        if self.held:
            held, self.held = self.held, []
            return self._noted(held)
        reader, decoder = self.reader, self.decoder
        if reader is None or decoder is None or self.finished:
            if reader is not None and self.completed:
                await reader.drain()
            return []
        while True:
            batch: list[StreamEvent] = []
            while (sse := reader.buffered()) is not None:
                batch.extend(decoder.feed(sse))
            if batch:
                return self._noted(batch)
            events, ended = await _next_events(reader, decoder, idle_timeout, upstream)
            if events:
                return self._noted(list(events))
            if ended:  # the body ended, and the decoder had nothing more to say
                self.finished = True
                return []

    def close(self) -> None:
        """Stop reading the answer (no read deadline is left behind); the provider closes the response."""
        if self.reader is not None:
            self.reader.close()

    def _noted(self, batch: list[StreamEvent]) -> list[StreamEvent]:
        """``batch`` up to the answer's last event, what it says about the answer noted."""
        for position, event in enumerate(batch):
            if type(event) not in _DELTAS:
                self._note(event)
                if isinstance(event, MessageStop | ErrorEvent):
                    return batch[: position + 1]
        return batch

    def _note(self, event: StreamEvent) -> StreamEvent:
        if isinstance(event, MessageDelta):
            self.usage = event.usage
        elif isinstance(event, MessageStop):
            self.completed = self.finished = True
        elif isinstance(event, ErrorEvent):
            self.finished = True
        return event
