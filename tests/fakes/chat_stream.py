"""OpenRouter-style Chat Completions answers built from a few parameters (protocols §3).

Shapes follow ``fixtures/openrouter/*``: streams open with ``: OPENROUTER PROCESSING`` comments, every
delta repeats ``"role":"assistant"``, reasoning arrives as ``delta.reasoning`` + ``reasoning_details``
while ``content`` is ``""``, tool call ids look like ``functions.<name>:<index>``, a finish chunk is
followed by a chunk that still has the choice *and* carries ``usage`` (with ``cost``), then
``data: [DONE]``. Non-streaming bodies start with whitespace padding.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

import orjson

from tests.fakes.responses_stream import split_arguments, split_words

_ALNUM = string.ascii_letters + string.digits
PROCESSING = b": OPENROUTER PROCESSING\n\n"
DONE = b"data: [DONE]\n\n"
# The recorded non-streaming bodies open with keep-alive whitespace lines.
PADDING = b"\n         \n\n         \n\n         \n"


@dataclass(frozen=True)
class ChatToolCall:
    name: str
    arguments: str = "{}"
    id: str | None = None


@dataclass(frozen=True)
class ChatUsage:
    """``None`` fields are estimated from the request / the answer."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost: float | None = None


@dataclass(frozen=True)
class ChatContent:
    """What the model says: reasoning, text, tool calls, and how it finishes."""

    text: str = ""
    reasoning: str | None = None
    tool_calls: tuple[ChatToolCall, ...] = ()
    finish_reason: str | None = None

    @property
    def finish(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


@dataclass
class ChatContext:
    generation_id: str
    created: int
    model: str
    provider: str
    prompt_size: int
    free: bool


def new_context(model: str, provider: str, prompt_size: int, free: bool) -> ChatContext:
    now = int(time.time())
    suffix = "".join(secrets.choice(_ALNUM) for _ in range(20))
    return ChatContext(f"gen-{now}-{suffix}", now, model, provider, prompt_size, free)


def _tool_call_id(call: ChatToolCall, index: int) -> str:
    return call.id or f"functions.{call.name}:{index}"


def usage_object(content: ChatContent, usage: ChatUsage, ctx: ChatContext) -> dict[str, Any]:
    reasoning = usage.reasoning_tokens
    if reasoning is None:
        reasoning = len(content.reasoning or "") // 4 + (1 if content.reasoning else 0)
    visible = len(content.text) // 4 + sum(len(c.arguments) // 4 + 1 for c in content.tool_calls) + 1
    prompt = usage.prompt_tokens if usage.prompt_tokens is not None else max(1, ctx.prompt_size // 4)
    completion = usage.completion_tokens if usage.completion_tokens is not None else reasoning + visible
    prompt_cost = 0.0 if ctx.free else round(prompt * 0.00000055, 8)
    completion_cost = 0.0 if ctx.free else round(completion * 0.0000025, 8)
    cost = usage.cost if usage.cost is not None else round(prompt_cost + completion_cost, 8)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": cost,
        "is_byok": False,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "audio_tokens": 0,
            "video_tokens": 0,
        },
        "cost_details": {
            "upstream_inference_cost": cost,
            "upstream_inference_prompt_cost": prompt_cost,
            "upstream_inference_completions_cost": completion_cost,
        },
        "completion_tokens_details": {"reasoning_tokens": reasoning, "image_tokens": 0, "audio_tokens": 0},
    }


def _chunk(
    ctx: ChatContext, delta: dict[str, Any], finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": ctx.generation_id,
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": ctx.model,
        "provider": ctx.provider,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish}],
    }
    chunk.update(extra)
    return chunk


def stream_chunks(content: ChatContent, usage: ChatUsage, ctx: ChatContext) -> list[dict[str, Any]]:
    """Every ``data:`` chunk of a successful stream, in order (without comments and ``[DONE]``)."""
    chunks: list[dict[str, Any]] = []
    for piece in split_words(content.reasoning or ""):
        detail = {"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}
        chunks.append(
            _chunk(
                ctx, {"content": "", "role": "assistant", "reasoning": piece, "reasoning_details": [detail]}
            )
        )
    for piece in split_words(content.text):
        chunks.append(_chunk(ctx, {"content": piece, "role": "assistant"}))
    for index, call in enumerate(content.tool_calls):
        opening = {
            "index": index,
            "id": _tool_call_id(call, index),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(_chunk(ctx, {"content": None, "role": "assistant", "tool_calls": [opening]}))
        for piece in split_arguments(call.arguments):
            piece_delta = {"index": index, "function": {"arguments": piece}}
            chunks.append(_chunk(ctx, {"content": None, "role": "assistant", "tool_calls": [piece_delta]}))
    chunks.append(_chunk(ctx, {"content": "", "role": "assistant", "reasoning": None}, content.finish))
    chunks.append(
        _chunk(
            ctx,
            {"content": "", "role": "assistant"},
            content.finish,
            usage=usage_object(content, usage, ctx),
        )
    )
    return chunks


def error_chunk(ctx: ChatContext, code: str, message: str) -> dict[str, Any]:
    """OpenRouter's mid-stream failure: top-level ``error`` and ``finish_reason: "error"``."""
    return _chunk(ctx, {"content": ""}, "error", error={"code": code, "message": message})


def encode_chunk(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def completion_body(content: ChatContent, usage: ChatUsage, ctx: ChatContext) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` (``openrouter_completion_*_kimi_k2.5.response.json``)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content.text if content.text or not content.tool_calls else None,
        "refusal": None,
        "reasoning": content.reasoning,
    }
    if content.tool_calls:
        message["tool_calls"] = [
            {
                "type": "function",
                "index": index,
                "id": _tool_call_id(call, index),
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for index, call in enumerate(content.tool_calls)
        ]
    if content.reasoning:
        message["reasoning_details"] = [
            {"type": "reasoning.text", "text": content.reasoning, "format": "unknown", "index": 0}
        ]
    return {
        "id": ctx.generation_id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "provider": ctx.provider,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": content.finish,
                "native_finish_reason": content.finish,
                "message": message,
            }
        ],
        "usage": usage_object(content, usage, ctx),
    }
