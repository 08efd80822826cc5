"""What both directions of the Chat Completions format share: stop reasons, usage, reasoning details.

Stop reasons follow protocols §7.6 and usage protocols §7.7. OpenRouter's ``reasoning_details`` (a list
of ``reasoning.text`` / ``reasoning.summary`` / ``reasoning.encrypted`` objects) is the only
continuation data a Chat upstream gives back, so it becomes the :class:`ReasoningPart` signature: the
compact JSON of the list, exactly as received (streamed pieces merged as OpenRouter's own SDK merges
them). Replayed verbatim as the assistant message's ``reasoning_details`` to the provider that minted
it, it restores the reasoning (``fixtures/openrouter/openrouter_stream_tool_result_followup_kimi_k2.5``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from gateway_core.models import StopReason, Usage

# --- stop reasons (protocols §7.6) ---------------------------------------------------------------

# Chat `finish_reason` -> canonical stop reason. `function_call` is the pre-tools spelling of a call.
_FINISH_TO_STOP: dict[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Canonical stop reason -> Chat `finish_reason`; Anthropic-only outcomes fold into the nearest one.
_STOP_TO_FINISH: dict[StopReason, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def map_finish_reason(finish_reason: str | None, *, has_tool_calls: bool, refused: bool) -> StopReason:
    """The canonical stop reason of a finished Chat answer.

    Some OpenRouter providers answer a tool call with ``finish_reason:"stop"`` (or none at all); the
    calls are what the client must act on, so an answer that holds any is a ``tool_use``. A
    ``refusal`` field means the model refused even when the finish reason says ``stop``.
    """
    stop = _FINISH_TO_STOP.get(finish_reason or "stop", "end_turn")
    if stop == "end_turn" and has_tool_calls:
        return "tool_use"
    if stop == "end_turn" and refused:
        return "refusal"
    return stop


def finish_reason_for(stop_reason: StopReason | None) -> str:
    """The Chat ``finish_reason`` a canonical stop reason is reported as."""
    return _STOP_TO_FINISH.get(stop_reason, "stop") if stop_reason is not None else "stop"


# --- usage (protocols §7.7) ----------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: object) -> int:
    return value if isinstance(value, int) and _is_int(value) and value > 0 else 0


def usage_from_chat(usage: dict[str, Any]) -> Usage:
    """Chat ``usage`` -> canonical. ``prompt_tokens`` includes cached and cache-written tokens, so the
    canonical (uncached) input is what is left of it; OpenRouter's ``cost`` is kept."""
    prompt_details = usage.get("prompt_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = usage.get("completion_tokens_details")
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    cached = _count(prompt_details.get("cached_tokens"))
    cache_write = _count(prompt_details.get("cache_write_tokens"))
    reasoning = completion_details.get("reasoning_tokens")
    cost = usage.get("cost")
    return Usage(
        input_tokens=max(_count(usage.get("prompt_tokens")) - cached - cache_write, 0),
        cached_input_tokens=cached,
        cache_write_tokens=cache_write,
        output_tokens=_count(usage.get("completion_tokens")),
        reasoning_tokens=reasoning if _is_int(reasoning) else None,
        cost=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
    )


def usage_to_chat(usage: Usage) -> dict[str, Any]:
    """Canonical usage -> the Chat ``usage`` object an OpenAI client reads."""
    prompt_details: dict[str, Any] = {"cached_tokens": usage.cached_input_tokens}
    if usage.cache_write_tokens:
        prompt_details["cache_write_tokens"] = usage.cache_write_tokens
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
        "prompt_tokens_details": prompt_details,
    }
    if usage.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


# --- reasoning details (OpenRouter) ------------------------------------------------------------

# The string field that carries each detail type's growing content in a stream.
_GROWING_FIELD: dict[str, str] = {"reasoning.text": "text", "reasoning.summary": "summary"}


def merge_reasoning_details(merged: list[dict[str, Any]], pieces: Iterable[object]) -> None:
    """Fold streamed ``reasoning_details`` pieces into ``merged`` (in place).

    A piece continues the previous detail when both have the same type and ``index`` and the type
    grows by text (``reasoning.text``, ``reasoning.summary``): its text is appended, a ``signature``
    that arrives late is kept, other fields fill gaps. Anything else (``reasoning.encrypted``) is a
    detail of its own, as OpenRouter's AI SDK provider accumulates them.
    """
    for piece in pieces:
        if not isinstance(piece, dict) or not isinstance(piece.get("type"), str):
            continue
        kind = piece["type"]
        field = _GROWING_FIELD.get(kind)
        last = merged[-1] if merged else None
        if (
            field is None
            or last is None
            or last.get("type") != kind
            or last.get("index") != piece.get("index")
        ):
            merged.append(dict(piece))
            continue
        for key, value in piece.items():
            if key == field and isinstance(value, str):
                last[key] = (last.get(key) or "") + value
            elif value is not None and (last.get(key) is None or last.get(key) == ""):
                last[key] = value


def reasoning_details_text(details: Iterable[object]) -> str:
    """The visible reasoning text of some details: reasoning text and summaries, in order."""
    out: list[str] = []
    for detail in details:
        if isinstance(detail, dict) and (field := _GROWING_FIELD.get(detail.get("type", ""))) is not None:
            value = detail.get(field)
            if isinstance(value, str):
                out.append(value)
    return "".join(out)


def encode_reasoning_details(details: list[dict[str, Any]]) -> str:
    """The signature that carries a reasoning part's details: their compact JSON."""
    return orjson.dumps(details).decode()


def decode_reasoning_details(signature: str) -> list[dict[str, Any]] | None:
    """The details a signature of ours carries; ``None`` for anything else (never replayed)."""
    try:
        value = orjson.loads(signature)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, list) or not value:
        return None
    if not all(
        isinstance(item, dict) and str(item.get("type", "")).startswith("reasoning.") for item in value
    ):
        return None
    return value


def delta_reasoning(holder: dict[str, Any]) -> tuple[str, list[Any]]:
    """The reasoning text and raw details of a delta or message.

    OpenRouter sends the same text twice, as ``reasoning`` and inside ``reasoning_details``; the details
    win when present. DeepSeek-style upstreams send ``reasoning_content`` instead.
    """
    details = holder.get("reasoning_details")
    details = details if isinstance(details, list) else []
    if details:
        return reasoning_details_text(details), details
    for key in ("reasoning", "reasoning_content"):
        if isinstance(value := holder.get(key), str):
            return value, []
    return "", []
