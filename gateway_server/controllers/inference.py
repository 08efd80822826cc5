"""What the inference controllers share: open a primed stream, answer it streamed or whole.

Answers are handed to Litestar as ready ASGI responses (the body serialised here, once), which spares
each request Litestar's response resolution.

The upstream stream is opened (and its first event awaited) before any status is committed, so a
failure before the answer starts is a proper HTTP error; afterwards it can only be an in-band error
event (DESIGN §6). A non-streaming answer is the same stream reduced by the one reducer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from litestar import Request as HttpRequest
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse

from gateway_core.gateway import Stream
from gateway_core.models import Request, Response
from gateway_core.session import session_key
from gateway_core.streaming import StreamEvent, accumulate_async
from gateway_server.requests import client_headers, gateway_of
from gateway_server.streaming import sse_body

PROVIDER_HEADER = "x-relaygate-provider"
MODEL_HEADER = "x-relaygate-model"


def served_by(stream: Stream) -> dict[str, str]:
    """Headers naming what really served the answer (bodies echo the model asked for)."""
    return {PROVIDER_HEADER: stream.provider, MODEL_HEADER: stream.upstream_model}


async def open_stream(http: HttpRequest[Any, Any, Any], request: Request) -> Stream:
    headers = client_headers(http)
    return await gateway_of(http).stream(
        request, session_id=session_key(headers, request), headers=headers, streaming=request.stream
    )


async def complete(stream: Stream, request: Request) -> Response:
    """The whole answer, reduced from the stream; the body reports the model the client asked for."""
    async with stream:
        response = await accumulate_async(stream)
    if response.model != request.model:
        response = response.model_copy(update={"model": request.model})
    return response


def streamed(
    http: HttpRequest[Any, Any, Any],
    stream: Stream,
    encode: Callable[[StreamEvent], bytes],
    keepalive: bytes,
    headers: dict[str, str] | None = None,
) -> ASGIResponse:
    config = http.app.state.config
    body = sse_body(stream, encode, keepalive=keepalive, interval=config.keepalive_seconds)
    return ASGIStreamingResponse(
        iterator=body,
        media_type="text/event-stream",
        headers={
            "cache-control": "no-cache",
            "x-accel-buffering": "no",
            **served_by(stream),
            **(headers or {}),
        },
    )


def whole(content: dict[str, Any], stream: Stream, headers: dict[str, str] | None = None) -> ASGIResponse:
    return ASGIResponse(
        body=orjson.dumps(content),
        media_type="application/json",
        headers={**served_by(stream), **(headers or {})},
    )
