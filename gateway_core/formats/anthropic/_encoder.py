"""Canonical stream events -> Anthropic SSE bytes, as sent to Claude Code and the Anthropic SDKs.

Every frame is ``event: <name>`` + ``data: <json>`` (Claude Code re-sends the request without ``stream``
when the ``event:`` lines are missing, protocols §6.5). What the encoder guarantees whatever the
canonical stream looks like:
- wire block indexes count 0, 1, 2... in the order parts start, whatever the canonical indexes;
- blocks never interleave: a block still open when another starts, or when the message ends, is
  stopped first (a provider may never stop its parts explicitly);
- a reasoning token is sent as one ``signature_delta`` just before its block stops, encoded with the
  §7.8 codec: the SDK *replaces* the signature on each ``signature_delta``, and a foreign token can
  only be enveloped once it is whole;
- ``message_start`` has a ``msg_`` id, the model as given, empty content, ``stop_reason: null``;
  ``message_delta`` carries the stop reason and the full final usage, input fields repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway_core.formats.anthropic._errors import render_error
from gateway_core.formats.anthropic._render_blocks import render_part
from gateway_core.formats.anthropic._response import client_message_id, render_usage
from gateway_core.formats.anthropic._signature import ANTHROPIC, encode_signature
from gateway_core.models import NO_USAGE, Part, ReasoningPart, TextPart, ToolCallPart
from gateway_core.sse import encode_json_event
from gateway_core.streaming import (
    CitationDelta,
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


@dataclass(slots=True)
class _Block:
    """A wire block being written."""

    index: int
    part: Part
    signature: list[str] = field(default_factory=list)
    provider: str | None = None
    delta_head: bytes = b""
    """The bytes every ``content_block_delta`` frame of this block starts with, up to its delta's type
    (see :func:`_delta_head`)."""


# A text, thinking or input-JSON delta is nearly every frame of an answer. Its bytes are the block's
# fixed head, the delta's fixed type and key, the JSON string, and a fixed tail: exactly what
# ``encode_json_event`` writes for the same payload (orjson is compact and keeps key order), built
# without a dict per frame.
_DELTA_TAIL = b"}}\n\n"
_TEXT_DELTA = b'"text_delta","text":'
_THINKING_DELTA = b'"thinking_delta","thinking":'
_INPUT_JSON_DELTA = b'"input_json_delta","partial_json":'


def _delta_head(index: int) -> bytes:
    head = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":'
    return head % index


def _frame(payload: dict[str, Any]) -> bytes:
    return encode_json_event(payload, str(payload["type"]))


def ping() -> bytes:
    """A ``ping`` frame: a keep-alive every Anthropic client understands."""
    return _frame({"type": "ping"})


def _start_block(part: Part, native: str) -> dict[str, Any]:
    """The ``content_block_start`` skeleton; a reasoning token waits for the block's end."""
    if isinstance(part, ReasoningPart) and not part.redacted:
        return {"type": "thinking", "thinking": part.text, "signature": ""}
    return render_part(part, native)


class StreamEncoder:
    """Encode canonical events one by one; each call returns the bytes to write (maybe ``b""``)."""

    def __init__(self, *, native: str = ANTHROPIC) -> None:
        self._native = native
        """Reasoning tokens of this provider go out verbatim; others in the ``rg1.`` envelope."""
        self._blocks: dict[int, _Block] = {}
        self._next_index = 0
        self._start_usage = NO_USAGE
        self._finished = False

    def ping(self) -> bytes:
        """A keep-alive frame, e.g. while waiting for a slow upstream."""
        return b"" if self._finished else ping()

    def encode(self, event: StreamEvent) -> bytes:
        """The frames for one canonical event; nothing once the message stopped or failed."""
        if self._finished:
            return b""
        encode = _ENCODERS.get(type(event))
        return b"" if encode is None else encode(self, event)

    def _message_start(self, event: MessageStart) -> bytes:
        self._start_usage = event.usage
        message: dict[str, Any] = {
            "id": client_message_id(event.id),
            "type": "message",
            "role": "assistant",
            "model": event.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": render_usage(event.usage),
        }
        return _frame({"type": "message_start", "message": message})

    def _part_start(self, event: PartStart) -> bytes:
        return self._start(event.index, event.part)

    def _text(self, event: TextDelta) -> bytes:
        block = self._blocks.get(event.index)
        if block is None or not event.text or not isinstance(block.part, TextPart):
            return b""
        return block.delta_head + _TEXT_DELTA + orjson.dumps(event.text) + _DELTA_TAIL

    def _arguments(self, event: ToolArgumentsDelta) -> bytes:
        block = self._blocks.get(event.index)
        if block is None or not event.partial_json or not isinstance(block.part, ToolCallPart):
            return b""
        return block.delta_head + _INPUT_JSON_DELTA + orjson.dumps(event.partial_json) + _DELTA_TAIL

    def _reasoning(self, event: ReasoningDelta) -> bytes:
        block = self._blocks.get(event.index)
        if block is None or not event.text or not isinstance(block.part, ReasoningPart):
            return b""
        return block.delta_head + _THINKING_DELTA + orjson.dumps(event.text) + _DELTA_TAIL

    def _citation(self, event: CitationDelta) -> bytes:
        return self._delta(event.index, TextPart, {"type": "citations_delta", "citation": event.citation})

    def _signature(self, event: SignatureDelta) -> bytes:
        block = self._blocks.get(event.index)
        if block is not None and isinstance(block.part, ReasoningPart) and not block.part.redacted:
            block.signature.append(event.signature)
            block.provider = event.provider or block.provider
        return b""

    def _part_stop(self, event: PartStop) -> bytes:
        return self._stop(event.index)

    def _message_delta(self, event: MessageDelta) -> bytes:
        final = event.usage if event.usage is not None else self._start_usage
        return self._stop_all() + _frame(
            {
                "type": "message_delta",
                "delta": {"stop_reason": event.stop_reason, "stop_sequence": event.stop_sequence},
                "usage": render_usage(final),
            }
        )

    def _message_stop(self, event: MessageStop) -> bytes:
        self._finished = True
        return self._stop_all() + _frame({"type": "message_stop"})

    def _error(self, event: ErrorEvent) -> bytes:
        self._finished = True
        return _frame(render_error(event.error))

    def _start(self, index: int, part: Part) -> bytes:
        out = self._stop_all()
        block = _Block(self._next_index, part, delta_head=_delta_head(self._next_index))
        self._next_index += 1
        if isinstance(part, ReasoningPart) and not part.redacted and part.signature:
            block.signature.append(part.signature)
            block.provider = part.provider
        self._blocks[index] = block
        payload = {
            "type": "content_block_start",
            "index": block.index,
            "content_block": _start_block(part, self._native),
        }
        return out + _frame(payload)

    def _delta(self, index: int, kind: type[Part], delta: dict[str, Any]) -> bytes:
        block = self._blocks.get(index)
        if block is None or not isinstance(block.part, kind):
            return b""
        return _frame({"type": "content_block_delta", "index": block.index, "delta": delta})

    def _stop(self, index: int) -> bytes:
        block = self._blocks.pop(index, None)
        if block is None:
            return b""
        out = b""
        if block.signature and "".join(block.signature):
            signature = encode_signature("".join(block.signature), block.provider, native=self._native)
            delta = {"type": "signature_delta", "signature": signature}
            out = _frame({"type": "content_block_delta", "index": block.index, "delta": delta})
        return out + _frame({"type": "content_block_stop", "index": block.index})

    def _stop_all(self) -> bytes:
        return b"".join(self._stop(index) for index in list(self._blocks))


# One method per event type: a dict lookup instead of trying each event class in turn.
_ENCODERS: dict[type[Any], Callable[[StreamEncoder, Any], bytes]] = {
    MessageStart: StreamEncoder._message_start,
    PartStart: StreamEncoder._part_start,
    TextDelta: StreamEncoder._text,
    ToolArgumentsDelta: StreamEncoder._arguments,
    ReasoningDelta: StreamEncoder._reasoning,
    CitationDelta: StreamEncoder._citation,
    SignatureDelta: StreamEncoder._signature,
    PartStop: StreamEncoder._part_stop,
    MessageDelta: StreamEncoder._message_delta,
    MessageStop: StreamEncoder._message_stop,
    ErrorEvent: StreamEncoder._error,
}
