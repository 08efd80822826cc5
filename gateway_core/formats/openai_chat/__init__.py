"""OpenAI Chat Completions, both directions and both roles (protocols §2, §3, §7.3).

Towards OpenAI SDK clients (our ``/v1/chat/completions``):
    parse_request(body) -> Request                 the client's request, canonical
    stream_include_usage(body) -> bool             its ``stream_options.include_usage`` (how to encode)
    render_response(response) -> dict              a ``chat.completion``
    StreamEncoder(include_usage=...).encode(event) ``chat.completion.chunk`` SSE bytes
    render_error(error) -> dict                    ``{"error":{"message","type","param","code"}}``

Towards OpenRouter and the Kilo gateway (the Haiku lane):
    tool_name_map(request) -> ToolNameMap          shared by the request and the answer's decoding
    render_request(request, upstream_model=, provider=, effort=, names=) -> dict
    StreamDecoder(provider=, model=, names=).feed(event) / .close()
    parse_response(body, ...) / parse_response_bytes(raw, ...) -> Response
    parse_error(status, body, headers) -> GatewayError
"""

from gateway_core.formats.openai_chat._decoder import StreamDecoder
from gateway_core.formats.openai_chat._encoder import StreamEncoder
from gateway_core.formats.openai_chat._errors import parse_error, render_error
from gateway_core.formats.openai_chat._request_in import parse_request, stream_include_usage
from gateway_core.formats.openai_chat._request_out import render_request, tool_name_map
from gateway_core.formats.openai_chat._response import parse_response, parse_response_bytes, render_response

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "parse_error",
    "parse_request",
    "parse_response",
    "parse_response_bytes",
    "render_error",
    "render_request",
    "render_response",
    "stream_include_usage",
    "tool_name_map",
]
