"""Server-sent event bodies: canonical events encoded for the client, batched, with keep-alives.

A pump task reads the primed gateway stream and encodes each event into an :class:`_Outbox`; the body
takes everything encoded so far and sends it as one write — the events decoded from one upstream chunk
reach the client together instead of one socket write each. While nothing arrives for ``interval``
seconds (a reasoning model thinking before its first summary) the body sends the format's keep-alive
frame, so clients and proxies keep the connection; waiting for frames never cancels the upstream read.

Closing the body (a client that went away) cancels the pump, which closes the gateway stream and with
it the upstream request. The pump owns the stream for its whole life, so a provider's own cancel
scopes stay inside one task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from gateway_core.gateway import Stream
from gateway_core.streaming import StreamEvent

logger = logging.getLogger(__name__)

OUTBOX_FRAMES = 256
"""Frames encoded ahead of a slow client; past this the pump waits (backpressure up to the upstream)."""


class _Outbox:
    """Encoded frames on their way from the pump to the body.

    A list and two futures rather than a queue: the pump appends a frame per event without a
    coroutine call, and the body, woken once, takes every frame at once.
    """

    __slots__ = ("_frames", "_limit", "_ready", "_room", "closed")

    def __init__(self, limit: int) -> None:
        self._frames: list[bytes] = []
        self._limit = limit
        self._ready: asyncio.Future[None] | None = None
        """The body waiting for frames."""
        self._room: asyncio.Future[None] | None = None
        """The pump waiting for the body to take frames."""
        self.closed = False
        """The pump put its last frame."""

    def put(self, frame: bytes) -> None:
        self._frames.append(frame)
        _wake(self._ready)

    @property
    def full(self) -> bool:
        return len(self._frames) >= self._limit

    def close(self) -> None:
        self.closed = True
        _wake(self._ready)

    async def room(self) -> None:
        """Wait until the body took the frames (a slow client holds the pump, and so the upstream)."""
        self._room = asyncio.get_running_loop().create_future()
        try:
            await self._room
        finally:
            self._room = None

    async def take(self, interval: float) -> list[bytes] | None:
        """Every frame put so far (``[]`` once closed and empty), or ``None`` after ``interval``
        seconds with none."""
        if not self._frames and not self.closed:
            loop = asyncio.get_running_loop()
            ready = self._ready = loop.create_future()
            timer = loop.call_later(interval, _wake, ready)
            try:
                await ready
            finally:
                timer.cancel()
                self._ready = None
            if not self._frames and not self.closed:
                return None
        frames, self._frames = self._frames, []
        _wake(self._room)
        return frames


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def _pump(stream: Stream, encode: Callable[[StreamEvent], bytes], outbox: _Outbox) -> None:
    def deliver(event: StreamEvent) -> Awaitable[None] | None:
        frame = encode(event)
        if frame:
            outbox.put(frame)
            if outbox.full:
                return outbox.room()
        return None

    try:
        async with stream:
            await stream.forward(deliver)
    finally:
        outbox.close()


async def sse_body(
    stream: Stream,
    encode: Callable[[StreamEvent], bytes],
    *,
    keepalive: bytes,
    interval: float,
) -> AsyncGenerator[bytes, None]:
    """``stream`` encoded for the client, everything encoded since the last write in one chunk."""
    outbox = _Outbox(OUTBOX_FRAMES)
    pump = asyncio.create_task(_pump(stream, encode, outbox))
    try:
        while True:
            frames = await outbox.take(interval)
            if frames is None:
                yield keepalive
                continue
            if frames:
                yield b"".join(frames)
            elif outbox.closed:
                await pump  # the stream failed without its closing event: let the server see why
                return
    finally:
        if not pump.done():
            pump.cancel()
        try:
            await pump
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.warning("the stream feeding a closed response failed", exc_info=True)
