"""Canonical events -> ``chat.completion.chunk`` server-sent events for OpenAI SDK clients (protocols §2.3).

Only ``data:`` lines. The first chunk introduces the assistant (``content: null``, so an answer that is
only tool calls accumulates to ``content: null`` exactly as :func:`render_response` renders it); text
arrives as ``delta.content`` pieces; each tool call gets the next ``index``, first with its id, name and
``""`` arguments, then argument pieces; the finishing chunk has ``delta:{}`` and the ``finish_reason``;
with ``include_usage`` every chunk carries ``"usage": null`` and a last ``choices:[]`` chunk the usage;
then ``data: [DONE]``. An :class:`ErrorEvent` becomes ``data: {"error":{...}}`` and the stream stops
without ``[DONE]``, as OpenAI does.

Reasoning has no standard Chat field and is omitted unless ``include_reasoning``, which sends it as
``delta.reasoning_content`` (see :func:`render_response`).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway_core.formats.openai_chat._common import finish_reason_for, usage_to_chat
from gateway_core.formats.openai_chat._errors import render_error
from gateway_core.formats.openai_chat._response import new_completion_id
from gateway_core.models import NO_USAGE, ReasoningPart, TextPart, ToolCallPart
from gateway_core.sse import encode_json_event
from gateway_core.streaming import (
    ErrorEvent,
    MessageDelta,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
)

_DONE = b"data: [DONE]\n\n"


class StreamEncoder:
    """Turn canonical events into the bytes of an OpenAI chat stream, one event at a time.

    ``id``, ``model`` and ``created`` default to the :class:`MessageStart` id, its model and the time
    the stream starts; ``include_usage`` is the client's ``stream_options.include_usage``.
    """

    def __init__(
        self,
        *,
        include_usage: bool = False,
        include_reasoning: bool = False,
        id: str | None = None,
        model: str | None = None,
        created: int | None = None,
    ) -> None:
        self._include_usage = include_usage
        self._include_reasoning = include_reasoning
        self._id = id
        self._model = model
        self._created = created
        self._kinds: dict[int, str] = {}
        self._tool_index: dict[int, int] = {}
        self._pending_arguments: dict[int, dict[str, Any]] = {}
        self._usage = NO_USAGE
        self._wrote_content = False
        self._finished = False
        self._closed = False

    def encode(self, event: StreamEvent) -> bytes:
        """The wire bytes for ``event``; ``b""`` for events with no Chat counterpart."""
        if self._closed:
            return b""
        match event:
            case MessageStart():
                return self._start(event)
            case PartStart(index=index, part=part):
                return self._part_start(index, part)
            case TextDelta(index=index, text=text) if text and self._kinds.get(index) == "text":
                self._wrote_content = True
                return self._chunk({"content": text})
            case ReasoningDelta(index=index, text=text) if text and self._kinds.get(index) == "reasoning":
                return self._chunk({"reasoning_content": text})
            case ToolArgumentsDelta(index=index, partial_json=fragment) if index in self._tool_index:
                self._pending_arguments.pop(index, None)
                return self._arguments(index, fragment) if fragment else b""
            case PartStop(index=index) if index in self._pending_arguments:
                # A complete tool call that got no argument deltas: send its arguments in one piece.
                arguments = self._pending_arguments.pop(index)
                return self._arguments(index, orjson.dumps(arguments).decode())
            case MessageDelta(stop_reason=stop_reason, usage=usage):
                if usage is not None:
                    self._usage = usage
                return self._finish(finish_reason_for(stop_reason))
            case MessageStop():
                return self._stop()
            case ErrorEvent(error=error):
                self._closed = True
                return encode_json_event(render_error(error))
        return b""

    def _start(self, event: MessageStart) -> bytes:
        self._id = self._id or event.id or new_completion_id()
        self._model = self._model if self._model is not None else event.model
        self._created = self._created if self._created is not None else int(time.time())
        self._usage = event.usage
        return self._chunk({"role": "assistant", "content": None})

    def _part_start(self, index: int, part: object) -> bytes:
        if isinstance(part, TextPart):
            self._kinds[index] = "text"
            if part.text:
                self._wrote_content = True
                return self._chunk({"content": part.text})
            return b""
        if isinstance(part, ReasoningPart):
            if self._include_reasoning:
                self._kinds[index] = "reasoning"
                return self._chunk({"reasoning_content": part.text}) if part.text else b""
            return b""
        if isinstance(part, ToolCallPart):
            self._kinds[index] = "tool"
            self._tool_index[index] = position = len(self._tool_index)
            if part.arguments:
                self._pending_arguments[index] = part.arguments
            call = {
                "index": position,
                "id": part.id,
                "type": "function",
                "function": {"name": part.name, "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        return b""

    def _arguments(self, index: int, fragment: str) -> bytes:
        return self._chunk(
            {"tool_calls": [{"index": self._tool_index[index], "function": {"arguments": fragment}}]}
        )

    def _finish(self, finish_reason: str) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        out = b""
        if not self._wrote_content and not self._tool_index:
            # Nothing at all was said: content is "" (as render_response has it), not null.
            out = self._chunk({"content": ""})
        return out + self._chunk({}, finish_reason)

    def _stop(self) -> bytes:
        out = self._finish("stop")
        if self._include_usage:
            out += self._frame([], usage_to_chat(self._usage))
        self._closed = True
        return out + _DONE

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._frame([choice], None)

    def _frame(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id or "",
            "object": "chat.completion.chunk",
            "created": self._created if self._created is not None else 0,
            "model": self._model or "",
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = usage
        return encode_json_event(chunk)
