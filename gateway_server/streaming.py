"""Server-sent event bodies: canonical events encoded for the client, batched, with keep-alives.

A pump task reads the primed gateway stream into a small queue; the body takes whatever is queued,
encodes it and sends it as one write — the events decoded from one upstream chunk reach the client
together instead of one socket write each. While nothing arrives for ``interval`` seconds (a
reasoning model thinking before its first summary) the body sends the format's keep-alive frame, so
clients and proxies keep the connection; waiting for the queue never cancels the upstream read.

Closing the body (a client that went away) cancels the pump, which closes the gateway stream and with
it the upstream request. The pump owns the stream for its whole life, so a provider's own cancel
scopes stay inside one task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable

from gateway_core.gateway import Stream
from gateway_core.streaming import StreamEvent

logger = logging.getLogger(__name__)

_QUEUE_SIZE = 256
"""Events read ahead of a slow client; past this the pump waits (backpressure up to the upstream)."""


class _End:
    """Queued after the last event."""


_END = _End()
Queued = StreamEvent | _End


async def _pump(stream: Stream, queue: asyncio.Queue[Queued]) -> None:
    async with stream:
        async for event in stream:
            await queue.put(event)
    await queue.put(_END)


async def _next(queue: asyncio.Queue[Queued], interval: float) -> Queued | None:
    """The next queued item, or ``None`` after ``interval`` seconds of silence."""
    try:
        return queue.get_nowait()
    except asyncio.QueueEmpty:
        pass
    try:
        async with asyncio.timeout(interval):
            return await queue.get()
    except TimeoutError:
        return None


async def sse_body(
    stream: Stream,
    encode: Callable[[StreamEvent], bytes],
    *,
    keepalive: bytes,
    interval: float,
) -> AsyncGenerator[bytes, None]:
    """``stream`` encoded for the client, every batch of queued events in one chunk."""
    queue: asyncio.Queue[Queued] = asyncio.Queue(_QUEUE_SIZE)
    pump = asyncio.create_task(_pump(stream, queue))
    try:
        while True:
            item = await _next(queue, interval)
            if item is None:
                if pump.done():
                    pump.result()  # the stream failed without its closing event: let the server see why
                    return
                yield keepalive
                continue
            chunks: list[bytes] = []
            while not isinstance(item, _End):
                chunks.append(encode(item))
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            body = b"".join(chunks)
            if body:
                yield body
            if isinstance(item, _End):
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
