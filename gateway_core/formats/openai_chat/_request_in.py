"""An OpenAI SDK client's Chat Completions request -> canonical (protocols §2.1, §7.3).

The canonical model is Anthropic-shaped, so a few things move: the leading run of ``system`` /
``developer`` messages becomes ``Request.system`` (later ones stay in place as ``system`` messages,
DESIGN §2); ``tool`` messages become tool-result parts, consecutive ones merged into one user turn,
since Anthropic wants all results of a turn in the user message that follows it. What we cannot serve
(``n > 1``, audio, files, non-function tools) is refused with an error naming the field.

``stream_options.include_usage`` says how to *encode* the answer, not what to ask for, so it is not
part of the canonical request: :func:`stream_include_usage` reads it from the same body.
"""

from __future__ import annotations

import re
from typing import Any, get_args

import orjson
from pydantic import ValidationError

from gateway_core.formats._tool_lists import shared_tools
from gateway_core.formats._validate import (
    build,
    expect_bool,
    expect_list,
    expect_object,
    expect_str,
    fail,
    join,
    optional_bool,
    optional_int,
    optional_number,
    optional_str,
    required,
)
from gateway_core.models import (
    Base64Source,
    Effort,
    ImagePart,
    Message,
    OutputFormat,
    Part,
    Request,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    UrlSource,
)

_DATA_URL = re.compile(r"^data:(?P<media>[^;,]+)(?:;[^;,]*)*;base64,(?P<data>.*)$", re.S)
_EFFORTS: frozenset[str] = frozenset(get_args(Effort))
_SYSTEM_ROLES = ("system", "developer")
_TOOL_CHOICES: dict[str, ToolChoice] = {
    "none": ToolChoice(type="none"),
    "auto": ToolChoice(type="auto"),
    "required": ToolChoice(type="any"),
}
# Content part types OpenAI defines that we cannot carry, with the reason given to the client.
_UNSUPPORTED_PARTS: dict[str, str] = {
    "file": "file parts are not supported; send the document's text or page images instead",
    "input_audio": "audio input is not supported",
}


def stream_include_usage(body: object) -> bool:
    """Whether the client wants the final ``choices:[]`` usage chunk (``stream_options.include_usage``)."""
    root = expect_object(body, "")
    options = root.get("stream_options")
    if options is None:
        return False
    options = expect_object(options, "stream_options")
    return optional_bool(options, "include_usage", "stream_options") or False


def parse_request(body: object) -> Request:
    """A Chat Completions request body (already parsed JSON) -> canonical :class:`Request`."""
    root = expect_object(body, "")
    model = expect_str(required(root, "model", ""), "model")
    n = optional_int(root, "n", "")
    if n is not None and n != 1:
        fail("n", "only n=1 is supported (one choice per request)")
    stream_include_usage(root)  # checked here so a bad value is refused before anything runs
    system, messages = _messages(expect_list(required(root, "messages", ""), "messages"))
    # Reasoning models want max_completion_tokens; max_tokens is its legacy spelling.
    max_tokens = optional_int(root, "max_completion_tokens", "")
    if max_tokens is None:
        max_tokens = optional_int(root, "max_tokens", "")
    return _request(
        model=model,
        messages=tuple(messages),
        system=system,
        max_tokens=max_tokens,
        stream=optional_bool(root, "stream", "") or False,
        temperature=optional_number(root, "temperature", ""),
        top_p=optional_number(root, "top_p", ""),
        stop_sequences=_stop(root.get("stop")),
        tools=_tools(root.get("tools")),
        tool_choice=_tool_choice(root.get("tool_choice")),
        parallel_tool_calls=optional_bool(root, "parallel_tool_calls", ""),
        effort=_effort(root),
        output_format=_output_format(root.get("response_format")),
        user_id=optional_str(root, "user", ""),
        service_tier=optional_str(root, "service_tier", ""),
        seed=optional_int(root, "seed", ""),
        presence_penalty=optional_number(root, "presence_penalty", ""),
        frequency_penalty=optional_number(root, "frequency_penalty", ""),
    )


def _request(**fields: Any) -> Request:
    """``Request(**fields)``, a refused value reported with its field path as ``_validate.build``
    does (``build`` itself cannot take a ``model=`` field: its first parameter has that name)."""
    try:
        return Request(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(".".join(str(part) for part in first["loc"]), first["msg"])


# --- messages ------------------------------------------------------------------------------------


def _messages(items: list[Any]) -> tuple[tuple[TextPart, ...], list[Message]]:
    if not items:
        fail("messages", "must contain at least one message")
    system: list[TextPart] = []
    messages: list[Message] = []
    leading = True
    merging_tools = False
    for i, item in enumerate(items):
        path = join("messages", i)
        message = expect_object(item, path)
        role = expect_str(required(message, "role", path), join(path, "role"))
        if role in _SYSTEM_ROLES:
            texts = _text_content(message.get("content"), join(path, "content"))
            if leading:
                system.extend(texts)
            else:
                messages.append(Message(role="system", content=tuple(texts)))
            merging_tools = False
            continue
        leading = False
        if role == "tool":
            result = _tool_result(message, path)
            if merging_tools:
                last = messages[-1]
                messages[-1] = Message(role="user", content=(*last.content, result))
            else:
                messages.append(Message(role="user", content=(result,)))
            merging_tools = True
            continue
        if role == "user":
            content = tuple(_user_content(message.get("content"), path))
            if merging_tools:
                # The user's words after tool results belong to the same turn, as in Anthropic's shape
                # (the results and the text the client sends with them form one user message).
                messages[-1] = Message(role="user", content=(*messages[-1].content, *content))
            else:
                messages.append(Message(role="user", content=content))
            merging_tools = False
        elif role == "assistant":
            merging_tools = False
            messages.append(Message(role="assistant", content=tuple(_assistant_content(message, path))))
        else:
            fail(
                join(path, "role"),
                f'unsupported role "{role}"; expected system, developer, user, assistant or tool',
            )
    return tuple(system), messages


def _text_content(content: object, path: str) -> list[TextPart]:
    """String or text-part-list content (system, developer, tool messages)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(text=content)] if content else []
    parts: list[TextPart] = []
    for j, item in enumerate(expect_list(content, path)):
        part_path = join(path, j)
        part = expect_object(item, part_path)
        kind = expect_str(required(part, "type", part_path), join(part_path, "type"))
        if kind != "text":
            fail(
                join(part_path, "type"), f'unsupported content part type "{kind}" here; only text is allowed'
            )
        parts.append(TextPart(text=expect_str(required(part, "text", part_path), join(part_path, "text"))))
    return parts


def _user_content(content: object, path: str) -> list[Part]:
    path = join(path, "content")
    if content is None:
        fail(path, "field required")
    if isinstance(content, str):
        return [TextPart(text=content)] if content else []
    parts: list[Part] = []
    for j, item in enumerate(expect_list(content, path)):
        part_path = join(path, j)
        part = expect_object(item, part_path)
        kind = expect_str(required(part, "type", part_path), join(part_path, "type"))
        if kind == "text":
            parts.append(
                TextPart(text=expect_str(required(part, "text", part_path), join(part_path, "text")))
            )
        elif kind == "image_url":
            parts.append(_image(required(part, "image_url", part_path), join(part_path, "image_url")))
        elif kind in _UNSUPPORTED_PARTS:
            fail(join(part_path, "type"), _UNSUPPORTED_PARTS[kind])
        else:
            fail(join(part_path, "type"), f'unknown content part type "{kind}"')
    return parts


def _image(value: object, path: str) -> ImagePart:
    """``image_url`` -> an image; a base64 data URL becomes inline bytes, anything else a URL source.
    (``detail`` has no canonical counterpart and is dropped.)"""
    if isinstance(value, str):
        url = value
    else:
        url = expect_str(required(expect_object(value, path), "url", path), join(path, "url"))
    if (match := _DATA_URL.match(url)) is not None:
        return ImagePart(source=Base64Source(media_type=match["media"], data=match["data"]))
    return ImagePart(source=UrlSource(url=url))


def _assistant_content(message: dict[str, Any], path: str) -> list[Part]:
    parts: list[Part] = []
    content = message.get("content")
    content_path = join(path, "content")
    if isinstance(content, str):
        if content:
            parts.append(TextPart(text=content))
    elif content is not None:
        for j, item in enumerate(expect_list(content, content_path)):
            part_path = join(content_path, j)
            part = expect_object(item, part_path)
            kind = expect_str(required(part, "type", part_path), join(part_path, "type"))
            if kind not in ("text", "refusal"):
                fail(join(part_path, "type"), f'unsupported assistant content part type "{kind}"')
            parts.append(TextPart(text=expect_str(required(part, kind, part_path), join(part_path, kind))))
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        calls_path = join(path, "tool_calls")
        for j, item in enumerate(expect_list(tool_calls, calls_path)):
            parts.append(_tool_call(item, join(calls_path, j)))
    return parts


def _tool_call(item: object, path: str) -> ToolCallPart:
    call = expect_object(item, path)
    kind = call.get("type", "function")
    if kind != "function":
        fail(join(path, "type"), f'unsupported tool call type "{kind}"; only function calls are supported')
    function_path = join(path, "function")
    function = expect_object(required(call, "function", path), function_path)
    return ToolCallPart(
        id=expect_str(required(call, "id", path), join(path, "id")),
        name=expect_str(required(function, "name", function_path), join(function_path, "name")),
        arguments=_arguments(function.get("arguments"), join(function_path, "arguments")),
    )


def _arguments(value: object, path: str) -> dict[str, Any]:
    """A call's arguments: a JSON string of an object (an empty string is ``{}``)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    text = expect_str(value, path)
    if not text.strip():
        return {}
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        fail(path, f"not valid JSON ({exc})")
    if not isinstance(parsed, dict):
        fail(path, "expected a JSON object")
    return parsed


def _tool_result(message: dict[str, Any], path: str) -> ToolResultPart:
    return ToolResultPart(
        tool_call_id=expect_str(required(message, "tool_call_id", path), join(path, "tool_call_id")),
        content=tuple(_text_content(message.get("content"), join(path, "content"))),
    )


# --- tools and options ---------------------------------------------------------------------------


def _tools(value: object) -> tuple[Tool, ...]:
    if value is None:
        return ()
    return shared_tools(expect_list(value, "tools"), "tools", _parse_tool_list)


def _parse_tool_list(items: list[Any], at: str) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    for i, item in enumerate(items):
        path = join(at, i)
        tool = expect_object(item, path)
        kind = tool.get("type", "function")
        if kind != "function":
            fail(join(path, "type"), f'unsupported tool type "{kind}"; only function tools are supported')
        function_path = join(path, "function")
        function = expect_object(required(tool, "function", path), function_path)
        parameters = function.get("parameters")
        fields: dict[str, Any] = {
            "name": expect_str(required(function, "name", function_path), join(function_path, "name")),
            "description": optional_str(function, "description", function_path),
            "strict": optional_bool(function, "strict", function_path),
        }
        if parameters is not None:
            fields["input_schema"] = expect_object(parameters, join(function_path, "parameters"))
        tools.append(build(Tool, path, **fields))
    return tuple(tools)


def _tool_choice(value: object) -> ToolChoice | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in _TOOL_CHOICES:
            fail("tool_choice", f'unknown value "{value}"; expected none, auto, required or a function')
        return _TOOL_CHOICES[value]
    choice = expect_object(value, "tool_choice")
    if choice.get("type") != "function":
        fail("tool_choice.type", f'unsupported tool_choice type "{choice.get("type")}"; expected "function"')
    function = expect_object(required(choice, "function", "tool_choice"), "tool_choice.function")
    name = expect_str(required(function, "name", "tool_choice.function"), "tool_choice.function.name")
    return ToolChoice(type="tool", name=name)


def _stop(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(expect_str(item, join("stop", i)) for i, item in enumerate(expect_list(value, "stop")))


def _effort(root: dict[str, Any]) -> Effort | None:
    """``reasoning_effort``, or OpenRouter's ``reasoning.effort`` from clients written for OpenRouter."""
    path, value = "reasoning_effort", root.get("reasoning_effort")
    if value is None and isinstance(reasoning := root.get("reasoning"), dict):
        path, value = "reasoning.effort", reasoning.get("effort")
    if value is None:
        return None
    effort = expect_str(value, path)
    if effort not in _EFFORTS:
        fail(path, f'unknown effort "{effort}"; expected one of {", ".join(sorted(_EFFORTS))}')
    return effort  # type: ignore[return-value]  # checked against the Literal's values above


def _output_format(value: object) -> OutputFormat | None:
    if value is None:
        return None
    spec = expect_object(value, "response_format")
    kind = expect_str(required(spec, "type", "response_format"), "response_format.type")
    if kind in ("json_object", "text"):
        return OutputFormat(type=kind)
    if kind != "json_schema":
        fail("response_format.type", f'unknown response format "{kind}"')
    schema_path = "response_format.json_schema"
    json_schema = expect_object(required(spec, "json_schema", "response_format"), schema_path)
    schema = json_schema.get("schema")
    strict = json_schema.get("strict")
    return OutputFormat(
        type="json_schema",
        json_schema=expect_object(schema, join(schema_path, "schema")) if schema is not None else None,
        name=optional_str(json_schema, "name", schema_path),
        strict=expect_bool(strict, join(schema_path, "strict")) if strict is not None else None,
    )
