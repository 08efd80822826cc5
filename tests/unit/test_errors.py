"""Error kinds, statuses and the status -> class map used when reading upstream answers."""

from __future__ import annotations

import pytest

from gateway_core.errors import (
    AuthenticationError,
    BillingError,
    ErrorKind,
    GatewayError,
    InvalidRequestError,
    OverloadedError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
    error_class_for_kind,
    error_class_for_status,
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (402, BillingError),
        (408, UpstreamTimeoutError),
        (422, InvalidRequestError),
        (418, InvalidRequestError),
        (429, RateLimitError),
        (500, GatewayError),
        (502, UpstreamError),
        (503, OverloadedError),
        (504, UpstreamTimeoutError),
        (529, OverloadedError),
        (599, UpstreamError),
    ],
)
def test_status_maps_to_error_class(status: int, expected: type[GatewayError]) -> None:
    assert issubclass(error_class_for_status(status), expected)


def test_every_kind_has_one_class_whose_kind_matches() -> None:
    for kind in ErrorKind:
        assert error_class_for_kind(kind).kind is kind


def test_error_carries_message_retry_after_param_and_code() -> None:
    error = RateLimitError("limited", retry_after=12.5, param=None, code="usage_limit_reached")
    assert (error.status, error.kind, error.retry_after, error.code) == (
        429,
        "rate_limit",
        12.5,
        "usage_limit_reached",
    )
    assert str(error) == "limited"
    assert "RateLimitError" in repr(error)
