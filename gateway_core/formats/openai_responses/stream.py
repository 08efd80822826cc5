"""Responses SSE events -> canonical stream events, sans I/O (protocols §4.5, §4.7, §7.2).

Each output item becomes one canonical part: a reasoning item a reasoning part (summary deltas, then
the ``encrypted_content`` as its signature when the item is done), a message item a text part
(opened on its first text, so an empty message leaves no trace), a function call a tool-call part
with the ``call_id`` as its id. Parts never interleave: events of an item that arrive while another
item is still open are held back and replayed once it is done. Wherever a delta may be missing, the
``.done`` events and the final ``response.completed`` object fill the gap, so the accumulated stream
always equals :func:`parse_response` of the final object — and a whole answer may leave the deltas
out altogether (:data:`WHOLE_ANSWER_SKIPPABLE`).

Nearly every event of an answer is a text or summary delta for the part already open; those take a
short path in :meth:`StreamDecoder.feed` that does what the general routing would do for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway_core.errors import UpstreamError
from gateway_core.formats._names import ToolNameMap
from gateway_core.formats.openai_responses._common import message_id, parse_usage, stop_reason
from gateway_core.formats.openai_responses.errors import error_from_failure
from gateway_core.formats.openai_responses.response import (
    CALL_ITEM_TYPES,
    call_arguments,
    call_skeleton,
    message_texts,
    summary_texts,
)
from gateway_core.models import NO_USAGE, Part
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

SUMMARY_SEPARATOR = "\n\n"
"""Between two reasoning summary parts, as Anthropic clients see one thinking block (protocols §7.2)."""

# Item-scoped events -> the item type they imply when they arrive before their `output_item.added`.
_ITEM_EVENTS: dict[str, str | None] = {
    "response.output_item.added": None,
    "response.output_item.done": None,
    "response.output_text.delta": "message",
    "response.output_text.done": "message",
    "response.refusal.delta": "message",
    "response.refusal.done": "message",
    "response.reasoning_summary_text.delta": "reasoning",
    "response.reasoning_summary_text.done": "reasoning",
    "response.reasoning_text.delta": "reasoning",
    "response.function_call_arguments.delta": "function_call",
    "response.function_call_arguments.done": "function_call",
    "response.custom_tool_call_input.delta": "custom_tool_call",
    "response.custom_tool_call_input.done": "custom_tool_call",
}

WHOLE_ANSWER_SKIPPABLE = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_summary_text.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
    }
)
"""The events a reader of the whole answer can leave undecoded (``SSEDecoder(skip_events=...)``): the
decoder rebuilds the same answer from the events that repeat them in full — ``output_text.done`` /
``refusal.done`` (and the message's ``output_item.done``) the text, ``reasoning_summary_text.done``
(and the reasoning item's ``output_item.done``) each summary part, ``function_call_arguments.done`` /
``custom_tool_call_input.done`` (and the call's ``output_item.done``) the arguments; Codex itself
builds items from ``output_item.done`` (protocols §4.5). Not ``reasoning_text.delta``: no event the
decoder reads repeats raw reasoning text (it marks the item ``raw_reasoning`` and streams the deltas)."""

_TEXT_DELTA = "response.output_text.delta"
_SUMMARY_DELTA = "response.reasoning_summary_text.delta"
_HOT_DELTAS = (_TEXT_DELTA, _SUMMARY_DELTA)
_LIFECYCLE = frozenset({"response.created", "response.in_progress", "response.queued"})
_FINISHED = {"response.completed": "completed", "response.incomplete": "incomplete"}
_CUSTOM_INPUT_OPEN = '{"input":"'
_CUSTOM_INPUT_CLOSE = '"}'
_LEADING_RESPONSE_ID = re.compile(
    r'\{"type":"response\.(?:created|in_progress|queued)"(?:,"sequence_number":\d+)?'
    r',"response":\{"id":"([^"\\]*)"'
)
"""A lifecycle event as the backend writes it, its response id first: the start of the answer is read
from there, without parsing the rest (the whole request echoed back, tens of KB)."""


@dataclass(slots=True)
class _Item:
    """One output item being decoded."""

    output_index: int
    kind: str
    part_index: int | None = None
    done: bool = False
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Events that arrived while another item was open, replayed in order when its turn comes."""
    seen: set[int] = field(default_factory=set)
    """Summary / content indexes whose text already arrived (so `.done` texts are not repeated)."""
    last_summary: int | None = None
    wrote_reasoning: bool = False
    raw_reasoning: bool = False
    arguments_seen: bool = False
    custom_input_open: bool = False


class StreamDecoder:
    """Feed Responses SSE events; get canonical events.

    ``model`` is the name reported in ``MessageStart`` (the one the client asked for); ``provider``
    is stamped on reasoning signatures; ``tool_names`` restores the client's tool names.
    """

    def __init__(self, *, model: str, provider: str = "codex", tool_names: ToolNameMap | None = None) -> None:
        self._model = model
        self._provider = provider
        self._tool_names = tool_names
        self._started = False
        self._finished = False
        self._next_part = 0
        self._items: dict[int, _Item] = {}
        self._ids: dict[str, int] = {}
        self._queue: list[_Item] = []
        """Unfinished items in arrival order; the first one is the only one allowed an open part."""
        self._saw_call = False

    def feed(self, event: ServerSentEvent) -> list[StreamEvent]:
        """Decode one event; unknown events, unknown fields and garbage data are ignored."""
        if self._finished:
            return []
        if event.event in _LIFECYCLE:
            # `created` and `in_progress` echo the whole request (instructions, tools: tens of KB); all
            # the decoder takes from them is the response id, which leads, so it is read from there.
            if self._started:
                return []
            leading = _LEADING_RESPONSE_ID.match(event.data)
            if leading is not None:
                start: list[StreamEvent] = []
                self._ensure_started({"id": leading.group(1)}, start)
                return start
        try:
            payload = orjson.loads(event.data)
        except ValueError:
            return []
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type")
        if type(kind) is not str:
            kind = event.event
        if kind in _HOT_DELTAS:
            # The hot path: nearly every event of an answer is a delta for the open part of the item at
            # the head of the queue. Straight to its delta, with what _route/_apply would do to it.
            queue = self._queue
            item = queue[0] if queue else None
            if item is not None and item.part_index is not None and not item.done:
                output_index = payload.get("output_index")
                delta = payload.get("delta")
                if type(output_index) is int and output_index == item.output_index and type(delta) is str:
                    if kind == _TEXT_DELTA:
                        content_index = payload.get("content_index")
                        item.seen.add(content_index if type(content_index) is int else 0)
                        return [TextDelta(item.part_index, delta)] if delta else []
                    summary_index = payload.get("summary_index")
                    if type(summary_index) is not int:
                        summary_index = 0
                    if summary_index == item.last_summary:  # no separator due: the same summary part
                        item.seen.add(summary_index)
                        if not delta:
                            return []
                        item.wrote_reasoning = True
                        return [ReasoningDelta(item.part_index, delta)]
        out: list[StreamEvent] = []
        if kind in _ITEM_EVENTS:
            self._route(kind, payload, out)
            return out
        response = payload.get("response")
        response = response if isinstance(response, dict) else {}
        if kind in _LIFECYCLE:
            self._ensure_started(response, out)
        elif kind in _FINISHED:
            self._complete(response, _FINISHED[kind], out)
        elif kind == "response.failed":
            self._fail(ErrorEvent(error_from_failure(response.get("error"))), out)
        elif kind == "error":
            self._fail(ErrorEvent(error_from_failure(payload)), out)
        return out

    def close(self) -> list[StreamEvent]:
        """End of the upstream bytes: an error unless the response finished (Codex does the same)."""
        if self._finished:
            return []
        self._finished = True
        return [ErrorEvent(UpstreamError("the upstream stream ended before response.completed"))]

    # --- lifecycle ---------------------------------------------------------------------------------

    def _ensure_started(self, response: dict[str, Any], out: list[StreamEvent]) -> None:
        if not self._started:
            self._started = True
            raw_id = response.get("id")
            out.append(
                MessageStart(id=message_id(raw_id if isinstance(raw_id, str) else ""), model=self._model)
            )

    def _complete(self, response: dict[str, Any], status: str, out: list[StreamEvent]) -> None:
        self._ensure_started(response, out)
        self._drain(response.get("output"), out)
        reason = stop_reason(status, response.get("incomplete_details"), self._saw_call)
        out.append(MessageDelta(stop_reason=reason, usage=parse_usage(response.get("usage")) or NO_USAGE))
        out.append(MessageStop())
        self._finished = True

    def _fail(self, event: ErrorEvent, out: list[StreamEvent]) -> None:
        out.append(event)
        self._finished = True

    def _drain(self, output: object, out: list[StreamEvent]) -> None:
        """Finish every item at completion, completing it from the final ``output`` list when its own
        ``output_item.done`` never came, and add final items the stream never mentioned."""
        final = (
            [item if isinstance(item, dict) else {} for item in output] if isinstance(output, list) else []
        )
        while self._queue:
            item = self._queue[0]
            self._replay(item, out)
            if not item.done:
                done_item = final[item.output_index] if 0 <= item.output_index < len(final) else None
                if done_item:
                    self._apply(item, "response.output_item.done", {"item": done_item}, out)
                else:
                    self._close(item, out)
            self._queue.pop(0)
        for index, done_item in enumerate(final):
            if index not in self._items and done_item:
                item = self._new_item(index, done_item.get("type"), done_item.get("id"))
                self._apply(item, "response.output_item.added", {"item": done_item}, out)
                self._apply(item, "response.output_item.done", {"item": done_item}, out)
                self._queue.clear()

    # --- routing: one open item at a time ------------------------------------------------------------

    def _route(self, kind: str, payload: dict[str, Any], out: list[StreamEvent]) -> None:
        item = self._item_for(kind, payload)
        if item.done:
            return
        if self._queue[0] is not item:
            item.pending.append((kind, payload))
            return
        self._apply(item, kind, payload, out)
        while self._queue and self._queue[0].done:
            self._queue.pop(0)
            if self._queue:
                self._replay(self._queue[0], out)

    def _replay(self, item: _Item, out: list[StreamEvent]) -> None:
        pending, item.pending = item.pending, []
        for kind, payload in pending:
            if item.done:
                break
            self._apply(item, kind, payload, out)

    def _item_for(self, kind: str, payload: dict[str, Any]) -> _Item:
        wire_item = payload.get("item")
        wire_item = wire_item if isinstance(wire_item, dict) else {}
        raw_id = payload.get("item_id", wire_item.get("id"))
        index = payload.get("output_index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = self._ids.get(raw_id) if isinstance(raw_id, str) else None
        if index is None:
            if self._queue:
                return self._queue[0]
            index = max(self._items, default=-1) + 1
        if index in self._items:
            return self._items[index]
        return self._new_item(index, wire_item.get("type") or _ITEM_EVENTS[kind], raw_id)

    def _new_item(self, index: int, kind: object, raw_id: object) -> _Item:
        item = _Item(output_index=index, kind=kind if isinstance(kind, str) else "unknown")
        self._items[index] = item
        if isinstance(raw_id, str):
            self._ids[raw_id] = index
        self._queue.append(item)
        return item

    # --- per-item events ---------------------------------------------------------------------------------

    def _apply(self, item: _Item, kind: str, payload: dict[str, Any], out: list[StreamEvent]) -> None:
        wire_item = payload.get("item")
        wire_item = wire_item if isinstance(wire_item, dict) else {}
        if kind == "response.output_item.added":
            self._added(item, wire_item, out)
        elif kind == "response.output_item.done":
            self._done(item, wire_item, out)
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            self._text(item, _int(payload.get("content_index")), _str(payload.get("delta")), out)
        elif kind in ("response.output_text.done", "response.refusal.done"):
            index = _int(payload.get("content_index"))
            if index not in item.seen:
                self._text(item, index, _str(payload.get("text", payload.get("refusal"))), out)
        elif kind == "response.reasoning_summary_text.delta":
            self._summary(item, _int(payload.get("summary_index")), _str(payload.get("delta")), out)
        elif kind == "response.reasoning_summary_text.done":
            index = _int(payload.get("summary_index"))
            if index not in item.seen:
                self._summary(item, index, _str(payload.get("text")), out)
        elif kind == "response.reasoning_text.delta":
            item.raw_reasoning = True
            self._reasoning(item, _str(payload.get("delta")), out)
        elif kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            self._arguments(item, _str(payload.get("delta")), out)
        elif kind == "response.function_call_arguments.done" and not item.arguments_seen:
            self._arguments(item, _str(payload.get("arguments")), out)
        elif kind == "response.custom_tool_call_input.done" and not item.arguments_seen:
            self._arguments(item, _str(payload.get("input")), out)

    def _added(self, item: _Item, wire_item: dict[str, Any], out: list[StreamEvent]) -> None:
        if item.kind == "reasoning":
            self._open(item, EMPTY_REASONING, out)
        elif item.kind in CALL_ITEM_TYPES:
            self._open(item, call_skeleton(wire_item, self._tool_names), out)
            if item.kind == "function_call" and (arguments := _str(wire_item.get("arguments"))):
                self._arguments(item, arguments, out)

    def _done(self, item: _Item, wire_item: dict[str, Any], out: list[StreamEvent]) -> None:
        if item.kind == "reasoning":
            self._open(item, EMPTY_REASONING, out)
            if not item.raw_reasoning:
                for index, text in enumerate(summary_texts(wire_item)):
                    if index not in item.seen:
                        self._summary(item, index, text, out)
            signature = wire_item.get("encrypted_content")
            if isinstance(signature, str) and signature and item.part_index is not None:
                out.append(
                    SignatureDelta(index=item.part_index, signature=signature, provider=self._provider)
                )
        elif item.kind == "message":
            for index, text in enumerate(message_texts(wire_item)):
                if index not in item.seen:
                    self._text(item, index, text, out)
        elif item.kind in CALL_ITEM_TYPES:
            self._open(item, call_skeleton(wire_item, self._tool_names), out)
            if not item.arguments_seen:
                item.custom_input_open = False  # the whole input follows as one JSON object
                self._arguments(item, call_arguments(wire_item), out, whole=True)
            if item.custom_input_open and item.part_index is not None:
                out.append(ToolArgumentsDelta(index=item.part_index, partial_json=_CUSTOM_INPUT_CLOSE))
        self._close(item, out)

    def _text(self, item: _Item, index: int, text: str, out: list[StreamEvent]) -> None:
        item.seen.add(index)
        if text:
            self._open(item, EMPTY_TEXT, out)
            out.append(TextDelta(index=self._index(item), text=text))

    def _summary(self, item: _Item, index: int, text: str, out: list[StreamEvent]) -> None:
        item.seen.add(index)
        if not text:
            return
        if item.wrote_reasoning and index != item.last_summary:
            self._reasoning(item, SUMMARY_SEPARATOR, out)
        item.last_summary = index
        self._reasoning(item, text, out)

    def _reasoning(self, item: _Item, text: str, out: list[StreamEvent]) -> None:
        if text:
            self._open(item, EMPTY_REASONING, out)
            item.wrote_reasoning = True
            out.append(ReasoningDelta(index=self._index(item), text=text))

    def _arguments(self, item: _Item, fragment: str, out: list[StreamEvent], *, whole: bool = False) -> None:
        """A function call's JSON fragment; a custom tool's raw input is streamed inside ``{"input": …}``."""
        item.arguments_seen = True
        if item.kind == "custom_tool_call" and not whole:
            if not item.custom_input_open:
                item.custom_input_open = True
                fragment = _CUSTOM_INPUT_OPEN + orjson.dumps(fragment).decode()[1:-1]
            else:
                fragment = orjson.dumps(fragment).decode()[1:-1]
        if fragment and item.part_index is not None:
            out.append(ToolArgumentsDelta(index=item.part_index, partial_json=fragment))

    # --- parts --------------------------------------------------------------------------------------------

    def _open(self, item: _Item, part: Part, out: list[StreamEvent]) -> None:
        if item.part_index is not None or item.done:
            return
        self._ensure_started({}, out)
        item.part_index = self._next_part
        self._next_part += 1
        if item.kind in CALL_ITEM_TYPES:
            self._saw_call = True
        out.append(PartStart(index=item.part_index, part=part))

    def _index(self, item: _Item) -> int:
        assert item.part_index is not None  # callers open the part first
        return item.part_index

    def _close(self, item: _Item, out: list[StreamEvent]) -> None:
        if item.part_index is not None and not item.done:
            out.append(PartStop(index=item.part_index))
        item.done = True


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""
