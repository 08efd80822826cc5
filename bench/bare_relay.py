"""The bare relay: the least a Python gateway must do, our measuring stick for relaygate's overhead.

Raw ASGI (served by uvicorn + uvloop + httptools, as relaygate is): ``POST /v1/messages`` parses the
Anthropic body with orjson, maps it minimally to a Chat Completions body, forwards it with one shared
``httpx.AsyncClient`` on the aiohttp transport, and maps the answer back (a message, or per upstream event
one ``content_block_delta``); ``POST /v1/chat/completions`` is parsed, re-serialised and passed through.
No validation, no routing, no accounts: whatever relaygate costs beyond this is its own.
``BENCH_UPSTREAM`` is the upstream's ``/v1`` base.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:8090/v1").rstrip("/") + "/chat/completions"
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_clients: list[httpx.AsyncClient] = []
"""The one shared client, made at start-up (lifespan) and closed at shutdown."""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else ():
        kind = block.get("type")
        if kind == "text":
            parts.append(block.get("text", ""))
        elif kind == "tool_result":
            parts.append(_text(block.get("content")))
        elif kind == "tool_use":
            parts.append(orjson.dumps(block.get("input")).decode())
    return "\n".join(parts)


def chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages body as a Chat Completions body: text only, tools as functions."""
    messages = [{"role": "system", "content": _text(body["system"])}] if body.get("system") else []
    for message in body.get("messages", ()):
        role = message.get("role") if message.get("role") in ("user", "assistant", "system") else "user"
        messages.append({"role": role, "content": _text(message.get("content"))})
    chat: dict[str, Any] = {
        "model": body.get("model"),
        "messages": messages,
        "stream": bool(body.get("stream")),
    }
    chat["max_tokens"] = body.get("max_tokens")
    tools = [
        {"type": "function", "function": {"name": t["name"], "parameters": t.get("input_schema", {})}}
        for t in body.get("tools", ())
        if "name" in t
    ]
    if tools:
        chat["tools"] = tools
    if chat["stream"]:
        chat["stream_options"] = {"include_usage": True}
    return chat


def _event(name: bytes, payload: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def message_body(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat completion as an Anthropic message."""
    usage = completion.get("usage") or {}
    text = completion["choices"][0]["message"].get("content") or ""
    return {
        "id": "msg_bare",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": usage.get("prompt_tokens", 0),
            "output_tokens": usage.get("completion_tokens", 0),
        },
    }


async def anthropic_events(chunks: AsyncIterator[bytes], model: str) -> AsyncIterator[bytes]:
    """Chat SSE chunks as an Anthropic stream: one text block, usage at the end."""
    message = {"id": "msg_bare", "type": "message", "role": "assistant", "model": model, "content": []}
    yield _event(b"message_start", {"type": "message_start", "message": message})
    block = {"type": "text", "text": ""}
    yield _event(b"content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
    usage: dict[str, Any] = {}
    buffer = b""
    async for chunk in chunks:
        *frames, buffer = (buffer + chunk).split(b"\n\n")
        for frame in frames:
            if not frame.startswith(b"data: {"):
                continue
            data = orjson.loads(frame[6:])
            usage = data.get("usage") or usage
            text = data["choices"][0]["delta"].get("content") if data.get("choices") else None
            if text:
                delta = {"type": "text_delta", "text": text}
                yield _event(
                    b"content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
                )
    yield _event(b"content_block_stop", {"type": "content_block_stop", "index": 0})
    delta = {"stop_reason": "end_turn"}
    out = {"output_tokens": usage.get("completion_tokens", 0)}
    yield _event(b"message_delta", {"type": "message_delta", "delta": delta, "usage": out})
    yield _event(b"message_stop", {"type": "message_stop"})


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """The ASGI application."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            limits = httpx.Limits(max_connections=512)
            _clients.append(httpx.AsyncClient(transport=AiohttpTransport(limits=limits), trust_env=False))
            await send({"type": "lifespan.startup.complete"})
        for client in _clients:
            await client.aclose()
        await send({"type": "lifespan.shutdown.complete"})
        return
    client = _clients[0]
    raw, more = b"", True
    while more:
        message = await receive()
        raw, more = raw + message.get("body", b""), message.get("more_body", False)
    if scope["path"] not in ("/v1/messages", "/v1/chat/completions"):
        await send({"type": "http.response.start", "status": 200 if scope["path"] == "/health" else 404})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    body = orjson.loads(raw)
    anthropic = scope["path"] == "/v1/messages"
    chat = chat_body(body) if anthropic else body
    request = client.build_request("POST", UPSTREAM, content=orjson.dumps(chat), headers=_JSON, timeout=60)
    response = await client.send(request, stream=True)
    try:
        streaming = bool(chat.get("stream"))
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": _SSE if streaming else _JSON,
            }
        )
        if not streaming:
            answer = await response.aread()
            if anthropic and response.status_code == 200:
                answer = orjson.dumps(message_body(orjson.loads(answer), body.get("model", "")))
            await send({"type": "http.response.body", "body": answer})
            return
        chunks = (
            anthropic_events(response.aiter_bytes(), body.get("model", ""))
            if anthropic
            else response.aiter_bytes()
        )
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await response.aclose()
