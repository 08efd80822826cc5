"""Helpers shared by the Chat Completions format tests: decode a recorded stream, serve bytes to the SDK."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import openai

try:
    import httpx2 as sdk_http  # the OpenAI SDK >= 3 speaks httpx2
except ImportError:  # older SDK releases speak httpx
    import httpx as sdk_http  # type: ignore[no-redef]

from gateway_core.formats._names import ToolNameMap
from gateway_core.formats.openai_chat import StreamDecoder, StreamEncoder
from gateway_core.sse import SSEDecoder
from gateway_core.streaming import StreamEvent
from tests.fixtures import fixture_files, load_sse

CHAT_STREAMS: list[Path] = fixture_files("openai_chat", "*.sse") + fixture_files("openrouter", "*.sse")


def decode(
    raw: bytes,
    *,
    provider: str = "openrouter",
    model: str | None = None,
    names: ToolNameMap | None = None,
    chunk_size: int | None = None,
) -> list[StreamEvent]:
    """All canonical events of a raw Chat stream, fed ``chunk_size`` bytes at a time, then closed."""
    sse = SSEDecoder()
    decoder = StreamDecoder(provider=provider, model=model, names=names)
    step = chunk_size or len(raw) or 1
    events: list[StreamEvent] = []
    for start in range(0, len(raw), step):
        for event in sse.feed(raw[start : start + step]):
            events.extend(decoder.feed(event))
    for event in sse.flush():
        events.extend(decoder.feed(event))
    events.extend(decoder.close())
    return events


def decode_fixture(path: Path, **options: object) -> list[StreamEvent]:
    return decode(load_sse(path), **options)  # type: ignore[arg-type]


def encode_all(encoder: StreamEncoder, events: Iterable[StreamEvent]) -> bytes:
    return b"".join(encoder.encode(event) for event in events)


def _transport(body: bytes, content_type: str, status: int = 200) -> sdk_http.MockTransport:
    def handler(request: sdk_http.Request) -> sdk_http.Response:
        return sdk_http.Response(status, content=body, headers={"content-type": content_type})

    return sdk_http.MockTransport(handler)


def sdk_client(body: bytes, *, stream: bool, status: int = 200) -> openai.OpenAI:
    """An OpenAI SDK client whose every request is answered with ``body`` (no network)."""
    content_type = "text/event-stream" if stream else "application/json"
    http_client = sdk_http.Client(transport=_transport(body, content_type, status))
    return openai.OpenAI(
        api_key="sk-test", base_url="http://gateway.test/v1", http_client=http_client, max_retries=0
    )


def async_sdk_client(body: bytes, *, stream: bool) -> openai.AsyncOpenAI:
    content_type = "text/event-stream" if stream else "application/json"

    def handler(request: sdk_http.Request) -> sdk_http.Response:
        return sdk_http.Response(200, content=body, headers={"content-type": content_type})

    http_client = sdk_http.AsyncClient(transport=sdk_http.MockTransport(handler))
    return openai.AsyncOpenAI(
        api_key="sk-test", base_url="http://gateway.test/v1", http_client=http_client, max_retries=0
    )
