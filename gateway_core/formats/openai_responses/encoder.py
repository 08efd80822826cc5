"""Canonical stream events -> Responses SSE, as a Responses client (the OpenAI SDK) expects it.

Every frame has an ``event:`` line and a ``sequence_number``; each part becomes one output item with
its added / delta / done events. The final ``response.completed`` object is :func:`render_response` of
the accumulated events, so a streamed and a non-streamed answer are the same by construction.
"""

from __future__ import annotations

import time
from typing import Any

from gateway_core.formats.openai_responses._common import item_id, response_id
from gateway_core.formats.openai_responses.errors import failure_code
from gateway_core.formats.openai_responses.response import render_item, render_response, response_object
from gateway_core.models import ReasoningPart, TextPart, ToolCallPart
from gateway_core.sse import encode_json_event
from gateway_core.streaming import (
    Accumulator,
    ErrorEvent,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    ReasoningDelta,
    SignatureDelta,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
    parse_tool_arguments,
)

_KIND: dict[type, str] = {TextPart: "message", ReasoningPart: "reasoning", ToolCallPart: "function_call"}
_ID_PREFIX = {"message": "msg", "reasoning": "rs", "function_call": "fc"}


class _OpenItem:
    """A part being streamed as an output item."""

    __slots__ = ("chunks", "kind", "output_index", "part", "signature", "summary_started", "wire_id")

    def __init__(
        self, part: TextPart | ReasoningPart | ToolCallPart, output_index: int, wire_id: str
    ) -> None:
        self.part = part
        self.kind = _KIND[type(part)]
        self.output_index = output_index
        self.wire_id = wire_id
        self.chunks: list[str] = []
        self.signature: list[str] = []
        self.summary_started = False

    def finished(self) -> TextPart | ReasoningPart | ToolCallPart:
        """The complete part, built from the deltas as the accumulator builds it."""
        joined = "".join(self.chunks)
        if isinstance(self.part, TextPart):
            return TextPart(text=joined)
        if isinstance(self.part, ReasoningPart):
            signature = "".join(self.signature) or self.part.signature
            return ReasoningPart(text=joined, signature=signature)
        arguments = parse_tool_arguments(joined) if self.chunks else self.part.arguments
        return self.part.model_copy(update={"arguments": arguments})


class StreamEncoder:
    """Feed canonical events; get Responses SSE bytes (``b""`` for events with no wire form).

    ``created_at`` (unix seconds) defaults to the time of the first event.
    """

    def __init__(self, *, created_at: int | None = None) -> None:
        self._created_at = created_at
        self._sequence = 0
        self._response_id = "resp_"
        self._model = ""
        self._started = False
        self._finished = False
        self._accumulator = Accumulator()
        self._open: dict[int, _OpenItem] = {}
        self._next_output = 0

    def encode(self, event: StreamEvent) -> bytes:
        if self._finished:
            return b""
        if isinstance(event, ErrorEvent):
            return self._error(event)
        self._accumulator.feed(event)
        if isinstance(event, MessageStart):
            return self._start(event)
        if isinstance(event, PartStart):
            return self._part_start(event)
        if isinstance(event, TextDelta | ReasoningDelta | ToolArgumentsDelta):
            return self._delta(event)
        if isinstance(event, PartStop):
            return self._part_stop(event.index)
        if isinstance(event, MessageStop):
            return self._stop()
        if isinstance(event, SignatureDelta) and (item := self._open.get(event.index)) is not None:
            item.signature.append(event.signature)
        return b""  # a signature travels in the item's `done`; MessageDelta waits for the stop

    # --- frames ---------------------------------------------------------------------------------------

    def _frame(self, kind: str, payload: dict[str, Any]) -> bytes:
        data = {"type": kind, **payload, "sequence_number": self._sequence}
        self._sequence += 1
        return encode_json_event(data, kind)

    def _start(self, event: MessageStart) -> bytes:
        self._started = True
        if self._created_at is None:
            self._created_at = int(time.time())
        self._response_id = response_id(event.id)
        self._model = event.model
        skeleton = response_object(self._response_id, self._model, self._created_at)
        return self._frame("response.created", {"response": skeleton}) + self._frame(
            "response.in_progress", {"response": skeleton}
        )

    def _part_start(self, event: PartStart) -> bytes:
        part = event.part
        if not isinstance(part, TextPart | ReasoningPart | ToolCallPart):
            return b""  # images, documents... have no place in a Responses answer
        output_index = self._next_output
        self._next_output += 1
        prefix = _ID_PREFIX[_KIND[type(part)]]
        item = _OpenItem(part, output_index, item_id(prefix, self._response_id, output_index))
        self._open[event.index] = item
        head = {"output_index": output_index}
        if isinstance(part, TextPart):
            added = {
                "id": item.wire_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            frames = self._frame("response.output_item.added", {**head, "item": added})
            frames += self._frame(
                "response.content_part.added",
                {**head, "item_id": item.wire_id, "content_index": 0, "part": _text_part("")},
            )
            return frames + (self._text_delta(item, part.text) if part.text else b"")
        if isinstance(part, ReasoningPart):
            added = {"id": item.wire_id, "type": "reasoning", "summary": []}
            frames = self._frame("response.output_item.added", {**head, "item": added})
            return frames + (self._summary_delta(item, part.text) if part.text else b"")
        added = {
            "id": item.wire_id,
            "type": "function_call",
            "status": "in_progress",
            "call_id": part.id,
            "name": part.name,
            "arguments": "",
        }
        return self._frame("response.output_item.added", {**head, "item": added})

    def _delta(self, event: TextDelta | ReasoningDelta | ToolArgumentsDelta) -> bytes:
        item = self._open.get(event.index)
        if item is None:
            return b""
        if isinstance(event, TextDelta) and item.kind == "message":
            return self._text_delta(item, event.text)
        if isinstance(event, ReasoningDelta) and item.kind == "reasoning":
            return self._summary_delta(item, event.text)
        if isinstance(event, ToolArgumentsDelta) and item.kind == "function_call":
            item.chunks.append(event.partial_json)
            return self._frame(
                "response.function_call_arguments.delta",
                {"item_id": item.wire_id, "output_index": item.output_index, "delta": event.partial_json},
            )
        return b""

    def _text_delta(self, item: _OpenItem, text: str) -> bytes:
        item.chunks.append(text)
        payload = {"item_id": item.wire_id, "output_index": item.output_index, "content_index": 0}
        return self._frame("response.output_text.delta", {**payload, "delta": text, "logprobs": []})

    def _summary_delta(self, item: _OpenItem, text: str) -> bytes:
        item.chunks.append(text)
        payload = {"item_id": item.wire_id, "output_index": item.output_index, "summary_index": 0}
        frames = b""
        if not item.summary_started:
            item.summary_started = True
            frames = self._frame(
                "response.reasoning_summary_part.added", {**payload, "part": _summary_part("")}
            )
        return frames + self._frame("response.reasoning_summary_text.delta", {**payload, "delta": text})

    def _part_stop(self, index: int) -> bytes:
        item = self._open.pop(index, None)
        if item is None:
            return b""
        done = render_item(item.finished(), self._response_id, item.output_index) or {}
        head = {"item_id": item.wire_id, "output_index": item.output_index}
        frames = b""
        if item.kind == "message":
            text = "".join(item.chunks)
            frames += self._frame(
                "response.output_text.done", {**head, "content_index": 0, "text": text, "logprobs": []}
            )
            frames += self._frame(
                "response.content_part.done", {**head, "content_index": 0, "part": _text_part(text)}
            )
        elif item.kind == "reasoning" and item.summary_started:
            text = "".join(item.chunks)
            frames += self._frame(
                "response.reasoning_summary_text.done", {**head, "summary_index": 0, "text": text}
            )
            frames += self._frame(
                "response.reasoning_summary_part.done",
                {**head, "summary_index": 0, "part": _summary_part(text)},
            )
        elif item.kind == "function_call":
            frames += self._frame(
                "response.function_call_arguments.done", {**head, "arguments": done.get("arguments", "")}
            )
        return frames + self._frame(
            "response.output_item.done", {"output_index": item.output_index, "item": done}
        )

    def _stop(self) -> bytes:
        frames = b"".join(self._part_stop(index) for index in sorted(self._open))
        self._finished = True
        final = render_response(self._accumulator.response(), created_at=self._created_at)
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return frames + self._frame(kind, {"response": final})

    def _error(self, event: ErrorEvent) -> bytes:
        """``response.failed`` once the response exists, else a bare ``error`` event."""
        self._finished = True
        error = {"code": failure_code(event.error), "message": event.error.message}
        if not self._started:
            return self._frame("error", {**error, "param": event.error.param})
        failed = response_object(self._response_id, self._model, self._created_at or 0, status="failed")
        failed["error"] = error
        return self._frame("response.failed", {"response": failed})


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _summary_part(text: str) -> dict[str, Any]:
    return {"type": "summary_text", "text": text}
