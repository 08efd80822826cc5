"""An upstream's Chat Completions stream -> canonical events (protocols §2.3, §3, §7.3).

Chat chunks carry no block structure, so the decoder builds it: reasoning (``delta.reasoning`` /
``reasoning_details``), text (non-empty ``delta.content``) and each tool call (a piece with a new
``index``) open a part in turn, and whatever opens a part closes the one before, so parts never
interleave. A reasoning part closes with a :class:`SignatureDelta` carrying its merged
``reasoning_details`` (see ``_common``), stamped with the provider.

The outcome is held back until it is complete: ``finish_reason`` waits for the usage, which OpenAI
sends in a separate ``choices:[]`` chunk and OpenRouter on the finishing chunk itself (where the
finishing chunk may even come twice). :class:`MessageStop` comes at ``[DONE]``. A stream that ends after
a ``finish_reason`` but without ``[DONE]`` is complete (OpenAI sometimes closes early); one that ends
before any is an upstream failure.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import orjson

from gateway_core.errors import UpstreamError
from gateway_core.formats._names import ToolNameMap
from gateway_core.formats.openai_chat._common import (
    delta_reasoning,
    encode_reasoning_details,
    map_finish_reason,
    merge_reasoning_details,
    usage_from_chat,
)
from gateway_core.formats.openai_chat._errors import error_from_payload
from gateway_core.formats.openai_chat._response import first_choice
from gateway_core.models import ToolCallPart, Usage
from gateway_core.sse import ServerSentEvent
from gateway_core.streaming import (
    EMPTY_REASONING,
    EMPTY_TEXT,
    ErrorEvent,
    MessageDelta,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    ReasoningDelta,
    SignatureDelta,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
)

_Kind = Literal["reasoning", "text", "tool"]


class _OpenPart:
    __slots__ = ("details", "index", "kind", "tool_id", "tool_index")

    def __init__(
        self, kind: _Kind, index: int, tool_index: int | None = None, tool_id: str | None = None
    ) -> None:
        self.kind: _Kind = kind
        self.index = index
        self.tool_index = tool_index
        self.tool_id = tool_id
        self.details: list[dict[str, Any]] = []


class StreamDecoder:
    """Feed the upstream's server-sent events one by one; get canonical events back.

    ``provider`` is stamped on reasoning signatures (only that provider gets them back), ``model`` is
    the name to report (the client's; defaults to the upstream's), ``names`` restores tool names that
    :func:`render_request` shortened.
    """

    def __init__(self, *, provider: str, model: str | None = None, names: ToolNameMap | None = None) -> None:
        self._provider = provider
        self._model = model
        self._names = names
        self._started = False
        self._done = False
        self._next_index = 0
        self._open: _OpenPart | None = None
        self._closed_tools: set[int | None] = set()
        self._has_tool_calls = False
        self._refused = False
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._outcome_sent = False

    def feed(self, event: ServerSentEvent) -> list[StreamEvent]:
        """Decode one event. Comments, blank or non-JSON data and unknown fields are ignored."""
        if self._done:
            return []
        data = event.data.strip()
        if not data or data.startswith(":"):
            return []  # an OpenRouter keep-alive that reached us as data
        if data == "[DONE]":
            return self._complete()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(chunk, dict):
            return []
        if chunk.get("error"):
            self._done = True
            return [ErrorEvent(error_from_payload(chunk))]
        events: list[StreamEvent] = []
        if not self._started:
            self._started = True
            model = self._model or str(chunk.get("model") or "")
            events.append(
                MessageStart(id=str(chunk.get("id") or f"chatcmpl-{uuid.uuid4().hex}"), model=model)
            )
        choice = first_choice(chunk.get("choices"))
        if choice is not None:
            if choice.get("finish_reason") == "error":
                self._done = True
                return [*events, ErrorEvent(UpstreamError("the upstream failed while answering"))]
            delta = choice.get("delta")
            if isinstance(delta, dict) and not self._outcome_sent:
                self._apply(delta, events)
            if isinstance(choice.get("finish_reason"), str):
                self._finish_reason = choice["finish_reason"]
                self._close(events)  # the last part is complete; only the outcome waits for usage
        if isinstance(usage := chunk.get("usage"), dict):
            self._usage = usage_from_chat(usage)
        if self._finish_reason is not None and self._usage is not None and not self._outcome_sent:
            events.extend(self._outcome())
        return events

    def close(self) -> list[StreamEvent]:
        """End of the byte stream: complete the answer if it finished, else report the failure."""
        if self._done:
            return []
        if self._started and self._finish_reason is not None:
            return self._complete()
        self._done = True
        return [ErrorEvent(UpstreamError("the upstream stream ended before the answer was complete"))]

    # --- parts -----------------------------------------------------------------------------------

    def _apply(self, delta: dict[str, Any], events: list[StreamEvent]) -> None:
        # Nearly every chunk carries text alone: the reasoning keys are looked at only when present.
        if "reasoning_details" in delta or "reasoning" in delta or "reasoning_content" in delta:
            reasoning_text, details = delta_reasoning(delta)
            if reasoning_text or details:
                part = self._ensure("reasoning", events)
                if reasoning_text:
                    events.append(ReasoningDelta(part.index, reasoning_text))
                merge_reasoning_details(part.details, details)
        if isinstance(text := delta.get("content"), str) and text:
            events.append(TextDelta(self._ensure("text", events).index, text))
        if isinstance(text := delta.get("refusal"), str) and text:
            self._refused = True
            events.append(TextDelta(self._ensure("text", events).index, text))
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for piece in tool_calls:
                if isinstance(piece, dict):
                    self._tool_piece(piece, events)

    def _ensure(self, kind: Literal["reasoning", "text"], events: list[StreamEvent]) -> _OpenPart:
        if self._open is not None and self._open.kind == kind:
            return self._open
        self._close(events)
        part = _OpenPart(kind, self._take_index())
        events.append(PartStart(part.index, EMPTY_REASONING if kind == "reasoning" else EMPTY_TEXT))
        self._open = part
        return part

    def _tool_piece(self, piece: dict[str, Any], events: list[StreamEvent]) -> None:
        function = piece.get("function")
        function = function if isinstance(function, dict) else {}
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) else ""
        tool_index = piece["index"] if isinstance(piece.get("index"), int) else None
        call_id = piece.get("id") if isinstance(piece.get("id"), str) and piece.get("id") else None
        current = self._open if self._open is not None and self._open.kind == "tool" else None
        # Some upstreams repeat the id on every piece, some reuse index 0 for every parallel call:
        # a piece continues the open call unless its index or its id says otherwise.
        if (
            current is not None
            and tool_index in (None, current.tool_index)
            and call_id in (None, current.tool_id)
        ):
            if arguments:
                events.append(ToolArgumentsDelta(current.index, arguments))
            return
        if call_id is None and tool_index in self._closed_tools:
            # A late piece of a call already closed: parts may not interleave, so it cannot be placed.
            # No upstream recorded in our fixtures does this.
            return
        self._close(events)
        name = function["name"] if isinstance(function.get("name"), str) else ""
        call_id = call_id or f"call_{uuid.uuid4().hex[:24]}"
        part = _OpenPart("tool", self._take_index(), tool_index, call_id)
        client_name = self._names.to_client(name) if self._names is not None else name
        events.append(PartStart(part.index, ToolCallPart(id=call_id, name=client_name, arguments={})))
        if arguments:
            events.append(ToolArgumentsDelta(part.index, arguments))
        self._open = part
        self._has_tool_calls = True

    def _take_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def _close(self, events: list[StreamEvent]) -> None:
        part, self._open = self._open, None
        if part is None:
            return
        if part.kind == "reasoning" and part.details:
            signature = encode_reasoning_details(part.details)
            events.append(SignatureDelta(part.index, signature, self._provider))
        if part.kind == "tool":
            self._closed_tools.add(part.tool_index)
        events.append(PartStop(part.index))

    # --- outcome ---------------------------------------------------------------------------------

    def _outcome(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        self._close(events)
        stop = map_finish_reason(
            self._finish_reason, has_tool_calls=self._has_tool_calls, refused=self._refused
        )
        events.append(MessageDelta(stop_reason=stop, usage=self._usage))
        self._outcome_sent = True
        return events

    def _complete(self) -> list[StreamEvent]:
        self._done = True
        if not self._started:
            return [ErrorEvent(UpstreamError("the upstream stream ended without an answer"))]
        events = [] if self._outcome_sent else self._outcome()
        events.append(MessageStop())
        return events
