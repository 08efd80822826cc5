"""Errors in each API's own shape (DESIGN §6): Anthropic on /v1/messages* and /v1/models, OpenAI on
/v1/chat/completions, ``{"success": false, "error": …}`` on the admin routes.

Every failure a handler does not expect becomes a 500 ``api_error`` with a generic message; the
traceback goes to the log, never to the client.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException

from gateway_core.errors import ApiError, GatewayError, error_class_for_status
from gateway_core.formats import anthropic, openai_chat

logger = logging.getLogger(__name__)

ErrorRenderer = Callable[[GatewayError], dict[str, Any]]


def render_admin_error(error: GatewayError) -> dict[str, Any]:
    """The admin routes' error body."""
    return {"success": False, "error": error.message}


def as_gateway_error(exc: Exception) -> GatewayError:
    """Any exception as a GatewayError: framework errors keep their status, the rest is a 500."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, HTTPException):
        return error_class_for_status(exc.status_code)(str(exc.detail))
    logger.exception("unexpected error while serving a request", exc_info=exc)
    return ApiError("internal error in the gateway; see its log")


def error_headers(error: GatewayError) -> dict[str, str]:
    """``retry-after`` in whole seconds whenever the error says when to retry."""
    if error.retry_after is None:
        return {}
    return {"retry-after": str(max(0, math.ceil(error.retry_after)))}


def error_response(error: GatewayError, render: ErrorRenderer) -> Response[dict[str, Any]]:
    return Response(
        content=render(error),
        status_code=error.status,
        headers=error_headers(error),
        media_type=MediaType.JSON,  # even on routes that answer HTML or text (the OAuth callback page)
    )


def handler_for(
    render: ErrorRenderer,
) -> Callable[[Request[Any, Any, Any], Exception], Response[dict[str, Any]]]:
    """A Litestar exception handler answering in the shape ``render`` writes."""

    def handle(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
        return error_response(as_gateway_error(exc), render)

    return handle


anthropic_errors = handler_for(anthropic.render_error)
openai_errors = handler_for(openai_chat.render_error)
admin_errors = handler_for(render_admin_error)


def renderer_for_path(path: str) -> ErrorRenderer:
    """The error shape of a path, for failures outside any controller (an unknown route)."""
    if path.startswith("/v1/chat"):
        return openai_chat.render_error
    if path.startswith("/v1/"):
        return anthropic.render_error
    return render_admin_error


def app_errors(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """The application-wide handler: the shape follows the path."""
    return error_response(as_gateway_error(exc), renderer_for_path(request.url.path))
