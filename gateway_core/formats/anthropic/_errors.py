"""Errors in Anthropic's shape, both ways (protocols §1.8, §7.9; DESIGN §6).

Clients get ``{"type": "error", "error": {"type": T, "message": ...}}`` with ``T`` agreeing with the
HTTP status. Anthropic defines no ``conflict`` type: a 409 is rendered ``invalid_request_error`` (the
request clashes with what the gateway holds; the SDKs map the status, not the type, to their
``ConflictError``). Upstream ``api_error`` (Anthropic's own 500) is an
:class:`~gateway_core.errors.UpstreamError` to us, which clients see as 502 ``api_error``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from gateway_core.errors import (
    ApiError,
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
    error_class_for_status,
)

_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_CLASS_BY_TYPE: dict[str, type[GatewayError]] = {
    "invalid_request_error": InvalidRequestError,
    "authentication_error": AuthenticationError,
    "billing_error": BillingError,
    "permission_error": PermissionDeniedError,
    "not_found_error": NotFoundError,
    "request_too_large": RequestTooLargeError,
    "rate_limit_error": RateLimitError,
    "api_error": UpstreamError,
    "timeout_error": UpstreamTimeoutError,
    "overloaded_error": OverloadedError,
}

_BODY_EXCERPT = 300


def error_type(status: int) -> str:
    """The Anthropic error ``type`` for an HTTP status; unlisted 4xx are invalid requests, 5xx api errors."""
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def render_error(error: GatewayError) -> dict[str, Any]:
    """The error body a client of the Anthropic API gets (also the ``event: error`` payload)."""
    return {"type": "error", "error": {"type": error_type(error.status), "message": error.message}}


def error_from_payload(payload: object, *, status: int | None = None) -> GatewayError:
    """A GatewayError from an ``{"type":"error","error":{...}}`` payload (HTTP body or stream event)."""
    inner = payload.get("error") if isinstance(payload, dict) else None
    kind = inner.get("type") if isinstance(inner, dict) else None
    message = inner.get("message") if isinstance(inner, dict) else None
    if isinstance(kind, str) and kind in _CLASS_BY_TYPE:
        cls = _CLASS_BY_TYPE[kind]
    elif status is not None:
        cls = _upstream_class(status)
    else:
        cls = UpstreamError
    if not isinstance(message, str) or not message:
        message = f"upstream error {kind}" if isinstance(kind, str) else "upstream error"
    return cls(message, code=kind if isinstance(kind, str) else None)


def _upstream_class(status: int) -> type[GatewayError]:
    """The class of an upstream HTTP status: an upstream 500 is an upstream failure, not ours."""
    cls = error_class_for_status(status)
    return UpstreamError if cls is ApiError else cls


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """An upstream Anthropic HTTP error answer -> the GatewayError it means; never raises."""
    try:
        payload: object = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        error = error_from_payload(payload, status=status)
    else:
        text = body.decode("utf-8", errors="replace").strip()[:_BODY_EXCERPT]
        message = f"upstream answered HTTP {status}" + (f": {text}" if text else "")
        error = _upstream_class(status)(message)
    error.retry_after = retry_after(headers)
    return error


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if (millis := _number(lowered.get("retry-after-ms"))) is not None:
        return millis / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    if (seconds := _number(value)) is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if number >= 0 and number == number and number != float("inf") else None
