"""The SSE body: queued events leave in one write, silences get keep-alives, closing stops the upstream."""

from __future__ import annotations

import asyncio

import pytest

from gateway_core.gateway import Gateway
from gateway_core.streaming import StreamEvent, TextDelta
from gateway_server.streaming import OUTBOX_FRAMES, sse_body
from tests.unit._fake_provider import FakeProvider, text_events, user_request

pytestmark = pytest.mark.anyio


def encode(event: StreamEvent) -> bytes:
    return f"{type(event).__name__}\n".encode()


async def test_events_ready_together_are_sent_as_one_chunk() -> None:
    provider = FakeProvider("codex", events=text_events(*["word "] * 50))
    stream = await Gateway([provider]).stream(user_request("gpt-5.5"))
    chunks = [chunk async for chunk in sse_body(stream, encode, keepalive=b"ping\n", interval=5)]
    names = b"".join(chunks).decode().split()
    assert names.count("TextDelta") == 50
    assert names[0] == "MessageStart"
    assert names[-1] == "MessageStop"
    assert len(chunks) < 10


async def test_a_silent_upstream_gets_keepalives_and_closing_the_body_closes_the_provider() -> None:
    provider = FakeProvider("codex", hang_after=3)
    stream = await Gateway([provider]).stream(user_request("gpt-5.5"))
    body = sse_body(stream, encode, keepalive=b"ping\n", interval=0.01)
    seen: list[bytes] = []
    async for chunk in body:
        seen.append(chunk)
        if seen.count(b"ping\n") == 3:
            break
    await body.aclose()
    assert b"".join(seen).startswith(b"MessageStart\nPartStart\nTextDelta\n")
    assert provider.finalised


async def test_nothing_is_lost_between_keepalives() -> None:
    events = text_events("a", "b", "c")
    provider = FakeProvider("codex", events=events)
    stream = await Gateway([provider]).stream(user_request("gpt-5.5"))
    chunks = [chunk async for chunk in sse_body(stream, encode, keepalive=b"", interval=0.001)]
    assert b"".join(chunks).decode().split().count(TextDelta.__name__) == 3


class _CountingEncoder:
    """Counts the events the pump has encoded so far."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: StreamEvent) -> bytes:
        self.count += 1
        return encode(event)


async def test_a_client_that_reads_nothing_holds_the_pump_after_a_bounded_read_ahead() -> None:
    provider = FakeProvider("codex", events=text_events(*["word "] * 2000))
    stream = await Gateway([provider]).stream(user_request("gpt-5.5"))
    encoder = _CountingEncoder()
    body = sse_body(stream, encoder, keepalive=b"", interval=5)
    first = await body.__anext__()
    for _ in range(20):
        await asyncio.sleep(0)  # let the pump run as far as it may
    await body.aclose()
    assert first
    assert OUTBOX_FRAMES <= encoder.count <= 2 * OUTBOX_FRAMES + 1
    assert provider.finalised


async def test_a_stream_that_fails_without_its_closing_event_ends_the_body_with_the_failure() -> None:
    provider = FakeProvider("codex", events=text_events("a", "b"))
    stream = await Gateway([provider]).stream(user_request("gpt-5.5"))

    def broken(event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta) and event.text == "b":
            raise RuntimeError("encoder broke")
        return encode(event)

    with pytest.raises(RuntimeError, match="encoder broke"):
        async for _ in sse_body(stream, broken, keepalive=b"", interval=5):
            pass
    assert provider.finalised
