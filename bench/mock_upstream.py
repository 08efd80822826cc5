"""The benchmark's upstream: both protocols the gateway speaks, answered at once, as raw ASGI.

``python -m bench.mock_upstream --port N`` serves on 127.0.0.1 (uvicorn, uvloop, httptools):

- ``POST /backend-api/codex/responses``: a Codex answer as an SSE stream (any bearer is accepted);
- ``GET /backend-api/codex/models``, ``GET /backend-api/wham/usage``: the side endpoints a Codex account
  touches;
- ``POST /v1/chat/completions``: a Kilo / OpenRouter answer, streamed when the body asks for it;
- ``/_bench/*``: control: ``GET health``, ``GET stats``, ``POST hold`` (streams pause after their first
  :data:`HOLD_AFTER` frames until ``POST release``, at most :data:`HOLD_LIMIT` seconds), so that the bench
  can keep many streams open at once to measure a gateway's memory.

There is no artificial delay: each SSE frame is one ``send`` (one write, as an upstream flushing each
token), and the answers are built once (:mod:`bench.mock_bodies`). The request body is read to the end;
only the Codex route parses it, because the backend echoes ``instructions`` and ``tools``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from bench import mock_bodies

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HOLD_AFTER = 16
HOLD_LIMIT = 60.0

_SSE = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
_JSON = [(b"content-type", b"application/json")]
# The chat route streams when the body says so; our bodies are compact JSON (orjson / JSON.stringify).
_STREAM_FLAGS = (b'"stream":true', b'"stream": true')


class _State:
    """Counters and the hold switch, shared by every request of the process."""

    def __init__(self) -> None:
        self.requests = 0
        self.open_streams = 0
        self.held = 0
        self.hold = False
        self.release = asyncio.Event()


_state = _State()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream(send: Send, headers: list[tuple[bytes, bytes]], frames: list[bytes]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    _state.open_streams += 1
    try:
        for index, frame in enumerate(frames):
            if index == HOLD_AFTER and _state.hold:
                _state.held += 1
                try:
                    await asyncio.wait_for(_state.release.wait(), HOLD_LIMIT)
                except TimeoutError:
                    pass
                finally:
                    _state.held -= 1
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        _state.open_streams -= 1


def _responses_frames(body: bytes) -> list[bytes]:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        request = None
    return mock_bodies.responses_answer(request)


async def _control(path: str, send: Send) -> None:
    if path == "/_bench/hold":
        _state.hold = True
    elif path == "/_bench/release":
        _state.hold = False
        _state.release.set()
        _state.release = asyncio.Event()
    stats = {"requests": _state.requests, "open": _state.open_streams, "held": _state.held}
    await _answer(send, 200, orjson.dumps(stats), _JSON)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI application."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    body = await _read_body(receive)
    if path.startswith("/_bench/"):
        await _control(path, send)
        return
    _state.requests += 1
    now = int(time.time())
    if path == "/backend-api/codex/responses":
        headers = [*_SSE, *mock_bodies.quota_headers(now), (b"x-request-id", b"req_bench")]
        await _stream(send, headers, _responses_frames(body))
    elif path == "/v1/chat/completions":
        if any(flag in body for flag in _STREAM_FLAGS):
            await _stream(send, list(_SSE), list(mock_bodies.CHAT_FRAMES))
        else:
            await _answer(send, 200, mock_bodies.CHAT_COMPLETION, _JSON)
    elif path == "/backend-api/codex/models":
        await _answer(send, 200, mock_bodies.MODELS, [*_JSON, (b"etag", b'"bench"')])
    elif path == "/backend-api/wham/usage":
        await _answer(send, 200, mock_bodies.wham_usage(now), _JSON)
    else:
        detail = f"Not Found: {scope['method']} {path}"
        await _answer(send, 404, orjson.dumps({"detail": detail}), _JSON)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="the benchmark's mock upstream")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        backlog=4096,
        # Longer than any client's pool keeps an idle connection (relaygate: 90 s): the bench measures
        # speed, not the race between a server closing an idle connection and a client reusing it.
        timeout_keep_alive=300,
    )


if __name__ == "__main__":
    main()
