"""parse_response / render_response / StreamEncoder: the Response object and the stream served to clients."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest
from openai.types.responses import Response as SDKResponse

from gateway_core.errors import (
    GatewayError,
    OverloadedError,
    RateLimitError,
    RequestTooLargeError,
    UpstreamError,
)
from gateway_core.formats.openai_responses import StreamEncoder, parse_response, render_response
from gateway_core.models import ReasoningPart, Response, TextPart, ToolCallPart, Usage
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
from tests.fixtures import load_json
from tests.unit._openai_responses_support import decode, sse_events

USAGE = Usage(input_tokens=40, cached_input_tokens=60, output_tokens=30, reasoning_tokens=20)
CALL = ToolCallPart(id="call_1", name="weather", arguments={"location": "Florence"})


def answer_events() -> list[StreamEvent]:
    """A reasoning part with its token, a text part and a tool call, streamed in pieces."""
    return [
        MessageStart(id="msg_abc", model="claude-opus-5-5"),
        PartStart(0, ReasoningPart()),
        ReasoningDelta(0, "**Plan**"),
        ReasoningDelta(0, "\n\nCheck the weather."),
        SignatureDelta(0, "gAAAA-token", "codex"),
        PartStop(0),
        PartStart(1, TextPart(text="")),
        TextDelta(1, "Let me "),
        TextDelta(1, "check."),
        PartStop(1),
        PartStart(2, CALL.model_copy(update={"arguments": {}})),
        ToolArgumentsDelta(2, '{"location":'),
        ToolArgumentsDelta(2, '"Florence"}'),
        PartStop(2),
        MessageDelta(stop_reason="tool_use", usage=USAGE),
        MessageStop(),
    ]


def encode(events: list[StreamEvent]) -> bytes:
    encoder = StreamEncoder(created_at=1782321689)
    return b"".join(encoder.encode(event) for event in events)


def mock_http(body: bytes) -> httpx2.Client:
    """An HTTP client (of the SDK's own HTTP library) whose every answer is ``body`` as SSE."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


# --- parse_response -----------------------------------------------------------------------------------


def test_recorded_non_streaming_response_parses_to_canonical() -> None:
    body = load_json("responses/responses_nonstream_simple.response.json")

    response = parse_response(body)

    assert response == Response(
        id="msg_0320e3f50879ffd0016a3c1217824881a09817355d0690c260",
        model="gpt-5-2025-08-07",
        content=(ReasoningPart(text=""), TextPart(text="Olá!")),
        stop_reason="end_turn",
        usage=Usage(input_tokens=19, output_tokens=86, reasoning_tokens=64),
    )


def test_parse_response_reports_the_requested_model_when_given() -> None:
    body = load_json("responses/responses_nonstream_simple.response.json")

    assert parse_response(body, model="claude-sonnet-4-5").model == "claude-sonnet-4-5"


def test_failed_response_object_raises_its_error() -> None:
    failed = {
        "id": "resp_1",
        "status": "failed",
        "error": {"code": "context_length_exceeded", "message": "too long"},
    }

    with pytest.raises(RequestTooLargeError, match="too long"):
        parse_response(failed)


def test_garbage_response_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        parse_response(["not", "a", "response"])


# --- render_response ------------------------------------------------------------------------------------


def test_render_then_parse_is_the_identity() -> None:
    response = accumulate(answer_events())

    assert parse_response(render_response(response, created_at=1)) == response


def test_rendered_usage_counts_cached_tokens_inside_input_tokens() -> None:
    body = render_response(accumulate(answer_events()), created_at=1)

    assert body["usage"] == {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 0},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 20},
        "total_tokens": 130,
    }


@pytest.mark.parametrize(
    ("stop_reason", "status", "details"),
    [
        ("end_turn", "completed", None),
        ("tool_use", "completed", None),
        ("max_tokens", "incomplete", {"reason": "max_output_tokens"}),
        ("refusal", "incomplete", {"reason": "content_filter"}),
    ],
)
def test_stop_reason_renders_as_status(stop_reason: Any, status: str, details: dict[str, str] | None) -> None:
    response = Response(id="msg_1", model="m", content=(TextPart(text="x"),), stop_reason=stop_reason)

    body = render_response(response, created_at=1)

    assert (body["status"], body["incomplete_details"]) == (status, details)


def test_rendered_response_is_a_valid_sdk_response_echoing_the_model() -> None:
    body = render_response(accumulate(answer_events()), created_at=1)

    sdk = SDKResponse.model_validate(body)

    assert sdk.model == "claude-opus-5-5"
    assert sdk.output_text == "Let me check."
    assert [item.type for item in sdk.output] == ["reasoning", "message", "function_call"]


# --- StreamEncoder --------------------------------------------------------------------------------------


def test_every_frame_is_named_and_numbered_in_order() -> None:
    events = sse_events(encode(answer_events()))

    assert [e.json()["sequence_number"] for e in events] == list(range(len(events)))
    assert all(e.event == e.json()["type"] for e in events)
    assert events[0].event == "response.created"
    assert events[-1].event == "response.completed"


def test_encoded_stream_decodes_back_to_the_same_answer() -> None:
    original = accumulate(answer_events())

    decoded = accumulate(decode(encode(answer_events())))

    assert decoded.content == original.content
    assert (decoded.stop_reason, decoded.usage) == (original.stop_reason, original.usage)


def test_completed_event_carries_the_non_streaming_response() -> None:
    events = sse_events(encode(answer_events()))

    assert events[-1].json()["response"] == render_response(
        accumulate(answer_events()), created_at=1782321689
    )


def test_recorded_stream_survives_decode_encode_decode() -> None:
    first = decode("responses/responses_stream_reasoning_summary_text.sse")

    second = decode(encode(first))

    assert accumulate(second) == accumulate(first)


def test_official_sdk_accumulates_the_encoded_stream_to_the_same_answer() -> None:
    with mock_http(encode(answer_events())) as http:
        client = openai.OpenAI(api_key="test", base_url="http://127.0.0.1:9/v1", http_client=http)
        with client.responses.stream(model="claude-opus-5-5", input="weather?") as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_response()

    assert "response.output_text.delta" in kinds
    assert final.output_text == "Let me check."
    call = final.output[2]
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments) == ("call_1", "weather", '{"location":"Florence"}')
    reasoning = final.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.encrypted_content == "gAAAA-token"
    assert final.usage is not None
    assert final.usage.input_tokens_details.cached_tokens == 60


def test_max_tokens_answer_streams_as_incomplete() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="msg_1", model="m"),
        PartStart(0, TextPart(text="")),
        TextDelta(0, "cut"),
        MessageDelta(stop_reason="max_tokens", usage=USAGE),
        MessageStop(),
    ]

    frames = sse_events(encode(events))

    assert frames[-1].event == "response.incomplete"
    assert accumulate(decode(encode(events))).stop_reason == "max_tokens"
    assert accumulate(decode(encode(events))).content == (TextPart(text="cut"),)


@pytest.mark.parametrize(
    "error",
    [
        RateLimitError("slow down", retry_after=3, code="rate_limit_exceeded"),
        OverloadedError("busy"),
        RequestTooLargeError("too long"),
        UpstreamError("broken"),
    ],
)
def test_error_after_the_start_streams_as_a_failed_response_that_decodes_to_the_same_kind(
    error: GatewayError,
) -> None:
    events: list[StreamEvent] = [MessageStart(id="msg_1", model="m"), ErrorEvent(error)]

    frames = sse_events(encode(events))
    decoded = decode(encode(events))

    assert frames[-1].event == "response.failed"
    assert isinstance(decoded[-1], ErrorEvent)
    assert type(decoded[-1].error) is type(error)
    assert decoded[-1].error.message == error.message


def test_error_before_the_start_is_a_bare_error_event() -> None:
    frames = sse_events(encode([ErrorEvent(OverloadedError("busy"))]))

    assert [frame.event for frame in frames] == ["error"]
    assert frames[0].json()["code"] == "server_is_overloaded"


def test_events_without_a_responses_counterpart_encode_to_nothing() -> None:
    encoder = StreamEncoder(created_at=1)
    encoder.encode(MessageStart(id="msg_1", model="m"))

    assert encoder.encode(MessageDelta(stop_reason="end_turn")) == b""
    assert encoder.encode(TextDelta(7, "no such part")) == b""
