"""A Responses request body -> canonical (round trips, tests, and a future ``/v1/responses`` endpoint).

The inverse of :mod:`.request` on what the format carries, tolerant of the public API's spellings:
``input`` as a string, messages without ``type``, ``developer`` messages instead of ``instructions``.
Bad input raises :class:`InvalidRequestError` naming the field path (``input.3.content.0.type``).
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import ValidationError

from gateway_core.formats._tool_lists import shared_tools
from gateway_core.formats._validate import (
    build,
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
from gateway_core.formats.openai_responses._common import DEFAULT_INSTRUCTIONS, source_from_url
from gateway_core.formats.openai_responses.request import DEFAULT_FILENAME, ERROR_PREFIX
from gateway_core.models import (
    DocumentPart,
    Effort,
    ImagePart,
    Message,
    OutputFormat,
    Part,
    ReasoningPart,
    Request,
    Role,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultContent,
    ToolResultPart,
    UrlSource,
)
from gateway_core.streaming import parse_tool_arguments

_EFFORTS: frozenset[str] = frozenset(get_args(Effort))
_TEXT_TYPES = frozenset({"input_text", "output_text", "text", "summary_text", "refusal"})
_TOOL_CHOICE: dict[str, ToolChoice] = {
    "auto": ToolChoice(type="auto"),
    "required": ToolChoice(type="any"),
    "none": ToolChoice(type="none"),
}
_SYSTEM_ROLES = frozenset({"system", "developer"})
_ROLES = frozenset({"user", "assistant", *_SYSTEM_ROLES})


def parse_request(body: object, *, provider: str = "codex") -> Request:
    """A Responses request -> canonical. ``provider`` is stamped on replayed reasoning tokens."""
    root = expect_object(body, "")
    model = expect_str(required(root, "model", ""), "model")
    instructions = optional_str(root, "instructions", "")
    system: list[TextPart] = []
    # Our own placeholder for "no system prompt" reads back as none (round trip).
    if instructions and instructions != DEFAULT_INSTRUCTIONS:
        system.append(TextPart(text=instructions))
    conversation = _Conversation(leading_system=system if instructions is None else None)
    raw_input = root.get("input", [])
    if isinstance(raw_input, str):
        conversation.add("user", [TextPart(text=raw_input)])
    else:
        for index, item in enumerate(expect_list(raw_input, "input")):
            _parse_item(item, join("input", index), conversation, provider)
    text = root.get("text")
    text_format = expect_object(text, "text").get("format") if text is not None else None
    reasoning = root.get("reasoning")
    return _request(
        model=model,
        messages=conversation.messages(),
        system=tuple(system),
        max_tokens=optional_int(root, "max_output_tokens", ""),
        stream=optional_bool(root, "stream", "") or False,
        temperature=optional_number(root, "temperature", ""),
        top_p=optional_number(root, "top_p", ""),
        tools=shared_tools(_list(root, "tools"), "tools", _parse_tool_list),
        tool_choice=_parse_tool_choice(root.get("tool_choice"), "tool_choice"),
        parallel_tool_calls=optional_bool(root, "parallel_tool_calls", ""),
        effort=_parse_effort(reasoning, "reasoning") if reasoning is not None else None,
        output_format=_parse_format(text_format, "text.format") if text_format is not None else None,
        user_id=optional_str(root, "safety_identifier", "") or optional_str(root, "user", ""),
        service_tier=optional_str(root, "service_tier", ""),
    )


def _request(**fields: Any) -> Request:
    # Every field is checked above; a value the model still refuses becomes an error naming it.
    # (`_validate.build` cannot build a Request: its `model` argument clashes with the field.)
    try:
        return Request(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(".".join(str(part) for part in first["loc"]), first["msg"])


class _Conversation:
    """Collects items into canonical messages: adjacent items of one role form one message
    (an assistant text, its reasoning and its calls; the tool outputs and the user's next text)."""

    def __init__(self, leading_system: list[TextPart] | None) -> None:
        self._messages: list[tuple[Role, list[Part]]] = []
        # Without `instructions`, developer messages before any other item are the system prompt.
        self._leading_system = leading_system

    def add(self, role: Role, parts: list[Part]) -> None:
        if role != "system" or self._messages:
            self._leading_system = None
        elif self._leading_system is not None:
            self._leading_system.extend(part for part in parts if isinstance(part, TextPart))
            return
        if self._messages and self._messages[-1][0] == role and role != "system":
            self._messages[-1][1].extend(parts)
        else:
            self._messages.append((role, list(parts)))

    def messages(self) -> tuple[Message, ...]:
        return tuple(Message(role=role, content=tuple(parts)) for role, parts in self._messages)


def _parse_item(raw: object, path: str, conversation: _Conversation, provider: str) -> None:
    item = expect_object(raw, path)
    kind = item.get("type", "message")
    if kind == "message":
        role = expect_str(required(item, "role", path), join(path, "role"))
        if role not in _ROLES:
            fail(join(path, "role"), f'unknown role "{role}"')
        parts = _parse_content(item.get("content"), join(path, "content"))
        conversation.add("system" if role in _SYSTEM_ROLES else role, parts)  # type: ignore[arg-type]
    elif kind in ("function_call", "custom_tool_call"):
        call_id = expect_str(required(item, "call_id", path), join(path, "call_id"))
        name = expect_str(required(item, "name", path), join(path, "name"))
        if kind == "function_call":
            arguments = parse_tool_arguments(optional_str(item, "arguments", path) or "")
        else:  # a custom (free-text) tool's input travels as {"input": text}, as the decoder makes it
            arguments = {"input": optional_str(item, "input", path) or ""}
        conversation.add("assistant", [ToolCallPart(id=call_id, name=name, arguments=arguments)])
    elif kind in ("function_call_output", "custom_tool_call_output"):
        conversation.add("user", [_parse_tool_output(item, path)])
    elif kind == "reasoning":
        conversation.add("assistant", [_parse_reasoning(item, path, provider)])
    # Other items (item_reference, web_search_call, ...) have no canonical form: ignored.


def _parse_tool_output(item: dict[str, Any], path: str) -> ToolResultPart:
    call_id = expect_str(required(item, "call_id", path), join(path, "call_id"))
    raw = item.get("output", "")
    content: list[ToolResultContent]
    if isinstance(raw, str):
        content = [TextPart(text=raw)] if raw else []
    else:
        content = _parse_content(raw, join(path, "output"))  # type: ignore[assignment]
    # Rule (inverse of the renderer): a leading "Error: " marks a failed tool call.
    is_error = None
    if content and isinstance(content[0], TextPart) and content[0].text.startswith(ERROR_PREFIX):
        is_error = True
        rest = content[0].text.removeprefix(ERROR_PREFIX)
        content = [TextPart(text=rest), *content[1:]] if rest else content[1:]
    return ToolResultPart(tool_call_id=call_id, content=tuple(content), is_error=is_error)


def _parse_reasoning(item: dict[str, Any], path: str, provider: str) -> ReasoningPart:
    texts = [_text_of(entry) for entry in _list(item, "summary", path)]
    if not any(texts):  # raw reasoning text (`reasoning_text` content) when there is no summary
        texts = [_text_of(entry) for entry in _list(item, "content", path)]
    signature = optional_str(item, "encrypted_content", path) or None
    return ReasoningPart(
        text="\n\n".join(text for text in texts if text),
        signature=signature,
        provider=provider if signature else None,
    )


def _text_of(entry: object) -> str:
    return entry.get("text", "") if isinstance(entry, dict) and isinstance(entry.get("text"), str) else ""


def _parse_content(raw: object, path: str) -> list[Part]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [TextPart(text=raw)]
    return [_parse_content_item(entry, join(path, i)) for i, entry in enumerate(expect_list(raw, path))]


def _parse_content_item(raw: object, path: str) -> Part:
    entry = expect_object(raw, path)
    kind = expect_str(required(entry, "type", path), join(path, "type"))
    if kind in _TEXT_TYPES:
        key = "refusal" if kind == "refusal" else "text"
        return TextPart(text=expect_str(required(entry, key, path), join(path, key)))
    if kind == "input_image":
        url = optional_str(entry, "image_url", path)
        if url is None:
            fail(join(path, "image_url"), "only image_url images are supported (no file_id)")
        return ImagePart(source=source_from_url(url))
    if kind == "input_file":
        file_data = optional_str(entry, "file_data", path)
        file_url = optional_str(entry, "file_url", path)
        filename = optional_str(entry, "filename", path)
        title = None if filename == DEFAULT_FILENAME else filename
        if file_data is not None:
            source = source_from_url(file_data)
            if isinstance(source, UrlSource):
                fail(join(path, "file_data"), "expected a base64 data: URL")
            return DocumentPart(source=source, title=title)
        if file_url is not None:
            return DocumentPart(source=UrlSource(url=file_url), title=title)
        fail(path, "input_file needs file_data or file_url (file_id is not supported)")
    return fail(join(path, "type"), f'unknown content type "{kind}"')


def _parse_tool_list(items: list[Any], path: str) -> tuple[Tool, ...]:
    return tuple(_parse_tool(tool, join(path, i)) for i, tool in enumerate(items))


def _parse_tool(raw: object, path: str) -> Tool:
    tool = expect_object(raw, path)
    kind = expect_str(required(tool, "type", path), join(path, "type"))
    if kind != "function":
        # Hosted tools (web_search, file_search, custom grammars...) are kept with their fields.
        options = {key: value for key, value in tool.items() if key not in ("type", "name", "description")}
        name = optional_str(tool, "name", path) or kind
        return build(
            Tool, path, name=name, type=kind, description=tool.get("description"), options=options or None
        )
    parameters = tool.get("parameters")
    return build(
        Tool,
        path,
        name=expect_str(required(tool, "name", path), join(path, "name")),
        description=optional_str(tool, "description", path),
        input_schema=expect_object(parameters, join(path, "parameters"))
        if parameters is not None
        else {"type": "object", "properties": {}},
        strict=True if optional_bool(tool, "strict", path) else None,
    )


def _parse_tool_choice(raw: object, path: str) -> ToolChoice | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw not in _TOOL_CHOICE:
            fail(path, f'unknown tool_choice "{raw}"')
        return _TOOL_CHOICE[raw]
    choice = expect_object(raw, path)
    if choice.get("type") == "function":
        return ToolChoice(type="tool", name=expect_str(required(choice, "name", path), join(path, "name")))
    return None  # hosted-tool and allowed_tools choices have no canonical form: the default applies


def _parse_effort(raw: object, path: str) -> Effort | None:
    effort = optional_str(expect_object(raw, path), "effort", path)
    if effort is not None and effort not in _EFFORTS:
        fail(join(path, "effort"), f'unknown effort "{effort}"')
    return effort  # type: ignore[return-value]


def _parse_format(raw: object, path: str) -> OutputFormat | None:
    spec = expect_object(raw, path)
    kind = expect_str(required(spec, "type", path), join(path, "type"))
    if kind == "json_schema":
        schema = expect_object(required(spec, "schema", path), join(path, "schema"))
        name = optional_str(spec, "name", path)
        strict = optional_bool(spec, "strict", path)
        return OutputFormat(type="json_schema", json_schema=schema, name=name, strict=strict)
    if kind in ("json_object", "text"):
        return OutputFormat(type=kind)
    return fail(join(path, "type"), f'unknown text format "{kind}"')


def _list(body: dict[str, Any], key: str, path: str = "") -> list[Any]:
    value = body.get(key)
    return [] if value is None else expect_list(value, join(path, key))
