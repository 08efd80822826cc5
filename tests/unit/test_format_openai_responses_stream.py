"""StreamDecoder: Responses / Codex SSE -> canonical events (protocols §4.5–§4.7, §7.2, §7.6–§7.9)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway_core.errors import (
    BillingError,
    GatewayError,
    InvalidRequestError,
    OverloadedError,
    RateLimitError,
    RequestTooLargeError,
    UpstreamError,
)
from gateway_core.formats._names import ToolNameMap
from gateway_core.formats.openai_responses import StreamDecoder, parse_response
from gateway_core.models import ReasoningPart, Response, TextPart, ToolCallPart, Usage
from gateway_core.sse import ServerSentEvent
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
from tests.fixtures import fixture_files
from tests.unit._openai_responses_support import MODEL, completed_response, decode, event, sse_events

RECORDED_STREAMS = fixture_files("responses", "responses_stream_*.sse")
SUMMARY_STREAM = "responses/responses_stream_reasoning_summary_text.sse"
RESP: dict[str, Any] = {
    "id": "resp_abc",
    "object": "response",
    "status": "in_progress",
    "output": [],
    "usage": None,
}
USAGE = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 60},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 20},
    "total_tokens": 130,
}


def added(index: int, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def done(index: int, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response.output_item.done", "output_index": index, "item": item}


def on(kind: str, index: int, **fields: Any) -> dict[str, Any]:
    """An item-scoped event ``response.<kind>`` for output ``index``."""
    return {"type": f"response.{kind}", "output_index": index, **fields}


def stream(*payloads: dict[str, Any], completed: dict[str, Any] | None = None) -> list[ServerSentEvent]:
    """``response.created``, the payloads, then ``response.completed`` (unless ``completed`` is ``{}``)."""
    final = {**RESP, "status": "completed", "usage": USAGE} if completed is None else completed
    events = [event({"type": "response.created", "response": RESP}), *(event(p) for p in payloads)]
    return events + ([event({"type": "response.completed", "response": final})] if final else [])


def without_signatures(response: Response) -> Response:
    content = tuple(
        part.model_copy(update={"signature": None}) if isinstance(part, ReasoningPart) else part
        for part in response.content
    )
    return response.model_copy(update={"content": content})


def part_events(events: list[StreamEvent]) -> list[tuple[str, int]]:
    return [
        (type(e).__name__, e.index)
        for e in events
        if isinstance(e, PartStart | PartStop | TextDelta | ReasoningDelta | ToolArgumentsDelta)
    ]


# --- recorded streams ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", RECORDED_STREAMS, ids=lambda path: path.name)
def test_recorded_stream_decodes_to_a_complete_message(path: Path) -> None:
    events = decode(path)

    assert isinstance(events[0], MessageStart)
    assert isinstance(events[-1], MessageStop)
    assert not any(isinstance(e, ErrorEvent) for e in events)


@pytest.mark.parametrize("path", RECORDED_STREAMS, ids=lambda path: path.name)
def test_accumulated_stream_equals_the_final_response_object(path: Path) -> None:
    streamed = accumulate(decode(path))
    final = parse_response(completed_response(path), model=MODEL)

    # The backend re-encrypts reasoning tokens for every copy it sends: the one of `output_item.done`
    # and the one inside `response.completed` are different strings for the same state, so tokens
    # are compared on their own (test_reasoning_signature_is_the_encrypted_content_of_the_done_item).
    assert without_signatures(streamed) == without_signatures(final)
    assert [type(part) for part in streamed.content] == [type(part) for part in final.content]


@pytest.mark.parametrize(
    ("name", "error_class", "code"),
    [
        ("context_length_exceeded", RequestTooLargeError, "context_length_exceeded"),
        ("insufficient_quota", BillingError, "insufficient_quota"),
        ("rate_limit_exceeded", RateLimitError, "rate_limit_exceeded"),
    ],
)
def test_recorded_failures_decode_to_the_matching_error(
    name: str, error_class: type[GatewayError], code: str
) -> None:
    events = decode(f"codex/codex_response_failed_{name}.sse")

    (error_event,) = events
    assert isinstance(error_event, ErrorEvent)
    assert type(error_event.error) is error_class
    assert error_event.error.code == code


def test_rate_limit_failure_carries_the_delay_from_its_message() -> None:
    (error_event,) = decode("codex/codex_response_failed_rate_limit_exceeded.sse")

    assert isinstance(error_event, ErrorEvent)
    assert error_event.error.retry_after == pytest.approx(11.054)


def test_message_start_has_a_message_id_from_the_response_id_and_the_requested_model() -> None:
    start = decode("responses/responses_stream_text.sse")[0]

    assert start == MessageStart(id="msg_0f80f320b6d3bc2b016a3c121983f08192898904ff92319f9f", model=MODEL)


def test_lifecycle_events_after_the_start_are_not_read() -> None:
    """``in_progress`` echoes the whole request again; once started, its name is enough to pass it by."""
    decoder = StreamDecoder(model=MODEL)
    started = decoder.feed(event({"type": "response.created", "response": {"id": "resp_1"}}))
    unread = ServerSentEvent(data="{not json, never parsed", event="response.in_progress")

    assert [type(e) for e in started] == [MessageStart]
    assert decoder.feed(unread) == []


def test_the_start_is_read_from_the_leading_response_id_without_parsing_the_echoed_request() -> None:
    """As the backend writes it (recorded streams): the id first, then the request echoed back."""
    decoder = StreamDecoder(model=MODEL)
    head = '{"type":"response.created","sequence_number":0,"response":{"id":"resp_7","instructions":"'
    created = ServerSentEvent(data=head + "x" * 50_000 + "…never parsed", event="response.created")

    assert decoder.feed(created) == [MessageStart(id="msg_7", model=MODEL)]


@pytest.mark.parametrize(
    "payload",
    [
        {"response": {"id": "resp_7", "status": "in_progress"}, "type": "response.created"},
        {"type": "response.created", "response": {"object": "response", "id": "resp_7"}},
    ],
    ids=["type-last", "id-not-first"],
)
def test_a_lifecycle_event_in_another_order_is_parsed_for_its_id(payload: dict[str, Any]) -> None:
    assert StreamDecoder(model=MODEL).feed(event(payload)) == [MessageStart(id="msg_7", model=MODEL)]


def test_reasoning_summary_stream_gives_the_joined_summary_and_the_encrypted_content() -> None:
    done_texts = [
        e.json()["text"]
        for e in sse_events(SUMMARY_STREAM)
        if e.event == "response.reasoning_summary_text.done"
    ]

    reasoning = accumulate(decode(SUMMARY_STREAM)).content[0]

    assert isinstance(reasoning, ReasoningPart)
    assert reasoning.text == "\n\n".join(done_texts)
    assert reasoning.text.startswith("**Finalizing the response**")
    assert reasoning.provider == "codex"


def test_reasoning_signature_is_the_encrypted_content_of_the_done_item() -> None:
    done = [e.json()["item"] for e in sse_events(SUMMARY_STREAM) if e.event == "response.output_item.done"]
    events = decode(SUMMARY_STREAM)

    (signature,) = [e for e in events if isinstance(e, SignatureDelta)]
    assert signature.signature == done[0]["encrypted_content"]
    assert signature.provider == "codex"
    assert events.index(signature) == events.index(PartStop(index=0)) - 1


def test_signature_is_stamped_with_the_decoders_provider() -> None:
    (signature,) = [e for e in decode(SUMMARY_STREAM, provider="codex-team") if isinstance(e, SignatureDelta)]

    assert signature.provider == "codex-team"


def test_reasoning_item_without_summary_still_yields_an_empty_reasoning_part() -> None:
    response = accumulate(decode("responses/responses_stream_text.sse"))

    assert response.content == (ReasoningPart(text=""), TextPart(text="Oi!"))
    assert response.stop_reason == "end_turn"


def test_tool_call_stream_gives_a_tool_call_with_the_call_id_and_parsed_arguments() -> None:
    response = accumulate(decode("responses/responses_stream_tool_call.sse"))

    assert response.content[1] == ToolCallPart(
        id="call_nYgMM3oZuxort2H8Ky4uP5RE", name="weather", arguments={"location": "Florence, Italy"}
    )
    assert response.stop_reason == "tool_use"


def test_recorded_usage_maps_reasoning_tokens() -> None:
    assert accumulate(decode(SUMMARY_STREAM)).usage == Usage(
        input_tokens=92, cached_input_tokens=0, output_tokens=456, reasoning_tokens=384
    )


# --- synthetic streams: each rule on its own ------------------------------------------------------------


def test_cached_tokens_are_split_out_of_input_tokens() -> None:
    delta = next(e for e in decode(stream()) if isinstance(e, MessageDelta))

    assert delta.usage == Usage(
        input_tokens=40, cached_input_tokens=60, output_tokens=30, reasoning_tokens=20
    )


def test_summary_parts_are_joined_with_a_blank_line() -> None:
    item = {"id": "rs_1", "type": "reasoning", "summary": []}
    events = decode(
        stream(
            added(0, item),
            on("reasoning_summary_text.delta", 0, summary_index=0, delta="A"),
            on("reasoning_summary_text.delta", 0, summary_index=1, delta="B"),
            done(0, {**item, "encrypted_content": "tok"}),
        )
    )

    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == ["A", "\n\n", "B"]
    assert accumulate(events).content == (ReasoningPart(text="A\n\nB", signature="tok", provider="codex"),)


def test_raw_reasoning_text_deltas_are_reasoning_too() -> None:
    item = {"id": "rs_1", "type": "reasoning", "summary": []}
    events = decode(
        stream(
            added(0, item),
            on("reasoning_text.delta", 0, content_index=0, delta="think"),
            done(0, item),
        )
    )

    assert accumulate(events).content == (ReasoningPart(text="think"),)


def test_arguments_done_without_deltas_emits_the_whole_arguments_once() -> None:
    item = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "Read", "arguments": ""}
    events = decode(
        stream(
            added(0, item),
            on("function_call_arguments.done", 0, arguments='{"a":1}'),
            done(0, {**item, "arguments": '{"a":1}'}),
        )
    )

    assert [e.partial_json for e in events if isinstance(e, ToolArgumentsDelta)] == ['{"a":1}']
    assert accumulate(events).content == (ToolCallPart(id="call_1", name="Read", arguments={"a": 1}),)


def test_tool_names_are_restored_through_the_name_map() -> None:
    long_name = "mcp__server_with_a_long_name__tool_with_an_even_longer_name_for_sure"
    names = ToolNameMap([long_name])
    item = {
        "type": "function_call",
        "call_id": "call_1",
        "name": names.to_upstream(long_name),
        "arguments": "{}",
    }

    events = decode(stream(added(0, item), done(0, item)), tool_names=names)

    assert accumulate(events).content == (ToolCallPart(id="call_1", name=long_name, arguments={}),)


def test_custom_tool_call_input_becomes_an_input_argument() -> None:
    item = {
        "id": "ctc_1",
        "type": "custom_tool_call",
        "call_id": "call_1",
        "name": "apply_patch",
        "input": "",
    }
    events = decode(
        stream(
            added(0, item),
            on("custom_tool_call_input.delta", 0, delta='*** Begin "x"\n'),
            on("custom_tool_call_input.delta", 0, delta="*** End"),
            done(0, {**item, "input": "ignored"}),
        )
    )

    response = accumulate(events)
    assert response.content == (
        ToolCallPart(id="call_1", name="apply_patch", arguments={"input": '*** Begin "x"\n*** End'}),
    )
    assert response.stop_reason == "tool_use"


def test_refusal_is_text() -> None:
    item = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    events = decode(
        stream(
            added(0, item),
            on("refusal.delta", 0, content_index=0, delta="I can't."),
            done(0, item),
        )
    )

    assert accumulate(events).content == (TextPart(text="I can't."),)


def test_message_item_without_text_opens_no_part() -> None:
    item = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    events = decode(stream(added(0, item), done(0, item)))

    assert part_events(events) == []


def test_text_only_in_the_done_item_is_still_delivered() -> None:
    item = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    final = {**item, "content": [{"type": "output_text", "text": "late"}]}
    events = decode(stream(added(0, item), done(0, final)))

    assert accumulate(events).content == (TextPart(text="late"),)


def test_events_of_a_later_item_wait_until_the_open_item_is_done() -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    call = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "Read", "arguments": ""}
    events = decode(
        stream(
            added(0, message),
            on("output_text.delta", 0, content_index=0, delta="Reading"),
            added(1, call),
            on("function_call_arguments.delta", 1, delta="{}"),
            on("output_text.delta", 0, content_index=0, delta=" now"),
            done(0, message),
            done(1, {**call, "arguments": "{}"}),
        )
    )

    assert part_events(events) == [
        ("PartStart", 0),
        ("TextDelta", 0),
        ("TextDelta", 0),
        ("PartStop", 0),
        ("PartStart", 1),
        ("ToolArgumentsDelta", 1),
        ("PartStop", 1),
    ]
    assert accumulate(events).content[0] == TextPart(text="Reading now")


def test_items_never_finished_are_completed_from_the_final_response() -> None:
    item = {"id": "rs_1", "type": "reasoning", "summary": []}
    final_item = {**item, "summary": [{"type": "summary_text", "text": "plan"}], "encrypted_content": "tok"}
    completed = {**RESP, "status": "completed", "output": [final_item], "usage": USAGE}

    events = decode(stream(added(0, item), completed=completed))

    assert accumulate(events).content == (ReasoningPart(text="plan", signature="tok", provider="codex"),)
    assert part_events(events)[-1] == ("PartStop", 0)


def test_output_only_in_the_final_response_is_recovered() -> None:
    output = [
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hi"}],
        }
    ]
    completed = {**RESP, "status": "completed", "output": output, "usage": USAGE}

    assert accumulate(decode(stream(completed=completed))).content == (TextPart(text="hi"),)


@pytest.mark.parametrize(
    ("reason", "stop"), [("max_output_tokens", "max_tokens"), ("content_filter", "refusal")]
)
def test_incomplete_response_maps_its_reason(reason: str, stop: str) -> None:
    incomplete = {**RESP, "status": "incomplete", "incomplete_details": {"reason": reason}, "usage": USAGE}
    events = decode([*stream(completed={}), event({"type": "response.incomplete", "response": incomplete})])

    assert accumulate(events).stop_reason == stop
    assert isinstance(events[-1], MessageStop)


@pytest.mark.parametrize(
    ("payload", "error_class"),
    [
        (
            {"type": "error", "code": "server_is_overloaded", "message": "busy", "param": None},
            OverloadedError,
        ),
        ({"type": "error", "error": {"type": "invalid_prompt", "message": "flagged"}}, InvalidRequestError),
        ({"type": "error", "code": "server_error", "message": "oops"}, UpstreamError),
        ({"type": "error", "code": "something_new", "message": "?"}, UpstreamError),
    ],
)
def test_error_event_ends_the_stream_with_the_mapped_error(
    payload: dict[str, Any], error_class: type[GatewayError]
) -> None:
    events = decode(stream(payload, completed={}))

    assert isinstance(events[-1], ErrorEvent)
    assert type(events[-1].error) is error_class
    assert not any(isinstance(e, MessageStop) for e in events)


def test_failed_response_maps_server_error_to_an_upstream_failure() -> None:
    failed = {**RESP, "status": "failed", "error": {"code": "server_error", "message": "boom"}}
    events = decode([*stream(completed={}), event({"type": "response.failed", "response": failed})])

    assert isinstance(events[-1], ErrorEvent)
    assert type(events[-1].error) is UpstreamError
    assert events[-1].error.message == "boom"


def test_stream_ending_before_completion_is_an_upstream_error() -> None:
    events = decode(stream({"type": "response.in_progress", "response": RESP}, completed={}))

    assert isinstance(events[-1], ErrorEvent)
    assert type(events[-1].error) is UpstreamError


def test_close_after_completion_adds_nothing_and_later_events_are_ignored() -> None:
    events = stream()
    events.append(event({"type": "error", "code": "server_error", "message": "late"}))

    decoded = decode(events)

    assert isinstance(decoded[-1], MessageStop)


def test_unknown_events_fields_and_garbage_are_ignored() -> None:
    events = stream(
        {"type": "response.queued", "response": RESP},
        {"type": "codex.rate_limits", "rate_limits": {"primary": {"used_percent": 3}}},
        {"type": "response.output_text.annotation.added", "output_index": 0, "annotation": {}},
        {"type": "response.brand_new_event", "whatever": [1, 2]},
    )
    events.insert(1, ServerSentEvent(data="not json", event="response.output_text.delta"))
    events.insert(1, ServerSentEvent(data="[1, 2]"))

    decoded = decode(events)

    assert [type(e) for e in decoded] == [MessageStart, MessageDelta, MessageStop]
