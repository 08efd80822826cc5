"""Anthropic non-streaming answers (protocols §1.6) and error bodies (§1.8, §7.9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_core.errors import (
    ApiError,
    AuthenticationError,
    BillingError,
    ConflictError,
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gateway_core.formats.anthropic import parse_error, parse_response, render_error, render_response
from gateway_core.models import ReasoningPart, Response, TextPart, ToolCallPart, Usage
from tests.fixtures import fixture_files, load_json

ANSWERS = fixture_files("anthropic", "*.response.json")


def _comparable(body: dict[str, object]) -> dict[str, object]:
    """A recorded answer minus what the canonical model does not carry (Anthropic-only extras)."""
    out = dict(body)
    usage = dict(out["usage"])  # type: ignore[call-overload]
    for key in ("cache_creation", "service_tier", "inference_geo"):
        usage.pop(key, None)
    out["usage"] = usage
    out["content"] = [
        {key: value for key, value in block.items() if key != "caller"}
        for block in out["content"]  # type: ignore[attr-defined]
    ]
    return out


@pytest.mark.parametrize("path", ANSWERS, ids=lambda path: path.stem)
def test_recorded_answer_parses_and_renders_back(path: Path) -> None:
    body = load_json(path)

    assert render_response(parse_response(body)) == _comparable(body)


def test_thinking_and_tool_use_answer() -> None:
    body = load_json("anthropic/anthropic_messages_thinking_tool_use.response.json")

    response = parse_response(body)

    assert response.stop_reason == "tool_use"
    assert response.stop_sequence is None
    thinking, call = response.content
    assert thinking == ReasoningPart(
        text=body["content"][0]["thinking"], signature=body["content"][0]["signature"], provider="anthropic"
    )
    assert call == ToolCallPart(
        id="toolu_014azqsWLU8Djh6RhmBGRC2u", name="weather", arguments={"location": "Florence, Italy"}
    )
    assert response.usage == Usage(input_tokens=424, output_tokens=118)


def test_cache_counters_map_to_canonical_usage() -> None:
    body = {
        "id": "msg_1",
        "model": "m",
        "content": [],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 3,
            "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": 150,
            "output_tokens": 40,
            "output_tokens_details": {"thinking_tokens": 12},
        },
    }

    usage = parse_response(body).usage

    assert usage == Usage(
        input_tokens=3,
        cached_input_tokens=2000,
        cache_write_tokens=150,
        output_tokens=40,
        reasoning_tokens=12,
    )
    assert usage.prompt_tokens == 2153


def test_render_echoes_the_model_and_gives_full_usage() -> None:
    response = Response(
        id="resp_123",
        model="claude-opus-5-5",
        content=(TextPart(text="hi"),),
        stop_reason="stop_sequence",
        stop_sequence="END",
        usage=Usage(
            input_tokens=5, cached_input_tokens=7, cache_write_tokens=1, output_tokens=2, reasoning_tokens=0
        ),
    )

    assert render_response(response) == {
        "id": "msg_resp_123",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-5-5",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "stop_sequence",
        "stop_sequence": "END",
        "usage": {
            "input_tokens": 5,
            "cache_creation_input_tokens": 1,
            "cache_read_input_tokens": 7,
            "output_tokens": 2,
            "output_tokens_details": {"thinking_tokens": 0},
        },
    }


def test_unknown_stop_reason_still_ends_the_turn() -> None:
    body = {"id": "msg_1", "model": "m", "content": [], "stop_reason": "compaction", "usage": {}}

    assert parse_response(body).stop_reason == "end_turn"


def test_server_tool_blocks_in_an_answer_are_skipped() -> None:
    body = {
        "id": "msg_1",
        "model": "m",
        "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "text", "text": "found"},
        ],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }

    assert parse_response(body).content == (TextPart(text="found"),)


@pytest.mark.parametrize("body", [[], {"model": "m"}, {"id": "msg_1", "model": "m", "content": "x"}])
def test_malformed_answer_is_an_upstream_error(body: object) -> None:
    with pytest.raises(UpstreamError, match="malformed Anthropic answer"):
        parse_response(body)


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "wire_type"),
    [
        (InvalidRequestError("bad"), "invalid_request_error"),
        (AuthenticationError("bad"), "authentication_error"),
        (BillingError("bad"), "billing_error"),
        (PermissionDeniedError("bad"), "permission_error"),
        (NotFoundError("bad"), "not_found_error"),
        (ConflictError("bad"), "invalid_request_error"),
        (RequestTooLargeError("bad"), "request_too_large"),
        (RateLimitError("bad"), "rate_limit_error"),
        (ApiError("bad"), "api_error"),
        (UpstreamError("bad"), "api_error"),
        (UpstreamTimeoutError("bad"), "timeout_error"),
        (OverloadedError("bad"), "overloaded_error"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, GatewayError) else value,
)
def test_render_error_type_agrees_with_the_status(error: GatewayError, wire_type: str) -> None:
    assert render_error(error) == {"type": "error", "error": {"type": wire_type, "message": "bad"}}


@pytest.mark.parametrize(
    ("status", "wire_type", "error_class"),
    [
        (400, "invalid_request_error", InvalidRequestError),
        (401, "authentication_error", AuthenticationError),
        (402, "billing_error", BillingError),
        (403, "permission_error", PermissionDeniedError),
        (404, "not_found_error", NotFoundError),
        (413, "request_too_large", RequestTooLargeError),
        (429, "rate_limit_error", RateLimitError),
        (500, "api_error", UpstreamError),
        (504, "timeout_error", UpstreamTimeoutError),
        (529, "overloaded_error", OverloadedError),
    ],
)
def test_parse_error_maps_the_anthropic_error_type(status: int, wire_type: str, error_class: type) -> None:
    body = (
        b'{"type":"error","error":{"type":"%s","message":"boom"},"request_id":"req_1"}' % wire_type.encode()
    )

    error = parse_error(status, body, {})

    assert type(error) is error_class
    assert error.message == "boom"


def test_parse_error_honours_retry_after_seconds() -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'

    assert parse_error(429, body, {"Retry-After": "17"}).retry_after == 17.0


def test_parse_error_prefers_retry_after_ms() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'

    assert parse_error(529, body, {"retry-after-ms": "1500", "retry-after": "9"}).retry_after == 1.5


def test_parse_error_reads_an_http_date_retry_after() -> None:
    error = parse_error(429, b"", {"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"})

    assert error.retry_after is not None
    assert error.retry_after > 0


@pytest.mark.parametrize(
    ("status", "body", "error_class"),
    [
        (502, b"<html>Bad Gateway</html>", UpstreamError),
        (503, b"", OverloadedError),
        (429, b"not json at all", RateLimitError),
        (400, b'{"error": "flat"}', InvalidRequestError),
        (500, b"\xff\xfe garbage", UpstreamError),
        (418, b"[1,2]", InvalidRequestError),
    ],
)
def test_parse_error_never_raises_on_garbage(status: int, body: bytes, error_class: type) -> None:
    error = parse_error(status, body, {"retry-after": "soon"})

    assert type(error) is error_class
    assert f"HTTP {status}" in error.message
    assert error.retry_after is None


def test_unknown_error_type_falls_back_to_the_status() -> None:
    error = parse_error(404, b'{"type":"error","error":{"type":"brand_new","message":"gone"}}', {})

    assert type(error) is NotFoundError
    assert error.message == "gone"
