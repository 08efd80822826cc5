"""Reading request bodies: parse once, with errors that say what is wrong."""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Request

from gateway_core.errors import InvalidRequestError
from gateway_core.gateway import Gateway


async def read_json(request: Request[Any, Any, Any]) -> Any:
    """The body as JSON; an empty or malformed body is a 400 naming the problem.

    Read from the request's stream (which enforces the body-size limit) rather than ``body()``, which
    would keep the raw bytes on the request for as long as the answer streams.
    """
    raw = b"".join([chunk async for chunk in request.stream()])
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not raw.strip():  # only a failed parse pays for the copy
            raise InvalidRequestError("request body is empty; expected a JSON object") from None
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None


def gateway_of(request: Request[Any, Any, Any]) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def client_headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The client's headers with lower-case names (the Gateway strips credentials before providers)."""
    return {name.lower(): value for name, value in request.headers.items()}
