"""The answers of the mock upstream, encoded once at start-up (protocols §3, §4.5, §4.9).

Both answers say the same thing: a short reasoning summary, then :data:`TEXT_DELTAS` text deltas, then
usage. The shapes follow the recorded traffic in ``../shared/protocols/fixtures``:

- Codex ``/codex/responses``: ``event:`` + ``data:`` frames with ``sequence_number``, ``obfuscation`` pads,
  ``rs_`` / ``msg_`` item ids, usage only on ``response.completed``. Like the backend, the three response
  objects (``created``, ``in_progress``, ``completed``) echo the request's ``instructions`` and ``tools``:
  for a Claude Code request that is tens of kilobytes the gateway has to parse three times;
- Kilo / OpenRouter ``/chat/completions``: a ``: OPENROUTER PROCESSING`` comment, reasoning chunks with
  ``reasoning_details``, content chunks repeating ``"role":"assistant"``, a finish chunk, a usage chunk that
  still carries the choice (with ``cost``), ``data: [DONE]``; non-streaming bodies open with whitespace.

Only the echoing frames are built per request; every other frame is a constant ``bytes``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Final

import orjson

TEXT_DELTAS: Final = 500
REASONING_DELTAS: Final = 40
MODEL: Final = "gpt-5.5"
CHAT_MODEL: Final = "moonshotai/kimi-k2.5:free"

_LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi "
    "aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat"
)
_WORDS = _LOREM.split(" ")
_PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_RESPONSE_ID = "resp_" + "0a1b2c3d4e5f" * 4
_REASONING_ID = "rs_" + "1b2c3d4e5f6a" * 4
_MESSAGE_ID = "msg_" + "2c3d4e5f6a7b" * 4
_ENCRYPTED = "gAAAAAB" + ("qPBJWnVbUj1Pc-lYHtqrXzHke4s_WmAOdIHTHWd7BaV6fwhTNd6aWTrOnHGPDEA5fbUzoCDIwox" * 9)
_CREATED = 1782321750
_GENERATION_ID = "gen-1782321750-qNPs6PR0SRru1d3CzVF1"


def _deltas(count: int, offset: int) -> list[str]:
    """Word deltas with their leading space, as models stream them; some carry punctuation."""
    words = itertools.islice(itertools.cycle(_WORDS), offset, offset + count)
    return [f" {word}{'.' if i % 17 == 16 else ''}" for i, word in enumerate(words)]


def _obfuscation(delta: str, index: int) -> str:
    # The backend pads each delta to about 16 characters.
    start = index % len(_PAD)
    return (_PAD + _PAD)[start : start + max(0, 16 - len(delta))]


TEXT = _deltas(TEXT_DELTAS, 0)
REASONING = _deltas(REASONING_DELTAS, 7)
_TEXT_FULL = "".join(TEXT)
_REASONING_FULL = "**Answering the request**\n\n" + "".join(REASONING)
_INPUT_TOKENS, _OUTPUT_TOKENS, _REASONING_TOKENS = 14_210, 700, 64


# --- Codex / Responses -----------------------------------------------------------------------------


def _frame(payload: Mapping[str, Any]) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _reasoning_item(done: bool) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": _REASONING_FULL}] if done else []
    return {
        "id": _REASONING_ID,
        "type": "reasoning",
        "content": [],
        "encrypted_content": _ENCRYPTED,
        "summary": summary,
    }


def _message_item(done: bool) -> dict[str, Any]:
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": _TEXT_FULL}
    return {
        "id": _MESSAGE_ID,
        "type": "message",
        "status": "completed" if done else "in_progress",
        "content": [part] if done else [],
        "role": "assistant",
    }


def _middle_payloads() -> list[dict[str, Any]]:
    """Every event between ``response.in_progress`` and ``response.completed``."""
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.added", "item": _reasoning_item(False), "output_index": 0},
        {
            "type": "response.reasoning_summary_part.added",
            "item_id": _REASONING_ID,
            "output_index": 0,
            "part": {"type": "summary_text", "text": ""},
            "summary_index": 0,
        },
    ]
    head = "**Answering the request**\n\n"
    for index, delta in enumerate([head, *REASONING]):
        events.append(
            {
                "type": "response.reasoning_summary_text.delta",
                "delta": delta,
                "item_id": _REASONING_ID,
                "obfuscation": _obfuscation(delta, index),
                "output_index": 0,
                "summary_index": 0,
            }
        )
    common = {"item_id": _REASONING_ID, "output_index": 0, "summary_index": 0}
    events += [
        {"type": "response.reasoning_summary_text.done", **common, "text": _REASONING_FULL},
        {
            "type": "response.reasoning_summary_part.done",
            **common,
            "part": {"type": "summary_text", "text": _REASONING_FULL},
        },
        {"type": "response.output_item.done", "item": _reasoning_item(True), "output_index": 0},
        {"type": "response.output_item.added", "item": _message_item(False), "output_index": 1},
        {
            "type": "response.content_part.added",
            "content_index": 0,
            "item_id": _MESSAGE_ID,
            "output_index": 1,
            "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
        },
    ]
    for index, delta in enumerate(TEXT):
        events.append(
            {
                "type": "response.output_text.delta",
                "content_index": 0,
                "delta": delta,
                "item_id": _MESSAGE_ID,
                "logprobs": [],
                "obfuscation": _obfuscation(delta, index),
                "output_index": 1,
            }
        )
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": _TEXT_FULL}
    common = {"content_index": 0, "item_id": _MESSAGE_ID, "output_index": 1}
    events += [
        {"type": "response.output_text.done", **common, "logprobs": [], "text": _TEXT_FULL},
        {"type": "response.content_part.done", **common, "part": part},
        {"type": "response.output_item.done", "item": _message_item(True), "output_index": 1},
    ]
    return events


_MIDDLE = _middle_payloads()
RESPONSES_MIDDLE: Final = tuple(_frame({**p, "sequence_number": n + 2}) for n, p in enumerate(_MIDDLE))
"""The constant frames of a Codex answer (sequence numbers 2 .. n-2)."""
RESPONSES_EVENTS: Final = len(RESPONSES_MIDDLE) + 3
"""SSE events in one Codex answer: created, in_progress, the middle, completed."""


def _response_object(status: str, echo: Mapping[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "id": _RESPONSE_ID,
        "object": "response",
        "created_at": _CREATED,
        "status": status,
        "background": False,
        "completed_at": _CREATED + 3 if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": echo.get("instructions"),
        "max_output_tokens": None,
        "model": MODEL,
        "output": [_reasoning_item(True), _message_item(True)] if status == "completed" else [],
        "parallel_tool_calls": echo.get("parallel_tool_calls", False),
        "previous_response_id": None,
        "prompt_cache_key": echo.get("prompt_cache_key"),
        "reasoning": {"context": "current_turn", "effort": "medium", "summary": "detailed"},
        "service_tier": "auto",
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools", []),
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": {},
    }
    if status == "completed":
        response["usage"] = {
            "input_tokens": _INPUT_TOKENS,
            "input_tokens_details": {"cached_tokens": 12_800},
            "output_tokens": _OUTPUT_TOKENS,
            "output_tokens_details": {"reasoning_tokens": _REASONING_TOKENS},
            "total_tokens": _INPUT_TOKENS + _OUTPUT_TOKENS,
        }
    return response


def responses_frames(request: object) -> tuple[bytes, bytes, bytes]:
    """The three echoing frames (``created``, ``in_progress``, ``completed``) for a request body."""
    echo = request if isinstance(request, Mapping) else {}
    created = _response_object("in_progress", echo)
    last = RESPONSES_EVENTS - 1
    return (
        _frame({"type": "response.created", "response": created, "sequence_number": 0}),
        _frame({"type": "response.in_progress", "response": created, "sequence_number": 1}),
        _frame(
            {
                "type": "response.completed",
                "response": _response_object("completed", echo),
                "sequence_number": last,
            }
        ),
    )


def responses_answer(request: object) -> list[bytes]:
    """Every frame of the Codex answer to ``request`` (the parsed body, echoed as the backend does)."""
    created, in_progress, completed = responses_frames(request)
    return [created, in_progress, *RESPONSES_MIDDLE, completed]


def quota_headers(now: int) -> list[tuple[bytes, bytes]]:
    """The ``x-codex-*`` set the backend sends on every answer (protocols §4.9)."""
    values = {
        "x-codex-active-limit": "premium",
        "x-codex-plan-type": "plus",
        "x-codex-primary-used-percent": "12",
        "x-codex-secondary-used-percent": "3",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-over-secondary-limit-percent": "0",
        "x-codex-secondary-window-minutes": "10080",
        "x-codex-primary-reset-after-seconds": "9000",
        "x-codex-secondary-reset-after-seconds": "500000",
        "x-codex-primary-reset-at": str(now + 9000),
        "x-codex-secondary-reset-at": str(now + 500_000),
        "x-codex-credits-has-credits": "False",
        "x-codex-credits-balance": "0",
        "x-codex-credits-unlimited": "False",
    }
    return [(k.encode(), v.encode()) for k, v in values.items()]


# --- Kilo / OpenRouter chat completions -------------------------------------------------------------


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": _GENERATION_ID,
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": CHAT_MODEL,
        "provider": "ModelRun",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish}],
    }
    chunk.update(extra)
    return chunk


def _chat_usage() -> dict[str, Any]:
    return {
        "prompt_tokens": _INPUT_TOKENS,
        "completion_tokens": _OUTPUT_TOKENS,
        "total_tokens": _INPUT_TOKENS + _OUTPUT_TOKENS,
        "cost": 0,
        "is_byok": False,
        "prompt_tokens_details": {"cached_tokens": 12_800, "cache_write_tokens": 0, "audio_tokens": 0},
        "cost_details": {
            "upstream_inference_cost": 0,
            "upstream_inference_prompt_cost": 0,
            "upstream_inference_completions_cost": 0,
        },
        "completion_tokens_details": {"reasoning_tokens": _REASONING_TOKENS, "image_tokens": 0},
    }


def _chat_chunks() -> list[dict[str, Any]]:
    chunks = []
    for piece in REASONING:
        detail = {"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}
        delta = {"content": "", "role": "assistant", "reasoning": piece, "reasoning_details": [detail]}
        chunks.append(_chunk(delta))
    chunks += [_chunk({"content": piece, "role": "assistant"}) for piece in TEXT]
    chunks.append(_chunk({"content": "", "role": "assistant", "reasoning": None}, "stop"))
    chunks.append(_chunk({"content": "", "role": "assistant"}, "stop", usage=_chat_usage()))
    return chunks


CHAT_FRAMES: Final = (
    b": OPENROUTER PROCESSING\n\n",
    *(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in _chat_chunks()),
    b"data: [DONE]\n\n",
)
"""Every frame of a streamed chat answer."""
CHAT_EVENTS: Final = len(CHAT_FRAMES) - 1
"""SSE events in one streamed chat answer (``data:`` lines, ``[DONE]`` included; the comment is not)."""

CHAT_COMPLETION: Final = b"\n         \n\n         \n" + orjson.dumps(
    {
        "id": _GENERATION_ID,
        "object": "chat.completion",
        "created": _CREATED,
        "model": CHAT_MODEL,
        "provider": "ModelRun",
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": "stop",
                "native_finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": _TEXT_FULL,
                    "refusal": None,
                    "reasoning": "".join(REASONING),
                    "reasoning_details": [
                        {
                            "type": "reasoning.text",
                            "text": "".join(REASONING),
                            "format": "unknown",
                            "index": 0,
                        }
                    ],
                },
            }
        ],
        "usage": _chat_usage(),
    }
)
"""A non-streamed chat answer (``openrouter_completion_simple_kimi_k2.5.response.json``'s shape)."""


# --- Codex side endpoints ---------------------------------------------------------------------------

MODELS: Final = orjson.dumps(
    {
        "models": [
            {
                "slug": slug,
                "display_name": slug,
                "default_reasoning_level": "medium",
                "supported_reasoning_levels": [
                    {"effort": e, "description": e} for e in ("low", "medium", "high", "xhigh")
                ],
                "visibility": "list",
                "supported_in_api": True,
                "priority": priority,
                "context_window": 272_000,
                "input_modalities": ["text", "image"],
            }
            for priority, slug in enumerate(("gpt-5.5", "gpt-5.4", "gpt-5.4-mini"))
        ]
    }
)
"""``GET {base}/codex/models`` (protocols §4.10)."""


def wham_usage(now: int) -> bytes:
    """``GET {base}/wham/usage`` (protocols §4.10)."""
    return orjson.dumps(
        {
            "plan_type": "plus",
            "rate_limit": {
                "allowed": True,
                "limit_reached": False,
                "primary_window": {
                    "used_percent": 12,
                    "limit_window_seconds": 18000,
                    "reset_after_seconds": 9000,
                    "reset_at": now + 9000,
                },
                "secondary_window": {
                    "used_percent": 3,
                    "limit_window_seconds": 604800,
                    "reset_after_seconds": 500_000,
                    "reset_at": now + 500_000,
                },
            },
            "credits": {"has_credits": False, "unlimited": False, "balance": None},
        }
    )
