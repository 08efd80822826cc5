"""The OpenAI Responses API, as the ChatGPT Codex backend speaks it (protocols §4, §7.1, §7.2).

Towards the upstream: :func:`render_request` (canonical -> a body the Codex backend accepts),
:class:`StreamDecoder` (its SSE -> canonical events; :data:`WHOLE_ANSWER_SKIPPABLE` names the events a
whole answer can do without), :func:`parse_error` (its HTTP errors).
Towards Responses clients and round-trip tests: :func:`parse_request`, :func:`parse_response`,
:func:`render_response`, :class:`StreamEncoder`, :func:`render_error`.

Tool names longer than the upstream allows are shortened with a map built by :func:`tool_name_map`;
pass the same map to the decoder so answers carry the client's names.
"""

from __future__ import annotations

from gateway_core.formats.openai_responses._common import DEFAULT_INSTRUCTIONS
from gateway_core.formats.openai_responses.encoder import StreamEncoder
from gateway_core.formats.openai_responses.errors import (
    error_for_code,
    error_from_failure,
    parse_error,
    render_error,
    retry_after_from_message,
)
from gateway_core.formats.openai_responses.request import (
    ALLOWED_BODY_KEYS,
    render_instructions,
    render_request,
    tool_name_map,
)
from gateway_core.formats.openai_responses.request_parse import parse_request
from gateway_core.formats.openai_responses.response import parse_response, render_response
from gateway_core.formats.openai_responses.stream import WHOLE_ANSWER_SKIPPABLE, StreamDecoder

__all__ = [
    "ALLOWED_BODY_KEYS",
    "DEFAULT_INSTRUCTIONS",
    "WHOLE_ANSWER_SKIPPABLE",
    "StreamDecoder",
    "StreamEncoder",
    "error_for_code",
    "error_from_failure",
    "parse_error",
    "parse_request",
    "parse_response",
    "render_error",
    "render_instructions",
    "render_request",
    "render_response",
    "retry_after_from_message",
    "tool_name_map",
]
