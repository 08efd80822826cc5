"""Upstream Chat streams -> canonical events (protocols §2.3, §3, §7.3, §7.6, §7.7)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway_core.errors import RateLimitError, UpstreamError
from gateway_core.formats._names import ToolNameMap, from_client_call_id, shorten_name, to_client_call_id
from gateway_core.formats.openai_chat import StreamDecoder, parse_response_bytes, render_request
from gateway_core.models import Message, ReasoningPart, Request, TextPart, ToolCallPart, ToolResultPart, Usage
from gateway_core.sse import ServerSentEvent
from gateway_core.streaming import (
    ErrorEvent,
    MessageDelta,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    SignatureDelta,
    StreamEvent,
    accumulate,
)
from tests.fixtures import fixture_path, load_sse
from tests.unit._openai_chat_support import CHAT_STREAMS, decode, decode_fixture

OPENROUTER_TOOLS = fixture_path("openrouter/openrouter_stream_tool_calls_kimi_k2.5.sse")
OPENAI_TEXT = fixture_path("openai_chat/openai_chat_stream_text.sse")


def chunk(delta: dict[str, object] | None = None, finish: str | None = None, **extra: object) -> str:
    body: dict[str, object] = {"id": "gen-1", "model": "up/model", **extra}
    if delta is not None or finish is not None:
        body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    return "data: " + orjson.dumps(body).decode() + "\n\n"


USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


def assert_well_formed(events: list[StreamEvent]) -> None:
    """Message start first, parts opened and closed one at a time in index order, stop last."""
    assert isinstance(events[0], MessageStart)
    assert isinstance(events[-1], MessageStop)
    open_index: int | None = None
    expected = 0
    for event in events[1:-1]:
        if isinstance(event, PartStart):
            assert open_index is None
            assert event.index == expected
            open_index, expected = event.index, expected + 1
        elif isinstance(event, PartStop):
            assert event.index == open_index
            open_index = None
        elif isinstance(event, MessageDelta):
            assert open_index is None
        else:
            assert getattr(event, "index", None) == open_index
    assert sum(isinstance(e, MessageDelta) for e in events) == 1


# --- recorded streams ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", CHAT_STREAMS, ids=lambda p: p.name)
def test_every_recorded_stream_decodes_into_a_well_formed_answer(path: Path) -> None:
    events = decode_fixture(path, model="claude-haiku-4-5")

    assert not any(isinstance(e, ErrorEvent) for e in events)
    assert_well_formed(events)
    response = accumulate(events)
    assert response.model == "claude-haiku-4-5"
    assert response.usage.output_tokens > 0


@pytest.mark.parametrize("path", CHAT_STREAMS, ids=lambda p: p.name)
def test_decoding_does_not_depend_on_how_the_bytes_are_split(path: Path) -> None:
    whole = accumulate(decode_fixture(path))

    assert accumulate(decode(load_sse(path), chunk_size=7)).content == whole.content


def test_openai_text_stream_gives_text_stop_and_usage_from_the_separate_usage_chunk() -> None:
    response = accumulate(decode_fixture(OPENAI_TEXT))

    assert response.content == (TextPart(text="Olá!"),)
    assert response.stop_reason == "end_turn"
    assert response.usage == Usage(input_tokens=20, output_tokens=2, reasoning_tokens=0)


def test_gpt5_stream_reports_reasoning_tokens() -> None:
    usage = accumulate(
        decode_fixture(fixture_path("openai_chat/openai_chat_stream_text_gpt5_reasoning_tokens.sse"))
    ).usage

    assert (usage.output_tokens, usage.reasoning_tokens) == (75, 64)


def test_openrouter_tool_stream_gives_reasoning_then_a_tool_call_with_cost() -> None:
    response = accumulate(decode_fixture(OPENROUTER_TOOLS))

    reasoning, call = response.content
    assert isinstance(reasoning, ReasoningPart)
    assert reasoning.text.startswith(" The user is asking")
    assert call == ToolCallPart(
        id="functions.weather:0", name="weather", arguments={"location": "Florence,Italy"}
    )
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage(input_tokens=69, output_tokens=87, reasoning_tokens=66, cost=0.00020436)


def test_openrouter_tool_call_id_round_trips_through_a_client_and_back_upstream() -> None:
    call = accumulate(decode_fixture(OPENROUTER_TOOLS)).content[1]
    assert isinstance(call, ToolCallPart)

    echoed = from_client_call_id(to_client_call_id(call.id))
    follow_up = Request(
        model="claude-haiku-4-5",
        messages=(
            Message(role="user", content=(TextPart(text="weather?"),)),
            Message(role="assistant", content=(call.model_copy(update={"id": echoed}),)),
            Message(
                role="user", content=(ToolResultPart(tool_call_id=echoed, content=(TextPart(text="40 C"),)),)
            ),
        ),
    )
    body = render_request(follow_up)

    assert body["messages"][1]["tool_calls"][0]["id"] == "functions.weather:0"
    assert body["messages"][2]["tool_call_id"] == "functions.weather:0"


def test_reasoning_signature_carries_the_merged_reasoning_details_stamped_with_the_provider() -> None:
    events = decode_fixture(OPENROUTER_TOOLS, provider="kilo")

    [signature] = [e for e in events if isinstance(e, SignatureDelta)]
    reasoning = accumulate(events).content[0]
    assert isinstance(reasoning, ReasoningPart)
    assert signature.provider == reasoning.provider == "kilo"
    assert orjson.loads(signature.signature) == [
        {"type": "reasoning.text", "text": reasoning.text, "format": "unknown", "index": 0}
    ]


def test_openrouter_keep_alive_comments_are_ignored_even_as_data() -> None:
    decoder = StreamDecoder(provider="openrouter")

    assert decoder.feed(ServerSentEvent(data=": OPENROUTER PROCESSING")) == []
    assert decoder.feed(ServerSentEvent(data="")) == []


# --- recorded stream vs. recorded non-stream answer ----------------------------------------------

PAIRS = [
    ("openai_chat/openai_chat_stream_text.sse", "openai_chat/openai_chat_completion_simple.response.json"),
    (
        "openai_chat/openai_chat_stream_tool_calls.sse",
        "openai_chat/openai_chat_completion_tool_calls.response.json",
    ),
    (
        "openrouter/openrouter_stream_text_kimi_k2.5.sse",
        "openrouter/openrouter_completion_simple_kimi_k2.5.response.json",
    ),
    (
        "openrouter/openrouter_stream_tool_calls_kimi_k2.5.sse",
        "openrouter/openrouter_completion_tool_calls_kimi_k2.5.response.json",
    ),
]


def _shape(part: object) -> tuple[object, ...]:
    if isinstance(part, ToolCallPart):
        return ("tool_call", part.name, tuple(part.arguments))
    if isinstance(part, ReasoningPart):
        return ("reasoning", part.provider, part.signature is not None)
    return (type(part).__name__,)


@pytest.mark.parametrize(("stream", "body"), PAIRS, ids=lambda name: Path(name).stem)
def test_a_stream_and_the_non_stream_answer_to_the_same_prompt_have_the_same_shape(
    stream: str, body: str
) -> None:
    """The recordings are separate calls (different sampling), so compare structure, not text."""
    streamed = accumulate(decode_fixture(fixture_path(stream), model="m"))
    whole = parse_response_bytes(
        fixture_path(body).read_bytes().split(b"\n", 1)[1], provider="openrouter", model="m"
    )

    assert [_shape(p) for p in streamed.content] == [_shape(p) for p in whole.content]
    assert streamed.stop_reason == whole.stop_reason
    assert (streamed.usage.cost is None) == (whole.usage.cost is None)


def test_a_stream_whose_chunks_hold_a_whole_answer_equals_that_answer_parsed_whole() -> None:
    """Stream and non-stream parsing agree by construction: the recorded non-stream message, replayed
    as one streamed delta, reduces to exactly what parse_response makes of it."""
    raw = fixture_path("openrouter/openrouter_completion_tool_calls_kimi_k2.5.response.json").read_bytes()
    body = orjson.loads(raw.split(b"\n", 1)[1])
    message = body["choices"][0]["message"]
    delta = {**message, "tool_calls": [{**message["tool_calls"][0], "index": 0}]}
    stream = chunk(delta) + chunk({}, "tool_calls", usage=body["usage"]) + "data: [DONE]\n\n"

    streamed = accumulate(decode(stream.encode(), model="m", provider="openrouter"))
    whole = parse_response_bytes(raw.split(b"\n", 1)[1], provider="openrouter", model="m")

    assert streamed.content == whole.content
    assert (streamed.stop_reason, streamed.usage) == (whole.stop_reason, whole.usage)


# --- outcome and completion ----------------------------------------------------------------------


def test_finish_reason_waits_for_the_usage_chunk() -> None:
    decoder = StreamDecoder(provider="openai")
    events = [
        decoder.feed(ServerSentEvent(data=line[6:].strip()))
        for line in [chunk({"content": "hi"}), chunk({}, "stop")]
    ]

    assert not any(isinstance(e, MessageDelta) for batch in events for e in batch)
    usage_events = decoder.feed(ServerSentEvent(data=chunk(usage=USAGE)[6:].strip()))
    assert [type(e) for e in usage_events] == [MessageDelta]
    assert decoder.feed(ServerSentEvent(data="[DONE]")) == [MessageStop()]


def test_openrouter_finishing_chunk_sent_twice_gives_one_outcome() -> None:
    events = decode_fixture(OPENROUTER_TOOLS)

    assert [e.stop_reason for e in events if isinstance(e, MessageDelta)] == ["tool_use"]


def test_end_of_stream_after_finish_and_usage_without_done_is_complete() -> None:
    events = decode((chunk({"content": "hi"}) + chunk({}, "stop", usage=USAGE)).encode())

    assert isinstance(events[-1], MessageStop)
    assert accumulate(events).content == (TextPart(text="hi"),)


def test_end_of_stream_before_any_finish_is_an_upstream_error() -> None:
    events = decode(chunk({"content": "hi"}).encode())

    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, UpstreamError)


def test_an_empty_stream_is_an_upstream_error() -> None:
    for raw in (b"", b"data: [DONE]\n\n", b": OPENROUTER PROCESSING\n\n"):
        [event] = decode(raw)
        assert isinstance(event, ErrorEvent)
        assert isinstance(event.error, UpstreamError)


def test_done_without_usage_completes_with_the_finish_reason_alone() -> None:
    response = accumulate(
        decode((chunk({"content": "hi"}) + chunk({}, "length") + "data: [DONE]\n\n").encode())
    )

    assert response.stop_reason == "max_tokens"
    assert response.usage == Usage()


def test_a_mid_stream_openrouter_error_chunk_is_an_error_event() -> None:
    error = {"code": 429, "message": "Provider rate limited", "metadata": {"provider_name": "Chutes"}}
    raw = chunk({"content": "par"}) + chunk({}, "error", error=error)

    events = decode(raw.encode())

    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, RateLimitError)
    assert "Provider rate limited" in events[-1].error.message


def test_a_mid_stream_openai_error_chunk_is_an_upstream_error_event() -> None:
    raw = (
        chunk({"content": "par"})
        + 'data: {"error":{"message":"The server had an error","type":"server_error"}}\n\n'
    )

    events = decode(raw.encode())

    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, UpstreamError)
    assert events[-1].error.message == "The server had an error"


def test_finish_reason_error_without_details_is_an_upstream_error() -> None:
    events = decode(chunk({}, "error").encode())

    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, UpstreamError)


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_finish_reasons_map_to_stop_reasons(finish: str, stop: str) -> None:
    raw = chunk({"content": "x"}) + chunk({}, finish, usage=USAGE) + "data: [DONE]\n\n"

    assert accumulate(decode(raw.encode())).stop_reason == stop


def test_a_tool_call_finished_with_stop_is_still_a_tool_use() -> None:
    piece = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    raw = chunk({"tool_calls": [piece]}) + chunk({}, "stop", usage=USAGE)

    assert accumulate(decode(raw.encode())).stop_reason == "tool_use"


def test_cached_and_cache_write_tokens_are_taken_out_of_the_input() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30},
    }

    response = accumulate(decode((chunk({"content": "x"}, "stop", usage=usage)).encode()))

    assert response.usage == Usage(
        input_tokens=10, cached_input_tokens=60, cache_write_tokens=30, output_tokens=5
    )


# --- parts ---------------------------------------------------------------------------------------


def test_parallel_tool_calls_open_one_part_each_in_order() -> None:
    first = {"index": 0, "id": "a", "type": "function", "function": {"name": "w", "arguments": '{"c":'}}
    second = {"index": 1, "id": "b", "type": "function", "function": {"name": "w", "arguments": ""}}
    raw = (
        chunk({"content": "Checking."})
        + chunk({"tool_calls": [first]})
        + chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]})
        + chunk({"tool_calls": [second]})
        + chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"c":"y"}'}}]})
        + chunk({}, "tool_calls", usage=USAGE)
        + "data: [DONE]\n\n"
    )

    events = decode(raw.encode())

    assert_well_formed(events)
    assert accumulate(events).content == (
        TextPart(text="Checking."),
        ToolCallPart(id="a", name="w", arguments={"c": "x"}),
        ToolCallPart(id="b", name="w", arguments={"c": "y"}),
    )


def test_calls_that_reuse_index_zero_with_new_ids_are_separate_calls() -> None:
    first = {"index": 0, "id": "a", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    second = {"index": 0, "id": "b", "type": "function", "function": {"name": "v", "arguments": "{}"}}
    raw = (
        chunk({"tool_calls": [first]})
        + chunk({"tool_calls": [second]})
        + chunk({}, "tool_calls", usage=USAGE)
    )

    calls = accumulate(decode(raw.encode())).content

    assert [c.id for c in calls if isinstance(c, ToolCallPart)] == ["a", "b"]


def test_shortened_tool_names_are_restored() -> None:
    long_name = "mcp__some_server_with_a_long_name__a_tool_with_an_even_longer_name_than_that"
    names = ToolNameMap([long_name])
    piece = {
        "index": 0,
        "id": "c",
        "type": "function",
        "function": {"name": shorten_name(long_name), "arguments": "{}"},
    }

    call = accumulate(
        decode(chunk({"tool_calls": [piece]}, "tool_calls", usage=USAGE).encode(), names=names)
    ).content[0]

    assert isinstance(call, ToolCallPart)
    assert call.name == long_name


def test_reasoning_content_from_deepseek_style_upstreams_is_reasoning_without_signature() -> None:
    raw = chunk({"reasoning_content": "think"}) + chunk({"content": "done"}, "stop", usage=USAGE)

    assert accumulate(decode(raw.encode())).content == (ReasoningPart(text="think"), TextPart(text="done"))


def test_encrypted_reasoning_details_open_a_reasoning_part_with_only_a_signature() -> None:
    detail = {
        "type": "reasoning.encrypted",
        "data": "gAAAA",
        "id": "rs_1",
        "format": "openai-responses-v1",
        "index": 0,
    }
    raw = chunk({"reasoning_details": [detail]}) + chunk({"content": "ok"}, "stop", usage=USAGE)

    reasoning = accumulate(decode(raw.encode(), provider="openrouter")).content[0]

    assert reasoning == ReasoningPart(
        text="", signature=orjson.dumps([detail]).decode(), provider="openrouter"
    )


def test_unknown_fields_and_garbage_data_are_ignored() -> None:
    raw = "data: not json\n\ndata: [1,2]\n\n" + chunk(
        {"content": "hi", "audio": {"x": 1}}, "stop", usage=USAGE, surprise=True
    )

    assert accumulate(decode(raw.encode())).content == (TextPart(text="hi"),)
