"""The official ``anthropic`` SDK reads what the encoder and ``render_response`` write, and agrees with us.

The SDK is the reference client: its own stream reducer (``messages.stream(...).get_final_message()``)
must end with the same ``Message`` as our ``render_response(accumulate(events))`` for the same
canonical events. No network: the SDK talks to an in-memory transport returning our bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import orjson
import pytest

from gateway_core.errors import OverloadedError
from gateway_core.formats.anthropic import (
    StreamDecoder,
    StreamEncoder,
    parse_request,
    parse_response,
    render_error,
    render_response,
)
from gateway_core.models import ReasoningPart, TextPart, ToolCallPart, Usage
from gateway_core.sse import SSEDecoder
from gateway_core.streaming import (
    ErrorEvent,
    MessageDelta,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    ReasoningDelta,
    SignatureDelta,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
    accumulate,
)
from tests.fixtures import fixture_files, load_sse

STREAMS = fixture_files("anthropic", "*.sse")
MODEL = "claude-opus-5-5"  # a current name: the SDK warns about deprecated ones
ASK: dict[str, Any] = {"model": MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": "hi"}]}


def decode(raw: bytes) -> list[StreamEvent]:
    sse, decoder = SSEDecoder(), StreamDecoder()
    events = [event for item in sse.feed(raw) + sse.flush() for event in decoder.feed(item)]
    return events + decoder.close()


def encode(events: list[StreamEvent]) -> bytes:
    encoder = StreamEncoder()
    return b"".join(encoder.encode(event) for event in events)


def _transport(body: bytes, content_type: str) -> httpx2.MockTransport:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": content_type}, content=body)

    return httpx2.MockTransport(answer)


@contextmanager
def sdk_client(body: bytes, content_type: str = "text/event-stream") -> Iterator[anthropic.Anthropic]:
    with httpx2.Client(transport=_transport(body, content_type)) as http:
        yield anthropic.Anthropic(
            api_key="test-key", base_url="http://gateway.test", max_retries=0, http_client=http
        )


def sdk_final_message(stream_body: bytes) -> anthropic.types.Message:
    with sdk_client(stream_body) as client, client.messages.stream(**ASK) as stream:
        return stream.get_final_message()


def without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_none(item) for item in value]
    return value


def sdk_view(message: anthropic.types.Message) -> Any:
    return message.model_dump(mode="json", exclude_none=True)


# --- the SDK's reducer and ours agree on recorded upstream streams ----------------------------------


@pytest.mark.parametrize("path", STREAMS, ids=lambda path: path.stem)
def test_our_reducer_matches_the_sdk_reducer_on_recorded_streams(path: Path) -> None:
    raw = load_sse(path)

    sdk_message = sdk_final_message(raw)

    assert accumulate(decode(raw)) == parse_response(sdk_message.model_dump(mode="json"))


# --- the SDK reads our stream encoder -----------------------------------------------------------------


@pytest.mark.parametrize("path", STREAMS, ids=lambda path: path.stem)
def test_sdk_reads_the_encoded_stream_as_render_response_says(path: Path) -> None:
    events = decode(load_sse(path))

    sdk_message = sdk_final_message(encode(events))

    assert sdk_view(sdk_message) == without_none(render_response(accumulate(events)))


@pytest.mark.parametrize("path", STREAMS, ids=lambda path: path.stem)
def test_sdk_reads_render_response_as_a_non_streaming_answer(path: Path) -> None:
    body = render_response(accumulate(decode(load_sse(path))))

    with sdk_client(orjson.dumps(body), "application/json") as client:
        message = client.messages.create(**ASK)

    assert message.to_dict() == body


FOREIGN_STREAM: list[StreamEvent] = [
    MessageStart(id="resp_0a1b", model=MODEL, usage=Usage(input_tokens=90, cached_input_tokens=2000)),
    PartStart(0, ReasoningPart()),
    ReasoningDelta(0, "**Checking the weather**"),
    SignatureDelta(0, "gAAAAABo-encrypted", provider="codex"),
    PartStop(0),
    PartStart(1, TextPart(text="")),
    TextDelta(1, "Let me look."),
    PartStop(1),
    PartStart(2, ToolCallPart(id="functions.weather:0", name="weather", arguments={})),
    ToolArgumentsDelta(2, '{"location": '),
    ToolArgumentsDelta(2, '"Florence, Italy"}'),
    MessageDelta(
        stop_reason="tool_use",
        usage=Usage(input_tokens=90, cached_input_tokens=2000, output_tokens=64, reasoning_tokens=30),
    ),
    MessageStop(),
]


def test_sdk_reads_a_stream_from_another_provider() -> None:
    """Codex reasoning, an OpenRouter call id, a tool block never stopped: still a valid Anthropic stream."""
    sdk_message = sdk_final_message(encode(FOREIGN_STREAM))

    assert sdk_view(sdk_message) == without_none(render_response(accumulate(FOREIGN_STREAM)))
    thinking, _, call = sdk_message.content
    assert thinking.type == "thinking"
    assert thinking.signature.startswith("rg1.")
    assert call.type == "tool_use"
    assert call.id != "functions.weather:0"
    assert sdk_message.id == "msg_resp_0a1b"
    assert sdk_message.usage.cache_read_input_tokens == 2000


def test_what_the_sdk_sends_back_next_turn_parses_to_the_same_parts() -> None:
    """The client echoes the assistant turn: reasoning token, provider and call id all come back intact."""
    sdk_message = sdk_final_message(encode(FOREIGN_STREAM))
    echoed = [block.model_dump(mode="json", exclude_none=True) for block in sdk_message.content]

    request = parse_request({**ASK, "messages": [*ASK["messages"], {"role": "assistant", "content": echoed}]})

    assert request.messages[1].content == accumulate(FOREIGN_STREAM).content


def test_sdk_raises_the_error_event_with_our_body() -> None:
    error = OverloadedError("Overloaded")
    events: list[StreamEvent] = [
        MessageStart(id="msg_1", model=MODEL),
        PartStart(0, TextPart(text="")),
        ErrorEvent(error),
    ]

    with (
        sdk_client(encode(events)) as client,
        client.messages.stream(**ASK) as stream,
        pytest.raises(anthropic.APIStatusError) as caught,
    ):
        stream.get_final_message()

    assert caught.value.body == render_error(error)


@pytest.mark.anyio
async def test_async_sdk_reads_the_raw_event_stream() -> None:
    events = decode(load_sse("anthropic/anthropic_stream_thinking_tool_use.sse"))
    async with httpx2.AsyncClient(transport=_transport(encode(events), "text/event-stream")) as http:
        client = anthropic.AsyncAnthropic(
            api_key="k", base_url="http://gateway.test", max_retries=0, http_client=http
        )
        stream = await client.messages.create(**ASK, stream=True)
        kinds = [event.type async for event in stream]

    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 2
