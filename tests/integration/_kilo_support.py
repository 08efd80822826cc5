"""What the kilo provider's integration tests share: the provider on the fake Kilo, requests, calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gateway_core.models import Message, Request, TextPart
from gateway_core.provider import RequestContext
from gateway_core.settings import Settings
from gateway_core.streaming import StreamEvent
from gateway_providers.openrouter.plugin import build
from gateway_providers.openrouter.provider import OpenRouterProvider
from tests.fakes import FakeKilo

FREE = "moonshotai/kimi-k2.5:free"
PAID = "moonshotai/kimi-k2.5"
HAIKU = "claude-haiku-4-5-20251001"
CLOSED_PORT = "http://127.0.0.1:9/api/gateway"
"""Nothing listens there: a refused connection."""


@asynccontextmanager
async def kilo_provider(kilo: FakeKilo | None, **env: str) -> AsyncIterator[OpenRouterProvider]:
    """The provider as the plugin builds it, pointed at the fake (``env`` adds RELAYGATE_* values)."""
    settings = {"RELAYGATE_KILO_BASE_URL": kilo.base_url if kilo is not None else CLOSED_PORT, **env}
    provider = build(Settings(settings))
    try:
        yield provider
    finally:
        await provider.aclose()


def ask(prompt: str = "hi", *, model: str = HAIKU, **fields: Any) -> Request:
    return Request(model=model, messages=(Message(role="user", content=(TextPart(text=prompt),)),), **fields)


def context(request: Request, upstream_model: str = FREE, **fields: Any) -> RequestContext:
    return RequestContext(requested_model=request.model, upstream_model=upstream_model, **fields)


async def collect(provider: OpenRouterProvider, request: Request, ctx: RequestContext) -> list[StreamEvent]:
    events = provider.stream(request, ctx)
    try:
        return [event async for event in events]
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def chat_calls(kilo: FakeKilo) -> list[Any]:
    return kilo.requests_to("/chat/completions", "POST")
