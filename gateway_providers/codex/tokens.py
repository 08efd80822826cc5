"""Counting a request's input tokens offline, exactly, with the ``o200k_base`` encoding of GPT-5.x.

The counting rule (deterministic, on the body :func:`~gateway_core.formats.openai_responses.render_request`
sends, so it counts what the model is really given, after our translation):

- the ``instructions`` text, plus
- the compact JSON (``orjson.dumps``) of the ``input`` list, plus
- the compact JSON of the ``tools`` list when there are tools,

each encoded with ``o200k_base`` and summed. The JSON punctuation stands in for the backend's own
message framing, which is not public. Two kinds of content are not text the model reads and are taken
out of the JSON before counting, then added back with the Codex CLI's own estimates (``openai/codex``
``core/src/context_manager/history.rs``):

- each image or file attachment (``input_image``, ``input_file``): :data:`ATTACHMENT_TOKENS`, Codex's
  cost of one resized image (7,373 bytes at 4 bytes per token);
- each reasoning item's ``encrypted_content``: its decoded size less 650 bytes of envelope, at 4 bytes
  per token.

The tokenizer is :mod:`gateway_providers._tokenizer`, shared with the ``kilo`` provider: offline (it
ships inside the ``bpe-openai`` wheel), loaded once in a worker thread, and large requests are counted
in a worker thread too, so the event loop never blocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gateway_providers._tokenizer import ATTACHMENT_TOKENS, count_tokens

REASONING_ENVELOPE_BYTES = 650
BYTES_PER_TOKEN = 4

_ATTACHMENT_DATA_KEYS = {"input_image": ("image_url", "file_id"), "input_file": ("file_data", "file_url")}


def countable(body: Mapping[str, Any]) -> tuple[list[str], int]:
    """The texts the rule encodes, and the tokens estimated for what is not text."""
    estimated = 0
    texts: list[str] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        texts.append(instructions)
    items = body.get("input")
    if isinstance(items, list):
        stripped, estimated = _strip_items(items)
        texts.append(orjson.dumps(stripped).decode())
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        texts.append(orjson.dumps(tools).decode())
    return texts, estimated


async def count_body_tokens(body: Mapping[str, Any]) -> int:
    """The input tokens of an upstream request body, by the rule in the module docstring."""
    texts, estimated = countable(body)
    return await count_tokens(texts) + estimated


def token_upper_bound(body: Mapping[str, Any], body_size: int) -> int:
    """A cheap bound the count never exceeds: every token covers at least one byte of the serialised
    body, except the fixed estimate of each attachment. Lets callers skip counting small requests."""
    attachments = 0
    items = body.get("input")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                attachments += sum(1 for part in _parts(item) if part.get("type") in _ATTACHMENT_DATA_KEYS)
    return body_size + attachments * ATTACHMENT_TOKENS


# --- the non-text parts ----------------------------------------------------------------------------


def _parts(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The content parts of a message, or of a tool output given as a list."""
    content = item.get("content") if item.get("type") == "message" else item.get("output")
    return [part for part in content if isinstance(part, dict)] if isinstance(content, list) else []


def _strip_items(items: Sequence[object]) -> tuple[list[object], int]:
    stripped: list[object] = []
    estimated = 0
    for item in items:
        if not isinstance(item, dict):
            stripped.append(item)
            continue
        if item.get("type") == "reasoning" and isinstance(item.get("encrypted_content"), str):
            estimated += _reasoning_tokens(len(item["encrypted_content"]))
            stripped.append({key: value for key, value in item.items() if key != "encrypted_content"})
            continue
        key = "content" if item.get("type") == "message" else "output"
        parts = item.get(key)
        if not isinstance(parts, list) or not any(_is_attachment(part) for part in parts):
            stripped.append(item)
            continue
        new_parts = []
        for part in parts:
            if _is_attachment(part):
                estimated += ATTACHMENT_TOKENS
                drop = _ATTACHMENT_DATA_KEYS[part["type"]]
                part = {name: value for name, value in part.items() if name not in drop}
            new_parts.append(part)
        stripped.append({**item, key: new_parts})
    return stripped, estimated


def _is_attachment(part: object) -> bool:
    return isinstance(part, dict) and part.get("type") in _ATTACHMENT_DATA_KEYS


def _reasoning_tokens(encoded_length: int) -> int:
    """Codex's estimate of encrypted reasoning: base64 decoded (3/4), less the envelope, 4 bytes/token."""
    decoded = max(encoded_length * 3 // 4 - REASONING_ENVELOPE_BYTES, 0)
    return -(-decoded // BYTES_PER_TOKEN)
