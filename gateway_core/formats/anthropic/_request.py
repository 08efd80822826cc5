"""Anthropic Messages request JSON <-> canonical :class:`~gateway_core.models.Request`.

Parsing accepts everything real clients send (protocols §1.2-§1.5, §6, §6.7): ``system`` as a string
or text blocks, ``role:"system"`` messages anywhere in ``messages`` (including last), Claude Code's
``tool_reference`` blocks, ``defer_loading`` tools, ``safeguards``, ``context_management``. Bad input
raises :class:`~gateway_core.errors.InvalidRequestError` naming the field path.

Accepted and ignored: ``service_tier``, ``container``, ``mcp_servers``, ``inference_geo`` (they mean
nothing to other upstreams), per-message keys other than ``role``/``content`` (Claude Code 2.1.332 puts
an ``output_config`` on its system message; the request's own ``output_config`` says the same), the
``caller`` of a ``tool_use``, ``metadata`` keys other than ``user_id``, and custom-tool extras such as
``input_examples``. Server tools (a dated ``type``) keep every extra option in ``Tool.options``.
"""

from __future__ import annotations

from typing import Any, cast, get_args

from gateway_core.formats._tool_lists import shared_tools
from gateway_core.formats._validate import (
    build,
    expect_int,
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
from gateway_core.formats.anthropic._parse_blocks import (
    MESSAGE_CONTENT,
    SYSTEM_CONTENT,
    parse_cache_control,
    parse_content,
    req_str,
)
from gateway_core.formats.anthropic._render_blocks import render_cache_control, render_content
from gateway_core.formats.anthropic._signature import ANTHROPIC
from gateway_core.models import (
    Effort,
    Message,
    OutputFormat,
    Part,
    ReasoningPart,
    Request,
    TextPart,
    Thinking,
    Tool,
    ToolChoice,
)

_ROLES = frozenset({"user", "assistant", "system"})
_EFFORTS: frozenset[str] = frozenset(get_args(Effort))
_TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})
_THINKING_TYPES = frozenset({"enabled", "adaptive", "disabled"})
# Keys of a custom tool that have a canonical field; anything else on a server tool goes to `options`.
_TOOL_KEYS = frozenset({"type", "name", "cache_control"})


def parse_request(body: object) -> Request:
    """A ``POST /v1/messages`` body -> canonical request; ``max_tokens`` is required, as by the real API."""
    return _parse(body, require_max_tokens=True)


def parse_count_tokens_request(body: object) -> Request:
    """A ``POST /v1/messages/count_tokens`` body: the create body without ``max_tokens`` (protocols §1.9)."""
    return _parse(body, require_max_tokens=False)


def _parse(body: object, *, require_max_tokens: bool) -> Request:
    obj = expect_object(body, "body")
    messages = expect_list(required(obj, "messages", ""), "messages")
    if not messages:
        fail("messages", "at least one message is required")
    effort, output_format = _parse_output_config(obj)
    tool_choice, parallel_tool_calls = _parse_tool_choice(obj.get("tool_choice"), "tool_choice")
    metadata = _optional_object(obj, "metadata") or {}
    # Every value below is checked already, so the constructor cannot refuse one.
    return Request(
        model=req_str(obj, "model", ""),
        messages=tuple(_parse_message(message, join("messages", i)) for i, message in enumerate(messages)),
        system=_parse_system(obj.get("system"), "system"),
        max_tokens=_parse_max_tokens(obj, required_field=require_max_tokens),
        stream=optional_bool(obj, "stream", "") or False,
        temperature=optional_number(obj, "temperature", ""),
        top_p=optional_number(obj, "top_p", ""),
        top_k=optional_int(obj, "top_k", ""),
        stop_sequences=_parse_str_list(obj.get("stop_sequences"), "stop_sequences"),
        tools=_parse_tools(obj.get("tools"), "tools"),
        tool_choice=tool_choice,
        parallel_tool_calls=parallel_tool_calls,
        thinking=_parse_thinking(obj.get("thinking"), "thinking"),
        effort=effort,
        output_format=output_format,
        user_id=optional_str(metadata, "user_id", "metadata"),
        cache_control=parse_cache_control(obj, ""),
        context_management=_optional_object(obj, "context_management"),
        safeguards=_parse_safeguards(obj.get("safeguards"), "safeguards"),
    )


def _parse_max_tokens(obj: dict[str, Any], *, required_field: bool) -> int | None:
    if required_field:
        value: int | None = expect_int(required(obj, "max_tokens", ""), "max_tokens")
    else:
        value = optional_int(obj, "max_tokens", "")
    if value is not None and value < 1:
        fail("max_tokens", "must be at least 1")
    return value


def _parse_message(value: object, path: str) -> Message:
    obj = expect_object(value, path)
    role = req_str(obj, "role", path)
    if role not in _ROLES:
        fail(join(path, "role"), f'unknown role "{role}" (expected "user", "assistant" or "system")')
    allowed = SYSTEM_CONTENT if role == "system" else MESSAGE_CONTENT
    content = parse_content(required(obj, "content", path), join(path, "content"), ANTHROPIC, allowed)
    return build(Message, path, role=role, content=content)


def _parse_system(value: object, path: str) -> tuple[TextPart, ...]:
    if value is None:
        return ()
    parts = parse_content(value, path, ANTHROPIC, SYSTEM_CONTENT)
    return tuple(part for part in parts if isinstance(part, TextPart))


def _parse_str_list(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(expect_str(item, join(path, i)) for i, item in enumerate(expect_list(value, path)))


def _optional_object(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    return None if value is None else expect_object(value, key)


def _parse_safeguards(value: object, path: str) -> tuple[dict[str, Any], ...] | None:
    if value is None:
        return None
    return tuple(expect_object(item, join(path, i)) for i, item in enumerate(expect_list(value, path)))


def _parse_tools(value: object, path: str) -> tuple[Tool, ...]:
    if value is None:
        return ()
    return shared_tools(expect_list(value, path), path, _parse_tool_list)


def _parse_tool_list(items: list[Any], path: str) -> tuple[Tool, ...]:
    return tuple(_parse_tool(item, join(path, i)) for i, item in enumerate(items))


def _parse_tool(value: object, path: str) -> Tool:
    obj = expect_object(value, path)
    name = req_str(obj, "name", path)
    cache_control = parse_cache_control(obj, path)
    tool_type = optional_str(obj, "type", path)
    if tool_type is not None and tool_type != "custom":
        # A server tool (`web_search_20250305`...): its options are whatever else it carries.
        options = {key: item for key, item in obj.items() if key not in _TOOL_KEYS}
        return Tool(name=name, type=tool_type, options=options, cache_control=cache_control)
    return Tool(
        name=name,
        description=optional_str(obj, "description", path),
        input_schema=_input_schema(obj, path),
        strict=optional_bool(obj, "strict", path),
        defer_loading=optional_bool(obj, "defer_loading", path),
        cache_control=cache_control,
    )


def _input_schema(tool: dict[str, Any], path: str) -> dict[str, Any]:
    schema = tool.get("input_schema")
    if type(schema) is dict:
        return schema
    return expect_object(required(tool, "input_schema", path), join(path, "input_schema"))


def _parse_tool_choice(value: object, path: str) -> tuple[ToolChoice | None, bool | None]:
    """``tool_choice`` and the parallel-calls switch it carries (``disable_parallel_tool_use``)."""
    if value is None:
        return None, None
    obj = expect_object(value, path)
    kind = req_str(obj, "type", path)
    if kind not in _TOOL_CHOICES:
        fail(join(path, "type"), f'unknown tool_choice type "{kind}" (expected auto, any, tool or none)')
    name = req_str(obj, "name", path) if kind == "tool" else None
    disable_parallel = optional_bool(obj, "disable_parallel_tool_use", path)
    parallel = None if disable_parallel is None else not disable_parallel
    return build(ToolChoice, path, type=kind, name=name), parallel


def _parse_thinking(value: object, path: str) -> Thinking | None:
    if value is None:
        return None
    obj = expect_object(value, path)
    kind = req_str(obj, "type", path)
    if kind not in _THINKING_TYPES:
        fail(join(path, "type"), f'unknown thinking type "{kind}" (expected enabled, adaptive or disabled)')
    if kind == "enabled":
        budget: int | None = expect_int(required(obj, "budget_tokens", path), join(path, "budget_tokens"))
    else:
        budget = optional_int(obj, "budget_tokens", path)
    return build(Thinking, path, type=kind, budget_tokens=budget, display=optional_str(obj, "display", path))


def _parse_output_config(obj: dict[str, Any]) -> tuple[Effort | None, OutputFormat | None]:
    """``output_config.effort`` and ``output_config.format`` (or the older top-level ``output_format``)."""
    config = _optional_object(obj, "output_config") or {}
    effort = optional_str(config, "effort", "output_config")
    if effort is not None and effort not in _EFFORTS:
        fail("output_config.effort", f'unknown effort "{effort}" (expected low, medium, high, xhigh or max)')
    output_format: OutputFormat | None
    if config.get("format") is not None:
        output_format = _parse_output_format(config["format"], "output_config.format")
    else:
        legacy = obj.get("output_format")
        output_format = None if legacy is None else _parse_output_format(legacy, "output_format")
    return cast("Effort | None", effort), output_format


def _parse_output_format(value: object, path: str) -> OutputFormat:
    obj = expect_object(value, path)
    kind = req_str(obj, "type", path)
    if kind != "json_schema":
        fail(join(path, "type"), f'unsupported output format "{kind}" (expected json_schema)')
    schema = expect_object(required(obj, "schema", path), join(path, "schema"))
    return OutputFormat(type="json_schema", json_schema=schema)


# --- rendering ------------------------------------------------------------------------------------


def render_request(request: Request, *, provider: str | None = None) -> dict[str, Any]:
    """Canonical -> an Anthropic Messages body.

    Without ``provider`` the rendering is lossless: reasoning minted by other providers travels in the
    ``rg1.`` signature envelope (what a client sees, and what round-trip tests use). With ``provider``
    (the upstream the body is sent to) only that provider's reasoning is kept, its tokens verbatim;
    reasoning without a token or minted elsewhere is dropped, since the upstream would refuse it.
    """
    native = ANTHROPIC if provider is None else provider
    messages = []
    for message in request.messages:
        parts = message.content if provider is None else _own_reasoning_only(message.content, provider)
        if parts or provider is None:
            messages.append({"role": message.role, "content": render_content(parts, native)})
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.system:
        body["system"] = render_content(request.system, native)
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.stream:
        body["stream"] = True
    for key in ("temperature", "top_p", "top_k"):
        if (value := getattr(request, key)) is not None:
            body[key] = value
    if request.stop_sequences:
        body["stop_sequences"] = list(request.stop_sequences)
    if request.tools:
        body["tools"] = [_render_tool(tool) for tool in request.tools]
    if (tool_choice := _render_tool_choice(request)) is not None:
        body["tool_choice"] = tool_choice
    if request.thinking is not None:
        body["thinking"] = request.thinking.model_dump(exclude_none=True)
    if output_config := _render_output_config(request):
        body["output_config"] = output_config
    if request.user_id is not None:
        body["metadata"] = {"user_id": request.user_id}
    if request.cache_control is not None:
        body["cache_control"] = render_cache_control(request.cache_control)
    if request.context_management is not None:
        body["context_management"] = request.context_management
    if request.safeguards is not None:
        body["safeguards"] = list(request.safeguards)
    return body


def _own_reasoning_only(parts: tuple[Part, ...], provider: str) -> tuple[Part, ...]:
    def minted_by_upstream(part: Part) -> bool:
        if not isinstance(part, ReasoningPart):
            return True
        return bool(part.signature) and (part.provider or ANTHROPIC) == provider

    return tuple(part for part in parts if minted_by_upstream(part))


def _render_tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any]
    if tool.type is not None:
        out = {"type": tool.type, "name": tool.name, **(tool.options or {})}
    else:
        out = {"name": tool.name}
        if tool.description is not None:
            out["description"] = tool.description
        out["input_schema"] = tool.input_schema
        if tool.strict is not None:
            out["strict"] = tool.strict
        if tool.defer_loading is not None:
            out["defer_loading"] = tool.defer_loading
    if tool.cache_control is not None:
        out["cache_control"] = render_cache_control(tool.cache_control)
    return out


def _render_tool_choice(request: Request) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None:
        # A parallel-calls switch alone (from an OpenAI client) needs a tool_choice to ride on.
        if request.parallel_tool_calls is None or not request.tools:
            return None
        return {"type": "auto", "disable_parallel_tool_use": not request.parallel_tool_calls}
    out: dict[str, Any] = {"type": choice.type}
    if choice.name is not None:
        out["name"] = choice.name
    if request.parallel_tool_calls is not None:
        out["disable_parallel_tool_use"] = not request.parallel_tool_calls
    return out


def _render_output_config(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if request.effort is not None:
        out["effort"] = request.effort
    # Anthropic structured output knows JSON schemas only; json_object / text have no counterpart.
    schema = request.output_format.json_schema if request.output_format is not None else None
    if (
        schema is not None
        and request.output_format is not None
        and request.output_format.type == "json_schema"
    ):
        out["format"] = {"type": "json_schema", "schema": schema}
    return out
