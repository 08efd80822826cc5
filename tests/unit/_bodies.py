"""Scripted HTTP response bodies for tests of what reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import anyio
import anyio.lowlevel
import httpx


class Body(httpx.AsyncByteStream):
    """A response body sent in ``chunks``, then ended, stalled forever, or broken."""

    def __init__(self, chunks: Sequence[bytes], then: str = "end") -> None:
        self.chunks = chunks
        self.then = then
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.then == "stall":
            await anyio.sleep_forever()
        if self.then == "break":
            raise httpx.ReadError("connection reset by peer")

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()  # as a real close has: a cancelled scope would stop it here
        self.closed = True


def pieces(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into chunks of ``size`` bytes."""
    return [data[start : start + size] for start in range(0, len(data), size)]
