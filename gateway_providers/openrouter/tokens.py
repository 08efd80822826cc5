"""An offline estimate of a Chat request's input tokens.

Neither Kilo nor OpenRouter has a token-counting endpoint, and the models behind them (Kimi, MiniMax,
GLM, Qwen...) each have their own tokenizer, so the count is an estimate by a documented rule, on the
body :func:`~gateway_core.formats.openai_chat.render_request` sends (what the model is really given):

- the compact JSON (``orjson.dumps``) of the ``messages`` list, plus
- the compact JSON of the ``tools`` list when there are tools,

each encoded with ``o200k_base`` (GPT-5's encoding, standing in for the model's own, which is not
available offline; the true count differs by the vocabulary) and summed. The JSON punctuation stands
in for the chat template's framing. Images and files are not text the model reads: their data is taken
out of the JSON and :data:`ATTACHMENT_TOKENS` is counted for each instead.

The tokenizer is :mod:`gateway_providers._tokenizer`, shared with the ``codex`` provider: offline (it
ships inside the ``bpe-openai`` wheel), loaded once in a worker thread, and large requests are counted
in a worker thread too, so the event loop never blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway_providers._tokenizer import ATTACHMENT_TOKENS, count_tokens

# Chat content parts that carry attachment data, and the key that holds it.
_ATTACHMENT_PARTS: dict[str, str] = {"image_url": "image_url", "file": "file"}


def countable(body: Mapping[str, Any]) -> tuple[list[str], int]:
    """The texts the rule encodes, and the tokens estimated for what is not text (attachments)."""
    texts: list[str] = []
    estimated = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        stripped, estimated = _strip_attachments(messages)
        texts.append(orjson.dumps(stripped).decode())
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        texts.append(orjson.dumps(tools).decode())
    return texts, estimated


async def estimate_body_tokens(body: Mapping[str, Any]) -> int:
    """The estimated input tokens of a Chat request body, by the rule in the module docstring."""
    texts, estimated = countable(body)
    return await count_tokens(texts) + estimated


def _strip_attachments(messages: list[Any]) -> tuple[list[Any], int]:
    attachments = 0
    stripped: list[Any] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list) or not any(_is_attachment(part) for part in content):
            stripped.append(message)
            continue
        parts = []
        for part in content:
            if _is_attachment(part):
                attachments += 1
                data_key = _ATTACHMENT_PARTS[part["type"]]
                parts.append({name: value for name, value in part.items() if name != data_key})
            else:
                parts.append(part)
        stripped.append({**message, "content": parts})
    return stripped, attachments * ATTACHMENT_TOKENS


def _is_attachment(part: object) -> bool:
    return isinstance(part, dict) and part.get("type") in _ATTACHMENT_PARTS
