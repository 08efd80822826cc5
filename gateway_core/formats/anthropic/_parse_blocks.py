"""Anthropic content blocks -> canonical parts, naming the field path of anything malformed.

One parser per block type, looked up in a table; each context (a user or assistant turn, a
``role:"system"`` message, a tool result, a document's ``content`` source) allows its own subset.
Server-tool blocks (``server_tool_use``, ``web_search_tool_result``...) only make sense on Anthropic's
own API, which ran the tool: they get an error naming the block rather than being silently lost.

Call ids go through :func:`~gateway_core.formats._names.from_client_call_id` (we may have encoded a
foreign id for the client), signatures through the codec of :mod:`._signature`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast

from gateway_core.formats._names import from_client_call_id
from gateway_core.formats._validate import (
    build,
    expect_list,
    expect_object,
    expect_str,
    fail,
    join,
    optional_bool,
    optional_str,
    required,
)
from gateway_core.formats.anthropic._signature import ANTHROPIC, decode_signature
from gateway_core.models import (
    Base64Source,
    CacheControl,
    ContentSource,
    DocumentPart,
    DocumentSource,
    ImagePart,
    ImageSource,
    Part,
    PlainTextSource,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolReferencePart,
    ToolResultContent,
    ToolResultPart,
    UrlSource,
)

S = TypeVar("S")

BlockParser = Callable[[dict[str, Any], str, str], Part]
"""``(block, path, native provider of plain signatures) -> part``."""

# Blocks that report a tool Anthropic ran server-side; no other upstream can continue them.
SERVER_TOOL_BLOCKS = frozenset(
    {
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)

# Client blocks of the Anthropic API the canonical model has no place for.
_UNSUPPORTED_BLOCKS: dict[str, str] = {
    "search_result": "search_result blocks are not supported by this gateway",
}


def req_str(obj: dict[str, Any], key: str, path: str) -> str:
    """``obj[key]`` as a string, or an error naming ``path.key`` (only then put together)."""
    value = obj.get(key)
    if type(value) is str:
        return value
    return expect_str(required(obj, key, path), join(path, key))


def parse_cache_control(owner: dict[str, Any], path: str) -> CacheControl | None:
    """The ``cache_control`` object of ``owner`` (a request, block or tool at ``path``), if it has one;
    unknown keys are ignored, an unknown cache type is an error. Its path is only put together when
    there is one: most blocks of a large request have none."""
    value = owner.get("cache_control")
    if value is None:
        return None
    field_path = join(path, "cache_control")
    obj = expect_object(value, field_path)
    return build(
        CacheControl, field_path, type=obj.get("type", "ephemeral"), ttl=optional_str(obj, "ttl", field_path)
    )


def _citations(block: dict[str, Any], path: str) -> tuple[dict[str, Any], ...] | None:
    """The ``citations`` of a text ``block`` at ``path``, if it has any."""
    value = block.get("citations")
    if value is None:
        return None
    field_path = join(path, "citations")
    items = expect_list(value, field_path)
    return tuple(expect_object(item, join(field_path, i)) for i, item in enumerate(items))


def _text(block: dict[str, Any], path: str, native: str) -> TextPart:
    return TextPart(
        text=req_str(block, "text", path),
        citations=_citations(block, path),
        cache_control=parse_cache_control(block, path),
    )


def _base64_source(source: dict[str, Any], path: str, native: str) -> Base64Source:
    return Base64Source(media_type=req_str(source, "media_type", path), data=req_str(source, "data", path))


def _url_source(source: dict[str, Any], path: str, native: str) -> UrlSource:
    return UrlSource(url=req_str(source, "url", path))


def _text_source(source: dict[str, Any], path: str, native: str) -> PlainTextSource:
    media_type = optional_str(source, "media_type", path) or "text/plain"
    return PlainTextSource(media_type=media_type, data=req_str(source, "data", path))


def _content_source(source: dict[str, Any], path: str, native: str) -> ContentSource:
    content_path = join(path, "content")
    content = required(source, "content", path)
    if isinstance(content, str):
        return ContentSource(content=(TextPart(text=content),))
    blocks = expect_list(content, content_path)
    parts = tuple(
        parse_block(item, join(content_path, i), native, _DOCUMENT_CONTENT) for i, item in enumerate(blocks)
    )
    return build(ContentSource, path, content=parts)


# Source types each block takes; `file` sources (Files API) need Anthropic's storage, so they are refused.
_IMAGE_SOURCES: dict[str, Callable[[dict[str, Any], str, str], ImageSource]] = {
    "base64": _base64_source,
    "url": _url_source,
}
_DOCUMENT_SOURCES: dict[str, Callable[[dict[str, Any], str, str], DocumentSource]] = {
    "base64": _base64_source,
    "url": _url_source,
    "text": _text_source,
    "content": _content_source,
}


def _source(
    value: object, path: str, native: str, table: dict[str, Callable[[dict[str, Any], str, str], S]]
) -> S:
    source = expect_object(value, path)
    kind = source.get("type")
    parser = table.get(kind) if isinstance(kind, str) else None
    if parser is None:
        fail(join(path, "type"), f"unsupported source type {_quoted(kind)}")
    return parser(source, path, native)


def _image(block: dict[str, Any], path: str, native: str) -> ImagePart:
    return ImagePart(
        source=_source(required(block, "source", path), join(path, "source"), native, _IMAGE_SOURCES),
        cache_control=parse_cache_control(block, path),
    )


def _document(block: dict[str, Any], path: str, native: str) -> DocumentPart:
    citations = block.get("citations")
    return DocumentPart(
        source=_source(required(block, "source", path), join(path, "source"), native, _DOCUMENT_SOURCES),
        title=optional_str(block, "title", path),
        context=optional_str(block, "context", path),
        citations=None if citations is None else expect_object(citations, join(path, "citations")),
        cache_control=parse_cache_control(block, path),
    )


def _tool_use(block: dict[str, Any], path: str, native: str) -> ToolCallPart:
    # `caller` (newer models: {"type": "direct"}) says who issued the call; it is not echoed back.
    arguments = block.get("input")
    return ToolCallPart(
        id=from_client_call_id(req_str(block, "id", path)),
        name=req_str(block, "name", path),
        arguments={} if arguments is None else expect_object(arguments, join(path, "input")),
        cache_control=parse_cache_control(block, path),
    )


def _tool_result(block: dict[str, Any], path: str, native: str) -> ToolResultPart:
    content_path = join(path, "content")
    content = block.get("content")
    parts: tuple[ToolResultContent, ...]
    if content is None:
        parts = ()
    elif isinstance(content, str):
        parts = (TextPart(text=content),)
    else:
        items = expect_list(content, content_path)
        parts = tuple(
            _as_tool_result_content(parse_block(item, join(content_path, i), native, _TOOL_RESULT_CONTENT))
            for i, item in enumerate(items)
        )
    return ToolResultPart(
        tool_call_id=from_client_call_id(req_str(block, "tool_use_id", path)),
        content=parts,
        is_error=optional_bool(block, "is_error", path),
        cache_control=parse_cache_control(block, path),
    )


def _as_tool_result_content(part: Part) -> ToolResultContent:
    # parse_block only returned one of the _TOOL_RESULT_CONTENT types.
    return cast(ToolResultContent, part)


def _thinking(block: dict[str, Any], path: str, native: str) -> ReasoningPart:
    signature = optional_str(block, "signature", path)
    token, provider = decode_signature(signature, native=native)
    return ReasoningPart(
        text=req_str(block, "thinking", path),
        signature=token,
        provider=provider,
        cache_control=parse_cache_control(block, path),
    )


def _redacted_thinking(block: dict[str, Any], path: str, native: str) -> ReasoningPart:
    token, provider = decode_signature(req_str(block, "data", path), native=native)
    return ReasoningPart(
        redacted=True,
        signature=token,
        provider=provider,
        cache_control=parse_cache_control(block, path),
    )


def _tool_reference(block: dict[str, Any], path: str, native: str) -> ToolReferencePart:
    return ToolReferencePart(
        tool_name=req_str(block, "tool_name", path),
        cache_control=parse_cache_control(block, path),
    )


_PARSERS: dict[str, BlockParser] = {
    "text": _text,
    "image": _image,
    "document": _document,
    "tool_use": _tool_use,
    "tool_result": _tool_result,
    "thinking": _thinking,
    "redacted_thinking": _redacted_thinking,
    "tool_reference": _tool_reference,
}

MESSAGE_CONTENT = frozenset(_PARSERS)
SYSTEM_CONTENT = frozenset({"text"})
_TOOL_RESULT_CONTENT = frozenset({"text", "image", "document", "tool_reference"})
_DOCUMENT_CONTENT = frozenset({"text", "image"})
_CONTEXT_NAMES: dict[frozenset[str], str] = {
    SYSTEM_CONTENT: "a system message",
    _TOOL_RESULT_CONTENT: "a tool_result",
    _DOCUMENT_CONTENT: "a document's content",
}


def block_type(block: object, path: str) -> str:
    """The ``type`` of a content block, or an error naming the path."""
    return req_str(expect_object(block, path), "type", path)


def parse_block(
    block: object, path: str, native: str = ANTHROPIC, allowed: frozenset[str] = MESSAGE_CONTENT
) -> Part:
    """One content block -> its canonical part; ``allowed`` are the block types this context takes."""
    obj = expect_object(block, path)
    kind = req_str(obj, "type", path)
    if kind not in allowed:
        _reject(kind, join(path, "type"), allowed)
    return _PARSERS[kind](obj, path, native)


def _reject(kind: str, type_path: str, allowed: frozenset[str]) -> NoReturn:
    if kind in SERVER_TOOL_BLOCKS:
        fail(
            type_path,
            f"server tool block {_quoted(kind)} is not supported: server tools run only on Anthropic's "
            "own API, so this conversation cannot continue through this gateway",
        )
    if kind in _UNSUPPORTED_BLOCKS:
        fail(type_path, _UNSUPPORTED_BLOCKS[kind])
    if kind in _PARSERS:
        fail(type_path, f"block type {_quoted(kind)} is not allowed in {_CONTEXT_NAMES.get(allowed, 'here')}")
    fail(type_path, f"unknown block type {_quoted(kind)}")


def parse_content(
    content: object, path: str, native: str = ANTHROPIC, allowed: frozenset[str] = MESSAGE_CONTENT
) -> tuple[Part, ...]:
    """Message content: a string (one text part) or a list of blocks."""
    if isinstance(content, str):
        return (TextPart(text=content),)
    blocks = expect_list(content, path)
    return tuple(parse_block(block, join(path, i), native, allowed) for i, block in enumerate(blocks))


def _quoted(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)
