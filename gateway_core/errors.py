"""The one error type of the gateway.

Every failure that can reach a client — a malformed request, an upstream refusal, a stream cut short —
becomes a :class:`GatewayError` at the boundary where it is first seen (STYLE §11). It carries the
error *kind*, the HTTP status that kind answers with and, for rate limits and overloads, how long the
client should wait. Each wire format renders it in its own error shape; nothing else needs to know how.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    """What went wrong, independent of any wire format."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    BILLING = "billing"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    REQUEST_TOO_LARGE = "request_too_large"
    RATE_LIMIT = "rate_limit"
    API_ERROR = "api_error"
    UPSTREAM = "upstream"
    TIMEOUT = "timeout"
    OVERLOADED = "overloaded"


class GatewayError(Exception):
    """Base class: a failure with a kind, an HTTP status and an optional retry delay.

    ``param`` names the offending request field (dotted path) when there is one; ``code`` keeps a
    machine-readable upstream code such as ``usage_limit_reached`` or ``context_length_exceeded``.
    """

    kind: ClassVar[ErrorKind] = ErrorKind.API_ERROR
    status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.param = param
        self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status})"


class InvalidRequestError(GatewayError):
    """The client's request is malformed or asks for something the target cannot do (400)."""

    kind = ErrorKind.INVALID_REQUEST
    status = 400


class AuthenticationError(GatewayError):
    """Missing or rejected credentials: the gateway key, or every upstream account (401)."""

    kind = ErrorKind.AUTHENTICATION
    status = 401


class BillingError(GatewayError):
    """The upstream account has no credits left (402)."""

    kind = ErrorKind.BILLING
    status = 402


class PermissionDeniedError(GatewayError):
    """Authenticated, but not allowed: moderation, a plan without the feature, a cross-site call (403)."""

    kind = ErrorKind.PERMISSION
    status = 403


class NotFoundError(GatewayError):
    """Unknown model, provider, account or route (404)."""

    kind = ErrorKind.NOT_FOUND
    status = 404


class ConflictError(GatewayError):
    """The request clashes with stored state, e.g. a settings file we refuse to overwrite (409)."""

    kind = ErrorKind.CONFLICT
    status = 409


class RequestTooLargeError(GatewayError):
    """The request exceeds a body limit or the model's context window (413), so clients compact."""

    kind = ErrorKind.REQUEST_TOO_LARGE
    status = 413


class RateLimitError(GatewayError):
    """Every usable account or the provider is rate limited; ``retry_after`` says until when (429)."""

    kind = ErrorKind.RATE_LIMIT
    status = 429


class ApiError(GatewayError):
    """An internal failure of the gateway itself (500)."""

    kind = ErrorKind.API_ERROR
    status = 500


class UpstreamError(GatewayError):
    """The upstream failed: a 5xx, garbage, or a stream that ended before completing (502)."""

    kind = ErrorKind.UPSTREAM
    status = 502


class UpstreamTimeoutError(GatewayError):
    """The upstream sent nothing within the allowed time (504)."""

    kind = ErrorKind.TIMEOUT
    status = 504


class OverloadedError(GatewayError):
    """The upstream says it is overloaded; clients retry after ``retry_after`` (529)."""

    kind = ErrorKind.OVERLOADED
    status = 529


_BY_STATUS: dict[int, type[GatewayError]] = {
    cls.status: cls
    for cls in (
        InvalidRequestError,
        AuthenticationError,
        BillingError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        RequestTooLargeError,
        RateLimitError,
        ApiError,
        UpstreamError,
        UpstreamTimeoutError,
        OverloadedError,
    )
}

_BY_KIND: dict[ErrorKind, type[GatewayError]] = {cls.kind: cls for cls in _BY_STATUS.values()}


def error_class_for_status(status: int) -> type[GatewayError]:
    """The error class an HTTP status maps to: unknown 4xx are invalid requests, 5xx upstream failures."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status == 422:
        return InvalidRequestError
    if status in (408,):
        return UpstreamTimeoutError
    if status == 503:
        return OverloadedError
    if 400 <= status < 500:
        return InvalidRequestError
    return UpstreamError


def error_class_for_kind(kind: ErrorKind) -> type[GatewayError]:
    """The error class of a kind (used when an error event is turned back into an exception)."""
    return _BY_KIND[kind]
