"""Shared helpers of the Responses format tests: decode recorded streams, build small requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from gateway_core.formats._names import ToolNameMap
from gateway_core.formats.openai_responses import StreamDecoder
from gateway_core.models import Message, Part, Request, Role, TextPart
from gateway_core.sse import ServerSentEvent, SSEDecoder
from gateway_core.streaming import StreamEvent
from tests.fixtures import load_sse

MODEL = "gpt-5.5"


def sse_events(source: str | Path | bytes) -> list[ServerSentEvent]:
    """The SSE events of a fixture (path) or of raw stream bytes."""
    raw = source if isinstance(source, bytes) else load_sse(source)
    decoder = SSEDecoder()
    return [*decoder.feed(raw), *decoder.flush()]


def decode(
    source: str | Path | bytes | list[ServerSentEvent],
    *,
    provider: str = "codex",
    tool_names: ToolNameMap | None = None,
    close: bool = True,
) -> list[StreamEvent]:
    """Every canonical event a fresh decoder makes of a stream (``close()`` included)."""
    events = source if isinstance(source, list) else sse_events(source)
    decoder = StreamDecoder(model=MODEL, provider=provider, tool_names=tool_names)
    out = [canonical for event in events for canonical in decoder.feed(event)]
    return out + decoder.close() if close else out


def event(payload: dict[str, Any]) -> ServerSentEvent:
    """One SSE event carrying ``payload`` (its ``type`` as the event name)."""
    return ServerSentEvent(data=orjson.dumps(payload).decode(), event=payload.get("type"))


def completed_response(source: str | Path) -> dict[str, Any]:
    """The ``response`` object of a recorded stream's ``response.completed`` event."""
    for sse in sse_events(source):
        if sse.event == "response.completed":
            response: dict[str, Any] = sse.json()["response"]
            return response
    raise AssertionError(f"{source} has no response.completed event")


def request(*messages: Message, **fields: Any) -> Request:
    """A canonical request with the given messages (a user "hi" when none)."""
    return Request(model="claude-opus-5-5", messages=messages or (user("hi"),), **fields)


def user(*content: Part | str) -> Message:
    return _message("user", content)


def assistant(*content: Part | str) -> Message:
    return _message("assistant", content)


def system(*content: Part | str) -> Message:
    return _message("system", content)


def _message(role: Role, content: tuple[Part | str, ...]) -> Message:
    parts = tuple(TextPart(text=part) if isinstance(part, str) else part for part in content)
    return Message(role=role, content=parts)
