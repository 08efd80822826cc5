"""A real server on fake ``codex`` and ``kilo`` providers, with its state in a temporary home, for the
lane settings and Claude Code settings tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway_core.gateway import Gateway
from gateway_core.plugins import ProviderRegistry, hookimpl
from gateway_core.settings import Settings
from gateway_server import ServerConfig, create_app
from gateway_server.app import open_state_store
from tests.serving import serve
from tests.unit._fake_provider import FakeProvider

HAIKU = "claude-haiku-4-5"


class LanePlugin:
    """Registers the given providers, as an installed provider plugin does."""

    def __init__(self, *providers: FakeProvider) -> None:
        self.providers = providers

    @hookimpl
    def relaygate_register_providers(self, registry: ProviderRegistry) -> None:
        for provider in self.providers:
            registry.register(provider)


@dataclass
class Served:
    http: httpx.AsyncClient
    url: str
    claude_settings: Path


@asynccontextmanager
async def served(
    tmp_path: Path, *providers: FakeProvider, env: dict[str, str] | None = None
) -> AsyncIterator[Served]:
    """The server on ``providers`` (default: a codex and a kilo), state in ``tmp_path / "home"``."""
    if not providers:
        providers = (FakeProvider("codex"), FakeProvider("kilo"))
    claude_settings = tmp_path / "claude" / "settings.json"
    settings = Settings({"RELAYGATE_CLAUDE_SETTINGS": str(claude_settings), **(env or {})})
    gateway = Gateway.from_plugins(LanePlugin(*providers), load_entrypoints=False, settings=settings)
    config = ServerConfig.from_settings(settings, port=0)
    store = await open_state_store(tmp_path / "home")
    try:
        app = create_app(gateway, config=config, settings=settings, store=store)
        async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
            yield Served(http, url, claude_settings)
    finally:
        await store.aclose()


async def routed(http: httpx.AsyncClient, model: str = HAIKU) -> tuple[str, str]:
    """Where a request for ``model`` went: (provider, upstream model)."""
    answer = await http.post(
        "/v1/messages",
        json={"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == model
    return answer.headers["x-relaygate-provider"], answer.headers["x-relaygate-model"]
