"""Small pieces every direction of the Responses format shares: ids, usage, stop reasons, data URLs.

Kept in one place so the stream decoder and :func:`parse_response` reach the same canonical answer
from the same upstream facts, and the encoder and :func:`render_response` write the same wire items.
"""

from __future__ import annotations

from typing import Any

from gateway_core.models import Base64Source, StopReason, UrlSource, Usage

DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
"""What ``instructions`` holds when the request has no system text: the Codex backend refuses a
request without instructions ("Instructions are required"), so it is never empty."""

_RESPONSE_PREFIX = "resp_"
_MESSAGE_PREFIX = "msg_"


def message_id(response_id: str) -> str:
    """The canonical ``msg_`` id of an upstream ``resp_`` id (reversible, see :func:`response_id`)."""
    return _MESSAGE_PREFIX + response_id.removeprefix(_RESPONSE_PREFIX)


def response_id(message_id: str) -> str:
    """The ``resp_`` id a canonical message id is rendered with."""
    return _RESPONSE_PREFIX + message_id.removeprefix(_MESSAGE_PREFIX)


def item_id(prefix: str, response: str, position: int) -> str:
    """A stable output item id (``rs_``, ``msg_``, ``fc_``) for the item at ``position`` of an answer."""
    return f"{prefix}_{response.removeprefix(_RESPONSE_PREFIX)}_{position}"


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_usage(raw: object) -> Usage | None:
    """Responses usage -> canonical (protocols §7.7).

    Responses ``input_tokens`` *includes* cached (and any cache-write) tokens; canonical
    ``input_tokens`` is the uncached rest, so the three canonical input fields add up to it.
    """
    if not isinstance(raw, dict):
        return None
    input_details = raw.get("input_tokens_details")
    output_details = raw.get("output_tokens_details")
    input_details = input_details if isinstance(input_details, dict) else {}
    output_details = output_details if isinstance(output_details, dict) else {}
    cached = _count(input_details.get("cached_tokens"))
    written = _count(input_details.get("cache_write_tokens"))
    reasoning = output_details.get("reasoning_tokens")
    return Usage(
        input_tokens=max(_count(raw.get("input_tokens")) - cached - written, 0),
        cached_input_tokens=cached,
        cache_write_tokens=written,
        output_tokens=_count(raw.get("output_tokens")),
        reasoning_tokens=_count(reasoning) if isinstance(reasoning, int) else None,
    )


def render_usage(usage: Usage) -> dict[str, Any]:
    """Canonical usage -> the Responses usage object (input counted with the cached part)."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "cache_write_tokens": usage.cache_write_tokens,  # the OpenAI SDK requires the field
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
    }


# `incomplete_details.reason` -> stop reason (protocols §7.6). Unknown reasons are a cut answer too.
_INCOMPLETE_REASONS: dict[str, StopReason] = {
    "max_output_tokens": "max_tokens",
    "content_filter": "refusal",
}

# Stop reasons that render as an incomplete response, with the reason they render as.
_INCOMPLETE_FOR_STOP: dict[StopReason, str] = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "refusal": "content_filter",
}


def stop_reason(status: object, incomplete_details: object, has_tool_call: bool) -> StopReason | None:
    """The canonical stop reason of a finished response; ``None`` while it is still running."""
    if status == "incomplete":
        reason = incomplete_details.get("reason") if isinstance(incomplete_details, dict) else None
        return _INCOMPLETE_REASONS.get(reason, "max_tokens") if isinstance(reason, str) else "max_tokens"
    if status == "completed":
        return "tool_use" if has_tool_call else "end_turn"
    return None


def render_status(reason: StopReason | None) -> tuple[str, dict[str, str] | None]:
    """``(status, incomplete_details)`` of a canonical stop reason."""
    incomplete = _INCOMPLETE_FOR_STOP.get(reason) if reason is not None else None
    if incomplete is None:
        return "completed", None
    return "incomplete", {"reason": incomplete}


def data_url(source: Base64Source | UrlSource) -> str:
    """Inline bytes as a ``data:`` URL; a URL source as it is."""
    if isinstance(source, UrlSource):
        return source.url
    return f"data:{source.media_type};base64,{source.data}"


def source_from_url(url: str) -> Base64Source | UrlSource:
    """The inverse of :func:`data_url`: a base64 ``data:`` URL back to inline bytes."""
    head, comma, data = url.partition(",")
    if comma and head.startswith("data:") and head.endswith(";base64"):
        return Base64Source(media_type=head[5:-7] or "application/octet-stream", data=data)
    return UrlSource(url=url)
