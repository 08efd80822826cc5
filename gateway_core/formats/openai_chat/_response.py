"""Non-streaming Chat completions, both ways: an upstream's answer -> canonical, canonical -> a client's.

The parts come out in the order the stream decoder opens them for the same answer (reasoning, text,
tool calls), so a recorded stream and its non-stream twin reduce to the same canonical response.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from gateway_core.errors import UpstreamError
from gateway_core.formats._names import ToolNameMap
from gateway_core.formats.openai_chat._common import (
    delta_reasoning,
    encode_reasoning_details,
    finish_reason_for,
    map_finish_reason,
    merge_reasoning_details,
    usage_from_chat,
    usage_to_chat,
)
from gateway_core.formats.openai_chat._errors import error_from_payload
from gateway_core.models import NO_USAGE, Part, ReasoningPart, Response, TextPart, ToolCallPart
from gateway_core.streaming import parse_tool_arguments


def new_completion_id() -> str:
    """A fresh ``chatcmpl-`` id, for answers whose upstream gave none."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def first_choice(choices: object) -> dict[str, Any] | None:
    """Choice 0 (we always ask for one); ``None`` when there is none."""
    if not isinstance(choices, list):
        return None
    if len(choices) == 1:  # the usual case: choice 0, or the only choice whatever its index
        only = choices[0]
        return only if isinstance(only, dict) else None
    candidates = [c for c in choices if isinstance(c, dict)]
    for choice in candidates:
        if choice.get("index", 0) == 0:
            return choice
    return candidates[0] if candidates else None


def reasoning_part(text: str, details: list[dict[str, Any]], provider: str | None) -> ReasoningPart:
    """A reasoning part whose signature carries the merged ``reasoning_details`` (see ``_common``)."""
    if not details:
        return ReasoningPart(text=text)
    return ReasoningPart(text=text, signature=encode_reasoning_details(details), provider=provider)


def parse_response(
    body: object,
    *,
    provider: str | None = None,
    names: ToolNameMap | None = None,
    model: str | None = None,
) -> Response:
    """An upstream ``chat.completion`` -> canonical.

    ``provider`` is stamped on reasoning details, ``names`` restores shortened tool names and ``model``
    is reported instead of the upstream's model id. A body that is an error (OpenRouter can answer
    HTTP 200 with one) raises the :class:`GatewayError` it means.
    """
    if not isinstance(body, dict):
        raise UpstreamError("the upstream answer is not a JSON object")
    if body.get("error") and not body.get("choices"):
        raise error_from_payload(body)
    choice = first_choice(body.get("choices"))
    if choice is None:
        raise UpstreamError("the upstream answer has no choices")
    if choice.get("finish_reason") == "error":
        raise (
            error_from_payload(body)
            if body.get("error")
            else UpstreamError("the upstream failed while answering")
        )
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    parts: list[Part] = []
    reasoning_text, raw_details = delta_reasoning(message)
    if reasoning_text or raw_details:
        details: list[dict[str, Any]] = []
        merge_reasoning_details(details, raw_details)
        parts.append(reasoning_part(reasoning_text, details, provider))
    text = _content_text(message.get("content"))
    refusal = message["refusal"] if isinstance(message.get("refusal"), str) else ""
    if text or refusal:
        parts.append(TextPart(text=text + refusal))
    calls = [_tool_call(call, i, names) for i, call in enumerate(message.get("tool_calls") or [])]
    parts.extend(call for call in calls if call is not None)
    usage = body.get("usage")
    return Response(
        id=str(body.get("id") or new_completion_id()),
        model=model or str(body.get("model") or ""),
        content=tuple(parts),
        stop_reason=map_finish_reason(
            choice.get("finish_reason"), has_tool_calls=any(calls), refused=bool(refusal)
        ),
        usage=usage_from_chat(usage) if isinstance(usage, dict) else NO_USAGE,
    )


def parse_response_bytes(
    raw: bytes,
    *,
    provider: str | None = None,
    names: ToolNameMap | None = None,
    model: str | None = None,
) -> Response:
    """:func:`parse_response` on the raw body; OpenRouter pads bodies with keep-alive whitespace."""
    stripped = raw.strip()
    if not stripped:
        raise UpstreamError("the upstream answered with an empty body")
    try:
        body = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        snippet = stripped[:200].decode("utf-8", errors="replace")
        raise UpstreamError(f"the upstream answer is not JSON: {snippet}") from None
    return parse_response(body, provider=provider, names=names, model=model)


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            item["text"] for item in content if isinstance(item, dict) and isinstance(item.get("text"), str)
        )
    return ""


def _tool_call(call: object, position: int, names: ToolNameMap | None) -> ToolCallPart | None:
    if not isinstance(call, dict):
        return None
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    name = function["name"] if isinstance(function.get("name"), str) else ""
    arguments = function.get("arguments")
    return ToolCallPart(
        id=call["id"] if isinstance(call.get("id"), str) and call["id"] else f"call_{position}",
        name=names.to_client(name) if names is not None else name,
        arguments=arguments if isinstance(arguments, dict) else parse_tool_arguments(str(arguments or "")),
    )


def render_response(
    response: Response, *, created: int | None = None, include_reasoning: bool = False
) -> dict[str, Any]:
    """Canonical -> the ``chat.completion`` an OpenAI client gets.

    ``content`` is the text, ``null`` when the answer is only tool calls, ``""`` when it is nothing at
    all (what OpenAI sends when reasoning used up the budget). Reasoning has no standard Chat field: it
    is left out unless ``include_reasoning``, which adds it as ``reasoning_content`` (the DeepSeek / vLLM
    spelling most clients that show reasoning read).
    """
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in response.content:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ReasoningPart):
            reasoning.append(part.text)
        elif isinstance(part, ToolCallPart):
            calls.append(
                {
                    "id": part.id,
                    "type": "function",
                    "function": {"name": part.name, "arguments": orjson.dumps(part.arguments).decode()},
                }
            )
    text = "".join(texts)
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    message["refusal"] = None
    if include_reasoning and (reasoning_text := "".join(reasoning)):
        message["reasoning_content"] = reasoning_text
    return {
        "id": response.id or new_completion_id(),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": response.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason_for(response.stop_reason),
            }
        ],
        "usage": usage_to_chat(response.usage),
    }
