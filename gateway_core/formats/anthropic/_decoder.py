"""Anthropic SSE events -> canonical stream events (for an Anthropic upstream, and for tests).

Follows the grammar of protocols §1.7 and smooths what real streams do so that the canonical stream is
always well formed:
- ``message_delta.usage`` is merged over ``message_start.usage`` (older API versions send only
  ``output_tokens`` there), so canonical ``MessageDelta.usage`` is final and complete;
- a block still open when the next block starts or when ``message_delta`` arrives (``max_tokens`` cuts a
  tool_use block without ``content_block_stop``) is stopped first;
- ``ping`` and unknown event or delta types are ignored; ``event: error`` becomes an ``ErrorEvent``
  with the matching GatewayError class; a stream that ends before ``message_stop`` is an upstream
  failure, reported by :meth:`StreamDecoder.close`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_core.errors import InvalidRequestError, UpstreamError
from gateway_core.formats.anthropic._errors import error_from_payload
from gateway_core.formats.anthropic._parse_blocks import parse_block
from gateway_core.formats.anthropic._response import map_stop_reason, parse_usage
from gateway_core.formats.anthropic._signature import ANTHROPIC, decode_signature
from gateway_core.models import NO_USAGE
from gateway_core.sse import ServerSentEvent
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

# Block types a stream can open; anything else (server-tool blocks) is skipped with its deltas.
_STREAM_BLOCKS = frozenset({"text", "thinking", "redacted_thinking", "tool_use"})


class StreamDecoder:
    """Feed one upstream SSE event at a time; get the canonical events it means."""

    def __init__(self, *, provider: str = ANTHROPIC) -> None:
        self._provider = provider
        """Stamped on signatures the upstream minted itself."""
        self._start_usage = NO_USAGE
        self._open: set[int] = set()
        self._done = False

    def feed(self, event: ServerSentEvent) -> list[StreamEvent]:
        """Decode one SSE event; an undecodable one ends the stream with an upstream error."""
        if self._done:
            return []
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            if event.event == "ping" or not event.data.strip():
                return []
            return self._fail(f"malformed Anthropic stream event: {event.data[:200]!r}")
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type", event.event)
        try:
            return self._dispatch(kind, payload)
        except InvalidRequestError as exc:
            return self._fail(f"malformed Anthropic {kind} event: {exc.message}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return self._fail(f"malformed Anthropic {kind} event: {exc!r}")

    def close(self) -> list[StreamEvent]:
        """End of the byte stream: an error unless ``message_stop`` (or an error event) came."""
        if self._done:
            return []
        return self._fail("the upstream stream ended before message_stop")

    def _fail(self, message: str) -> list[StreamEvent]:
        self._done = True
        return [ErrorEvent(UpstreamError(message))]

    def _dispatch(self, kind: object, payload: dict[str, Any]) -> list[StreamEvent]:
        match kind:
            case "message_start":
                message = payload["message"]
                self._start_usage = parse_usage(message.get("usage"))
                return [
                    MessageStart(id=str(message["id"]), model=str(message["model"]), usage=self._start_usage)
                ]
            case "content_block_start":
                return self._block_start(int(payload["index"]), payload["content_block"])
            case "content_block_delta":
                return self._block_delta(int(payload["index"]), payload["delta"])
            case "content_block_stop":
                index = int(payload["index"])
                if index not in self._open:
                    return []
                self._open.discard(index)
                return [PartStop(index)]
            case "message_delta":
                delta = payload.get("delta") or {}
                usage = parse_usage(payload.get("usage"), self._start_usage)
                stop_sequence = delta.get("stop_sequence")
                return [
                    *self._stop_open(),
                    MessageDelta(
                        stop_reason=map_stop_reason(delta.get("stop_reason")),
                        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
                        usage=usage,
                    ),
                ]
            case "message_stop":
                self._done = True
                return [*self._stop_open(), MessageStop()]
            case "error":
                self._done = True
                return [ErrorEvent(error_from_payload(payload))]
        return []  # ping and event types newer than this decoder

    def _stop_open(self) -> list[StreamEvent]:
        stops: list[StreamEvent] = [PartStop(index) for index in sorted(self._open)]
        self._open.clear()
        return stops

    def _block_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        if block.get("type") not in _STREAM_BLOCKS:
            return []
        events = self._stop_open()
        self._open.add(index)
        events.append(PartStart(index, parse_block(block, "content_block", self._provider)))
        return events

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[StreamEvent]:
        if index not in self._open:
            return []
        match delta.get("type"):
            case "text_delta":
                return [TextDelta(index, str(delta["text"]))]
            case "input_json_delta":
                return [ToolArgumentsDelta(index, str(delta["partial_json"]))]
            case "thinking_delta":
                return [ReasoningDelta(index, str(delta["thinking"]))]
            case "signature_delta":
                wire = delta.get("signature")
                token, provider = decode_signature(
                    wire if isinstance(wire, str) else None, native=self._provider
                )
                return [SignatureDelta(index, token, provider)] if token else []
            case "citations_delta":
                citation = delta["citation"]
                return [CitationDelta(index, citation)] if isinstance(citation, dict) else []
        return []
