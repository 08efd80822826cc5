"""A complete Responses ``Response`` object <-> canonical :class:`Response`.

:func:`parse_response` reads what the stream decoder would have built from the same answer (the
``response`` of ``response.completed``, or a non-streaming body), so the two always agree; the item
helpers here are shared with the decoder. :func:`render_response` writes the object a Responses client
expects, with the same item ids the :class:`StreamEncoder` streams.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway_core.errors import UpstreamError
from gateway_core.formats._names import ToolNameMap
from gateway_core.formats.openai_responses._common import (
    item_id,
    message_id,
    parse_usage,
    render_status,
    render_usage,
    response_id,
    stop_reason,
)
from gateway_core.formats.openai_responses.errors import error_from_failure
from gateway_core.models import NO_USAGE, Part, ReasoningPart, Response, TextPart, ToolCallPart
from gateway_core.streaming import parse_tool_arguments

CALL_ITEM_TYPES = frozenset({"function_call", "custom_tool_call"})
_MESSAGE_TEXT_TYPES = {"output_text": "text", "refusal": "refusal"}


# --- output items -> canonical parts (shared with the stream decoder) --------------------------------


def summary_texts(item: dict[str, Any]) -> list[str]:
    """A reasoning item's visible texts: its summaries, else its raw ``reasoning_text`` content."""
    for key in ("summary", "content"):
        entries = item.get(key)
        if isinstance(entries, list):
            texts = [
                entry["text"] for entry in entries if isinstance(entry, dict) and _has_str(entry, "text")
            ]
            if any(texts):
                return texts
    return []


def reasoning_text(item: dict[str, Any]) -> str:
    """Summary parts joined with a blank line, empty ones skipped (as the decoder streams them)."""
    return "\n\n".join(text for text in summary_texts(item) if text)


def message_texts(item: dict[str, Any]) -> list[str]:
    """The texts of a message item's content parts, refusals included, by content index."""
    content = item.get("content")
    texts: list[str] = []
    for part in content if isinstance(content, list) else ():
        kind = part.get("type") if isinstance(part, dict) else None
        key = _MESSAGE_TEXT_TYPES.get(kind) if isinstance(kind, str) else None
        texts.append(part[key] if key is not None and _has_str(part, key) else "")
    return texts


def call_arguments(item: dict[str, Any]) -> str:
    """A call item's arguments as JSON text; a custom tool's free-text input becomes ``{"input": …}``."""
    if item.get("type") == "custom_tool_call":
        raw = item.get("input")
        return orjson.dumps({"input": raw if isinstance(raw, str) else ""}).decode()
    raw = item.get("arguments")
    return raw if isinstance(raw, str) else ""


def call_skeleton(item: dict[str, Any], tool_names: ToolNameMap | None) -> ToolCallPart:
    """The tool-call part of a call item, without arguments: ``call_id`` (never the ``fc_`` id) and
    the client's tool name."""
    call_id = item.get("call_id") if _has_str(item, "call_id") else item.get("id")
    name = item.get("name") if _has_str(item, "name") else ""
    return ToolCallPart(
        id=str(call_id or ""),
        name=tool_names.to_client(str(name)) if tool_names is not None else str(name),
        arguments={},
    )


def _has_str(entry: dict[str, Any], key: str) -> bool:
    return isinstance(entry.get(key), str)


def output_parts(output: object, provider: str, tool_names: ToolNameMap | None) -> list[Part]:
    """Canonical parts of a response's ``output`` list, in order."""
    parts: list[Part] = []
    for item in output if isinstance(output, list) else ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "reasoning":
            signature = item.get("encrypted_content")
            signature = signature if isinstance(signature, str) and signature else None
            parts.append(
                ReasoningPart(
                    text=reasoning_text(item), signature=signature, provider=provider if signature else None
                )
            )
        elif kind == "message":
            text = "".join(message_texts(item))
            if text:  # an empty message item opens no part (the decoder opens one on its first text)
                parts.append(TextPart(text=text))
        elif kind in CALL_ITEM_TYPES:
            call = call_skeleton(item, tool_names)
            parts.append(call.model_copy(update={"arguments": parse_tool_arguments(call_arguments(item))}))
    return parts


# --- Response object <-> canonical -----------------------------------------------------------------


def parse_response(
    body: object,
    *,
    model: str | None = None,
    provider: str = "codex",
    tool_names: ToolNameMap | None = None,
) -> Response:
    """A complete Response object -> canonical.

    ``model`` is the name to report (the one the client asked for; default: the upstream's own);
    ``provider`` is stamped on reasoning tokens; ``tool_names`` restores the client's tool names.
    A failed response raises the error it carries.
    """
    if not isinstance(body, dict):
        raise UpstreamError("the upstream answer is not a Responses object")
    status = body.get("status")
    if status == "failed":
        raise error_from_failure(body.get("error"))
    output = body.get("output")
    parts = output_parts(output, provider, tool_names)
    has_call = any(isinstance(part, ToolCallPart) for part in parts)
    raw_id = body.get("id")
    raw_model = body.get("model")
    return Response(
        id=message_id(raw_id if isinstance(raw_id, str) else ""),
        model=model if model is not None else (raw_model if isinstance(raw_model, str) else ""),
        content=tuple(parts),
        stop_reason=stop_reason(status, body.get("incomplete_details"), has_call),
        usage=parse_usage(body.get("usage")) or NO_USAGE,
    )


def render_item(part: Part, response: str, position: int) -> dict[str, Any] | None:
    """The output item of one canonical part; ``None`` for parts an answer cannot hold."""
    if isinstance(part, TextPart):
        return {
            "id": item_id("msg", response, position),
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": part.text, "annotations": [], "logprobs": []}],
        }
    if isinstance(part, ReasoningPart):
        item: dict[str, Any] = {
            "id": item_id("rs", response, position),
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": part.text}] if part.text else [],
        }
        if part.signature:
            item["encrypted_content"] = part.signature
        return item
    if isinstance(part, ToolCallPart):
        return {
            "id": item_id("fc", response, position),
            "type": "function_call",
            "status": "completed",
            "call_id": part.id,
            "name": part.name,
            "arguments": orjson.dumps(part.arguments).decode(),
        }
    return None


def render_output(parts: tuple[Part, ...], response: str) -> list[dict[str, Any]]:
    output: list[dict[str, Any]] = []
    for part in parts:
        item = render_item(part, response, len(output))
        if item is not None:
            output.append(item)
    return output


def response_object(
    resp_id: str, model: str, created_at: int, *, status: str = "in_progress"
) -> dict[str, Any]:
    """The fields every Response object carries (the OpenAI SDK requires most of them)."""
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "model": model,
        "output": [],
        "parallel_tool_calls": True,
        "temperature": None,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "usage": None,
    }


def render_response(response: Response, *, created_at: int | None = None) -> dict[str, Any]:
    """Canonical -> a Response object, as sent to a Responses client; ``model`` echoed unchanged."""
    resp_id = response_id(response.id)
    status, incomplete = render_status(response.stop_reason)
    body = response_object(
        resp_id, response.model, int(time.time()) if created_at is None else created_at, status=status
    )
    body["incomplete_details"] = incomplete
    body["output"] = render_output(response.content, resp_id)
    body["usage"] = render_usage(response.usage)
    return body
