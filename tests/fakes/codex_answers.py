"""What the fake Codex backend answers to an accepted request: scriptable, one object per answer.

An answer is any object with ``async respond(call) -> web.StreamResponse``. The kinds here cover what
the real backend does (protocols §4.5-§4.8): a streamed reply (:class:`StreamReply`, built by
:mod:`tests.fakes.responses_stream`), a recorded stream replayed (:class:`FixtureReply`), a plain HTTP
error (:class:`HttpReply`) and the 429 ``usage_limit_reached`` whose reset is relative to now
(:class:`UsageLimitReached`). The helpers at the bottom (:func:`text`, :func:`tool_call`, ...) are the
short way to write them in a test; :func:`answer_from_spec` builds them from JSON for the control API.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import web

from tests.fakes.codex_quota import usage_limit_body, usage_limit_headers
from tests.fakes.identities import Identity
from tests.fakes.responses_stream import (
    Completed,
    Ending,
    Eof,
    Event,
    Failed,
    FunctionCall,
    Incomplete,
    Item,
    Message,
    Reasoning,
    StreamError,
    Usage,
    build_events,
    encode_events,
    fixture_events,
)
from tests.fixtures import load_http

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


@dataclass(frozen=True)
class CodexCall:
    """One accepted request, as an answer sees it."""

    request: web.Request
    body: Mapping[str, Any]
    body_size: int
    identity: Identity
    quota_headers: Mapping[str, str]
    now: float

    @property
    def model(self) -> str:
        model = self.body.get("model")
        return model if isinstance(model, str) else "gpt-5"


class Answer(Protocol):
    async def respond(self, call: CodexCall) -> web.StreamResponse: ...


def _base_headers(call: CodexCall) -> dict[str, str]:
    return {"x-request-id": str(uuid.uuid4()), **call.quota_headers}


async def _send_stream(
    call: CodexCall,
    frames: list[bytes],
    *,
    headers: Mapping[str, str],
    delay_headers: float,
    delay_first_event: float,
    delay_between_events: float,
    abort: bool,
) -> web.StreamResponse:
    if delay_headers:
        await asyncio.sleep(delay_headers)
    response = web.StreamResponse(status=200, headers={"content-type": SSE_CONTENT_TYPE, **headers})
    await response.prepare(call.request)
    if delay_first_event:
        await asyncio.sleep(delay_first_event)
    for number, frame in enumerate(frames):
        if number and delay_between_events:
            await asyncio.sleep(delay_between_events)
        await response.write(frame)
    if abort:
        # Drop the connection without the chunked terminator: the client sees a broken body.
        if call.request.transport is not None:
            call.request.transport.close()
        return response
    await response.write_eof()
    return response


@dataclass(frozen=True)
class StreamReply:
    """A 200 SSE answer generated from ``items`` and an ``ending``.

    ``model`` is what the events report (default: the requested model). ``cut_after`` keeps only the
    first N events (a stream cut mid-answer); ``abort`` closes the socket instead of ending the body
    cleanly. The three delays script stalls: before the status line, after the headers, between events.
    """

    items: tuple[Item, ...] = ()
    ending: Ending = field(default_factory=Completed)
    usage: Usage | None = None
    model: str | None = None
    cut_after: int | None = None
    abort: bool = False
    delay_headers: float = 0.0
    delay_first_event: float = 0.0
    delay_between_events: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def events(self, call: CodexCall) -> list[Event]:
        events = build_events(
            self.items,
            self.ending,
            model=self.model or call.model,
            request=call.body,
            request_size=call.body_size,
            usage=self.usage,
            now=call.now,
        )
        return events if self.cut_after is None else events[: self.cut_after]

    async def respond(self, call: CodexCall) -> web.StreamResponse:
        return await _send_stream(
            call,
            encode_events(self.events(call)),
            headers={**_base_headers(call), "openai-model": self.model or call.model, **self.headers},
            delay_headers=self.delay_headers,
            delay_first_event=self.delay_first_event,
            delay_between_events=self.delay_between_events,
            abort=self.abort,
        )


def _substitute_model(payload: dict[str, Any], model: str) -> dict[str, Any]:
    response = payload.get("response")
    if isinstance(response, dict) and "model" in response:
        response["model"] = model
    return payload


@dataclass(frozen=True)
class FixtureReply:
    """A recorded stream replayed event by event, the model name swapped for the requested one."""

    fixture: str = "responses/responses_stream_text.sse"
    cut_after: int | None = None
    delay_between_events: float = 0.0

    def events(self, call: CodexCall) -> list[Event]:
        events = [(name, _substitute_model(p, call.model)) for name, p in fixture_events(self.fixture)]
        return events if self.cut_after is None else events[: self.cut_after]

    async def respond(self, call: CodexCall) -> web.StreamResponse:
        return await _send_stream(
            call,
            encode_events(self.events(call)),
            headers=_base_headers(call),
            delay_headers=0.0,
            delay_first_event=0.0,
            delay_between_events=self.delay_between_events,
            abort=False,
        )


@dataclass(frozen=True)
class HttpReply:
    """A plain HTTP answer; a dict body is sent as JSON. ``quota_headers`` adds the account's
    ``x-codex-*`` set (the backend sends it on every ``/responses`` answer, errors included)."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    quota_headers: bool = True
    delay: float = 0.0

    async def respond(self, call: CodexCall) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        headers = dict(_base_headers(call)) if self.quota_headers else {"x-request-id": str(uuid.uuid4())}
        headers.update(self.headers)
        if isinstance(self.body, bytes | str):
            raw = self.body.encode() if isinstance(self.body, str) else self.body
            headers.setdefault("content-type", "text/plain; charset=utf-8")
        else:
            raw = orjson.dumps(self.body)
            headers.setdefault("content-type", "application/json")
        return web.Response(status=self.status, body=raw, headers=headers)


@dataclass(frozen=True)
class UsageLimitReached:
    """429 with the recorded ``usage_limit_reached`` body and ``x-codex-*`` headers, resets from now.

    ``plan_type`` ``None`` reports the caller's plan; ``error_type`` may be ``usage_not_included``.
    """

    resets_in_seconds: int = 602_705
    plan_type: str | None = None
    error_type: str = "usage_limit_reached"

    async def respond(self, call: CodexCall) -> web.StreamResponse:
        _, recorded, _ = load_http("codex/codex_429_usage_limit_reached.http")
        body = usage_limit_body(
            call.now,
            resets_in_seconds=self.resets_in_seconds,
            plan_type=self.plan_type or call.identity.plan_type,
            error_type=self.error_type,
        )
        headers = {
            "content-type": recorded["content-type"],
            "x-request-id": str(uuid.uuid4()),
            **usage_limit_headers(call.now),
        }
        return web.Response(status=429, body=orjson.dumps(body), headers=headers)


# --- short constructors for tests -------------------------------------------------------------------


def _arguments(arguments: str | Mapping[str, Any]) -> str:
    return arguments if isinstance(arguments, str) else orjson.dumps(dict(arguments)).decode()


def text(
    answer: str = "Hello!",
    *,
    reasoning: Reasoning | None = None,
    usage: Usage | None = None,
    **options: Any,
) -> StreamReply:
    """A text answer, after a reasoning item (without summary unless ``reasoning`` says otherwise)."""
    return StreamReply(items=(reasoning or Reasoning(), Message(answer)), usage=usage, **options)


def tool_call(
    name: str,
    arguments: str | Mapping[str, Any] | None = None,
    *,
    call_id: str | None = None,
    preamble: str | None = None,
    reasoning: Reasoning | None = None,
    usage: Usage | None = None,
    **options: Any,
) -> StreamReply:
    """A function call (``arguments`` a dict or JSON text), optionally after a text ``preamble``."""
    items: list[Item] = [reasoning or Reasoning()]
    if preamble is not None:
        items.append(Message(preamble))
    items.append(FunctionCall(name=name, arguments=_arguments(arguments or {}), call_id=call_id))
    return StreamReply(items=tuple(items), usage=usage, **options)


def reasoning_text(
    summary: str | tuple[str, ...],
    answer: str,
    *,
    encrypted_content: str | None = None,
    usage: Usage | None = None,
    **options: Any,
) -> StreamReply:
    """A reasoning item with summary parts (streamed) and encrypted content, then a text answer."""
    parts = (summary,) if isinstance(summary, str) else summary
    return StreamReply(
        items=(Reasoning(summary=parts, encrypted_content=encrypted_content), Message(answer)),
        usage=usage,
        **options,
    )


def failed(code: str = "server_error", message: str | None = None, **options: Any) -> StreamReply:
    """``response.created`` / ``in_progress``, then ``response.failed`` with ``code``."""
    return StreamReply(ending=Failed(code, message), **options)


def stream_error(
    code: str = "server_is_overloaded", message: str | None = None, **options: Any
) -> StreamReply:
    """``response.created`` / ``in_progress``, then an ``error`` event."""
    ending = StreamError(code, message) if message is not None else StreamError(code)
    return StreamReply(ending=ending, **options)


def incomplete(answer: str = "Partial", reason: str = "max_output_tokens", **options: Any) -> StreamReply:
    return StreamReply(items=(Reasoning(), Message(answer)), ending=Incomplete(reason), **options)


def cut(answer: str = "Hello, this answer is cut", **options: Any) -> StreamReply:
    """A text answer whose stream ends (cleanly) before ``response.completed``."""
    return StreamReply(items=(Reasoning(), Message(answer)), ending=Eof(), **options)


def unauthorized() -> HttpReply:
    """The recorded 401 (body and headers of ``codex_401_unauthorized.http``)."""
    status, headers, body = load_http("codex/codex_401_unauthorized.http")
    return HttpReply(status=status, body=body, headers=headers, quota_headers=False)


def overloaded() -> HttpReply:
    return HttpReply(status=503, body={"error": {"code": "server_is_overloaded"}}, quota_headers=False)


def server_error(status: int = 500) -> HttpReply:
    return HttpReply(
        status=status,
        body={
            "error": {"code": "server_error", "message": "An error occurred while processing your request."}
        },
        quota_headers=False,
    )


def rate_limited(retry_after: int = 2) -> HttpReply:
    """A short-term 429 ``rate_limit_exceeded`` with ``Retry-After`` (not a usage limit)."""
    return HttpReply(
        status=429,
        body={
            "error": {
                "type": "rate_limit_exceeded",
                "message": f"Rate limit reached. Please try again in {retry_after}s.",
            }
        },
        headers={"retry-after": str(retry_after)},
    )


def bad_request(detail: str) -> HttpReply:
    return HttpReply(status=400, body={"detail": detail}, quota_headers=False)


def answer_from_spec(spec: Mapping[str, Any]) -> Answer:
    """Build an answer from JSON (control API): ``{"kind": "text", "text": "hi"}``,
    ``{"kind": "tool_call", "name": "Read", "arguments": {...}}``, ``{"kind": "reasoning_text", ...}``,
    ``{"kind": "failed", "code": ...}``, ``{"kind": "error", "code": ...}``, ``{"kind": "cut"}``,
    ``{"kind": "usage_limit", "resets_in_seconds": 60}``, ``{"kind": "http", "status": 503, "body": {...}}``,
    ``{"kind": "fixture", "fixture": "responses/..."}``; stream kinds accept ``delay_*``, ``cut_after``,
    ``abort``."""
    options = dict(spec)
    kind = options.pop("kind")
    stream_options: dict[str, Any] = {
        k: options.pop(k)
        for k in ("delay_headers", "delay_first_event", "delay_between_events", "cut_after", "abort", "model")
        if k in options
    }
    if "usage" in options:
        stream_options["usage"] = Usage(**options.pop("usage"))
    if kind == "text":
        return text(options.pop("text", "Hello!"), **stream_options)
    if kind == "tool_call":
        return tool_call(
            options.pop("name"),
            options.pop("arguments", None),
            call_id=options.pop("call_id", None),
            **stream_options,
        )
    if kind == "reasoning_text":
        summary = options.pop("summary")
        return reasoning_text(
            tuple(summary) if isinstance(summary, list) else summary,
            options.pop("text", "Hello!"),
            encrypted_content=options.pop("encrypted_content", None),
            **stream_options,
        )
    if kind == "failed":
        return failed(options.pop("code", "server_error"), options.pop("message", None), **stream_options)
    if kind == "error":
        return stream_error(
            options.pop("code", "server_is_overloaded"), options.pop("message", None), **stream_options
        )
    if kind == "cut":
        return cut(options.pop("text", "Hello, this answer is cut"), **stream_options)
    if kind == "usage_limit":
        return UsageLimitReached(**options)
    if kind == "http":
        return HttpReply(**options)
    if kind == "fixture":
        return FixtureReply(**options)
    raise ValueError(f"unknown answer kind {kind!r}")
