"""The OpenAI Chat Completions API: /v1/chat/completions (protocols §2). Errors in the OpenAI shape."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar import Request as HttpRequest
from litestar.response.base import ASGIResponse

from gateway_core.formats import openai_chat
from gateway_core.sse import encode_comment
from gateway_server.controllers.inference import complete, open_stream, streamed, whole
from gateway_server.errors import openai_errors
from gateway_server.requests import read_json


class OpenAIController(Controller):
    """Routes of the OpenAI-compatible API."""

    path = "/v1/chat"
    exception_handlers = {Exception: openai_errors}

    @post("/completions", status_code=200)
    async def create_chat_completion(self, request: HttpRequest[Any, Any, Any]) -> ASGIResponse:
        body = await read_json(request)
        canonical = openai_chat.parse_request(body)
        stream = await open_stream(request, canonical)
        if canonical.stream:
            encoder = openai_chat.StreamEncoder(include_usage=openai_chat.stream_include_usage(body))
            return streamed(request, stream, encoder.encode, encode_comment("keep-alive"))
        response = await complete(stream, canonical)
        return whole(openai_chat.render_response(response), stream)
