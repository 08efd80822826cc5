"""parse_error, render_error: Codex HTTP errors -> GatewayError -> OpenAI shape (protocols §4.8, §7.9)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from gateway_core.errors import (
    AuthenticationError,
    BillingError,
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
from gateway_core.formats.openai_responses import parse_error, render_error, retry_after_from_message
from tests.fixtures import load_http, load_json

NOW = 1_775_000_000.0


def body(payload: Any) -> bytes:
    return orjson.dumps(payload)


def test_recorded_usage_limit_reached_is_a_rate_limit_until_the_window_resets() -> None:
    status, headers, raw = load_http("codex/codex_429_usage_limit_reached.http")

    error = parse_error(status, raw, headers, now=NOW)

    assert type(error) is RateLimitError
    assert error.code == "usage_limit_reached"
    assert error.message == "The usage limit has been reached"
    assert error.retry_after == 602705


def test_usage_limit_without_resets_in_seconds_counts_down_to_resets_at() -> None:
    payload = {"error": {"type": "usage_limit_reached", "message": "limit", "resets_at": NOW + 90}}

    assert parse_error(429, body(payload), {}, now=NOW).retry_after == 90


def test_usage_not_included_is_a_billing_error_not_a_retryable_limit() -> None:
    payload = {"error": {"type": "usage_not_included", "message": "Upgrade to Plus to use Codex."}}

    error = parse_error(429, body(payload), {})

    assert type(error) is BillingError
    assert error.code == "usage_not_included"
    assert error.retry_after is None


def test_other_rate_limits_wait_for_retry_after() -> None:
    payload = {"error": {"code": "rate_limit_exceeded", "message": "Too many requests"}}

    error = parse_error(429, body(payload), {"Retry-After": "7"})

    assert type(error) is RateLimitError
    assert error.retry_after == 7


def test_retry_after_may_be_an_http_date() -> None:
    error = parse_error(429, b"{}", {"retry-after": "Tue, 31 Mar 2026 23:33:40 GMT"}, now=1775000000.0)

    assert error.retry_after == 20


def test_rate_limit_without_header_takes_the_delay_from_the_message() -> None:
    payload = {"error": {"message": "Rate limit reached. Please try again in 1.5s."}}

    assert parse_error(429, body(payload), {}).retry_after == 1.5


def test_recorded_401_is_an_authentication_error() -> None:
    status, headers, raw = load_http("codex/codex_401_unauthorized.http")

    error = parse_error(status, raw, headers)

    assert type(error) is AuthenticationError
    assert error.message == "Unauthorized"


def test_401_reads_the_token_error_code_codex_sends_in_a_header() -> None:
    encoded = base64.b64encode(b'{"error":{"code":"token_expired"}}').decode()

    error = parse_error(401, b'{"detail":"Unauthorized"}', {"x-error-json": encoded})

    assert error.code == "token_expired"


@pytest.mark.parametrize("entry", load_json("codex/codex_400_detail_errors.json"), ids=lambda e: e["trigger"])
def test_recorded_400_details_are_invalid_requests_carrying_the_detail_text(entry: dict[str, Any]) -> None:
    error = parse_error(entry["status"], body(entry["body"]), {"content-type": "application/json"})

    assert type(error) is InvalidRequestError
    assert error.message == entry["body"]["detail"]


def test_fastapi_validation_details_name_their_location() -> None:
    payload = {"detail": [{"loc": ["body", "input"], "msg": "field required", "type": "missing"}]}

    assert parse_error(422, body(payload), {}).message == "body.input: field required"


def test_context_length_error_body_asks_the_client_to_compact() -> None:
    payload = {
        "error": {"code": "context_length_exceeded", "message": "Your input exceeds the context window"}
    }

    error = parse_error(400, body(payload), {})

    assert type(error) is RequestTooLargeError
    assert error.status == 413


def test_403_html_page_is_a_permission_error_with_a_readable_message() -> None:
    page = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>cf</body></html>"

    error = parse_error(403, page, {"content-type": "text/html"})

    assert type(error) is PermissionDeniedError
    assert "HTML" in error.message
    assert "<html" not in error.message


@pytest.mark.parametrize(
    ("status", "payload", "headers", "error_class"),
    [
        (503, {"error": {"code": "server_is_overloaded", "message": "busy"}}, {}, OverloadedError),
        (503, {"error": {"code": "slow_down", "message": "slow down"}}, {}, OverloadedError),
        (500, {"error": {"code": "server_is_overloaded"}}, {}, OverloadedError),
        (503, None, {"retry-after": "2"}, OverloadedError),
        (500, {"error": {"message": "internal"}}, {}, UpstreamError),
        (502, None, {}, UpstreamError),
        (504, None, {}, UpstreamTimeoutError),
        (404, {"detail": "Not Found"}, {}, NotFoundError),
    ],
)
def test_server_side_statuses_map_to_their_errors(
    status: int, payload: Any, headers: dict[str, str], error_class: type[GatewayError]
) -> None:
    raw = b"" if payload is None else body(payload)

    assert type(parse_error(status, raw, headers)) is error_class


def test_overloaded_answer_keeps_its_retry_after() -> None:
    assert parse_error(503, b"", {"Retry-After": "2"}).retry_after == 2


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe\x00garbage", b"[1,2,3]", b'"just a string"', b"{"])
def test_garbage_bodies_never_raise(raw: bytes) -> None:
    error = parse_error(500, raw, {})

    assert type(error) is UpstreamError
    assert error.message


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("Please try again in 11.054s. Visit https://platform.openai.com", 11.054),
        ("Please try again in 20ms.", 0.02),
        ("Please try again in 1m30s.", 90.0),
        ("no delay here", None),
    ],
)
def test_retry_after_is_read_from_rate_limit_messages(message: str, seconds: float | None) -> None:
    assert retry_after_from_message(message) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    ("error", "wire_type"),
    [
        (InvalidRequestError("bad", param="input.0"), "invalid_request_error"),
        (AuthenticationError("no"), "authentication_error"),
        (RateLimitError("wait", code="usage_limit_reached"), "rate_limit_error"),
        (RequestTooLargeError("big", code="context_length_exceeded"), "request_too_large"),
        (OverloadedError("busy"), "overloaded_error"),
    ],
)
def test_render_error_uses_the_openai_error_shape(error: GatewayError, wire_type: str) -> None:
    assert render_error(error) == {
        "error": {"message": error.message, "type": wire_type, "param": error.param, "code": error.code}
    }
