"""Canonical request -> a Responses body the ChatGPT Codex backend accepts (protocols §4.2–§4.4, §7.1).

The Codex backend is stricter than the public Responses API: ``store`` must be false, ``stream`` true,
``instructions`` present, a long list of sampling and bookkeeping parameters is refused, ``system``
input items are refused, and every ``function_call_output`` needs its ``function_call`` earlier in
the same input. The body is therefore built from an allow-list of keys, and every rule below that is
our decision rather than an upstream fact says so.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

import orjson

from gateway_core.formats._claude_code import loaded_tools, stable_system_texts, tool_reference_text
from gateway_core.formats._names import ToolNameMap, shorten_call_id
from gateway_core.formats._reasoning import reasoning_effort
from gateway_core.formats.openai_responses._common import DEFAULT_INSTRUCTIONS, data_url
from gateway_core.models import (
    Base64Source,
    ContentSource,
    DocumentPart,
    Effort,
    ImagePart,
    Message,
    OutputFormat,
    Part,
    PlainTextSource,
    ReasoningPart,
    Request,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolReferencePart,
    ToolResultContent,
    ToolResultPart,
    UrlSource,
)

ALLOWED_BODY_KEYS = frozenset(
    {
        "model",
        "instructions",
        "input",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "store",
        "stream",
        "include",
        "prompt_cache_key",
        "text",
    }
)
"""The only top-level keys ever sent: the backend answers 400 "Unsupported parameter: X" to
``temperature``, ``top_p``, ``max_output_tokens``, ``metadata``, ``seed``, penalties, ``truncation``,
``service_tier``... (protocols §4.2), so nothing outside this set can leak through."""

"""Claude Code's first system block. Its ``cc_version=…<3 hex>`` changes on every turn, so keeping it
would make every turn a prompt-cache miss (protocols §7.1, rule): it is dropped."""

ERROR_PREFIX = "Error: "
"""Prefixed to a failed tool result's output (rule): Responses has no ``is_error`` flag."""

DEFAULT_FILENAME = "document.pdf"
"""``input_file.filename`` of an untitled PDF (the API wants a file name with inline data)."""

_TOOL_CHOICE: dict[str, str] = {"auto": "auto", "any": "required", "none": "none"}
_ENCRYPTED_REASONING = "reasoning.encrypted_content"


def tool_name_map(request: Request) -> ToolNameMap:
    """The name map of one request: its tools and every tool named in its history.

    Pass it to :class:`StreamDecoder` / :func:`parse_response` so answers carry the client's names.
    """
    names = [tool.name for tool in request.tools]
    names += [
        part.name
        for message in request.messages
        for part in message.content
        if isinstance(part, ToolCallPart)
    ]
    return ToolNameMap(dict.fromkeys(names))


def render_request(
    request: Request,
    *,
    upstream_model: str,
    provider: str = "codex",
    effort_default: Effort | None = None,
    prompt_cache_key: str | None = None,
    tool_names: ToolNameMap | None = None,
) -> dict[str, Any]:
    """The Codex ``/responses`` body for ``request``.

    ``provider`` names who minted the reasoning tokens this upstream can resume (only those are
    replayed); ``effort_default`` is the lane's effort when the request names none (protocols §7.4);
    ``prompt_cache_key`` should be a stable conversation key so turns hit the upstream cache.
    """
    names = tool_names if tool_names is not None else tool_name_map(request)
    tools = render_tools(request, names)
    body: dict[str, Any] = {
        "model": upstream_model,
        "instructions": render_instructions(request.system),
        "input": _InputBuilder(names, provider).build(request.messages),
        "tools": tools,
        "tool_choice": _render_tool_choice(request.tool_choice, names) if tools else "auto",
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "store": False,
        "stream": True,
    }
    body.update(_render_reasoning(reasoning_effort(request, effort_default)))
    if prompt_cache_key:
        body["prompt_cache_key"] = prompt_cache_key
    if request.output_format is not None:
        body["text"] = {"format": _render_output_format(request.output_format)}
    return {key: value for key, value in body.items() if key in ALLOWED_BODY_KEYS}


def render_instructions(system: Iterable[TextPart]) -> str:
    """System text joined with blank lines, without the volatile billing header; never empty."""
    joined = "\n\n".join(stable_system_texts(system))
    return joined if joined.strip() else DEFAULT_INSTRUCTIONS


# --- tools -----------------------------------------------------------------------------------------


def render_tools(request: Request, names: ToolNameMap) -> list[dict[str, Any]]:
    """Function tools, flat (protocols §4.4), after the deferred-tool rule of protocols §6.7.

    Rule: a ``defer_loading`` tool is sent only once a ``tool_reference`` in the history names it,
    and then as an ordinary tool (OpenAI-style upstreams know no deferred loading); the others,
    Claude Code's ``DeferredToolPlaceholder`` always among them, are dropped. Provider-side tools:
    any ``web_search*`` becomes the backend's own ``web_search``; the rest have no counterpart.
    """
    rendered: list[dict[str, Any]] = []
    for tool in loaded_tools(request):
        if tool.type is not None and tool.type != "function":
            if tool.type.startswith("web_search") and {"type": "web_search"} not in rendered:
                rendered.append({"type": "web_search"})
            continue
        rendered.append(_render_function_tool(tool, names))
    return rendered


def _render_function_tool(tool: Tool, names: ToolNameMap) -> dict[str, Any]:
    # `$schema` is dropped: draft 2020-12 keywords pass with strict:false, the meta-schema URL is noise
    # the backend has no use for (protocols §8). strict:false always: Claude Code schemas are not
    # written for OpenAI's strict mode (optional properties, anyOf, formats).
    rendered: dict[str, Any] = {"type": "function", "name": names.to_upstream(tool.name)}
    if tool.description is not None:
        rendered["description"] = tool.description
    rendered["parameters"] = {key: value for key, value in tool.input_schema.items() if key != "$schema"}
    rendered["strict"] = False
    return rendered


def _render_tool_choice(choice: ToolChoice | None, names: ToolNameMap) -> str | dict[str, str]:
    if choice is None:
        return "auto"
    if choice.type == "tool" and choice.name:
        return {"type": "function", "name": names.to_upstream(choice.name)}
    return _TOOL_CHOICE.get(choice.type, "auto")


def _render_reasoning(effort: Effort | None) -> dict[str, Any]:
    """``reasoning`` + ``include`` for an effort (protocols §7.4).

    ``none`` turns reasoning off: no summary, no encrypted content to ask for. No effort at all
    leaves the model's default depth but still asks for summaries and the continuation token.
    """
    if effort == "none":
        return {"reasoning": {"effort": "none"}}
    reasoning: dict[str, str] = (
        {"summary": "auto"} if effort is None else {"effort": effort, "summary": "auto"}
    )
    return {"reasoning": reasoning, "include": [_ENCRYPTED_REASONING]}


def _render_output_format(output_format: OutputFormat) -> dict[str, Any]:
    if output_format.type != "json_schema":
        return {"type": output_format.type}
    rendered: dict[str, Any] = {
        "type": "json_schema",
        "name": output_format.name or "output",
        "schema": output_format.json_schema or {"type": "object"},
    }
    if output_format.strict is not None:
        rendered["strict"] = output_format.strict
    return rendered


# --- input items -----------------------------------------------------------------------------------


class _InputBuilder:
    """Walks the conversation once, emitting message items and the items that interrupt them.

    Message content accumulates until a non-message item (``function_call``, its output, a
    ``reasoning`` item) has to be placed, so every item lands at its canonical position.
    """

    def __init__(self, names: ToolNameMap, provider: str) -> None:
        self._names = names
        self._provider = provider
        self._items: list[dict[str, Any]] = []
        self._role = "user"
        self._content: list[dict[str, Any]] = []
        self._calls: set[str] = set()

    def build(self, messages: Iterable[Message]) -> list[dict[str, Any]]:
        for message in messages:
            # A system message stays in place as a developer message: the backend refuses
            # role "system" items, and `instructions` stays byte-stable for the prompt cache.
            self._role = "developer" if message.role == "system" else message.role
            for part in self._ordered(message):
                self._part(part)
            self._flush()
        return self._items

    @staticmethod
    def _ordered(message: Message) -> list[Part]:
        """Tool results first: each output then follows its call directly, before the user's text."""
        if message.role != "user":
            return list(message.content)
        results = [part for part in message.content if isinstance(part, ToolResultPart)]
        return [*results, *(part for part in message.content if not isinstance(part, ToolResultPart))]

    def _flush(self) -> None:
        if self._content:
            self._items.append({"type": "message", "role": self._role, "content": self._content})
            self._content = []

    def _emit(self, item: dict[str, Any]) -> None:
        self._flush()
        self._items.append(item)

    def _part(self, part: Part) -> None:
        if isinstance(part, ToolCallPart):
            call_id = shorten_call_id(part.id)
            self._calls.add(call_id)
            arguments = orjson.dumps(part.arguments).decode()
            name = self._names.to_upstream(part.name)
            self._emit({"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments})
        elif isinstance(part, ToolResultPart):
            self._tool_result(part)
        elif isinstance(part, ReasoningPart):
            self._reasoning(part)
        else:
            self._content.extend(self._content_items(part))

    def _reasoning(self, part: ReasoningPart) -> None:
        # Only a token this upstream minted can be resumed (DESIGN §2); other reasoning is dropped,
        # as is an empty signature. Never an item id: with store:false the backend keeps no items.
        if part.provider != self._provider or not part.signature:
            return
        summary = [{"type": "summary_text", "text": part.text}] if part.text else []
        self._emit(
            {"type": "reasoning", "summary": summary, "content": None, "encrypted_content": part.signature}
        )

    def _tool_result(self, part: ToolResultPart) -> None:
        call_id = shorten_call_id(part.tool_call_id)
        output = self._tool_output(part)
        if call_id in self._calls:
            self._emit({"type": "function_call_output", "call_id": call_id, "output": output})
            return
        # Rule: the backend answers 400 to an output whose call is not in the same input (a trimmed
        # or compacted history), so an orphan result becomes text the model can still read.
        status = " (error)" if part.is_error else ""
        self._content.append(self._text(f"Result of tool call {part.tool_call_id}{status}:"))
        if isinstance(output, str):
            self._content.append(self._text(output))
        elif self._role == "assistant":
            self._content.extend(self._text(item["text"]) for item in output if "text" in item)
        else:
            self._content.extend(output)

    def _tool_output(self, part: ToolResultPart) -> str | list[dict[str, Any]]:
        """A string for a single text result, else a list of input items; ``Error: `` when failed."""
        prefix = ERROR_PREFIX if part.is_error else ""
        if not part.content:
            return prefix
        if len(part.content) == 1 and isinstance(part.content[0], TextPart | ToolReferencePart):
            return prefix + _plain_text(part.content[0])
        items = [item for inner in part.content for item in _input_items(inner)]
        if prefix:
            if items and items[0]["type"] == "input_text":
                items[0] = {"type": "input_text", "text": prefix + items[0]["text"]}
            else:
                items.insert(0, {"type": "input_text", "text": prefix})
        return items

    def _content_items(self, part: Part) -> list[dict[str, Any]]:
        if self._role != "assistant":
            return _input_items(part)
        # The assistant side of a Responses message holds only output text: images or documents
        # there have no wire form, so they are dropped.
        if isinstance(part, TextPart | ToolReferencePart):
            return [self._text(_plain_text(part))]
        return []

    def _text(self, text: str) -> dict[str, Any]:
        return {"type": "output_text" if self._role == "assistant" else "input_text", "text": text}


def _plain_text(part: TextPart | ToolReferencePart) -> str:
    # Rule: OpenAI-style upstreams reject unknown parts, so a loaded deferred tool is announced as text.
    return part.text if isinstance(part, TextPart) else tool_reference_text(part)


def _input_items(part: Part | ToolResultContent) -> list[dict[str, Any]]:
    """User-side content items of one part (also the items of a tool output list)."""
    if isinstance(part, TextPart | ToolReferencePart):
        return [{"type": "input_text", "text": _plain_text(part)}]
    if isinstance(part, ImagePart):
        return [{"type": "input_image", "image_url": data_url(part.source)}]
    if isinstance(part, DocumentPart):
        return _document_items(part)
    return []


def _document_items(part: DocumentPart) -> list[dict[str, Any]]:
    """Documents: text as ``input_text``, anything else as ``input_file``.

    Whether the Codex backend accepts ``input_file`` is untested (protocols §8); the public
    Responses API does, with inline ``file_data`` (a data URL) and a ``filename``.
    """
    source = part.source
    if isinstance(source, ContentSource):
        return [item for inner in source.content for item in _input_items(inner)]
    text: str | None = None
    if isinstance(source, PlainTextSource):
        text = source.data
    elif isinstance(source, Base64Source) and source.media_type.startswith("text/"):
        text = _decode_text(source.data)
    if text is not None:
        return [{"type": "input_text", "text": f"{part.title}\n\n{text}" if part.title else text}]
    if isinstance(source, UrlSource):
        return [{"type": "input_file", "file_url": source.url}]
    if not isinstance(source, Base64Source):
        return []
    filename = part.title or DEFAULT_FILENAME
    return [{"type": "input_file", "filename": filename, "file_data": data_url(source)}]


def _decode_text(data: str) -> str | None:
    try:
        return base64.b64decode(data, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
