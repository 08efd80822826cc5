"""Canonical request, message, part, tool, response and usage types.

Anthropic Messages is the richest of the three wire formats, so the canonical model follows it,
generalised (DESIGN §2): roles ``user`` / ``assistant`` plus ``system`` messages kept at their position,
parts discriminated on ``type``, reasoning with an opaque continuation token and the provider that
minted it, ``cache_control`` on any part, and explicit usage.

Canonical types are strict and immutable (STYLE §4): wire formats validate what comes from outside
and build these; nothing downstream re-validates them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Canonical(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CacheControl(_Canonical):
    """A prompt-cache breakpoint (Anthropic ``cache_control``); kept so an Anthropic upstream gets it back."""

    type: Literal["ephemeral"] = "ephemeral"
    """The only cache type Anthropic defines."""
    ttl: str | None = None
    """``"5m"`` or ``"1h"`` on newer API versions; ``None`` means the provider default."""


# --- sources of images and documents -------------------------------------------------------------


class Base64Source(_Canonical):
    """Inline bytes, base64-encoded."""

    type: Literal["base64"] = "base64"
    media_type: str
    """MIME type, e.g. ``image/png`` or ``application/pdf``."""
    data: str
    """The base64 text, without a ``data:`` prefix."""


class UrlSource(_Canonical):
    """A remote (or ``data:``) URL the upstream fetches itself."""

    type: Literal["url"] = "url"
    url: str


class PlainTextSource(_Canonical):
    """A document given as plain text."""

    type: Literal["text"] = "text"
    media_type: str = "text/plain"
    data: str


class ContentSource(_Canonical):
    """A document made of content blocks (Anthropic ``source.type = "content"``)."""

    type: Literal["content"] = "content"
    content: tuple[TextPart | ImagePart, ...]


ImageSource = Annotated[Base64Source | UrlSource, Field(discriminator="type")]
DocumentSource = Annotated[
    Base64Source | UrlSource | PlainTextSource | ContentSource, Field(discriminator="type")
]


# --- parts ---------------------------------------------------------------------------------------


class TextPart(_Canonical):
    """Plain text, in any role."""

    type: Literal["text"] = "text"
    text: str
    cache_control: CacheControl | None = None
    citations: tuple[dict[str, Any], ...] | None = None
    """Anthropic citation objects, passed through untouched."""


class ImagePart(_Canonical):
    """An image, inline or by URL."""

    type: Literal["image"] = "image"
    source: ImageSource
    cache_control: CacheControl | None = None


class DocumentPart(_Canonical):
    """A document (PDF, plain text or content blocks) given to the model as context."""

    type: Literal["document"] = "document"
    source: DocumentSource
    title: str | None = None
    context: str | None = None
    citations: dict[str, Any] | None = None
    """Anthropic's citation switch for this document, e.g. ``{"enabled": true}``."""
    cache_control: CacheControl | None = None


class ToolCallPart(_Canonical):
    """The assistant asks the client to run a tool."""

    type: Literal["tool_call"] = "tool_call"
    id: str
    """The call id the matching tool result refers to (``toolu_…``, ``call_…``)."""
    name: str
    arguments: dict[str, Any]
    """The parsed JSON arguments object."""
    cache_control: CacheControl | None = None


class ToolReferencePart(_Canonical):
    """Claude Code's ``tool_reference``: a deferred tool the client has just loaded (protocols §6.7)."""

    type: Literal["tool_reference"] = "tool_reference"
    tool_name: str
    cache_control: CacheControl | None = None


ToolResultContent = Annotated[
    TextPart | ImagePart | DocumentPart | ToolReferencePart, Field(discriminator="type")
]


class ToolResultPart(_Canonical):
    """The client's answer to a tool call. A plain-string result is one text part."""

    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str
    content: tuple[ToolResultContent, ...] = ()
    is_error: bool | None = None
    """``None`` when the client did not say (Claude Code omits it on success)."""
    cache_control: CacheControl | None = None


class ReasoningPart(_Canonical):
    """Model reasoning: visible text plus an opaque continuation token.

    ``signature`` is the token that lets the upstream resume its reasoning next turn (Anthropic's
    thinking ``signature`` or ``redacted_thinking`` data, OpenAI's ``encrypted_content``). ``provider``
    names who minted it; a token is only ever replayed to that provider (DESIGN §2).
    """

    type: Literal["reasoning"] = "reasoning"
    text: str = ""
    signature: str | None = None
    provider: str | None = None
    redacted: bool = False
    """True for Anthropic ``redacted_thinking``: no visible text, the data is in ``signature``."""
    cache_control: CacheControl | None = None


Part = Annotated[
    TextPart | ImagePart | DocumentPart | ToolCallPart | ToolResultPart | ReasoningPart | ToolReferencePart,
    Field(discriminator="type"),
]


# --- conversation ---------------------------------------------------------------------------------

Role = Literal["user", "assistant", "system"]


class Message(_Canonical):
    """One turn. ``system`` messages stay where the client put them (Claude Code sends them mid-turn)."""

    role: Role
    content: tuple[Part, ...]


class Tool(_Canonical):
    """A tool the model may call. ``type`` is set only for provider-side tools (``web_search_20250305``)."""

    name: str
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema of the arguments object."""
    strict: bool | None = None
    defer_loading: bool | None = None
    """Claude Code's deferred tools: loaded only once a ``tool_reference`` names them (protocols §6.7)."""
    type: str | None = None
    options: dict[str, Any] | None = None
    """Extra fields of a provider-side tool, kept verbatim."""
    cache_control: CacheControl | None = None


class ToolChoice(_Canonical):
    """Whether and which tool the model must call."""

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    """The tool to call when ``type == "tool"``."""


class Thinking(_Canonical):
    """Anthropic's ``thinking`` switch."""

    type: Literal["enabled", "adaptive", "disabled"]
    budget_tokens: int | None = None
    display: str | None = None
    """``summarized``, ``omitted`` or ``updates``: how much of the thinking the client wants to see."""


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


class OutputFormat(_Canonical):
    """Structured output: a JSON schema, any JSON object, or plain text."""

    type: Literal["json_schema", "json_object", "text"]
    json_schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


class Request(_Canonical):
    """A model request in canonical form."""

    model: str
    """The model name exactly as the client asked for it."""
    messages: tuple[Message, ...]
    system: tuple[TextPart, ...] = ()
    """Leading instructions, as text blocks (Anthropic ``system`` / a leading system message)."""
    max_tokens: int | None = None
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    """``False`` forbids parallel calls (Anthropic ``disable_parallel_tool_use``)."""
    thinking: Thinking | None = None
    effort: Effort | None = None
    """Reasoning effort (Anthropic ``output_config.effort``, OpenAI ``reasoning_effort``)."""
    output_format: OutputFormat | None = None
    user_id: str | None = None
    """End-user identifier (Anthropic ``metadata.user_id``, OpenAI ``user``)."""
    cache_control: CacheControl | None = None
    """Top-level automatic cache breakpoint."""
    context_management: dict[str, Any] | None = None
    """Anthropic context editing, meaningful to Anthropic upstreams only."""
    safeguards: tuple[dict[str, Any], ...] | None = None
    """Claude Code's interactive classifier context; holds local paths, so other upstreams drop it."""
    service_tier: str | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None


# --- answers -------------------------------------------------------------------------------------

StopReason = Literal[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
]


class Usage(_Canonical):
    """Token accounting. ``input_tokens`` is *uncached* input; the prompt is the sum of the input fields."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    """Prompt tokens read from the cache."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the cache."""
    output_tokens: int = 0
    """Generated tokens, reasoning included."""
    reasoning_tokens: int | None = None
    """The part of ``output_tokens`` spent on reasoning, when the upstream says."""
    cost: float | None = None
    """Upstream-reported cost in USD (OpenRouter), when known."""

    @property
    def prompt_tokens(self) -> int:
        """All input tokens, cached or not (OpenAI's ``prompt_tokens``)."""
        return self.input_tokens + self.cached_input_tokens + self.cache_write_tokens


NO_USAGE = Usage()
"""Zero usage, shared: canonical objects are immutable, and events and answers that know no usage
yet would otherwise each build (and validate) their own."""


class Response(_Canonical):
    """A complete answer: what :func:`gateway_core.streaming.accumulate` builds from a stream."""

    id: str
    model: str
    content: tuple[Part, ...]
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage = NO_USAGE


class ModelInfo(_Canonical):
    """A model a provider serves."""

    id: str
    provider: str
    display_name: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    created_at: str | None = None
    """ISO-8601 creation date, when known."""


ContentSource.model_rebuild()
