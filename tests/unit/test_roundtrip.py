"""Round trips through each wire format (STYLE §16).

canonical -> wire -> canonical is the identity on what the format can carry (tests/strategies.py
switches off what it cannot), for requests, for non-streaming responses, and for streams: a stream
encoded by a format's encoder and decoded by its decoder reduces to the same response, so the
streamed and the non-streamed answer can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings

from gateway_core.formats import anthropic, openai_chat, openai_responses
from gateway_core.models import (
    Message,
    Part,
    ReasoningPart,
    Request,
    Response,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from gateway_core.sse import SSEDecoder
from gateway_core.streaming import (
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
from tests.strategies import ANTHROPIC, Carries, requests, responses

ROUND_TRIP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CHAT = Carries(
    cache_control=False,
    user_id=False,
    tool_result_images=False,
    tool_result_is_error=False,
    multi_part_tool_results=False,
    reasoning=False,
    multiple_system_parts=False,
    top_k=False,
    empty_text=False,
)
RESPONSES = Carries(
    cache_control=False,
    explicit_success=False,
    image_urls=True,
    reasoning_provider="codex",
    reasoning_text_without_signature=False,
    multiple_system_parts=False,
    top_k=False,
    stop_sequences=False,
    user_id=False,
    empty_text=False,
)


def _as_codex_sends_it(request: Request) -> Request:
    """What a Codex request can say: no sampling knobs or token limit (the backend refuses them),
    always streamed, and tool choice and parallel calls always explicit (their defaults spelled out)."""
    return request.model_copy(
        update={
            "max_tokens": None,
            "temperature": None,
            "stream": True,
            "tool_choice": request.tool_choice or ToolChoice(type="auto"),
            "parallel_tool_calls": True
            if request.parallel_tool_calls is None
            else request.parallel_tool_calls,
        }
    )


# --- requests --------------------------------------------------------------------------------------


@ROUND_TRIP
@given(requests(ANTHROPIC))
def test_anthropic_request_round_trip(request: Request) -> None:
    wire = orjson.loads(orjson.dumps(anthropic.render_request(request)))
    assert anthropic.parse_request(wire) == request


@ROUND_TRIP
@given(requests(CHAT))
def test_openai_chat_request_round_trip(request: Request) -> None:
    wire = openai_chat.render_request(request, upstream_model=request.model, stream=request.stream)
    wire = orjson.loads(orjson.dumps(wire))
    wire.pop("stream_options", None)
    wire.pop("usage", None)
    assert openai_chat.parse_request(wire) == request


@ROUND_TRIP
@given(requests(RESPONSES))
def test_openai_responses_request_round_trip(request: Request) -> None:
    wire = openai_responses.render_request(request, upstream_model=request.model, provider="codex")
    parsed = openai_responses.parse_request(orjson.loads(orjson.dumps(wire)), provider="codex")
    expected = _as_codex_sends_it(request)
    assert parsed.model_copy(update={"effort": None}) == expected


# --- non-streaming responses ------------------------------------------------------------------------

RESPONSE_FORMATS: dict[str, tuple[Callable[[Response], dict[str, Any]], Callable[[Any], Response]]] = {
    "anthropic": (anthropic.render_response, anthropic.parse_response),
    "openai_chat": (openai_chat.render_response, lambda body: openai_chat.parse_response(body)),
    "openai_responses": (
        openai_responses.render_response,
        lambda body: openai_responses.parse_response(body, provider="codex"),
    ),
}


def _comparable(response: Response, *, ids: bool, reasoning: bool) -> Response:
    content: list[Part] = [p for p in response.content if reasoning or not isinstance(p, ReasoningPart)]
    return response.model_copy(
        update={"content": tuple(content), **({} if ids else {"id": ""})},
    )


@ROUND_TRIP
@given(responses(ANTHROPIC))
def test_anthropic_response_round_trip(response: Response) -> None:
    render, parse = RESPONSE_FORMATS["anthropic"]
    assert parse(orjson.loads(orjson.dumps(render(response)))) == response


@ROUND_TRIP
@given(responses(Carries(reasoning=False)))
def test_openai_chat_response_round_trip(response: Response) -> None:
    render, parse = RESPONSE_FORMATS["openai_chat"]
    parsed = parse(orjson.loads(orjson.dumps(render(response))))
    expected = _merge_texts(response)
    if expected.stop_reason == "stop_sequence":
        expected = expected.model_copy(update={"stop_reason": "end_turn", "stop_sequence": None})
    assert _comparable(parsed, ids=False, reasoning=False) == _comparable(
        expected, ids=False, reasoning=False
    )


@ROUND_TRIP
@given(responses(Carries(reasoning_provider="codex", reasoning_text_without_signature=False)))
def test_openai_responses_response_round_trip(response: Response) -> None:
    render, parse = RESPONSE_FORMATS["openai_responses"]
    parsed = parse(orjson.loads(orjson.dumps(render(response))))
    assert _comparable(parsed, ids=False, reasoning=True) == _comparable(
        _as_responses_reports_it(response), ids=False, reasoning=True
    )


def _as_responses_reports_it(response: Response) -> Response:
    """Responses has no stop sequences, derives tool_use from the output, and always counts reasoning."""
    stop_reason = response.stop_reason
    if stop_reason == "stop_sequence":
        stop_reason = "end_turn"
    if stop_reason == "end_turn" and any(isinstance(p, ToolCallPart) for p in response.content):
        stop_reason = "tool_use"
    usage = response.usage.model_copy(update={"reasoning_tokens": response.usage.reasoning_tokens or 0})
    return response.model_copy(update={"stop_reason": stop_reason, "stop_sequence": None, "usage": usage})


def _merge_texts(response: Response) -> Response:
    """Chat carries one text per message: consecutive text parts come back as one."""
    merged: list[Part] = []
    for part in response.content:
        if isinstance(part, TextPart) and merged and isinstance(merged[-1], TextPart):
            merged[-1] = TextPart(text=merged[-1].text + part.text)
        else:
            merged.append(part)
    texts = [p for p in merged if isinstance(p, TextPart)]
    others = [p for p in merged if not isinstance(p, TextPart | ReasoningPart)]
    reasoning = [p for p in merged if isinstance(p, ReasoningPart)]
    return response.model_copy(update={"content": (*reasoning, *texts, *others)})


# --- streams ------------------------------------------------------------------------------------------


def events_of(response: Response) -> list[StreamEvent]:
    """The canonical stream that reduces to ``response``: each part opened, filled in pieces, stopped."""
    events: list[StreamEvent] = [MessageStart(id=response.id, model=response.model)]
    for index, part in enumerate(response.content):
        if isinstance(part, TextPart):
            events.append(PartStart(index, TextPart(text="")))
            events.extend(TextDelta(index, piece) for piece in _pieces(part.text))
        elif isinstance(part, ReasoningPart):
            events.append(PartStart(index, ReasoningPart()))
            events.extend(ReasoningDelta(index, piece) for piece in _pieces(part.text))
            if part.signature:
                events.append(SignatureDelta(index, part.signature, part.provider))
        elif isinstance(part, ToolCallPart):
            events.append(PartStart(index, part.model_copy(update={"arguments": {}})))
            arguments = orjson.dumps(part.arguments).decode()
            events.extend(ToolArgumentsDelta(index, piece) for piece in _pieces(arguments))
        events.append(PartStop(index))
    events.append(MessageDelta(response.stop_reason, response.stop_sequence, response.usage))
    events.append(MessageStop())
    return events


def _pieces(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def replay(
    events: Iterable[StreamEvent], encode: Callable[[StreamEvent], bytes], decoder: Any
) -> list[StreamEvent]:
    """Encode ``events`` to bytes, then decode those bytes, one byte at a time."""
    wire = b"".join(encode(event) for event in events)
    sse = SSEDecoder()
    decoded: list[StreamEvent] = []
    for i in range(len(wire)):
        for frame in sse.feed(wire[i : i + 1]):
            decoded.extend(decoder.feed(frame))
    for frame in sse.flush():
        decoded.extend(decoder.feed(frame))
    decoded.extend(decoder.close())
    return decoded


@ROUND_TRIP
@given(responses(ANTHROPIC))
def test_anthropic_stream_round_trip(response: Response) -> None:
    decoded = replay(events_of(response), anthropic.StreamEncoder().encode, anthropic.StreamDecoder())
    assert accumulate(decoded) == accumulate(events_of(response))


@ROUND_TRIP
@given(responses(Carries(reasoning_provider="codex", reasoning_text_without_signature=False)))
def test_openai_responses_stream_round_trip(response: Response) -> None:
    decoded = replay(
        events_of(response),
        openai_responses.StreamEncoder().encode,
        openai_responses.StreamDecoder(model=response.model, provider="codex"),
    )
    expected = _as_responses_reports_it(accumulate(events_of(response)))
    assert _comparable(accumulate(decoded), ids=False, reasoning=True) == _comparable(
        expected, ids=False, reasoning=True
    )


@ROUND_TRIP
@given(responses(Carries(reasoning=False)))
def test_openai_chat_stream_round_trip(response: Response) -> None:
    decoded = replay(
        events_of(response),
        openai_chat.StreamEncoder(include_usage=True).encode,
        openai_chat.StreamDecoder(provider="openai", model=response.model),
    )
    expected = _merge_texts(accumulate(events_of(response)))
    if expected.stop_reason == "stop_sequence":
        expected = expected.model_copy(update={"stop_reason": "end_turn", "stop_sequence": None})
    assert _comparable(accumulate(decoded), ids=False, reasoning=False) == _comparable(
        expected, ids=False, reasoning=False
    )


def test_events_of_reduces_back_to_its_response() -> None:
    """The helper above is itself correct: its stream reduces to the response it came from."""
    response = Response(
        id="msg_1",
        model="m",
        content=(
            ReasoningPart(text="think", signature="sig", provider="codex"),
            TextPart(text="hello world"),
            ToolCallPart(id="c1", name="Read", arguments={"p": [1, "x"]}),
        ),
        stop_reason="tool_use",
    )
    assert accumulate(events_of(response)) == response


def test_strategies_generate_tool_results_for_every_call() -> None:
    @given(requests(ANTHROPIC))
    @settings(max_examples=30, deadline=None)
    def check(request: Request) -> None:
        calls = {p.id for m in request.messages for p in m.content if isinstance(p, ToolCallPart)}
        results = {
            p.tool_call_id for m in request.messages for p in m.content if isinstance(p, ToolResultPart)
        }
        assert calls == results
        assert isinstance(request.messages[-1], Message)

    check()
