"""Codex / Responses failures -> :class:`GatewayError`, and GatewayError -> the OpenAI error shape.

Two sources of failures (protocols §4.7, §4.8, §7.9): HTTP errors before the stream (FastAPI-style
``{"detail": ...}`` bodies, ``{"error": {...}}`` bodies, Cloudflare HTML) and in-band failures after it
(``response.failed`` and the ``error`` event), which carry only an error ``code`` and a message. Both
go through the same code table, so a given upstream verdict always means the same thing to clients.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from gateway_core.errors import (
    AuthenticationError,
    BillingError,
    ErrorKind,
    GatewayError,
    InvalidRequestError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
    error_class_for_status,
)

# Upstream error codes (`response.failed` error.code, `error` event code, HTTP error.type/code).
_CODES: dict[str, type[GatewayError]] = {
    # 413, not the 400 of protocols §7.9: a 413 `request_too_large` is what makes Claude Code compact
    # its conversation (protocols §9 "Overflow"); the code is kept for clients that look at it.
    "context_length_exceeded": RequestTooLargeError,
    "rate_limit_exceeded": RateLimitError,
    "usage_limit_reached": RateLimitError,
    # The account's plan or credits do not cover the request: waiting does not help (Codex treats
    # both as fatal), so a billing error, never a 429 that clients would keep retrying.
    "insufficient_quota": BillingError,
    "usage_not_included": BillingError,
    "server_is_overloaded": OverloadedError,
    "slow_down": OverloadedError,
    "server_error": UpstreamError,
    "invalid_prompt": InvalidRequestError,
    "invalid_request_error": InvalidRequestError,
    "invalid_value": InvalidRequestError,
}

# "Please try again in 11.054s" / "in 20ms" / "in 1m30s" (OpenAI rate-limit messages).
_TRY_AGAIN = re.compile(r"try again in\s+((?:\d+(?:\.\d+)?\s*(?:ms|h|m|s)\s*)+)", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# GatewayError kind -> the OpenAI-style error `type` (statuses and types agree, DESIGN §6).
_TYPE_FOR_KIND: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.BILLING: "billing_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.CONFLICT: "conflict_error",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.API_ERROR: "api_error",
    ErrorKind.UPSTREAM: "upstream_error",
    ErrorKind.TIMEOUT: "timeout_error",
    ErrorKind.OVERLOADED: "overloaded_error",
}

# GatewayError kind -> the Responses failure code an in-band error is rendered with.
_CODE_FOR_KIND: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_prompt",
    ErrorKind.REQUEST_TOO_LARGE: "context_length_exceeded",
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
    ErrorKind.BILLING: "insufficient_quota",
    ErrorKind.OVERLOADED: "server_is_overloaded",
}


def retry_after_from_message(message: str) -> float | None:
    """The delay in "Please try again in 11.054s" (Codex retries after exactly that), in seconds."""
    match = _TRY_AGAIN.search(message)
    if match is None:
        return None
    return sum(float(value) * _UNIT_SECONDS[unit] for value, unit in _DURATION_PART.findall(match[1]))


def error_for_code(
    code: str | None, message: str, *, retry_after: float | None = None, param: str | None = None
) -> GatewayError:
    """The error an upstream failure code means; unknown codes are upstream failures (502)."""
    cls = _CODES.get(code or "", UpstreamError)
    if retry_after is None and cls in (RateLimitError, OverloadedError):
        retry_after = retry_after_from_message(message)
    return cls(message, retry_after=retry_after, param=param, code=code)


def error_from_failure(error: object) -> GatewayError:
    """The error of a ``response.failed`` ``response.error`` object or an ``error`` event payload."""
    if not isinstance(error, dict):
        return UpstreamError("the upstream response failed without saying why")
    nested = error.get("error")
    if isinstance(nested, dict):  # `{"type": "error", "error": {...}}` variant of the error event
        error = nested
    code = _first_str(error.get("code"), error.get("type") if error.get("type") != "error" else None)
    message = _first_str(error.get("message")) or f"the upstream response failed ({code or 'no code'})"
    return error_for_code(code, message, param=_first_str(error.get("param")))


def parse_error(
    status: int, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> GatewayError:
    """A Codex HTTP error answer -> the GatewayError it means (protocols §4.8, §7.9). Never raises.

    ``now`` (unix seconds) is the clock for ``resets_at``; it defaults to the current time.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    payload = _json(body)
    detail = payload.get("detail")
    raw_error = payload.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    code = _first_str(error.get("code"), error.get("type"), raw_error if isinstance(raw_error, str) else None)
    message = (
        _detail_text(detail)
        or _first_str(error.get("message"), payload.get("message"))
        or _fallback_message(status, body)
    )
    param = _first_str(error.get("param"))
    header_delay = _retry_after_header(lowered, now)

    if code == "usage_limit_reached":
        delay = _usage_limit_delay(error, now)
        return RateLimitError(message, retry_after=delay if delay is not None else header_delay, code=code)
    if code in _CODES and _CODES[code] is not UpstreamError:
        return error_for_code(code, message, retry_after=header_delay, param=param)
    if status == 401:
        return AuthenticationError(message, code=code or _authorization_error_code(lowered))
    if status == 403:
        return PermissionDeniedError(message, code=code)
    if status == 429:
        delay = header_delay if header_delay is not None else retry_after_from_message(message)
        return RateLimitError(message, retry_after=delay, code=code)
    if status == 503:
        return OverloadedError(message, retry_after=header_delay, code=code)
    if status == 504:
        return UpstreamTimeoutError(message, code=code)
    if status >= 500:
        return UpstreamError(message, code=code)
    return error_class_for_status(status)(message, param=param, code=code, retry_after=header_delay)


def render_error(error: GatewayError) -> dict[str, Any]:
    """The OpenAI error shape ``{"error": {"message", "type", "param", "code"}}``."""
    return {
        "error": {
            "message": error.message,
            "type": _TYPE_FOR_KIND.get(error.kind, "api_error"),
            "param": error.param,
            "code": error.code,
        }
    }


def failure_code(error: GatewayError) -> str:
    """The ``response.failed`` code an error is streamed with (its own code when it has one)."""
    return error.code or _CODE_FOR_KIND.get(error.kind, "server_error")


# --- helpers ---------------------------------------------------------------------------------------


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _first_str(*values: object) -> str | None:
    for value in values:
        if isinstance(value, str) and value:
            return value
    return None


def _detail_text(detail: object) -> str | None:
    """FastAPI ``detail``: a string, or a list of validation errors ``{loc, msg}``."""
    if isinstance(detail, str):
        return detail or None
    if isinstance(detail, list):
        texts = []
        for entry in detail:
            if isinstance(entry, dict) and isinstance(entry.get("msg"), str):
                loc = entry.get("loc")
                where = ".".join(str(part) for part in loc) if isinstance(loc, list) else ""
                texts.append(f"{where}: {entry['msg']}" if where else entry["msg"])
        return "; ".join(texts) or None
    return None


def _fallback_message(status: int, body: bytes) -> str:
    """A readable message for bodies that say nothing usable (Cloudflare HTML, empty bodies)."""
    head = body[:512].lower()
    if b"<html" in head or b"<!doctype" in head:
        return f"the Codex backend answered HTTP {status} with an HTML page (likely a Cloudflare block)"
    return f"the Codex backend answered HTTP {status}"


def _retry_after_header(headers: Mapping[str, str], now: float | None) -> float | None:
    """``retry-after-ms``, or ``retry-after`` as seconds or an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)


def _usage_limit_delay(error: Mapping[str, Any], now: float | None) -> float | None:
    """Seconds until a ``usage_limit_reached`` window resets: ``resets_in_seconds`` or ``resets_at - now``."""
    resets_in = error.get("resets_in_seconds")
    if isinstance(resets_in, int | float) and not isinstance(resets_in, bool):
        return max(float(resets_in), 0.0)
    resets_at = error.get("resets_at")
    if isinstance(resets_at, int | float) and not isinstance(resets_at, bool):
        return max(float(resets_at) - (time.time() if now is None else now), 0.0)
    return None


def _authorization_error_code(headers: Mapping[str, str]) -> str | None:
    """The code Codex reads from ``x-error-json`` (base64 JSON) or ``x-openai-authorization-error``."""
    encoded = headers.get("x-error-json")
    if encoded:
        try:
            decoded = _json(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
        except ValueError:
            decoded = {}
        error = decoded.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return str(error["code"])
    return headers.get("x-openai-authorization-error") or None
