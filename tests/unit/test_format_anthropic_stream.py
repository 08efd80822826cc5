"""Anthropic SSE streams: decoding recorded upstream streams, and encoding canonical streams for clients."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_core.errors import OverloadedError, RateLimitError, UpstreamError
from gateway_core.formats.anthropic import (
    StreamDecoder,
    StreamEncoder,
    encode_signature,
    parse_response,
    ping,
    render_response,
)
from gateway_core.models import ReasoningPart, TextPart, ToolCallPart, Usage
from gateway_core.sse import ServerSentEvent, SSEDecoder, encode_json_event
from gateway_core.streaming import (
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
)
from tests.fixtures import fixture_files, load_json, load_sse

STREAMS = fixture_files("anthropic", "*.sse")


def sse_events(raw: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return decoder.feed(raw) + decoder.flush()


def decode(raw: bytes, decoder: StreamDecoder | None = None) -> list[StreamEvent]:
    decoder = decoder or StreamDecoder()
    events = [event for sse in sse_events(raw) for event in decoder.feed(sse)]
    return events + decoder.close()


def decode_fixture(name: str) -> list[StreamEvent]:
    return decode(load_sse(f"anthropic/{name}"))


def encode(events: list[StreamEvent]) -> bytes:
    encoder = StreamEncoder()
    return b"".join(encoder.encode(event) for event in events)


def frames(raw: bytes) -> list[tuple[str | None, dict[str, object]]]:
    return [(sse.event, sse.json()) for sse in sse_events(raw)]


def _event(name: str, payload: dict[str, object]) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(payload).decode(), event=name)


# --- decoding recorded streams ----------------------------------------------------------------------


@pytest.mark.parametrize("path", STREAMS, ids=lambda path: path.stem)
def test_recorded_stream_decodes_to_a_complete_answer(path: Path) -> None:
    events = decode(load_sse(path))

    assert not any(isinstance(event, ErrorEvent) for event in events)
    assert isinstance(events[0], MessageStart)
    assert isinstance(events[-1], MessageStop)
    response = accumulate(events)
    assert response.content
    assert response.stop_reason is not None


@pytest.mark.parametrize("path", STREAMS, ids=lambda path: path.stem)
def test_decoded_parts_are_opened_and_stopped_in_turn(path: Path) -> None:
    open_parts: list[int] = []
    for event in decode(load_sse(path)):
        if isinstance(event, PartStart):
            assert not open_parts
            open_parts.append(event.index)
        elif isinstance(event, PartStop):
            assert open_parts == [event.index]
            open_parts.clear()
        elif isinstance(event, MessageDelta | MessageStop):
            assert not open_parts


# The recorded streams and non-streaming answers come from sibling cassettes (the same scenario, one
# streamed, one not; no cassette holds both), so these pairs agree on everything but ids and wording.
SIBLINGS = [
    ("anthropic_stream_thinking_tool_use.sse", "anthropic_messages_thinking_tool_use.response.json"),
    ("anthropic_stream_thinking_followup_text.sse", "anthropic_messages_thinking_followup.response.json"),
    ("anthropic_stream_cache_control.sse", "anthropic_messages_simple.response.json"),
]


@pytest.mark.parametrize(("stream", "answer"), SIBLINGS)
def test_stream_accumulates_to_the_shape_of_its_sibling_answer(stream: str, answer: str) -> None:
    streamed = accumulate(decode_fixture(stream))
    expected = parse_response(load_json(f"anthropic/{answer}"))

    assert [part.type for part in streamed.content] == [part.type for part in expected.content]
    assert streamed.stop_reason == expected.stop_reason
    assert streamed.model == expected.model
    for got, want in zip(streamed.content, expected.content, strict=True):
        if isinstance(want, ToolCallPart):
            assert isinstance(got, ToolCallPart)
            assert (got.name, got.arguments) == (want.name, want.arguments)
        if isinstance(want, ReasoningPart):
            assert isinstance(got, ReasoningPart)
            assert got.signature
            assert got.provider == want.provider == "anthropic"


def test_thinking_stream_gives_text_signature_and_tool_call() -> None:
    response = accumulate(decode_fixture("anthropic_stream_thinking_tool_use.sse"))

    thinking, call = response.content
    assert isinstance(thinking, ReasoningPart)
    assert thinking.text.startswith("The user is asking for weather information")
    assert thinking.signature is not None
    assert thinking.signature.startswith("EtYDCkYICxgCKkAVHEWRYo6R")
    assert thinking.provider == "anthropic"
    assert call == ToolCallPart(
        id="toolu_01Js4AMfx5qpTLhwTusnvT68", name="weather", arguments={"location": "Florence, Italy"}
    )


def test_signature_is_stamped_with_the_decoder_provider() -> None:
    events = decode(
        load_sse("anthropic/anthropic_stream_thinking_tool_use.sse"), StreamDecoder(provider="claude-direct")
    )

    signatures = [event for event in events if isinstance(event, SignatureDelta)]
    assert [event.provider for event in signatures] == ["claude-direct"]


def test_ping_is_ignored() -> None:
    assert StreamDecoder().feed(ServerSentEvent(data='{"type": "ping"}', event="ping")) == []


def test_unknown_event_and_delta_types_are_ignored() -> None:
    decoder = StreamDecoder()
    decoder.feed(
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
    )

    assert decoder.feed(_event("future_event", {"type": "future_event", "x": 1})) == []
    unknown_delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta"}}
    assert decoder.feed(_event("content_block_delta", unknown_delta)) == []


def test_server_tool_blocks_from_upstream_are_skipped_with_their_deltas() -> None:
    decoder = StreamDecoder()
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
    }
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "input_json_delta", "partial_json": "{}"},
    }

    assert decoder.feed(_event("content_block_start", start)) == []
    assert decoder.feed(_event("content_block_delta", delta)) == []
    assert decoder.feed(_event("content_block_stop", {"type": "content_block_stop", "index": 0})) == []


def test_citations_delta_becomes_a_citation_event() -> None:
    citation = {
        "type": "char_location",
        "cited_text": "x",
        "document_index": 0,
        "start_char_index": 0,
        "end_char_index": 1,
    }
    decoder = StreamDecoder()
    decoder.feed(
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
    )

    events = decoder.feed(
        _event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "citations_delta", "citation": citation},
            },
        )
    )

    assert events == [CitationDelta(0, citation)]


def test_message_delta_usage_is_merged_with_message_start_usage() -> None:
    """Older streams send only output_tokens in message_delta; the canonical delta holds everything."""
    events = decode_fixture("anthropic_stream_text.sse")

    delta = next(event for event in events if isinstance(event, MessageDelta))
    assert delta.usage == Usage(input_tokens=11, output_tokens=6)


def test_message_delta_usage_repeating_input_fields_wins() -> None:
    events = decode_fixture("anthropic_stream_cache_control.sse")

    delta = next(event for event in events if isinstance(event, MessageDelta))
    assert delta.usage == Usage(
        input_tokens=16, cached_input_tokens=0, cache_write_tokens=0, output_tokens=43
    )


def test_cache_fields_map_to_canonical_usage() -> None:
    decoder = StreamDecoder()
    message = {
        "id": "msg_1",
        "model": "m",
        "usage": {
            "input_tokens": 5,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "output_tokens": 1,
        },
    }
    decoder.feed(_event("message_start", {"type": "message_start", "message": message}))

    (delta,) = decoder.feed(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 9, "output_tokens_details": {"thinking_tokens": 4}},
            },
        )
    )

    assert isinstance(delta, MessageDelta)
    assert delta.usage == Usage(
        input_tokens=5, cached_input_tokens=100, cache_write_tokens=20, output_tokens=9, reasoning_tokens=4
    )


def test_tool_block_cut_by_max_tokens_is_stopped_before_the_message_delta() -> None:
    events = decode_fixture("anthropic_stream_tool_use_max_tokens.sse")

    kinds = [type(event).__name__ for event in events[-4:]]
    assert kinds == ["ToolArgumentsDelta", "PartStop", "MessageDelta", "MessageStop"]
    response = accumulate(events)
    assert response.stop_reason == "max_tokens"
    call = response.content[1]
    assert isinstance(call, ToolCallPart)
    assert call.arguments["filename"] == "taxes.txt"


@pytest.mark.parametrize(
    ("error_type", "error_class"),
    [
        ("overloaded_error", OverloadedError),
        ("rate_limit_error", RateLimitError),
        ("api_error", UpstreamError),
        ("brand_new_error", UpstreamError),
    ],
)
def test_error_event_becomes_the_matching_gateway_error(
    error_type: str, error_class: type[Exception]
) -> None:
    decoder = StreamDecoder()

    (event,) = decoder.feed(
        _event("error", {"type": "error", "error": {"type": error_type, "message": "Overloaded"}})
    )

    assert isinstance(event, ErrorEvent)
    assert type(event.error) is error_class
    assert event.error.message == "Overloaded"
    assert decoder.close() == []


def test_eof_before_message_stop_is_an_upstream_error() -> None:
    raw = load_sse("anthropic/anthropic_stream_text.sse")
    cut = raw[: raw.index(b"event: message_delta")]

    events = decode(cut)

    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, UpstreamError)
    assert "message_stop" in events[-1].error.message


def test_complete_stream_closes_without_error() -> None:
    decoder = StreamDecoder()
    for sse in sse_events(load_sse("anthropic/anthropic_stream_text.sse")):
        decoder.feed(sse)

    assert decoder.close() == []


def test_garbage_data_ends_the_stream_with_an_upstream_error() -> None:
    decoder = StreamDecoder()

    (event,) = decoder.feed(ServerSentEvent(data="{not json", event="content_block_delta"))

    assert isinstance(event, ErrorEvent)
    assert isinstance(event.error, UpstreamError)
    assert decoder.feed(ServerSentEvent(data='{"type":"message_stop"}', event="message_stop")) == []


def test_malformed_known_event_is_an_upstream_error() -> None:
    (event,) = StreamDecoder().feed(
        _event("content_block_start", {"type": "content_block_start", "index": 0})
    )

    assert isinstance(event, ErrorEvent)
    assert isinstance(event.error, UpstreamError)


# --- encoding canonical streams for clients ---------------------------------------------------------


@pytest.mark.parametrize("path", STREAMS, ids=lambda path: path.stem)
def test_encoder_output_decodes_to_the_same_answer(path: Path) -> None:
    events = decode(load_sse(path))

    again = decode(encode(events))

    assert render_response(accumulate(again)) == render_response(accumulate(events))


@pytest.mark.parametrize("path", STREAMS, ids=lambda path: path.stem)
def test_every_encoded_frame_has_an_event_line_matching_its_type(path: Path) -> None:
    for name, payload in frames(encode(decode(load_sse(path)))):
        assert name == payload["type"]


def test_encoded_stream_follows_the_anthropic_grammar() -> None:
    raw = encode(decode_fixture("anthropic_stream_thinking_tool_use.sse"))

    names = [name for name, _ in frames(raw)]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    start = frames(raw)[0][1]["message"]
    assert isinstance(start, dict)
    assert start["id"] == "msg_01KTBB57LAzaSZs8kMNvfnsY"
    assert (start["content"], start["stop_reason"], start["stop_sequence"]) == ([], None, None)
    assert raw.startswith(b"event: message_start\ndata: {")
    assert raw.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_message_delta_repeats_the_full_usage() -> None:
    raw = encode(decode_fixture("anthropic_stream_text.sse"))

    delta = next(payload for name, payload in frames(raw) if name == "message_delta")
    assert delta["usage"] == {
        "input_tokens": 11,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 6,
    }
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


def test_message_id_gets_the_msg_prefix() -> None:
    raw = StreamEncoder().encode(MessageStart(id="resp_abc", model="claude-opus-5-5"))

    payload = frames(raw)[0][1]["message"]
    assert isinstance(payload, dict)
    assert payload["id"] == "msg_resp_abc"
    assert payload["model"] == "claude-opus-5-5"


def test_foreign_signature_is_sent_once_enveloped_just_before_the_block_stops() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="msg_1", model="m"),
        PartStart(0, ReasoningPart()),
        ReasoningDelta(0, "thinking"),
        SignatureDelta(0, "gAAAA", provider="codex"),
        SignatureDelta(0, "BBBB", provider="codex"),
        PartStop(0),
        MessageDelta(stop_reason="end_turn"),
        MessageStop(),
    ]

    payloads = [payload for _, payload in frames(encode(events))]

    signatures = [
        p["delta"] for p in payloads if p["type"] == "content_block_delta" and "signature" in str(p)
    ]
    assert signatures == [{"type": "signature_delta", "signature": encode_signature("gAAAABBBB", "codex")}]
    assert [p["type"] for p in payloads[-5:-2]] == [
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
    ]
    assert accumulate(decode(encode(events))).content == (
        ReasoningPart(text="thinking", signature="gAAAABBBB", provider="codex"),
    )


def test_empty_thinking_with_a_signature_is_streamed_like_anthropic_does() -> None:
    """display:"omitted": start {thinking:"", signature:""}, one signature_delta, stop (protocols §6.7)."""
    events: list[StreamEvent] = [
        MessageStart(id="msg_1", model="m"),
        PartStart(0, ReasoningPart()),
        SignatureDelta(0, "c2ln", "anthropic"),
        PartStop(0),
    ]

    payloads = [payload for _, payload in frames(encode(events))][1:]

    assert payloads == [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "c2ln"},
        },
        {"type": "content_block_stop", "index": 0},
    ]


def test_redacted_reasoning_is_a_complete_block() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="msg_1", model="m"),
        PartStart(0, ReasoningPart(redacted=True, signature="EmwK", provider="anthropic")),
        PartStop(0),
    ]

    payloads = [payload for _, payload in frames(encode(events))][1:]

    assert payloads[0] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "redacted_thinking", "data": "EmwK"},
    }


def test_parts_never_stopped_are_closed_before_the_message_delta() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="msg_1", model="m", usage=Usage(input_tokens=3)),
        PartStart(0, TextPart(text="")),
        TextDelta(0, "Hi"),
        PartStart(1, ToolCallPart(id="call_1", name="weather", arguments={})),
        ToolArgumentsDelta(1, '{"city": "Rome"}'),
        MessageDelta(stop_reason="tool_use", usage=Usage(input_tokens=3, output_tokens=7)),
        MessageStop(),
    ]

    names = [(name, payload.get("index")) for name, payload in frames(encode(events))]

    assert names == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("message_delta", None),
        ("message_stop", None),
    ]
    assert render_response(accumulate(decode(encode(events)))) == render_response(accumulate(events))


def test_wire_indexes_count_up_whatever_the_canonical_indexes() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="msg_1", model="m"),
        PartStart(3, TextPart(text="")),
        TextDelta(3, "a"),
        PartStop(3),
        PartStart(7, TextPart(text="")),
        TextDelta(7, "b"),
        PartStop(7),
    ]

    indexes = [payload["index"] for _, payload in frames(encode(events)) if "index" in payload]

    assert indexes == [0, 0, 0, 1, 1, 1]


def test_missing_message_delta_usage_repeats_the_start_usage() -> None:
    encoder = StreamEncoder()
    encoder.encode(MessageStart(id="msg_1", model="m", usage=Usage(input_tokens=12, cached_input_tokens=30)))

    ((_, payload),) = frames(encoder.encode(MessageDelta(stop_reason="end_turn")))

    assert payload["usage"] == {
        "input_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 30,
        "output_tokens": 0,
    }


def test_error_event_is_an_error_frame_and_ends_the_stream() -> None:
    encoder = StreamEncoder()
    encoder.encode(MessageStart(id="msg_1", model="m"))

    raw = encoder.encode(ErrorEvent(OverloadedError("Overloaded")))

    assert frames(raw) == [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    ]
    assert encoder.encode(MessageStop()) == b""


def test_deltas_without_wire_counterpart_encode_to_nothing() -> None:
    encoder = StreamEncoder()
    encoder.encode(MessageStart(id="msg_1", model="m"))

    assert encoder.encode(TextDelta(5, "for a part never started")) == b""
    assert encoder.encode(PartStop(5)) == b""


def test_ping_frame() -> None:
    assert ping() == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert StreamEncoder().ping() == ping()


@given(text=st.text(min_size=1), index=st.integers(min_value=0, max_value=2000))
@pytest.mark.parametrize(
    ("part", "delta", "wire"),
    [
        (TextPart(text=""), TextDelta, {"type": "text_delta", "text": None}),
        (ReasoningPart(), ReasoningDelta, {"type": "thinking_delta", "thinking": None}),
        (
            ToolCallPart(id="t", name="n", arguments={}),
            ToolArgumentsDelta,
            {"type": "input_json_delta", "partial_json": None},
        ),
    ],
    ids=["text", "thinking", "input_json"],
)
def test_delta_frames_are_the_bytes_of_their_json_payload(
    part: TextPart | ReasoningPart | ToolCallPart,
    delta: Callable[[int, str], StreamEvent],
    wire: dict[str, object],
    text: str,
    index: int,
) -> None:
    """Delta frames are assembled from fixed pieces; they must equal the frame of the payload itself."""
    encoder = StreamEncoder()
    encoder.encode(MessageStart(id="msg_1", model="m"))
    for earlier in range(index % 7):  # the wire index counts blocks, not canonical indexes
        encoder.encode(PartStart(index + 1 + earlier, TextPart(text="")))
    encoder.encode(PartStart(index, part))
    key = next(name for name in wire if name != "type")

    frame = encoder.encode(delta(index, text))

    payload = {"type": "content_block_delta", "index": index % 7, "delta": {**wire, key: text}}
    assert frame == encode_json_event(payload, "content_block_delta")
