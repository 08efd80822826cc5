"""Tool lists parsed once per distinct list, whichever wire format brings them.

Agents send the same tool definitions in every request: Claude Code's are ~60 KB (descriptions and
schemas, most of its body) and repeat in every request of a CLI version, its sub-agents' too; the Codex
CLI and SDK agents repeat theirs alike. Every request that repeats a list gets the same immutable
canonical tools, so concurrent requests hold one copy between them instead of one each, and the list
is not validated again. The key is the list's exact JSON and the parser that read it, so lists that
differ anywhere, even ``1`` against ``true``, never share.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson

from gateway_core.models import Tool

TOOL_LISTS = 16
"""Distinct tool lists (of every format together) whose parse is kept for the requests that repeat them."""
LARGEST_SHARED = 256 * 1024
"""The longest list (in JSON bytes) that is kept: Claude Code's is ~60 KB. Longer ones, rare, are parsed
per request, so that what is kept stays bounded (a few MB at most) whatever clients send."""

ToolListParser = Callable[[list[Any], str], tuple[Tool, ...]]
"""A format's parse of a ``tools`` list found at a path; it raises InvalidRequestError naming the field."""


def shared_tools(items: list[Any], path: str, parse: ToolListParser) -> tuple[Tool, ...]:
    """``parse(items, path)``, or the tools an earlier request with the same list got from it."""
    try:
        key = orjson.dumps(items)
    except orjson.JSONEncodeError:  # not JSON data: objects an embedding application built itself
        return parse(items, path)
    if len(key) > LARGEST_SHARED:
        return parse(items, path)
    return _parsed(key, path, parse)


@functools.lru_cache(maxsize=TOOL_LISTS)
def _parsed(key: bytes, path: str, parse: ToolListParser) -> tuple[Tool, ...]:
    # Parsed from the key, so the tools keep nothing of the request that brought them first. A list
    # that is refused raises, and is not kept.
    return parse(orjson.loads(key), path)
