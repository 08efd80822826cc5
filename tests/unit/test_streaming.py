"""The reducer: a canonical stream becomes the same response a non-streaming call returns."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway_core.errors import OverloadedError, UpstreamError
from gateway_core.models import ReasoningPart, Response, TextPart, ToolCallPart, Usage
from gateway_core.streaming import (
    Accumulator,
    CitationDelta,
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
    accumulate_async,
    parse_tool_arguments,
)

FINAL_USAGE = Usage(input_tokens=10, cached_input_tokens=90, output_tokens=42, reasoning_tokens=30)


def full_stream() -> list[StreamEvent]:
    return [
        MessageStart(
            id="msg_1", model="claude-opus-4-8", usage=Usage(input_tokens=10, cached_input_tokens=90)
        ),
        PartStart(0, ReasoningPart()),
        ReasoningDelta(0, "Let me "),
        ReasoningDelta(0, "think."),
        SignatureDelta(0, "enc-token", "codex"),
        PartStop(0),
        PartStart(1, TextPart(text="")),
        TextDelta(1, "Hello, "),
        TextDelta(1, "world"),
        PartStop(1),
        PartStart(2, ToolCallPart(id="call_1", name="Read", arguments={})),
        ToolArgumentsDelta(2, ""),
        ToolArgumentsDelta(2, '{"file_path": "/tmp/'),
        ToolArgumentsDelta(2, 'a.txt"}'),
        PartStop(2),
        MessageDelta(stop_reason="tool_use", usage=FINAL_USAGE),
        MessageStop(),
    ]


def test_accumulate_builds_every_part_in_index_order() -> None:
    response = accumulate(full_stream())
    assert response == Response(
        id="msg_1",
        model="claude-opus-4-8",
        content=(
            ReasoningPart(text="Let me think.", signature="enc-token", provider="codex"),
            TextPart(text="Hello, world"),
            ToolCallPart(id="call_1", name="Read", arguments={"file_path": "/tmp/a.txt"}),
        ),
        stop_reason="tool_use",
        usage=FINAL_USAGE,
    )


def test_usage_falls_back_to_message_start_when_no_final_usage() -> None:
    start_usage = Usage(input_tokens=5)
    response = accumulate([MessageStart("m", "x", start_usage), MessageDelta("end_turn"), MessageStop()])
    assert response.usage == start_usage
    assert response.content == ()


def test_tool_call_cut_by_max_tokens_keeps_the_parsed_prefix_and_stays_in_the_answer() -> None:
    events: list[StreamEvent] = [
        MessageStart("m", "x"),
        PartStart(0, ToolCallPart(id="t", name="Write", arguments={})),
        ToolArgumentsDelta(0, '{"path": "a.txt", "content": "unfini'),
        MessageDelta("max_tokens"),
        MessageStop(),
    ]
    response = accumulate(events)
    assert response.stop_reason == "max_tokens"
    assert response.content == (ToolCallPart(id="t", name="Write", arguments={"path": "a.txt"}),)


def test_citations_attach_to_their_text_part() -> None:
    citation = {"type": "char_location", "cited_text": "x"}
    events: list[StreamEvent] = [
        MessageStart("m", "x"),
        PartStart(0, TextPart(text="")),
        CitationDelta(0, citation),
        TextDelta(0, "cited"),
        PartStop(0),
    ]
    assert accumulate(events).content == (TextPart(text="cited", citations=(citation,)),)


def test_deltas_for_unopened_parts_are_ignored() -> None:
    events: list[StreamEvent] = [MessageStart("m", "x"), TextDelta(3, "stray"), MessageStop()]
    assert accumulate(events).content == ()


def test_error_event_raises_its_error() -> None:
    error = OverloadedError("Overloaded", retry_after=2)
    with pytest.raises(OverloadedError) as caught:
        accumulate([MessageStart("m", "x"), ErrorEvent(error)])
    assert caught.value is error


def test_accumulator_reports_progress() -> None:
    accumulator = Accumulator()
    assert not accumulator.started
    accumulator.feed(MessageStart("m", "x"))
    assert (accumulator.started, accumulator.stopped) == (True, False)
    accumulator.feed(MessageStop())
    assert (accumulator.started, accumulator.stopped) == (True, True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", {}),
        ("  ", {}),
        ('{"a": 1}', {"a": 1}),
        ('{"a": [1, 2', {"a": [1, 2]}),
        ("[1]", {}),
        ("not json", {}),
    ],
)
def test_parse_tool_arguments(raw: str, expected: dict[str, object]) -> None:
    assert parse_tool_arguments(raw) == expected


async def _aiter(events: list[StreamEvent]) -> AsyncIterator[StreamEvent]:
    for event in events:
        yield event


@pytest.mark.anyio
async def test_accumulate_async_equals_accumulate() -> None:
    assert await accumulate_async(_aiter(full_stream())) == accumulate(full_stream())


@pytest.mark.anyio
async def test_accumulate_async_refuses_a_stream_that_never_stopped() -> None:
    with pytest.raises(UpstreamError):
        await accumulate_async(_aiter(full_stream()[:-1]))
