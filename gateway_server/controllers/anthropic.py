"""The Anthropic Messages API: /v1/messages, /v1/messages/count_tokens, /v1/models (protocols §1).

Claude Code appends ``?beta=true``; query strings are ignored. Errors answer in the Anthropic shape.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from litestar import Controller, get, post
from litestar import Request as HttpRequest
from litestar.params import FromPath, FromQuery
from litestar.response.base import ASGIResponse

from gateway_core.errors import NotFoundError
from gateway_core.formats import anthropic
from gateway_core.models import ModelInfo
from gateway_server.controllers.inference import complete, open_stream, streamed, whole
from gateway_server.errors import anthropic_errors
from gateway_server.requests import client_headers, gateway_of, read_json

# Anthropic's list shape wants a creation date; models that do not say get this fixed one.
_UNKNOWN_CREATED_AT = "2025-01-01T00:00:00Z"


def _request_id() -> str:
    return "req_" + secrets.token_hex(12)


def render_model(model: ModelInfo) -> dict[str, Any]:
    """A model in Anthropic's shape, with OpenAI's fields too so both SDKs' ``models.list`` parse it."""
    created_at = model.created_at or _UNKNOWN_CREATED_AT
    try:
        created = int(datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp())
    except ValueError:
        created = 0
    entry: dict[str, Any] = {
        "type": "model",
        "id": model.id,
        "display_name": model.display_name or model.id,
        "created_at": created_at,
        "object": "model",
        "created": created,
        "owned_by": model.provider,
    }
    if model.context_window is not None:
        entry["max_input_tokens"] = model.context_window
    if model.max_output_tokens is not None:
        entry["max_tokens"] = model.max_output_tokens
    return entry


def page_of_models(
    models: list[ModelInfo], limit: int, after_id: str | None, before_id: str | None
) -> dict[str, Any]:
    """Anthropic's cursor pagination over the model list."""
    ids = [m.id for m in models]
    start, end = 0, len(models)
    if after_id is not None and after_id in ids:
        start = ids.index(after_id) + 1
    if before_id is not None and before_id in ids:
        end = ids.index(before_id)
        start = max(start, end - limit)
    window = models[start:end][:limit]
    data = [render_model(m) for m in window]
    return {
        "data": data,
        "has_more": start + len(window) < end,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "object": "list",
    }


class AnthropicController(Controller):
    """Routes of the Anthropic API."""

    path = "/v1"
    exception_handlers = {Exception: anthropic_errors}

    @post("/messages", status_code=200)
    async def create_message(self, request: HttpRequest[Any, Any, Any]) -> ASGIResponse:
        canonical = anthropic.parse_request(await read_json(request))
        stream = await open_stream(request, canonical)
        headers = {"request-id": _request_id()}
        if canonical.stream:
            encoder = anthropic.StreamEncoder()
            return streamed(request, stream, encoder.encode, anthropic.ping(), headers)
        response = await complete(stream, canonical)
        return whole(anthropic.render_response(response), stream, headers)

    @post("/messages/count_tokens", status_code=200)
    async def count_tokens(self, request: HttpRequest[Any, Any, Any]) -> dict[str, int]:
        canonical = anthropic.parse_count_tokens_request(await read_json(request))
        count = await gateway_of(request).count_tokens(canonical, headers=client_headers(request))
        return {"input_tokens": count}

    @get("/models")
    async def list_models(
        self,
        request: HttpRequest[Any, Any, Any],
        limit: FromQuery[int] = 1000,
        after_id: FromQuery[str | None] = None,
        before_id: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        models = await gateway_of(request).models()
        return page_of_models(models, max(1, min(limit, 1000)), after_id, before_id)

    @get("/models/{model_id:path}")
    async def get_model(self, request: HttpRequest[Any, Any, Any], model_id: FromPath[str]) -> dict[str, Any]:
        wanted = model_id.lstrip("/")
        for model in await gateway_of(request).models():
            if model.id == wanted:
                return render_model(model)
        raise NotFoundError(f"model: {wanted!r} is not served by this gateway")
