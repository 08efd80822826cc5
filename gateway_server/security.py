"""Who may call the gateway (DESIGN §5, §8).

- ``RELAYGATE_API_KEY``: when set, every route but ``GET /health`` needs it, as ``x-api-key`` or
  ``Authorization: Bearer`` (Claude Code sends whichever of the two it was given).
- DNS rebinding: a server on loopback only answers requests whose ``Host`` is a loopback name, so
  a web page whose domain was re-pointed at 127.0.0.1 cannot reach it.
- Cross-site calls: a web page in the user's browser must not switch accounts or rewrite Claude
  Code's settings. Admin routes refuse a request whose ``Origin`` is not the gateway's own (scheme,
  host and port of the ``Host`` it was sent to), a state-changing request the browser labels
  ``Sec-Fetch-Site: cross-site`` or ``same-site`` (another port on localhost is the same *site*), and
  a state-changing request with a body that is not JSON: a form or ``text/plain`` POST is exactly
  what a page can send without asking, and older browsers may send it without an ``Origin``.
"""

from __future__ import annotations

import functools
import hmac
from typing import Any
from urllib.parse import SplitResult, urlsplit

from litestar import Request, Response

from gateway_core.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
)
from gateway_server.config import ServerConfig, is_loopback
from gateway_server.errors import error_response, renderer_for_path

_OPEN_PATHS = frozenset({"/health"})

# GETs that need no API key: liveness, and the OAuth redirect a browser follows (it cannot carry the
# key; the unguessable one-time ``state`` it must present is what authenticates it).
_KEYLESS_GETS = _OPEN_PATHS | {"/auth/callback"}

# Methods that change nothing: the browser may send them cross-site freely (the answer stays unreadable).
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Sec-Fetch-Site values of requests made by the gateway's own pages or typed by the user.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_name(host_header: str) -> str:
    return urlsplit(f"//{host_header}").hostname or ""


_is_loopback_bind = functools.lru_cache(maxsize=16)(is_loopback)
""":func:`is_loopback` for the server's bind address, asked on every request."""


@functools.lru_cache(maxsize=256)
def _names_loopback(host_header: str) -> bool:
    """Whether a ``Host`` header names a loopback host; cached, as every request sends one of a few."""
    return is_loopback(_host_name(host_header))


def _port(parts: SplitResult, scheme: str) -> int | None:
    try:
        return parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None


def is_own_origin(origin: str, host_header: str) -> bool:
    """Whether ``origin`` is the gateway the request was sent to (``Host``): same host and port.

    ``null`` (sandboxed frames, local files) and anything that is not http(s) is foreign.
    """
    sent_from = urlsplit(origin)
    if sent_from.scheme not in _DEFAULT_PORTS or not sent_from.hostname:
        return False
    sent_to = urlsplit(f"//{host_header}")
    if not sent_to.hostname or sent_from.hostname.lower() != sent_to.hostname.lower():
        return False
    origin_port = _port(sent_from, sent_from.scheme)
    return origin_port is not None and origin_port == _port(sent_to, sent_from.scheme)


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


def _has_body(request: Request[Any, Any, Any]) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _cross_site_refusal(request: Request[Any, Any, Any], config: ServerConfig) -> GatewayError | None:
    """Why an admin request looks like it came from another site's page, or ``None``."""
    origin = request.headers.get("origin")
    host = request.headers.get("host") or f"{config.host}:{config.port}"
    if origin and not is_own_origin(origin, host):
        return PermissionDeniedError(f"cross-site request from {origin!r} refused")
    if request.method in _SAFE_METHODS:
        return None
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site and fetch_site.lower() not in _OWN_FETCH_SITES:
        return PermissionDeniedError(f"cross-site request refused (Sec-Fetch-Site: {fetch_site})")
    return None


def _body_refusal(request: Request[Any, Any, Any]) -> GatewayError | None:
    """A state-changing admin request with a non-JSON body (a form or text/plain POST)."""
    if request.method in _SAFE_METHODS or not _has_body(request):
        return None
    content_type = request.headers.get("content-type", "")
    if _is_json(content_type):
        return None
    shown = content_type or "none"
    return InvalidRequestError(
        f"content-type: admin requests with a body must send application/json (got {shown})",
        param="content-type",
    )


def check_request(request: Request[Any, Any, Any], config: ServerConfig) -> GatewayError | None:
    """The reason to refuse ``request``, or ``None`` to let it through."""
    path: str = request.scope["path"]
    if _is_loopback_bind(config.host):
        host = request.headers.get("host", "")
        if host and not _names_loopback(host):
            return PermissionDeniedError(
                f"Host {host!r} is not this gateway (it only answers loopback names)"
            )
    admin = _is_admin(path)
    if admin and (refusal := _cross_site_refusal(request, config)) is not None:
        return refusal
    if config.api_key and not (request.method == "GET" and path in _KEYLESS_GETS):
        presented = _presented_key(request)
        if presented is None or not hmac.compare_digest(presented.encode(), config.api_key.encode()):
            return AuthenticationError("missing or invalid API key (send x-api-key or Authorization: Bearer)")
    if admin:
        return _body_refusal(request)
    return None


async def guard(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Litestar ``before_request`` hook: answer refused requests in their route's error shape."""
    refusal = check_request(request, request.app.state.config)
    if refusal is None:
        return None
    return error_response(refusal, renderer_for_path(request.scope["path"]))
