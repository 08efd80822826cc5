"""Anthropic ``Message`` (non-streaming answer, protocols §1.6) <-> canonical :class:`Response`.

Usage maps one to one (protocols §7.7): Anthropic ``input_tokens`` is already the *uncached* input, as
canonical; ``cache_read_input_tokens`` is ``cached_input_tokens``, ``cache_creation_input_tokens`` is
``cache_write_tokens``, and ``output_tokens_details.thinking_tokens`` (beta ``thinking-token-count``)
is ``reasoning_tokens``.

``parse_response`` reads an *upstream's* answer: malformed bodies are an
:class:`~gateway_core.errors.UpstreamError`, never the client's fault, and blocks it cannot carry
(server-tool results) are skipped.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway_core.errors import InvalidRequestError, UpstreamError
from gateway_core.formats._validate import expect_list, expect_object
from gateway_core.formats.anthropic._parse_blocks import MESSAGE_CONTENT, parse_block, req_str
from gateway_core.formats.anthropic._render_blocks import render_part
from gateway_core.formats.anthropic._signature import ANTHROPIC
from gateway_core.models import NO_USAGE, Response, StopReason, Usage

_STOP_REASONS: dict[str, StopReason] = {
    reason: reason
    for reason in (
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    )
}


def map_stop_reason(value: object) -> StopReason | None:
    """A wire ``stop_reason``; a value newer than this table still ended the turn: ``end_turn``."""
    if value is None:
        return None
    return _STOP_REASONS.get(value, "end_turn") if isinstance(value, str) else "end_turn"


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_usage(value: object, base: Usage | None = None) -> Usage:
    """A wire usage object; fields it lacks keep their value from ``base`` (``message_start`` usage).

    ``message_delta.usage`` is cumulative and, on current API versions, repeats the input fields; on
    older ones it has only ``output_tokens``, so the rest must come from ``message_start``.
    """
    start = base or NO_USAGE
    usage = value if isinstance(value, dict) else {}
    details = usage.get("output_tokens_details")
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, dict) else None
    input_tokens = _count(usage.get("input_tokens"))
    cache_read = _count(usage.get("cache_read_input_tokens"))
    cache_write = _count(usage.get("cache_creation_input_tokens"))
    output_tokens = _count(usage.get("output_tokens"))
    return Usage(
        input_tokens=start.input_tokens if input_tokens is None else input_tokens,
        cached_input_tokens=start.cached_input_tokens if cache_read is None else cache_read,
        cache_write_tokens=start.cache_write_tokens if cache_write is None else cache_write,
        output_tokens=start.output_tokens if output_tokens is None else output_tokens,
        reasoning_tokens=start.reasoning_tokens if thinking is None else thinking,
        cost=start.cost,
    )


def render_usage(usage: Usage) -> dict[str, Any]:
    """The full Anthropic usage object, input fields included (as ``message_delta`` must carry them)."""
    out: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
        "output_tokens": usage.output_tokens,
    }
    if usage.reasoning_tokens is not None:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def client_message_id(message_id: str) -> str:
    """An id of Anthropic's ``msg_`` shape: kept when it has it, prefixed otherwise (``resp_…`` ids)."""
    if message_id.startswith("msg_"):
        return message_id
    return "msg_" + (message_id or uuid.uuid4().hex)


def parse_response(body: object, *, provider: str = ANTHROPIC) -> Response:
    """An upstream's ``Message`` JSON -> canonical; plain signatures are stamped with ``provider``."""
    try:
        return _parse_response(body, provider)
    except InvalidRequestError as exc:
        raise UpstreamError(f"malformed Anthropic answer: {exc.message}") from exc


def _parse_response(body: object, provider: str) -> Response:
    obj = expect_object(body, "body")
    blocks = expect_list(obj.get("content", []), "content")
    content = tuple(
        parse_block(block, f"content.{i}", provider)
        for i, block in enumerate(blocks)
        if isinstance(block, dict) and block.get("type") in MESSAGE_CONTENT
    )
    stop_sequence = obj.get("stop_sequence")
    return Response(
        id=req_str(obj, "id", ""),
        model=req_str(obj, "model", ""),
        content=content,
        stop_reason=map_stop_reason(obj.get("stop_reason")),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        usage=parse_usage(obj.get("usage")),
    )


def render_response(response: Response) -> dict[str, Any]:
    """Canonical -> the ``Message`` JSON a client gets; ``model`` is echoed unchanged."""
    return {
        "id": client_message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": [render_part(part) for part in response.content],
        "stop_reason": response.stop_reason,
        "stop_sequence": response.stop_sequence,
        "usage": render_usage(response.usage),
    }
