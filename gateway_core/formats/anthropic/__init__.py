"""The Anthropic Messages wire format, both directions (protocols §1, §6, §7.5, §7.8).

Served to Claude Code and the Anthropic SDKs, and ready for an Anthropic upstream. Pure functions and
sans-I/O stream state machines; the module layout:

- ``_parse_blocks`` / ``_render_blocks``: content blocks <-> canonical parts;
- ``_request``: request bodies (``parse_request``, ``parse_count_tokens_request``, ``render_request``);
- ``_response``: the non-streaming ``Message`` and usage;
- ``_decoder`` / ``_encoder``: the SSE event grammar;
- ``_errors``: error bodies and statuses;
- ``_signature``: the ``rg1.`` envelope that carries other providers' reasoning tokens in ``signature``.
"""

from gateway_core.formats.anthropic._decoder import StreamDecoder
from gateway_core.formats.anthropic._encoder import StreamEncoder, ping
from gateway_core.formats.anthropic._errors import error_type, parse_error, render_error, retry_after
from gateway_core.formats.anthropic._request import parse_count_tokens_request, parse_request, render_request
from gateway_core.formats.anthropic._response import (
    parse_response,
    parse_usage,
    render_response,
    render_usage,
)
from gateway_core.formats.anthropic._signature import ANTHROPIC, decode_signature, encode_signature

__all__ = [
    "ANTHROPIC",
    "StreamDecoder",
    "StreamEncoder",
    "decode_signature",
    "encode_signature",
    "error_type",
    "parse_count_tokens_request",
    "parse_error",
    "parse_request",
    "parse_response",
    "parse_usage",
    "ping",
    "render_error",
    "render_request",
    "render_response",
    "render_usage",
    "retry_after",
]
