"""Fake Kilo gateway / OpenRouter: ``base_url`` plays ``RELAYGATE_KILO_BASE_URL`` (``.../api/gateway``).

Rules it enforces (protocols §3): ``POST {base}/chat/completions`` serves ``:free`` models (or any id
in :attr:`FakeKilo.free_models`) without auth and every other model only with a known Bearer key
(else OpenRouter's 401 shape); an id not in the model list is Kilo's flat 404
``{"error":"Model not found"}``; other paths under the base are Kilo's 400 ``Invalid path``.
``stream: true`` answers OpenRouter SSE (processing comments, reasoning deltas, tool calls, usage with
``cost`` on the last choice chunk, ``[DONE]``), otherwise a padded JSON body. ``GET {base}/models``
lists the models in OpenRouter's shape.

Scripting mirrors the Codex fake: ``script(answer, model=..., times=N)`` and ``set_default``; answers
are :class:`ChatReply` (content + stream faults) or :class:`KiloHttpReply` (any status), with helpers
for the 429 / 5xx / 402 shapes.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import web

from tests.fakes.chat_stream import (
    DONE,
    PADDING,
    PROCESSING,
    ChatContent,
    ChatToolCall,
    ChatUsage,
    completion_body,
    encode_chunk,
    error_chunk,
    new_context,
    stream_chunks,
)
from tests.fakes.server import FakeServer, json_response, main

DEFAULT_KEY = "sk-or-v1-test"


def model_entry(
    model_id: str,
    *,
    name: str | None = None,
    context_length: int = 262_144,
    prompt_price: str | None = None,
    completion_price: str | None = None,
) -> dict[str, Any]:
    """One entry of OpenRouter's ``GET /models`` list; ``:free`` ids cost ``"0"``."""
    free = model_id.endswith(":free")
    return {
        "id": model_id,
        "canonical_slug": model_id.removesuffix(":free"),
        "name": name or model_id,
        "created": 1769472000,
        "description": f"{model_id} (fake)",
        "context_length": context_length,
        "architecture": {
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "tokenizer": "Other",
        },
        "pricing": {
            "prompt": prompt_price or ("0" if free else "0.00000055"),
            "completion": completion_price or ("0" if free else "0.0000025"),
            "request": "0",
            "image": "0",
        },
        "top_provider": {
            "context_length": context_length,
            "max_completion_tokens": 65_536,
            "is_moderated": False,
        },
        "supported_parameters": ["max_tokens", "reasoning", "stop", "temperature", "tool_choice", "tools"],
    }


DEFAULT_MODELS = (
    model_entry("moonshotai/kimi-k2.5:free", name="MoonshotAI: Kimi K2.5 (free)"),
    model_entry("minimax/minimax-m2.5:free", name="MiniMax: MiniMax M2.5 (free)", context_length=196_608),
    model_entry("moonshotai/kimi-k2.5", name="MoonshotAI: Kimi K2.5"),
    model_entry("openai/gpt-5-mini", name="OpenAI: GPT-5 Mini", context_length=400_000),
)


@dataclass(frozen=True)
class ChatCall:
    """One accepted ``/chat/completions`` request, as an answer sees it."""

    request: web.Request
    body: Mapping[str, Any]
    body_size: int
    model: str
    free: bool

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


class ChatAnswer(Protocol):
    async def respond(self, call: ChatCall) -> web.StreamResponse: ...


@dataclass(frozen=True)
class ChatReply:
    """A successful answer (streamed or not, as the request asks).

    Stream faults: ``error_after`` sends N chunks then OpenRouter's mid-stream error chunk and stops
    (no ``[DONE]``); ``cut_after`` sends N chunks then ends without finish, usage or ``[DONE]``;
    ``abort`` drops the socket at that point instead. Delays script stalls.
    """

    content: ChatContent = field(default_factory=lambda: ChatContent(text="Hello!"))
    usage: ChatUsage = field(default_factory=ChatUsage)
    provider: str = "Chutes"
    model: str | None = None
    processing_comments: int = 1
    error_after: int | None = None
    error_code: str = "server_error"
    error_message: str = "Provider disconnected unexpectedly"
    cut_after: int | None = None
    abort: bool = False
    delay_headers: float = 0.0
    delay_first_chunk: float = 0.0
    delay_between_chunks: float = 0.0

    async def respond(self, call: ChatCall) -> web.StreamResponse:
        ctx = new_context(self.model or call.model, self.provider, call.body_size, call.free)
        if self.delay_headers:
            await asyncio.sleep(self.delay_headers)
        if not call.stream:
            body = PADDING + orjson.dumps(completion_body(self.content, self.usage, ctx))
            return web.Response(body=body, content_type="application/json")
        frames = [encode_chunk(c) for c in stream_chunks(self.content, self.usage, ctx)]
        if self.error_after is not None:
            failure = error_chunk(ctx, self.error_code, self.error_message)
            frames = [*frames[: self.error_after], encode_chunk(failure)]
        elif self.cut_after is not None:
            frames = frames[: self.cut_after]
        else:
            frames.append(DONE)
        response = web.StreamResponse(
            status=200, headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(call.request)
        for _ in range(self.processing_comments):
            await response.write(PROCESSING)
        if self.delay_first_chunk:
            await asyncio.sleep(self.delay_first_chunk)
        for number, frame in enumerate(frames):
            if number and self.delay_between_chunks:
                await asyncio.sleep(self.delay_between_chunks)
            await response.write(frame)
        if self.abort and call.request.transport is not None:
            call.request.transport.close()
            return response
        await response.write_eof()
        return response


@dataclass(frozen=True)
class KiloHttpReply:
    """Any plain answer (errors before the stream); a dict body is sent as JSON."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    async def respond(self, call: ChatCall) -> web.StreamResponse:
        return json_response(self.body, status=self.status, headers=self.headers)


def chat_text(text: str = "Hello!", *, reasoning: str | None = None, **options: Any) -> ChatReply:
    return ChatReply(content=ChatContent(text=text, reasoning=reasoning), **options)


def chat_tool_call(
    name: str,
    arguments: str | Mapping[str, Any] | None = None,
    *,
    text: str = "",
    reasoning: str | None = None,
    call_id: str | None = None,
    **options: Any,
) -> ChatReply:
    args = arguments if isinstance(arguments, str) else orjson.dumps(dict(arguments or {})).decode()
    call = ChatToolCall(name=name, arguments=args, id=call_id)
    return ChatReply(content=ChatContent(text=text, reasoning=reasoning, tool_calls=(call,)), **options)


def kilo_rate_limited(retry_after: int = 30) -> KiloHttpReply:
    """Kilo's own flat 429 with ``Retry-After``."""
    return KiloHttpReply(
        status=429,
        body={
            "error": "Rate limit exceeded",
            "message": "Too many requests for free models. Try again later.",
        },
        headers={"retry-after": str(retry_after)},
    )


def openrouter_error(status: int, message: str, **metadata: Any) -> KiloHttpReply:
    """OpenRouter's ``{"error": {"code", "message", "metadata"}}`` with status = code (502, 503, 408, ...)."""
    error: dict[str, Any] = {"code": status, "message": message}
    if metadata:
        error["metadata"] = metadata
    return KiloHttpReply(status=status, body={"error": error})


def service_unavailable() -> KiloHttpReply:
    return KiloHttpReply(
        status=503, body={"error": "Service Unavailable", "message": "No provider available"}
    )


def payment_required(balance: float = 0) -> KiloHttpReply:
    """Kilo's 402 shape."""
    return KiloHttpReply(
        status=402,
        body={
            "error": {
                "title": "Paid Model - Credits Required",
                "message": "This is a paid model. Add credits to use it.",
                "balance": balance,
                "buyCreditsUrl": "https://app.kilo.ai/profile",
            }
        },
    )


def answer_from_spec(spec: Mapping[str, Any]) -> ChatAnswer:
    """Build an answer from JSON (control API): ``{"kind": "text", "text", "reasoning"?}``,
    ``{"kind": "tool_call", "name", "arguments"?}``, ``{"kind": "rate_limited", "retry_after"?}``,
    ``{"kind": "http", "status", "body"?, "headers"?}``; text and tool_call accept ``error_after``,
    ``cut_after``, ``abort`` and the ``delay_*`` options."""
    options = dict(spec)
    kind = options.pop("kind")
    if kind == "text":
        return chat_text(options.pop("text", "Hello!"), reasoning=options.pop("reasoning", None), **options)
    if kind == "tool_call":
        return chat_tool_call(options.pop("name"), options.pop("arguments", None), **options)
    if kind == "rate_limited":
        return kilo_rate_limited(**options)
    if kind == "http":
        return KiloHttpReply(**options)
    raise ValueError(f"unknown answer kind {kind!r}")


def _openrouter_auth_error(message: str) -> web.Response:
    return json_response({"error": {"code": 401, "message": message}}, status=401)


class FakeKilo(FakeServer):
    """The fake Kilo gateway; see the module docstring."""

    prefix = "/api/gateway"
    name = "fake-kilo"

    def __init__(self) -> None:
        super().__init__()
        self.api_keys: set[str] = {DEFAULT_KEY}
        """Bearer keys accepted for paid models."""
        self.free_models: set[str] = set()
        """Ids served keylessly besides those ending in ``:free`` (Kilo keeps such a list)."""
        self._lock = threading.Lock()
        self._models: list[dict[str, Any]] = [dict(m) for m in DEFAULT_MODELS]
        self._queues: dict[str | None, deque[ChatAnswer]] = {}
        self._defaults: dict[str | None, ChatAnswer] = {}

    # --- scripting -----------------------------------------------------------------------------------

    def script(self, answer: ChatAnswer, *, model: str | None = None, times: int = 1) -> None:
        """The next ``times`` accepted requests (for ``model`` if given) get ``answer``."""
        with self._lock:
            self._queues.setdefault(model, deque()).extend([answer] * times)

    def set_default(self, answer: ChatAnswer, *, model: str | None = None) -> None:
        with self._lock:
            self._defaults[model] = answer

    def set_models(self, models: Sequence[str | Mapping[str, Any]]) -> None:
        """The served model list (ids or full entries); other ids get 404."""
        with self._lock:
            self._models = [model_entry(m) if isinstance(m, str) else dict(m) for m in models]

    @property
    def model_ids(self) -> list[str]:
        with self._lock:
            return [m["id"] for m in self._models]

    def is_free(self, model: str) -> bool:
        return model.endswith(":free") or model in self.free_models

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._queues.clear()
            self._defaults.clear()

    def _next_answer(self, model: str) -> ChatAnswer:
        with self._lock:
            for key in (model, None):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
            for key in (model, None):
                if key in self._defaults:
                    return self._defaults[key]
        return ChatReply(
            content=ChatContent(text="Hello from the fake gateway!", reasoning="The user says hi.")
        )

    # --- control API ---------------------------------------------------------------------------------

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_post("/_fake/script", self._control_script)

    async def _control_script(self, request: web.Request) -> web.Response:
        """``{"answer": {...}, "model"?: id, "times"?: n, "default"?: bool}`` (:func:`answer_from_spec`)."""
        spec = await request.json(loads=orjson.loads)
        answer = answer_from_spec(spec["answer"])
        if spec.get("default"):
            self.set_default(answer, model=spec.get("model"))
        else:
            self.script(answer, model=spec.get("model"), times=spec.get("times", 1))
        return json_response({"ok": True})

    # --- HTTP ----------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(self.prefix + "/chat/completions", self._chat)
        app.router.add_get(self.prefix + "/models", self._models_route)
        app.router.add_route("*", self.prefix + "/{tail:.*}", self._invalid_path)

    async def _invalid_path(self, request: web.Request) -> web.Response:
        return json_response(
            {"error": "Invalid path", "message": f"{request.path} is not served"}, status=400
        )

    async def _models_route(self, request: web.Request) -> web.Response:
        with self._lock:
            models = list(self._models)
        return json_response({"data": models})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return json_response({"error": {"code": 400, "message": "Invalid JSON body"}}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return json_response({"error": {"code": 400, "message": "model: required"}}, status=400)
        model: str = body["model"]
        if model not in self.model_ids and model not in self.free_models:
            return json_response({"error": "Model not found"}, status=404)
        free = self.is_free(model)
        if not free:
            scheme, _, key = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                return _openrouter_auth_error("No auth credentials found")
            if key.strip() not in self.api_keys:
                return _openrouter_auth_error("User not found.")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return json_response(
                {"error": {"code": 400, "message": "messages: expected a non-empty array"}}, status=400
            )
        call = ChatCall(request=request, body=body, body_size=len(raw), model=model, free=free)
        return await self._next_answer(model).respond(call)


@asynccontextmanager
async def run_fake_kilo() -> AsyncIterator[FakeKilo]:
    """Start a :class:`FakeKilo` on 127.0.0.1 in the running loop."""
    async with FakeKilo() as kilo:
        yield kilo


if __name__ == "__main__":
    main(FakeKilo)
