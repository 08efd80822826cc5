"""Server-sent event bodies: canonical events encoded for the client, with keep-alives.

An upstream can be silent for a long time (a reasoning model thinking before its first summary
delta). Clients and proxies drop idle connections, so while no event arrives the body sends the
format's keep-alive frame every ``interval`` seconds — without cancelling the pending read, which
would cancel the upstream request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from gateway_core.gateway import Stream
from gateway_core.streaming import StreamEvent

T = TypeVar("T")


async def with_keepalive(events: AsyncIterator[T], interval: float) -> AsyncIterator[T | None]:
    """The items of ``events``, with ``None`` inserted for every ``interval`` seconds of silence."""
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait((pending,), timeout=interval)
            if not done:
                yield None
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending


async def sse_body(
    stream: Stream,
    encode: Callable[[StreamEvent], bytes],
    *,
    keepalive: bytes,
    interval: float,
) -> AsyncIterator[bytes]:
    """Encode ``stream`` for the client; closing the body (a client that went away) closes the stream,
    and with it the upstream request."""
    async with stream:
        async for event in with_keepalive(stream, interval):
            if event is None:
                yield keepalive
                continue
            chunk = encode(event)
            if chunk:
                yield chunk
