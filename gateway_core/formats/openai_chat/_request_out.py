"""Canonical -> a Chat Completions body for OpenRouter and the Kilo gateway (protocols §3, §7.3).

Rules beyond a field-by-field copy, each serving an upstream behaviour:
- system text becomes one leading ``system`` message, joined with blank lines; Claude Code's
  ``x-anthropic-billing-header`` block is dropped, since it changes every turn and would make each
  turn a prompt-cache miss (the §7.1 rule, for the same reason here). A ``system`` message inside the
  conversation stays in place (DESIGN §2).
- each tool result is a ``tool`` message right after the assistant turn and before the user's own text;
  ``is_error`` results get an ``Error: `` prefix (Chat has no error flag); images and documents a tool
  returned cannot sit in a ``tool`` message, so they move to the user message that follows (rule).
- Claude Code's deferred tools (protocols §6.7, rule): a ``defer_loading`` tool is sent only once a
  ``tool_reference`` in the history names it, then as an ordinary tool; each ``tool_reference`` is
  rendered as the text ``Tool <name> loaded.``, since OpenAI-style upstreams reject unknown parts.
  Provider-side tools (a dated ``type``, e.g. Anthropic web search) have no Chat form and are dropped.
- reasoning minted by this same ``provider`` replays as the assistant's ``reasoning_details``; any other
  reasoning is dropped (a token only goes back to who minted it).
- thinking / effort -> OpenRouter ``reasoning:{effort}`` (protocols §7.4). Disabled thinking asks for
  ``{"effort":"none","exclude":true}``: ``none`` turns reasoning off where the model allows it
  (OpenRouter's reasoning-tokens guide), ``exclude`` keeps the reasoning of models that cannot stop
  thinking out of the answer, as §7.4 asks.
- tool names are shortened with a :class:`ToolNameMap` and call ids over 64 characters with
  :func:`shorten_call_id`, on the call and on its result alike (protocols §7.5).
- dropped: ``metadata.user_id`` / ``user`` (a device id; Kilo rewrites it anyway), ``cache_control``,
  ``context_management``, ``safeguards`` (local paths), ``service_tier``.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_core.formats._claude_code import loaded_tools, stable_system_texts, tool_reference_text
from gateway_core.formats._names import ToolNameMap, shorten_call_id
from gateway_core.formats._reasoning import reasoning_effort
from gateway_core.formats.openai_chat._common import decode_reasoning_details
from gateway_core.models import (
    Base64Source,
    ContentSource,
    DocumentPart,
    Effort,
    ImagePart,
    Message,
    Part,
    PlainTextSource,
    ReasoningPart,
    Request,
    TextPart,
    Tool,
    ToolCallPart,
    ToolReferencePart,
    ToolResultPart,
    UrlSource,
)

_TOOL_CHOICE: dict[str, str] = {"auto": "auto", "any": "required", "none": "none"}


def tool_name_map(request: Request) -> ToolNameMap:
    """The name map of a request's tools; give the same map to the :class:`StreamDecoder` of its answer."""
    return ToolNameMap(tool.name for tool in request.tools)


def render_request(
    request: Request,
    *,
    upstream_model: str | None = None,
    provider: str | None = None,
    effort: Effort | None = None,
    names: ToolNameMap | None = None,
    stream: bool = True,
) -> dict[str, Any]:
    """The upstream Chat body for ``request``.

    ``upstream_model`` replaces the client's model name; ``provider`` names the upstream (its own
    reasoning is replayed, nobody else's); ``effort`` is the lane's default effort; ``names`` the map
    from :func:`tool_name_map` (built here when not given). Streams always ask for the usage chunk.
    """
    names = names if names is not None else tool_name_map(request)
    body: dict[str, Any] = {
        "model": upstream_model or request.model,
        "messages": _messages(request, names, provider),
    }
    tools = _sent_tools(request)
    if tools:
        body["tools"] = [_tool(tool, names) for tool in tools]
        if request.tool_choice is not None:
            choice = request.tool_choice
            body["tool_choice"] = (
                {"type": "function", "function": {"name": names.to_upstream(choice.name or "")}}
                if choice.type == "tool"
                else _TOOL_CHOICE[choice.type]
            )
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    optional: dict[str, Any] = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "seed": request.seed,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if request.stop_sequences:
        body["stop"] = list(request.stop_sequences)
    if (response_format := _response_format(request)) is not None:
        body["response_format"] = response_format
    if (reasoning := _reasoning(request, effort)) is not None:
        body["reasoning"] = reasoning
    body["usage"] = {"include": True}  # OpenRouter usage accounting: the answer's usage carries `cost`
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


# --- messages ------------------------------------------------------------------------------------


def _messages(request: Request, names: ToolNameMap, provider: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = _system_text(request.system)
    if system:
        out.append({"role": "system", "content": system})
    for message in request.messages:
        if message.role == "system":
            if text := _system_text(tuple(p for p in message.content if isinstance(p, TextPart))):
                out.append({"role": "system", "content": text})
        elif message.role == "assistant":
            if (rendered := _assistant(message, names, provider)) is not None:
                out.append(rendered)
        else:
            out.extend(_user(message))
    return out


def _system_text(parts: tuple[TextPart, ...]) -> str:
    return "\n\n".join(stable_system_texts(parts))


def _assistant(message: Message, names: ToolNameMap, provider: str | None) -> dict[str, Any] | None:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ToolCallPart):
            calls.append(
                {
                    "id": shorten_call_id(part.id),
                    "type": "function",
                    "function": {
                        "name": names.to_upstream(part.name),
                        "arguments": orjson.dumps(part.arguments).decode(),
                    },
                }
            )
        elif isinstance(part, ReasoningPart):
            details.extend(_replayable_details(part, provider))
    text = "".join(texts)
    if not text and not calls and not details:
        return None
    rendered: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        rendered["tool_calls"] = calls
    if details:
        rendered["reasoning_details"] = details
    return rendered


def _replayable_details(part: ReasoningPart, provider: str | None) -> list[dict[str, Any]]:
    if provider is None or part.provider != provider or not part.signature:
        return []
    return decode_reasoning_details(part.signature) or []


def _user(message: Message) -> list[dict[str, Any]]:
    """Tool messages first (they must follow the assistant turn), then one user message holding what
    the tools returned that a ``tool`` message cannot carry, then the user's own content."""
    out: list[dict[str, Any]] = []
    carried: list[dict[str, Any]] = []
    own: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, ToolResultPart):
            text, attachments = _tool_result_content(part)
            out.append({"role": "tool", "tool_call_id": shorten_call_id(part.tool_call_id), "content": text})
            carried.extend(attachments)
        else:
            own.extend(_content_parts(part))
    content = carried + own
    if content:
        if len(content) == 1 and content[0]["type"] == "text":
            out.append({"role": "user", "content": content[0]["text"]})
        else:
            out.append({"role": "user", "content": content})
    return out


def _tool_result_content(part: ToolResultPart) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    attachments: list[dict[str, Any]] = []
    for item in part.content:
        for rendered in _content_parts(item):
            if rendered["type"] == "text":
                texts.append(rendered["text"])
            else:
                attachments.append(rendered)
    if attachments:
        texts.append(
            f"[{len(attachments)} attachment(s) returned by this tool follow in the next user message]"
        )
    text = "\n".join(texts)
    return (f"Error: {text}" if part.is_error else text), attachments


def _content_parts(part: Part | ToolReferencePart) -> list[dict[str, Any]]:
    """Chat content parts for one canonical part of a user turn (or of a tool result)."""
    if isinstance(part, TextPart):
        return [{"type": "text", "text": part.text}]
    if isinstance(part, ToolReferencePart):
        return [{"type": "text", "text": tool_reference_text(part)}]
    if isinstance(part, ImagePart):
        source = part.source
        url = (
            f"data:{source.media_type};base64,{source.data}"
            if isinstance(source, Base64Source)
            else source.url
        )
        return [{"type": "image_url", "image_url": {"url": url}}]
    if isinstance(part, DocumentPart):
        return _document(part)
    return []


def _document(part: DocumentPart) -> list[dict[str, Any]]:
    """Documents as OpenRouter takes them: PDFs as ``file`` parts (data URL or URL), text as text."""
    source = part.source
    if isinstance(source, PlainTextSource):
        return [{"type": "text", "text": source.data}]
    if isinstance(source, ContentSource):
        return [rendered for item in source.content for rendered in _content_parts(item)]
    filename = part.title or "document.pdf"
    if isinstance(source, UrlSource):
        return [{"type": "file", "file": {"filename": filename, "file_data": source.url}}]
    data_url = f"data:{source.media_type};base64,{source.data}"
    return [{"type": "file", "file": {"filename": filename, "file_data": data_url}}]


# --- tools and options ---------------------------------------------------------------------------


def _sent_tools(request: Request) -> list[Tool]:
    return [tool for tool in loaded_tools(request) if tool.type is None]


def _tool(tool: Tool, names: ToolNameMap) -> dict[str, Any]:
    function: dict[str, Any] = {"name": names.to_upstream(tool.name)}
    if tool.description is not None:
        function["description"] = tool.description
    function["parameters"] = tool.input_schema
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _response_format(request: Request) -> dict[str, Any] | None:
    output = request.output_format
    if output is None:
        return None
    if output.type != "json_schema":
        return {"type": output.type}
    json_schema: dict[str, Any] = {"name": output.name or "output", "schema": output.json_schema or {}}
    if output.strict is not None:
        json_schema["strict"] = output.strict
    return {"type": "json_schema", "json_schema": json_schema}


def _reasoning(request: Request, default: Effort | None) -> dict[str, Any] | None:
    effort = reasoning_effort(request, default)
    if effort is None:
        return None
    if effort == "none":
        return {"effort": "none", "exclude": True}
    return {"effort": effort}
