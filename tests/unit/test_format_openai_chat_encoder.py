"""Canonical events -> the OpenAI chat stream, read back by our decoder and the official SDK (§2.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion

from gateway_core.errors import OverloadedError
from gateway_core.formats.openai_chat import StreamEncoder, render_response
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
from tests.unit._openai_chat_support import (
    CHAT_STREAMS,
    async_sdk_client,
    decode,
    decode_fixture,
    encode_all,
    sdk_client,
)

CREATED = 1782321890
USAGE = Usage(
    input_tokens=12, cached_input_tokens=30, cache_write_tokens=2, output_tokens=40, reasoning_tokens=25
)

TEXT_AND_TOOLS: list[StreamEvent] = [
    MessageStart(id="msg_1", model="claude-haiku-4-5"),
    PartStart(0, ReasoningPart()),
    ReasoningDelta(0, "Let me look."),
    SignatureDelta(0, "sig", "openrouter"),
    PartStop(0),
    PartStart(1, TextPart(text="")),
    TextDelta(1, "Checking "),
    TextDelta(1, "both."),
    PartStop(1),
    PartStart(2, ToolCallPart(id="call_a", name="weather", arguments={})),
    ToolArgumentsDelta(2, '{"city":'),
    ToolArgumentsDelta(2, '"Rome"}'),
    PartStop(2),
    PartStart(3, ToolCallPart(id="functions.weather:1", name="weather", arguments={})),
    ToolArgumentsDelta(3, '{"city":"Oslo"}'),
    PartStop(3),
    MessageDelta(stop_reason="tool_use", usage=USAGE),
    MessageStop(),
]

TOOLS_ONLY: list[StreamEvent] = [
    MessageStart(id="msg_2", model="m"),
    PartStart(0, ToolCallPart(id="c1", name="now", arguments={"tz": "UTC"})),
    PartStop(0),
    MessageDelta(stop_reason="tool_use", usage=Usage(input_tokens=1, output_tokens=1)),
    MessageStop(),
]

NOTHING: list[StreamEvent] = [
    MessageStart(id="msg_3", model="m"),
    MessageDelta(stop_reason="max_tokens", usage=Usage(input_tokens=5, output_tokens=9, reasoning_tokens=9)),
    MessageStop(),
]

SEQUENCES = {"text_and_tools": TEXT_AND_TOOLS, "tools_only": TOOLS_ONLY, "nothing": NOTHING}
SEQUENCES.update({path.stem: decode_fixture(path, model="claude-haiku-4-5") for path in CHAT_STREAMS})


def encode(events: list[StreamEvent], **options: Any) -> bytes:
    return encode_all(StreamEncoder(created=CREATED, **options), events)


def frames(raw: bytes) -> list[str]:
    decoder = SSEDecoder()
    return [event.data for event in decoder.feed(raw) + decoder.flush()]


def expected_choice(events: list[StreamEvent]) -> dict[str, Any]:
    choice: dict[str, Any] = render_response(accumulate(events), created=CREATED)["choices"][0]
    return choice


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    """What must agree between two renderings of one answer: content, calls (arguments as JSON), finish."""
    calls = [
        (call["id"], call["function"]["name"], orjson.loads(call["function"]["arguments"] or "{}"))
        for call in message.get("tool_calls") or []
    ]
    return {"content": message["content"], "tool_calls": calls}


# --- the wire ------------------------------------------------------------------------------------


def test_stream_is_data_lines_only_and_ends_with_done() -> None:
    raw = encode(TEXT_AND_TOOLS, include_usage=True)

    lines = [line for line in raw.decode().split("\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert raw.endswith(b"\n\n")


def test_first_chunk_introduces_the_assistant_and_chunks_carry_id_model_created() -> None:
    first, *_ = (orjson.loads(data) for data in frames(encode(TEXT_AND_TOOLS)) if data != "[DONE]")

    assert first["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert (first["id"], first["model"], first["created"], first["object"]) == (
        "msg_1",
        "claude-haiku-4-5",
        CREATED,
        "chat.completion.chunk",
    )


def test_tool_calls_stream_with_increasing_index_name_first_then_arguments() -> None:
    chunks = [orjson.loads(d) for d in frames(encode(TEXT_AND_TOOLS)) if d != "[DONE]"]
    pieces = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]

    assert pieces == [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"city":'}},
        {"index": 0, "function": {"arguments": '"Rome"}'}},
        {
            "index": 1,
            "id": "functions.weather:1",
            "type": "function",
            "function": {"name": "weather", "arguments": ""},
        },
        {"index": 1, "function": {"arguments": '{"city":"Oslo"}'}},
    ]


def test_usage_chunk_has_no_choices_and_other_chunks_carry_null_usage() -> None:
    chunks = [orjson.loads(d) for d in frames(encode(TEXT_AND_TOOLS, include_usage=True)) if d != "[DONE]"]

    *streamed, last = chunks
    assert all(c["usage"] is None for c in streamed)
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 44,
        "completion_tokens": 40,
        "total_tokens": 84,
        "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 25},
    }
    assert streamed[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }


def test_without_include_usage_there_is_no_usage_at_all() -> None:
    chunks = [orjson.loads(d) for d in frames(encode(TEXT_AND_TOOLS)) if d != "[DONE]"]

    assert all("usage" not in c for c in chunks)


def test_reasoning_is_omitted_by_default_and_sent_as_reasoning_content_on_request() -> None:
    plain = frames(encode(TEXT_AND_TOOLS))
    with_reasoning = [
        orjson.loads(d) for d in frames(encode(TEXT_AND_TOOLS, include_reasoning=True)) if d != "[DONE]"
    ]

    assert not any("reasoning" in data for data in plain)
    assert {"reasoning_content": "Let me look."} in [c["choices"][0]["delta"] for c in with_reasoning]


def test_an_error_event_is_an_error_chunk_and_no_done() -> None:
    events = [*TEXT_AND_TOOLS[:7], ErrorEvent(OverloadedError("Overloaded")), MessageStop()]

    raw = encode(events)

    *_, last = frames(raw)
    assert orjson.loads(last) == {
        "error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}
    }
    assert b"[DONE]" not in raw


def test_a_complete_tool_call_without_argument_deltas_sends_its_arguments_once() -> None:
    chunks = [orjson.loads(d) for d in frames(encode(TOOLS_ONLY)) if d != "[DONE]"]
    pieces = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]

    assert [p["function"]["arguments"] for p in pieces] == ["", '{"tz":"UTC"}']


def test_a_stream_stopped_without_outcome_still_finishes() -> None:
    chunks = [
        orjson.loads(d)
        for d in frames(encode([MessageStart(id="x", model="m"), MessageStop()]))
        if d != "[DONE]"
    ]

    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


# --- read back by our own decoder ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(SEQUENCES), ids=str)
def test_our_decoder_reads_the_encoder_back_to_the_same_answer(name: str) -> None:
    events = SEQUENCES[name]
    original = accumulate(events)

    again = accumulate(decode(encode(events, include_usage=True), provider="openrouter"))

    assert [p for p in again.content if not isinstance(p, ReasoningPart)] == [
        p for p in original.content if not isinstance(p, ReasoningPart)
    ]
    assert again.stop_reason == original.stop_reason
    assert again.usage.model_copy(update={"cost": None}) == original.usage.model_copy(update={"cost": None})
    assert (again.id, again.model) == (original.id, original.model)


# --- read back by the official OpenAI SDK --------------------------------------------------------


@pytest.mark.parametrize("name", list(SEQUENCES), ids=str)
def test_sdk_chunks_rebuild_the_same_message_as_render_response(name: str) -> None:
    events = SEQUENCES[name]
    client = sdk_client(encode(events, include_usage=True), stream=True)

    content: str | None = None
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage = None
    for chunk in client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    ):
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.delta.content is not None:
                content = (content or "") + choice.delta.content
            for piece in choice.delta.tool_calls or []:
                call = calls.setdefault(
                    piece.index, {"id": piece.id, "function": {"name": "", "arguments": ""}}
                )
                if piece.function is not None:
                    call["function"]["name"] += piece.function.name or ""
                    call["function"]["arguments"] += piece.function.arguments or ""
            finish = choice.finish_reason or finish

    expected = expected_choice(events)
    rebuilt = {"content": content, "tool_calls": [calls[i] for i in sorted(calls)]}
    assert comparable(rebuilt) == comparable(expected["message"])
    assert finish == expected["finish_reason"]
    assert usage is not None
    assert usage.model_dump(exclude_none=True) == render_response(accumulate(events))["usage"]


@pytest.mark.parametrize("name", list(SEQUENCES), ids=str)
def test_sdk_stream_helper_final_completion_equals_render_response(name: str) -> None:
    events = SEQUENCES[name]
    client = sdk_client(encode(events, include_usage=True), stream=True)

    with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "x"}]) as stream:
        try:
            final: ChatCompletion = stream.get_final_completion()
        except openai.LengthFinishReasonError as cut:  # the helper refuses cut answers, by design
            final = cut.completion

    expected = render_response(accumulate(events), created=CREATED)
    message = final.choices[0].message.model_dump(exclude={"parsed"})
    for call in message.get("tool_calls") or []:
        call["function"].pop("parsed_arguments", None)
    assert comparable(message) == comparable(expected["choices"][0]["message"])
    assert final.choices[0].finish_reason == expected["choices"][0]["finish_reason"]
    assert final.id == expected["id"]
    assert final.model == expected["model"]
    assert final.created == CREATED
    assert final.usage is not None
    assert final.usage.total_tokens == expected["usage"]["total_tokens"]


def test_sdk_raises_the_in_band_error() -> None:
    events = [*TEXT_AND_TOOLS[:7], ErrorEvent(OverloadedError("Overloaded"))]
    client = sdk_client(encode(events), stream=True)

    with pytest.raises(openai.APIError, match="Overloaded"):
        list(
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )


@pytest.mark.anyio
async def test_async_sdk_reads_the_stream() -> None:
    client = async_sdk_client(encode(TEXT_AND_TOOLS, include_usage=True), stream=True)

    texts: list[str] = []
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    async for chunk in stream:
        texts.extend(c.delta.content for c in chunk.choices if c.delta.content)

    assert "".join(texts) == "Checking both."


def test_every_recorded_stream_is_in_the_sdk_checks() -> None:
    assert {Path(p).stem for p in CHAT_STREAMS} <= set(SEQUENCES)
