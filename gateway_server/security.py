"""Who may call the gateway (DESIGN §5, §8).

- ``RELAYGATE_API_KEY``: when set, every route but ``GET /health`` needs it, as ``x-api-key`` or
  ``Authorization: Bearer`` (Claude Code sends whichever of the two it was given).
- DNS rebinding: a server on loopback only answers requests whose ``Host`` is a loopback name, so
  a web page whose domain was re-pointed at 127.0.0.1 cannot reach it.
- Cross-site calls: admin routes refuse requests whose ``Origin`` is not the gateway's own, so a page
  in the user's browser cannot switch accounts or rewrite Claude Code's settings.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response

from gateway_core.errors import AuthenticationError, GatewayError, PermissionDeniedError
from gateway_server.config import ServerConfig, is_loopback
from gateway_server.errors import error_response, renderer_for_path

_OPEN_PATHS = frozenset({"/health"})


def _host_name(host_header: str) -> str:
    return urlsplit(f"//{host_header}").hostname or ""


def _presented_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None


def _is_admin(path: str) -> bool:
    return not path.startswith("/v1/") and path not in _OPEN_PATHS and path != "/"


def check_request(request: Request[Any, Any, Any], config: ServerConfig) -> GatewayError | None:
    """The reason to refuse ``request``, or ``None`` to let it through."""
    path = request.url.path
    if is_loopback(config.host):
        host = request.headers.get("host", "")
        if host and not is_loopback(_host_name(host)):
            return PermissionDeniedError(
                f"Host {host!r} is not this gateway (it only answers loopback names)"
            )
    origin = request.headers.get("origin")
    if origin and _is_admin(path) and not is_loopback(urlsplit(origin).hostname or ""):
        return PermissionDeniedError(f"cross-site request from {origin!r} refused")
    if config.api_key and not (request.method == "GET" and path in _OPEN_PATHS):
        presented = _presented_key(request)
        if presented is None or not hmac.compare_digest(presented.encode(), config.api_key.encode()):
            return AuthenticationError("missing or invalid API key (send x-api-key or Authorization: Bearer)")
    return None


async def guard(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Litestar ``before_request`` hook: answer refused requests in their route's error shape."""
    refusal = check_request(request, request.app.state.config)
    if refusal is None:
        return None
    return error_response(refusal, renderer_for_path(request.url.path))
