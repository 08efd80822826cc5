"""A whole answer without the deltas: ``WHOLE_ANSWER_SKIPPABLE`` (protocols §4.5, §7.2).

A caller that reads only the complete answer lets the SSE decoder drop the delta events undecoded. That
is only right if every skipped delta is repeated by an event the stream decoder does read (``.done``,
``output_item.done``, ``response.completed``), so the answer accumulated without them is, field by
field, the answer accumulated with them. Proved here on every recorded Responses stream, on the bench's
Codex answer, on the fake backend's streams and on encoder output for generated answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from bench import mock_bodies
from gateway_core.errors import GatewayError
from gateway_core.formats import openai_responses
from gateway_core.formats.openai_responses import WHOLE_ANSWER_SKIPPABLE, StreamDecoder
from gateway_core.models import ReasoningPart, Response, TextPart, ToolCallPart
from gateway_core.sse import SSEDecoder
from gateway_core.streaming import StreamEvent, TextDelta, accumulate
from tests.fakes.responses_stream import (
    Completed,
    FunctionCall,
    Incomplete,
    Message,
    Reasoning,
    build_events,
    encode_events,
)
from tests.fixtures import fixture_files, load_sse
from tests.strategies import Carries, responses
from tests.unit._openai_responses_support import MODEL, event
from tests.unit.test_roundtrip import events_of

RECORDED_STREAMS = [*fixture_files("responses", "*.sse"), *fixture_files("codex", "*.sse")]
ANSWERS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Outcome = Response | tuple[type[GatewayError], str, str | None]


def decode(raw: bytes, *, skip: frozenset[str] = frozenset()) -> list[StreamEvent]:
    """Every canonical event of a stream, its SSE decoded with ``skip_events=skip``."""
    sse = SSEDecoder(skip_events=skip)
    frames = sse.feed(raw) + sse.flush()
    decoder = StreamDecoder(model=MODEL, provider="codex")
    return [canonical for frame in frames for canonical in decoder.feed(frame)] + decoder.close()


def outcome(events: list[StreamEvent]) -> Outcome:
    """The accumulated answer, or the failure that ends the stream (type, message, code)."""
    try:
        return accumulate(events)
    except GatewayError as exc:
        return type(exc), exc.message, exc.code


def skipped_names(raw: bytes) -> set[str]:
    sse = SSEDecoder()
    return {frame.event for frame in sse.feed(raw) + sse.flush() if frame.event in WHOLE_ANSWER_SKIPPABLE}


def assert_same_answer(raw: bytes) -> Outcome:
    """The answer with the deltas and without them are equal, field by field; returns it."""
    whole, without = outcome(decode(raw)), outcome(decode(raw, skip=WHOLE_ANSWER_SKIPPABLE))
    if isinstance(whole, Response) and isinstance(without, Response):
        assert without.content == whole.content
        assert (without.stop_reason, without.usage) == (whole.stop_reason, whole.usage)
    assert without == whole
    return whole


def reasoning_of(response: Outcome) -> ReasoningPart:
    assert isinstance(response, Response)
    (reasoning,) = [part for part in response.content if isinstance(part, ReasoningPart)]
    return reasoning


# --- the set itself ------------------------------------------------------------------------------------


def test_the_skippable_events_are_the_deltas_repeated_by_done_events() -> None:
    assert {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_summary_text.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
    } == WHOLE_ANSWER_SKIPPABLE
    assert openai_responses.WHOLE_ANSWER_SKIPPABLE is WHOLE_ANSWER_SKIPPABLE


def test_raw_reasoning_deltas_are_not_skippable_because_nothing_repeats_them() -> None:
    item = {"id": "rs_1", "type": "reasoning", "summary": []}
    payloads: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": "resp_1"}},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.reasoning_text.delta", "output_index": 0, "content_index": 0, "delta": "think"},
        {"type": "response.reasoning_text.done", "output_index": 0, "content_index": 0, "text": "think"},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": {"id": "resp_1", "status": "completed"}},
    ]
    raw = b"".join(encode_events([(p["type"], p) for p in payloads]))

    assert reasoning_of(assert_same_answer(raw)).text == "think"
    assert reasoning_of(outcome(decode(raw, skip=frozenset({"response.reasoning_text.delta"})))).text == ""


# --- recorded streams and the bench answer --------------------------------------------------------------


@pytest.mark.parametrize("path", RECORDED_STREAMS, ids=lambda path: path.name)
def test_a_recorded_stream_gives_the_same_answer_without_its_deltas(path: Path) -> None:
    assert_same_answer(load_sse(path))


def test_the_recorded_streams_do_have_deltas_to_skip() -> None:
    found = set().union(*(skipped_names(load_sse(path)) for path in RECORDED_STREAMS))

    assert found == {
        "response.output_text.delta",
        "response.reasoning_summary_text.delta",
        "response.function_call_arguments.delta",
    }


def test_the_recorded_reasoning_keeps_its_summary_and_signature_without_deltas() -> None:
    reasoning = reasoning_of(
        assert_same_answer(load_sse("responses/responses_stream_reasoning_summary_text.sse"))
    )

    assert reasoning.text.startswith("**Finalizing the response**")
    assert reasoning.signature
    assert reasoning.provider == "codex"


def test_the_recorded_tool_call_keeps_its_arguments_without_deltas() -> None:
    answer = assert_same_answer(load_sse("responses/responses_stream_tool_call.sse"))

    assert isinstance(answer, Response)
    assert answer.content[-1] == ToolCallPart(
        id="call_nYgMM3oZuxort2H8Ky4uP5RE", name="weather", arguments={"location": "Florence, Italy"}
    )
    assert answer.stop_reason == "tool_use"


def bench_answer() -> bytes:
    """The bench mock's Codex answer (its ``.done`` events repeat its deltas, as the backend does)."""
    return b"".join(mock_bodies.responses_answer({"instructions": "Be brief.", "tools": []}))


def test_the_bench_codex_answer_gives_the_same_answer_without_its_deltas() -> None:
    answer = assert_same_answer(bench_answer())

    assert isinstance(answer, Response)
    assert [part.type for part in answer.content] == ["reasoning", "text"]
    assert answer.content[1] == TextPart(text="".join(mock_bodies.TEXT))
    assert reasoning_of(answer).text.endswith("".join(mock_bodies.REASONING))
    assert reasoning_of(answer).signature
    assert answer.usage.reasoning_tokens == 64


def test_without_its_deltas_the_bench_answer_decodes_a_handful_of_events() -> None:
    raw = b"".join(mock_bodies.responses_answer({}))

    events = decode(raw, skip=WHOLE_ANSWER_SKIPPABLE)

    assert len(decode(raw)) > mock_bodies.TEXT_DELTAS
    assert len(events) < 12
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["".join(mock_bodies.TEXT)]


# --- streams of the fake backend and synthetic items -------------------------------------------------

FAKE_ANSWERS = {
    "summary_parts": (Reasoning(summary=("**Plan**", "then act", "")), Message("Done.")),
    "preamble_and_call": (
        Reasoning(),
        Message("Reading the file."),
        FunctionCall(name="Read", arguments='{"file_path": "/tmp/a b.txt", "limit": [1, 2]}'),
    ),
    "two_calls": (
        FunctionCall(name="a", arguments="{}"),
        FunctionCall(name="b", arguments='{"x": "\\u00e9"}'),
    ),
    "empty_message": (Reasoning(summary=("only thinking",)), Message("")),
}


@pytest.mark.parametrize("items", FAKE_ANSWERS.values(), ids=FAKE_ANSWERS.keys())
@pytest.mark.parametrize("ending", [Completed(), Incomplete()], ids=["completed", "incomplete"])
def test_a_fake_backend_stream_gives_the_same_answer_without_its_deltas(
    items: tuple[Any, ...], ending: Any
) -> None:
    events = build_events(items, ending, model=MODEL, request={"include": ["reasoning.encrypted_content"]})

    assert_same_answer(b"".join(encode_events(events)))


def _synthetic(*payloads: dict[str, Any]) -> bytes:
    final = {"id": "resp_1", "status": "completed", "output": []}
    frames = [
        event({"type": "response.created", "response": {"id": "resp_1"}}),
        *(event(payload) for payload in payloads),
        event({"type": "response.completed", "response": final}),
    ]
    return b"".join(f"event: {frame.event}\ndata: {frame.data}\n\n".encode() for frame in frames)


def test_a_custom_tool_input_comes_whole_from_its_done_event() -> None:
    item = {
        "id": "ctc_1",
        "type": "custom_tool_call",
        "call_id": "call_1",
        "name": "apply_patch",
        "input": "",
    }
    patch = '*** Begin Patch\n"quoted"\n*** End Patch'
    raw = _synthetic(
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.custom_tool_call_input.delta", "output_index": 0, "delta": patch[:9]},
        {"type": "response.custom_tool_call_input.delta", "output_index": 0, "delta": patch[9:]},
        {"type": "response.custom_tool_call_input.done", "output_index": 0, "input": patch},
        {"type": "response.output_item.done", "output_index": 0, "item": {**item, "input": patch}},
    )

    answer = assert_same_answer(raw)

    assert isinstance(answer, Response)
    assert answer.content == (ToolCallPart(id="call_1", name="apply_patch", arguments={"input": patch}),)


def test_a_refusal_comes_whole_from_its_done_event() -> None:
    item = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    text = "I can't help with that."
    refusal = {"type": "refusal", "refusal": text}
    raw = _synthetic(
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.refusal.delta", "output_index": 0, "content_index": 0, "delta": "I can't "},
        {"type": "response.refusal.delta", "output_index": 0, "content_index": 0, "delta": "help with that."},
        {
            "type": "response.refusal.done",
            "output_index": 0,
            "content_index": 0,
            "refusal": refusal["refusal"],
        },
        {"type": "response.output_item.done", "output_index": 0, "item": {**item, "content": [refusal]}},
    )

    answer = assert_same_answer(raw)

    assert isinstance(answer, Response)
    assert answer.content == (TextPart(text="I can't help with that."),)


@ANSWERS
@given(responses(Carries(reasoning_provider="codex", reasoning_text_without_signature=False)))
def test_any_encoded_answer_is_the_same_without_its_deltas(response: Response) -> None:
    encoder = openai_responses.StreamEncoder()
    raw = b"".join(encoder.encode(canonical) for canonical in events_of(response))

    assert_same_answer(raw)
