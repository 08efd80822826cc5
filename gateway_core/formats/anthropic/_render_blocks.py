"""Canonical parts -> Anthropic content blocks (requests, responses and stream block starts alike).

Normalisations, each one lossless for the API (and the only ones the round-trip tests allow):
- content that is exactly one plain text part (no ``cache_control``, no ``citations``) is written as a
  string, wherever the API takes a string (message content, ``system``, ``tool_result.content``, a
  document's ``content`` source); Claude Code sends such content as strings, so its bytes come back
  unchanged, and an empty tool output stays ``""`` instead of an empty text block the API refuses;
- empty ``tool_result`` content is left out; a thinking block without a token gets ``signature: ""``.

Call ids go out through :func:`~gateway_core.formats._names.to_client_call_id`, so a foreign id
(``functions.weather:0``) reaches strict clients in the ``^[a-zA-Z0-9_-]+$`` alphabet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway_core.formats._names import to_client_call_id
from gateway_core.formats.anthropic._signature import ANTHROPIC, encode_signature
from gateway_core.models import (
    Base64Source,
    CacheControl,
    ContentSource,
    DocumentPart,
    ImagePart,
    Part,
    PlainTextSource,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolReferencePart,
    ToolResultPart,
    UrlSource,
)


def render_cache_control(cache_control: CacheControl) -> dict[str, Any]:
    out: dict[str, Any] = {"type": cache_control.type}
    if cache_control.ttl is not None:
        out["ttl"] = cache_control.ttl
    return out


def _with_cache_control(block: dict[str, Any], part: Part) -> dict[str, Any]:
    if part.cache_control is not None:
        block["cache_control"] = render_cache_control(part.cache_control)
    return block


def _source(
    source: Base64Source | UrlSource | PlainTextSource | ContentSource, native: str
) -> dict[str, Any]:
    match source:
        case Base64Source(media_type=media_type, data=data):
            return {"type": "base64", "media_type": media_type, "data": data}
        case UrlSource(url=url):
            return {"type": "url", "url": url}
        case PlainTextSource(media_type=media_type, data=data):
            return {"type": "text", "media_type": media_type, "data": data}
        case ContentSource(content=content):
            return {"type": "content", "content": render_content(content, native)}


def render_part(part: Part, native: str = ANTHROPIC) -> dict[str, Any]:
    """One part as an Anthropic block; reasoning tokens of other providers than ``native`` are enveloped."""
    block: dict[str, Any]
    match part:
        case TextPart(text=text, citations=citations):
            block = {"type": "text", "text": text}
            if citations is not None:
                block["citations"] = list(citations)
        case ImagePart(source=source):
            block = {"type": "image", "source": _source(source, native)}
        case DocumentPart():
            block = {"type": "document", "source": _source(part.source, native)}
            for key in ("title", "context", "citations"):
                if (value := getattr(part, key)) is not None:
                    block[key] = value
        case ToolCallPart(id=call_id, name=name, arguments=arguments):
            block = {"type": "tool_use", "id": to_client_call_id(call_id), "name": name, "input": arguments}
        case ToolResultPart(tool_call_id=call_id, content=content, is_error=is_error):
            block = {"type": "tool_result", "tool_use_id": to_client_call_id(call_id)}
            if content:
                block["content"] = render_content(content, native)
            if is_error is not None:
                block["is_error"] = is_error
        case ReasoningPart(redacted=True, signature=signature, provider=provider):
            block = {
                "type": "redacted_thinking",
                "data": encode_signature(signature, provider, native=native),
            }
        case ReasoningPart(text=text, signature=signature, provider=provider):
            signature_text = encode_signature(signature, provider, native=native)
            block = {"type": "thinking", "thinking": text, "signature": signature_text}
        case ToolReferencePart(tool_name=tool_name):
            block = {"type": "tool_reference", "tool_name": tool_name}
    return _with_cache_control(block, part)


def plain_text(parts: Sequence[Part]) -> str | None:
    """The text of exactly one text part without cache_control or citations (the API's string shorthand)."""
    if len(parts) != 1:
        return None
    part = parts[0]
    if isinstance(part, TextPart) and part.cache_control is None and part.citations is None:
        return part.text
    return None


def render_content(parts: Sequence[Part], native: str = ANTHROPIC) -> str | list[dict[str, Any]]:
    """Content as the string shorthand when it is one plain text part, else as a block list."""
    text = plain_text(parts)
    if text is not None:
        return text
    return [render_part(part, native) for part in parts]
