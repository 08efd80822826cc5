"""Rules for rendering a Claude Code conversation to an OpenAI-style upstream (protocols §6.7, §7.1).

Shared by the Chat and the Responses renderers, so both upstream lanes treat Claude Code alike:
- its first system block, ``x-anthropic-billing-header: cc_version=…``, changes on every turn; kept,
  it would make every turn an upstream prompt-cache miss, so it is dropped (rule);
- a ``defer_loading`` tool is sent only once a ``tool_reference`` in the history names it, and then
  as an ordinary tool; the others, the ``DeferredToolPlaceholder`` always among them, are dropped;
- a ``tool_reference`` is rendered as text, since OpenAI-style upstreams reject unknown parts.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway_core.models import Message, Request, TextPart, Tool, ToolReferencePart, ToolResultPart

BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"


def stable_system_texts(system: Iterable[TextPart]) -> list[str]:
    """The system texts without the per-turn billing header."""
    return [part.text for part in system if not part.text.startswith(BILLING_HEADER_PREFIX)]


def tool_reference_text(part: ToolReferencePart) -> str:
    """What a loaded deferred tool becomes in an upstream that knows no tool references."""
    return f"Tool {part.tool_name} loaded."


def referenced_tools(messages: Iterable[Message]) -> set[str]:
    """Tool names a ``tool_reference`` anywhere in the history has loaded."""
    names: set[str] = set()
    for message in messages:
        for part in message.content:
            if isinstance(part, ToolReferencePart):
                names.add(part.tool_name)
            elif isinstance(part, ToolResultPart):
                names.update(item.tool_name for item in part.content if isinstance(item, ToolReferencePart))
    return names


def loaded_tools(request: Request) -> list[Tool]:
    """The request's tools after the deferred-tool rule (provider-side tools included, untouched)."""
    referenced = referenced_tools(request.messages)
    return [tool for tool in request.tools if not tool.defer_loading or tool.name in referenced]
