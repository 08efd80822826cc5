"""Responses API event streams built from a few parameters, in the recorded grammar (protocols §4.5).

The event order, payload keys and id shapes follow ``fixtures/responses/responses_stream_text.sse``,
``responses_stream_tool_call.sse`` and ``responses_stream_reasoning_summary_text.sse``: one
``sequence_number`` counting from 0, ``output_index`` per item, ``rs_`` / ``msg_`` / ``fc_`` item ids,
``call_`` call ids, ``obfuscation`` pads on deltas, and usage only on the terminal event. A test says
*what* the model answers (:class:`Reasoning`, :class:`Message`, :class:`FunctionCall`) and *how the stream
ends* (:class:`Completed`, :class:`Incomplete`, :class:`Failed`, :class:`StreamError`, :class:`Eof`);
:func:`build_events` does the bookkeeping.
"""

from __future__ import annotations

import copy
import re
import secrets
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from gateway_core.sse import SSEDecoder, encode_json_event
from tests.fixtures import load_sse

Event = tuple[str, dict[str, Any]]

_ALNUM = string.ascii_letters + string.digits
_WORD = re.compile(r"\s*\S+\s*$|\s*\S+")
_ARGUMENT_CHUNK = 8
# Request fields the backend echoes into the response object.
_ECHOED = ("instructions", "tools", "tool_choice", "parallel_tool_calls", "prompt_cache_key", "store")
# response.failed payloads recorded from openai/codex tests, by error code.
_FAILED_FIXTURES = {
    "context_length_exceeded": "codex/codex_response_failed_context_length_exceeded.sse",
    "insufficient_quota": "codex/codex_response_failed_insufficient_quota.sse",
    "rate_limit_exceeded": "codex/codex_response_failed_rate_limit_exceeded.sse",
}
_FAILED_MESSAGES = {
    "server_error": "An error occurred while processing your request.",
    "usage_not_included": "Your plan does not include Codex usage.",
    "invalid_prompt": "Invalid prompt: your prompt was flagged as potentially violating our usage policy.",
}


# --- what the model says ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reasoning:
    """A reasoning item. ``summary`` parts stream as summary events; ``encrypted_content`` is sent only
    when the request asked for ``include: ["reasoning.encrypted_content"]`` (generated when ``None``)."""

    summary: tuple[str, ...] = ()
    encrypted_content: str | None = None


@dataclass(frozen=True)
class Message:
    """An assistant message with one ``output_text`` part."""

    text: str
    phase: str | None = None


@dataclass(frozen=True)
class FunctionCall:
    """A function call; ``arguments`` is the JSON text the model streams."""

    name: str
    arguments: str = "{}"
    call_id: str | None = None


Item = Reasoning | Message | FunctionCall


@dataclass(frozen=True)
class Usage:
    """Token counts for the terminal event; ``None`` means estimated from the request / the answer."""

    input_tokens: int | None = None
    cached_tokens: int = 0
    output_tokens: int | None = None
    reasoning_tokens: int | None = None


# --- how the stream ends ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Completed:
    """``response.completed`` (success)."""


@dataclass(frozen=True)
class Incomplete:
    """``response.incomplete``; the reason is ``max_output_tokens`` or ``content_filter``."""

    reason: str = "max_output_tokens"


@dataclass(frozen=True)
class Failed:
    """``response.failed``; the three recorded codes replay their fixture's error object."""

    code: str = "server_error"
    message: str | None = None


@dataclass(frozen=True)
class StreamError:
    """A bare ``error`` event (e.g. ``server_is_overloaded``), after which the stream ends."""

    code: str = "server_is_overloaded"
    message: str = "Our servers are currently overloaded. Please try again later."


@dataclass(frozen=True)
class Eof:
    """The connection closes after the items, with no terminal event."""


Ending = Completed | Incomplete | Failed | StreamError | Eof


# --- ids and pads ----------------------------------------------------------------------------------


def _hex_id(prefix: str) -> str:
    return prefix + secrets.token_hex(25)


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ALNUM) for _ in range(24))


def _obfuscation(delta: str) -> str:
    # Recorded pads bring each delta to about 16 characters.
    return "".join(secrets.choice(_ALNUM) for _ in range(max(0, 16 - len(delta))))


def _encrypted() -> str:
    return "gAAAAAB" + secrets.token_urlsafe(96)


def split_words(text: str) -> list[str]:
    """Deltas as the model streams them: each word with its leading whitespace."""
    return _WORD.findall(text) if text.strip() else ([text] if text else [])


def split_arguments(arguments: str) -> list[str]:
    return [arguments[i : i + _ARGUMENT_CHUNK] for i in range(0, len(arguments), _ARGUMENT_CHUNK)]


# --- the response object ---------------------------------------------------------------------------


@cache
def _fixture_events(relative: str) -> tuple[Event, ...]:
    decoder = SSEDecoder()
    events = decoder.feed(load_sse(relative)) + decoder.flush()
    return tuple((e.event or "", e.json()) for e in events)


def fixture_events(relative: str) -> list[Event]:
    """A recorded stream as ``(event, payload)`` pairs (deep copies: mutate freely)."""
    return copy.deepcopy(list(_fixture_events(relative)))


def _response_template() -> dict[str, Any]:
    response: dict[str, Any] = fixture_events("responses/responses_stream_text.sse")[0][1]["response"]
    return response


@dataclass
class _Context:
    response_id: str
    created_at: int
    model: str
    request: Mapping[str, Any]


def _response_object(ctx: _Context, status: str, **fields: Any) -> dict[str, Any]:
    response = _response_template()
    response.update(
        id=ctx.response_id,
        created_at=ctx.created_at,
        status=status,
        model=ctx.model,
        max_output_tokens=None,
        temperature=1.0,
        tools=[],
        prompt_cache_key=None,
    )
    for name in _ECHOED:
        if name in ctx.request:
            response[name] = ctx.request[name]
    reasoning = ctx.request.get("reasoning")
    if isinstance(reasoning, Mapping):
        response["reasoning"] = {
            "context": "current_turn",
            "effort": reasoning.get("effort", "medium"),
            "summary": "detailed" if reasoning.get("summary") == "auto" else reasoning.get("summary"),
        }
    response.update(fields)
    return response


def _usage_object(usage: Usage, items: tuple[Item, ...], request_size: int) -> dict[str, Any]:
    has_reasoning = any(isinstance(i, Reasoning) for i in items)
    reasoning = usage.reasoning_tokens if usage.reasoning_tokens is not None else (64 if has_reasoning else 0)
    visible = sum(
        len(i.text) // 4 + 1 if isinstance(i, Message) else len(i.arguments) // 4 + 1
        for i in items
        if not isinstance(i, Reasoning)
    )
    input_tokens = usage.input_tokens if usage.input_tokens is not None else max(1, request_size // 4)
    output_tokens = usage.output_tokens if usage.output_tokens is not None else reasoning + visible
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


# --- items -----------------------------------------------------------------------------------------


def _reasoning_events(item: Reasoning, index: int, wants_encrypted: bool) -> tuple[list[dict[str, Any]], Any]:
    item_id = _hex_id("rs_")
    added: dict[str, Any] = {"id": item_id, "type": "reasoning", "content": []}
    encrypted = item.encrypted_content or _encrypted()
    if wants_encrypted:
        added["encrypted_content"] = encrypted
    added["summary"] = []
    events = [{"type": "response.output_item.added", "item": added, "output_index": index}]
    for summary_index, text in enumerate(item.summary):
        common = {"item_id": item_id, "output_index": index}
        events.append(
            {
                "type": "response.reasoning_summary_part.added",
                **common,
                "part": {"type": "summary_text", "text": ""},
                "summary_index": summary_index,
            }
        )
        for piece in split_words(text):
            events.append(
                {
                    "type": "response.reasoning_summary_text.delta",
                    "delta": piece,
                    **common,
                    "obfuscation": _obfuscation(piece),
                    "summary_index": summary_index,
                }
            )
        events.append(
            {
                "type": "response.reasoning_summary_text.done",
                **common,
                "summary_index": summary_index,
                "text": text,
            }
        )
        events.append(
            {
                "type": "response.reasoning_summary_part.done",
                **common,
                "part": {"type": "summary_text", "text": text},
                "summary_index": summary_index,
            }
        )
    done = dict(added, summary=[{"type": "summary_text", "text": t} for t in item.summary])
    events.append({"type": "response.output_item.done", "item": done, "output_index": index})
    return events, done


def _message_events(item: Message, index: int) -> tuple[list[dict[str, Any]], Any]:
    item_id = _hex_id("msg_")
    added: dict[str, Any] = {"id": item_id, "type": "message", "status": "in_progress", "content": []}
    if item.phase is not None:
        added["phase"] = item.phase
    added["role"] = "assistant"
    common = {"content_index": 0, "item_id": item_id, "output_index": index}
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.added", "item": added, "output_index": index},
        {
            "type": "response.content_part.added",
            **common,
            "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
        },
    ]
    for piece in split_words(item.text):
        events.append(
            {
                "type": "response.output_text.delta",
                "content_index": 0,
                "delta": piece,
                "item_id": item_id,
                "logprobs": [],
                "obfuscation": _obfuscation(piece),
                "output_index": index,
            }
        )
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": item.text}
    events.append({"type": "response.output_text.done", **common, "logprobs": [], "text": item.text})
    events.append({"type": "response.content_part.done", **common, "part": part})
    done = dict(added, status="completed", content=[part])
    events.append({"type": "response.output_item.done", "item": done, "output_index": index})
    return events, done


def _function_call_events(item: FunctionCall, index: int) -> tuple[list[dict[str, Any]], Any]:
    item_id = _hex_id("fc_")
    call_id = item.call_id or new_call_id()
    added = {
        "id": item_id,
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": call_id,
        "name": item.name,
    }
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.added", "item": added, "output_index": index}
    ]
    for piece in split_arguments(item.arguments):
        events.append(
            {
                "type": "response.function_call_arguments.delta",
                "delta": piece,
                "item_id": item_id,
                "obfuscation": _obfuscation(piece),
                "output_index": index,
            }
        )
    events.append(
        {
            "type": "response.function_call_arguments.done",
            "arguments": item.arguments,
            "item_id": item_id,
            "output_index": index,
        }
    )
    done = dict(added, status="completed", arguments=item.arguments)
    events.append({"type": "response.output_item.done", "item": done, "output_index": index})
    return events, done


# --- terminal events -------------------------------------------------------------------------------


def _failed_response(ctx: _Context, ending: Failed) -> dict[str, Any]:
    if ending.message is None and ending.code in _FAILED_FIXTURES:
        recorded: dict[str, Any] = fixture_events(_FAILED_FIXTURES[ending.code])[0][1]["response"]
        recorded.update(id=ctx.response_id, created_at=ctx.created_at)
        return recorded
    message = ending.message or _FAILED_MESSAGES.get(ending.code, f"The request failed: {ending.code}.")
    return _response_object(ctx, "failed", error={"code": ending.code, "message": message}, usage=None)


def build_events(
    items: tuple[Item, ...],
    ending: Ending,
    *,
    model: str,
    request: Mapping[str, Any],
    request_size: int = 0,
    usage: Usage | None = None,
    now: float | None = None,
) -> list[Event]:
    """The whole stream for one answer, as ``(event name, payload)`` pairs with sequence numbers set."""
    moment = time.time() if now is None else now
    ctx = _Context(response_id=_hex_id("resp_"), created_at=int(moment), model=model, request=request)
    include = request.get("include")
    wants_encrypted = isinstance(include, list) and "reasoning.encrypted_content" in include

    payloads: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response_object(ctx, "in_progress")},
        {"type": "response.in_progress", "response": _response_object(ctx, "in_progress")},
    ]
    output: list[Any] = []
    for index, item in enumerate(items):
        if isinstance(item, Reasoning):
            events, done = _reasoning_events(item, index, wants_encrypted)
        elif isinstance(item, Message):
            events, done = _message_events(item, index)
        else:
            events, done = _function_call_events(item, index)
        payloads.extend(events)
        output.append(done)

    usage_object = _usage_object(usage or Usage(), items, request_size)
    if isinstance(ending, Completed):
        response = _response_object(
            ctx, "completed", completed_at=int(moment) + 1, output=output, usage=usage_object
        )
        payloads.append({"type": "response.completed", "response": response})
    elif isinstance(ending, Incomplete):
        response = _response_object(
            ctx, "incomplete", incomplete_details={"reason": ending.reason}, output=output, usage=usage_object
        )
        payloads.append({"type": "response.incomplete", "response": response})
    elif isinstance(ending, Failed):
        payloads.append({"type": "response.failed", "response": _failed_response(ctx, ending)})
    elif isinstance(ending, StreamError):
        payloads.append({"type": "error", "code": ending.code, "message": ending.message, "param": None})

    for number, payload in enumerate(payloads):
        payload["sequence_number"] = number
    return [(p["type"], p) for p in payloads]


def encode_events(events: list[Event]) -> list[bytes]:
    """SSE frames (``event:`` + ``data:``), one per event, compact JSON like the backend."""
    return [encode_json_event(payload, event=name) for name, payload in events]
