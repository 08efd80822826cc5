"""Errors: the OpenAI shape towards clients, every upstream shape of protocols §2.4 and §3 parsed back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import openai
import orjson
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
from gateway_core.formats.openai_chat import parse_error, render_error
from tests.unit._openai_chat_support import sdk_client


def json(value: object) -> bytes:
    return orjson.dumps(value)


# --- towards clients -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "wire_type"),
    [
        (InvalidRequestError("bad"), "invalid_request_error"),
        (AuthenticationError("who"), "authentication_error"),
        (BillingError("pay"), "insufficient_quota"),
        (PermissionDeniedError("no"), "permission_error"),
        (NotFoundError("where"), "not_found_error"),
        (ConflictError("clash"), "conflict_error"),
        (RequestTooLargeError("big"), "request_too_large"),
        (RateLimitError("slow"), "rate_limit_error"),
        (ApiError("bug"), "api_error"),
        (UpstreamError("down"), "server_error"),
        (UpstreamTimeoutError("late"), "timeout_error"),
        (OverloadedError("busy"), "overloaded_error"),
    ],
)
def test_render_error_gives_the_openai_shape_with_a_type_per_kind(
    error: GatewayError, wire_type: str
) -> None:
    assert render_error(error) == {
        "error": {"message": error.message, "type": wire_type, "param": None, "code": None}
    }


def test_render_error_names_the_field_and_code() -> None:
    error = InvalidRequestError("messages.0.role: unsupported role", param="messages.0.role", code="bad_role")

    assert render_error(error)["error"]["param"] == "messages.0.role"
    assert render_error(error)["error"]["code"] == "bad_role"


def test_the_sdk_reads_our_error_body() -> None:
    error = InvalidRequestError("n: only n=1 is supported", param="n")
    client = sdk_client(json(render_error(error)), stream=False, status=400)

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], n=2)

    assert caught.value.param == "n"
    assert caught.value.type == "invalid_request_error"
    assert "only n=1" in caught.value.message


# --- from upstreams ------------------------------------------------------------------------------


def test_openrouter_402_is_a_billing_error() -> None:
    error = parse_error(402, json({"error": {"code": 402, "message": "Insufficient credits"}}), {})

    assert isinstance(error, BillingError)
    assert error.message == "Insufficient credits"


def test_openrouter_429_honours_retry_after() -> None:
    body = json({"error": {"code": 429, "message": "Rate limited", "metadata": {"provider_name": "Chutes"}}})

    error = parse_error(429, body, {"Retry-After": "7"})

    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0


def test_retry_after_as_an_http_date_and_in_milliseconds() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    by_date = parse_error(429, b"{}", {"retry-after": when}).retry_after
    by_ms = parse_error(429, b"{}", {"retry-after-ms": "1500"}).retry_after

    assert by_date is not None
    assert 100 < by_date <= 120
    assert by_ms == 1.5


def test_openai_try_again_phrase_gives_the_delay() -> None:
    body = json({"error": {"message": "Rate limit reached. Please try again in 11.054s.", "type": "tokens"}})

    error = parse_error(429, body, {})

    assert isinstance(error, RateLimitError)
    assert error.retry_after == 11.054


def test_openrouter_provider_errors_keep_the_raw_upstream_text() -> None:
    body = json(
        {"error": {"code": 502, "message": "Provider returned error", "metadata": {"raw": "gpu on fire"}}}
    )

    error = parse_error(502, body, {})

    assert isinstance(error, UpstreamError)
    assert error.message == "Provider returned error (gpu on fire)"


def test_kilo_flat_rate_limit_error() -> None:
    body = json(
        {"error": "Rate limit exceeded", "message": "Too many requests from this IP, retry in a minute"}
    )

    error = parse_error(429, body, {"retry-after": "60"})

    assert isinstance(error, RateLimitError)
    assert error.message == "Rate limit exceeded: Too many requests from this IP, retry in a minute"
    assert error.retry_after == 60.0


def test_kilo_402_with_title_and_balance_is_a_billing_error() -> None:
    body = json(
        {
            "error": {
                "title": "Paid Model - Credits Required",
                "message": "This model needs credits.",
                "balance": 0,
                "buyCreditsUrl": "https://app.kilo.ai/credits",
            }
        }
    )

    error = parse_error(402, body, {})

    assert isinstance(error, BillingError)
    assert error.message == "Paid Model - Credits Required: This model needs credits."


def test_kilo_flat_not_found() -> None:
    error = parse_error(404, json({"error": "Model not found"}), {})

    assert isinstance(error, NotFoundError)
    assert error.message == "Model not found"


def test_openai_shape_keeps_param_and_code() -> None:
    body = json(
        {
            "error": {
                "message": "Invalid 'messages'",
                "type": "invalid_request_error",
                "param": "messages",
                "code": None,
            }
        }
    )

    error = parse_error(400, body, {})

    assert isinstance(error, InvalidRequestError)
    assert (error.param, error.code) == ("messages", None)


def test_openai_insufficient_quota_429_is_billing_not_a_rate_limit() -> None:
    body = json(
        {
            "error": {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }
        }
    )

    assert isinstance(parse_error(429, body, {}), BillingError)


@pytest.mark.parametrize(
    "body",
    [
        {
            "error": {
                "message": "too long",
                "type": "invalid_request_error",
                "code": "context_length_exceeded",
            }
        },
        {
            "error": {
                "code": 400,
                "message": "This endpoint's maximum context length is 262144 tokens. "
                "However, you requested about 300000 tokens",
            }
        },
    ],
)
def test_context_overflows_are_request_too_large(body: object) -> None:
    assert isinstance(parse_error(400, json(body), {}), RequestTooLargeError)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (408, UpstreamTimeoutError),
        (422, InvalidRequestError),
        (500, UpstreamError),
        (502, UpstreamError),
        (503, OverloadedError),
        (529, OverloadedError),
    ],
)
def test_status_decides_when_the_body_says_nothing(status: int, cls: type[GatewayError]) -> None:
    assert type(parse_error(status, json({"error": {"code": status, "message": "x"}}), {})) is cls


@pytest.mark.parametrize(
    "raw", [b"", b"<html><body>Bad gateway</body></html>", b"\xff\xfe\x00", b"null", b"[]"]
)
def test_garbage_bodies_never_raise_and_fall_back_to_the_status(raw: bytes) -> None:
    error = parse_error(503, raw, {})

    assert isinstance(error, OverloadedError)
    assert error.message.startswith("upstream answered HTTP 503")


def test_a_503_without_provider_gets_its_retry_after() -> None:
    error = parse_error(
        503, json({"error": {"code": 503, "message": "No available provider"}}), {"Retry-After": "2"}
    )

    assert isinstance(error, OverloadedError)
    assert error.retry_after == 2.0


def test_the_upstreams_string_code_is_kept_for_clients() -> None:
    body = json(
        {"error": {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}}
    )

    assert parse_error(400, body, {}).code == "context_length_exceeded"


def test_an_openai_type_alone_classifies_the_error() -> None:
    body = json({"error": {"message": "quota", "type": "insufficient_quota", "code": None}})

    assert isinstance(parse_error(429, body, {}), BillingError)
