"""Errors in the OpenAI shape, and every error shape a Chat upstream answers with (protocols §2.4, §3).

Towards OpenAI clients an error is ``{"error":{"message","type","param","code"}}``. The ``type`` names
follow DESIGN §6 so status and type always agree (``invalid_request_error`` 400,
``authentication_error`` 401, ``permission_error`` 403, ``not_found_error`` 404, ``rate_limit_error``
429, ...); where DESIGN names none, OpenAI's own words are used: ``insufficient_quota`` for an account
without credits (OpenAI's code for that case) and ``server_error`` for a failed upstream (what OpenAI
sends in a mid-stream error chunk).

From upstreams, four body shapes are understood, plus anything else by HTTP status alone:
- OpenRouter ``{"error":{"code":<int>,"message","metadata":{...}}}``;
- Kilo flat ``{"error":"Rate limit exceeded","message":"..."}``;
- Kilo 402 ``{"error":{"title","message","balance","buyCreditsUrl"}}``;
- OpenAI ``{"error":{"message","type","param","code"}}`` (and FastAPI's ``{"detail": "..."}``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from gateway_core.errors import (
    BillingError,
    ErrorKind,
    GatewayError,
    InvalidRequestError,
    OverloadedError,
    RateLimitError,
    RequestTooLargeError,
    UpstreamError,
    error_class_for_status,
)

_TYPE_FOR_KIND: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.BILLING: "insufficient_quota",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.CONFLICT: "conflict_error",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.API_ERROR: "api_error",
    ErrorKind.UPSTREAM: "server_error",
    ErrorKind.TIMEOUT: "timeout_error",
    ErrorKind.OVERLOADED: "overloaded_error",
}

# Upstream `type` / string `code` values whose meaning does not follow from the HTTP status:
# OpenAI answers "no credits" with 429 insufficient_quota, and context overflows with a 400.
_CLASS_FOR_CODE: dict[str, type[GatewayError]] = {
    "insufficient_quota": BillingError,
    "context_length_exceeded": RequestTooLargeError,
    "rate_limit_exceeded": RateLimitError,
    "rate_limit_error": RateLimitError,
    "server_is_overloaded": OverloadedError,
    "overloaded_error": OverloadedError,
    "invalid_request_error": InvalidRequestError,
    "server_error": UpstreamError,
}

# OpenRouter reports context overflows only in prose ("This endpoint's maximum context length is ...");
# Claude Code compacts on 413, so such a 400 becomes request_too_large (protocols §9, overflow).
_CONTEXT_OVERFLOW = re.compile(
    r"maximum context length|context window|context_length_exceeded|prompt is too long", re.I
)
_TRY_AGAIN = re.compile(r"try again in (\d+(?:\.\d+)?)\s*(ms|s)", re.I)


def render_error(error: GatewayError) -> dict[str, Any]:
    """The OpenAI error body for ``error``."""
    return {
        "error": {
            "message": error.message,
            "type": _TYPE_FOR_KIND.get(error.kind, "api_error"),
            "param": error.param,
            "code": error.code,
        }
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _retry_after(headers: Mapping[str, str], message: str) -> float | None:
    """Seconds to wait: ``retry-after-ms``, ``Retry-After`` (seconds or an HTTP date), or the
    "try again in 11.054s" phrase OpenAI puts in rate-limit messages."""
    if (ms := _header(headers, "retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    if (value := _header(headers, "retry-after")) is not None:
        try:
            return max(float(value), 0.0)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                now = datetime.now(UTC) if when.tzinfo is not None else datetime.now()
                return max((when - now).total_seconds(), 0.0)
    if (match := _TRY_AGAIN.search(message)) is not None:
        amount = float(match.group(1))
        return amount / 1000 if match.group(2).lower() == "ms" else amount
    return None


@dataclass(frozen=True, slots=True)
class _Described:
    message: str | None = None
    code: str | None = None
    """The upstream's string ``code`` (``context_length_exceeded``), kept on the error."""
    kind: str | None = None
    """OpenAI's ``type`` (``insufficient_quota``), used only to classify."""
    param: str | None = None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _describe(payload: object) -> _Described:
    """What any known error body shape says; an empty description when the shape is unknown."""
    if not isinstance(payload, dict):
        return _Described()
    error = payload.get("error")
    if isinstance(error, dict):
        message, title = _text(error.get("message")), _text(error.get("title"))
        message = f"{title}: {message}" if title and message else message or title
        metadata = error.get("metadata")
        raw = _text(metadata.get("raw")) if isinstance(metadata, dict) else None
        if message and raw and raw not in message:
            message = f"{message} ({raw[:500]})"  # OpenRouter: what the provider behind it said
        return _Described(
            message, _text(error.get("code")), _text(error.get("type")), _text(error.get("param"))
        )
    detail = _text(payload.get("message"))
    if isinstance(error, str):
        return _Described(f"{error}: {detail}" if detail and detail != error else error)
    return _Described(_text(payload.get("detail")) or detail)


def _classify(status: int, described: _Described, message: str) -> type[GatewayError]:
    for word in (described.code, described.kind):
        cls = _CLASS_FOR_CODE.get(word) if word is not None else None
        # A type such as invalid_request_error only means the client's fault on a 4xx answer.
        if cls is not None and (cls is not InvalidRequestError or 400 <= status < 500):
            return cls
    if status in (400, 413) and _CONTEXT_OVERFLOW.search(message):
        return RequestTooLargeError
    if status == 500:
        # An upstream's internal failure is a bad gateway for us; ApiError means our own bug.
        return UpstreamError
    if status < 400:
        return UpstreamError
    return error_class_for_status(status)


def _build(status: int, payload: object, headers: Mapping[str, str], fallback: str) -> GatewayError:
    described = _describe(payload)
    message = described.message or fallback
    cls = _classify(status, described, message)
    retry_after = _retry_after(headers, message) if cls in (RateLimitError, OverloadedError) else None
    return cls(message, retry_after=retry_after, param=described.param, code=described.code)


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """The error an upstream's HTTP error answer means; never raises, whatever the body."""
    try:
        payload: object = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        payload = None
    snippet = body[:200].decode("utf-8", errors="replace").strip()
    fallback = f"upstream answered HTTP {status}" + (f": {snippet}" if snippet else "")
    return _build(status, payload, headers, fallback)


def error_from_payload(payload: dict[str, Any]) -> GatewayError:
    """The error of a body or stream chunk with a top-level ``error`` (an HTTP 200 that failed).

    OpenRouter's numeric ``code`` is the status the error would have had; OpenAI's mid-stream chunk
    has a ``type`` such as ``server_error`` instead.
    """
    error = payload.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600 else 502
    return _build(status, payload, {}, "the upstream failed while answering")
