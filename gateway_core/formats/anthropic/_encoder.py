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

from dataclasses import dataclass, field
from typing import Any

from gateway_core.formats.anthropic._errors import render_error
from gateway_core.formats.anthropic._render_blocks import render_part
from gateway_core.formats.anthropic._response import client_message_id, render_usage
from gateway_core.formats.anthropic._signature import ANTHROPIC, encode_signature
from gateway_core.models import Part, ReasoningPart, TextPart, ToolCallPart, Usage
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
        self._start_usage = Usage()
        self._finished = False

    def ping(self) -> bytes:
        """A keep-alive frame, e.g. while waiting for a slow upstream."""
        return b"" if self._finished else ping()

    def encode(self, event: StreamEvent) -> bytes:
        """The frames for one canonical event; nothing once the message stopped or failed."""
        if self._finished:
            return b""
        match event:
            case MessageStart(id=message_id, model=model, usage=usage):
                self._start_usage = usage
                message: dict[str, Any] = {
                    "id": client_message_id(message_id),
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": render_usage(usage),
                }
                return _frame({"type": "message_start", "message": message})
            case PartStart(index=index, part=part):
                return self._start(index, part)
            case TextDelta(index=index, text=text) if text:
                return self._delta(index, TextPart, {"type": "text_delta", "text": text})
            case ToolArgumentsDelta(index=index, partial_json=fragment) if fragment:
                return self._delta(
                    index, ToolCallPart, {"type": "input_json_delta", "partial_json": fragment}
                )
            case ReasoningDelta(index=index, text=text) if text:
                return self._delta(index, ReasoningPart, {"type": "thinking_delta", "thinking": text})
            case CitationDelta(index=index, citation=citation):
                return self._delta(index, TextPart, {"type": "citations_delta", "citation": citation})
            case SignatureDelta(index=index, signature=signature, provider=provider):
                block = self._blocks.get(index)
                if block is not None and isinstance(block.part, ReasoningPart) and not block.part.redacted:
                    block.signature.append(signature)
                    block.provider = provider or block.provider
                return b""
            case PartStop(index=index):
                return self._stop(index)
            case MessageDelta(stop_reason=stop_reason, stop_sequence=stop_sequence, usage=usage):
                final = usage if usage is not None else self._start_usage
                return self._stop_all() + _frame(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                        "usage": render_usage(final),
                    }
                )
            case MessageStop():
                self._finished = True
                return self._stop_all() + _frame({"type": "message_stop"})
            case ErrorEvent(error=error):
                self._finished = True
                return _frame(render_error(error))
        return b""

    def _start(self, index: int, part: Part) -> bytes:
        out = self._stop_all()
        block = _Block(self._next_index, part)
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
