"""The installed ``codex`` plugin end to end: the entry point builds the provider and the real account
pool over a store; requests go through the Gateway to the fake Codex backend, tokens are refreshed at
the fake OAuth issuer, and the pool's marks and counters show what happened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from gateway_core.accounts import AccountPool
from gateway_core.errors import AuthenticationError, RateLimitError
from gateway_core.formats import anthropic
from gateway_core.gateway import Gateway
from gateway_core.models import Message, Request, TextPart
from gateway_core.plugins import PluginError, Plugins, create_plugin_manager
from gateway_core.session import session_key
from gateway_core.settings import Settings
from gateway_core.store import AccountRecord, MemoryStore, Store, Tokens
from gateway_core.streaming import MessageStop
from gateway_providers.codex.accounts import CodexAccountPool
from gateway_providers.codex.provider import CodexProvider
from tests.fakes import FakeUpstreams, Identity, model_info, run_fake_upstreams
from tests.fakes.jwt import decode_jwt
from tests.fixtures import load_json

pytestmark = pytest.mark.anyio


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstreams]:
    async with run_fake_upstreams() as fakes:
        fakes.oauth.access_lifetime = 3600.0
        yield fakes


async def seed(up: FakeUpstreams, store: Store, email: str) -> Identity:
    """An account the fake issuer minted tokens for, stored as if logged in earlier."""
    identity = up.registry.add(email, account_id=f"acc-{email.split('@')[0]}")
    tokens = up.oauth.issue_tokens(identity, lifetime=3600.0)
    await store.upsert_account(
        AccountRecord(
            email=email,
            tokens=Tokens(
                access_token=tokens.access_token, refresh_token=tokens.refresh_token, id_token=tokens.id_token
            ),
            account_id=identity.account_id,
            plan_type="plus",
            access_expires_at=datetime.fromtimestamp(decode_jwt(tokens.access_token)["exp"], UTC),
            last_refresh=datetime.now(UTC),
        )
    )
    return identity


def gateway_for(up: FakeUpstreams, store: Store) -> Gateway:
    """The gateway a server builds: every installed plugin, configured by RELAYGATE_* settings."""
    return Gateway.from_plugins(settings=up.env(), store=store)


def hello(model: str = "gpt-5.5") -> Request:
    return Request(model=model, messages=(Message(role="user", content=(TextPart(text="hi"),)),))


def pool_of(gateway: Gateway) -> CodexAccountPool:
    pool = gateway.account_pools["codex"]
    assert isinstance(pool, CodexAccountPool)
    return pool


# --- wiring ------------------------------------------------------------------------------------------------


async def test_the_entry_point_registers_the_provider_and_its_account_pool(up: FakeUpstreams) -> None:
    registry = Plugins(create_plugin_manager()).register_providers(Settings(up.env()), store=MemoryStore())

    provider = registry.providers["codex"]
    assert isinstance(provider, CodexProvider)
    assert registry.owner("codex") == "codex"
    assert isinstance(registry.account_pools["codex"], AccountPool)
    assert provider.settings.base_url == up.codex.base_url
    assert provider.settings.oauth_issuer == up.oauth.base_url
    await provider.aclose()


async def test_registering_does_no_io(up: FakeUpstreams) -> None:
    store = MemoryStore()
    await seed(up, store, "a@example.com")
    gateway = gateway_for(up, store)

    assert up.codex.requests == []
    assert up.oauth.requests == []
    provider = gateway.providers["codex"]
    assert isinstance(provider, CodexProvider)
    session = provider._http._transport.client  # type: ignore[attr-defined]
    assert not isinstance(session, aiohttp.ClientSession), "no HTTP session opened"
    await gateway.aclose()


async def test_an_invalid_setting_is_reported_against_the_plugin(up: FakeUpstreams) -> None:
    with pytest.raises(PluginError, match="RELAYGATE_CODEX_IDLE_TIMEOUT") as caught:
        Gateway.from_plugins(settings={**up.env(), "RELAYGATE_CODEX_IDLE_TIMEOUT": "never"})

    assert caught.value.plugin == "codex"


# --- requests with the real pool -------------------------------------------------------------------------


async def test_a_claude_code_request_is_answered_from_the_stored_account(up: FakeUpstreams) -> None:
    store = MemoryStore()
    identity = await seed(up, store, "a@example.com")
    recorded = load_json("claude_code/cc332_p_text_main_request.json")
    headers = {name.lower(): value for name, value in recorded["headers"].items()}
    request = anthropic.parse_request(recorded["body"])

    async with gateway_for(up, store) as gateway:
        response = await gateway.complete(request, session_id=session_key(headers, request), headers=headers)
        usage = await pool_of(gateway).usage("a@example.com")

    (call,) = up.codex.responses_calls()
    assert call.header("chatgpt-account-id") == identity.account_id
    assert call.header("session_id") == headers["x-claude-code-session-id"]
    assert response.model == request.model
    assert usage.totals.requests == 1
    assert usage.totals.errors == 0
    assert usage.totals.output_tokens > 0


async def test_a_401_is_answered_after_one_refresh_at_the_issuer(up: FakeUpstreams) -> None:
    store = MemoryStore()
    identity = await seed(up, store, "a@example.com")
    up.registry.revoke_account(identity.account_id)

    async with gateway_for(up, store) as gateway:
        response = await gateway.complete(hello())

    assert response.content
    assert up.oauth.refresh_count(identity.account_id) == 1
    first, second = up.codex.responses_calls()
    assert first.header("authorization") != second.header("authorization")


async def test_a_usage_limit_cools_the_account_and_the_next_one_answers(up: FakeUpstreams) -> None:
    store = MemoryStore()
    a = await seed(up, store, "a@example.com")
    b = await seed(up, store, "b@example.com")
    up.codex.exhaust(a.account_id, resets_in_seconds=3600)

    async with gateway_for(up, store) as gateway:
        stream = await gateway.stream(hello())
        async with stream:
            events = [event async for event in stream]
        accounts = {info.email: info for info in await pool_of(gateway).accounts()}

    assert isinstance(events[-1], MessageStop)
    assert accounts["a@example.com"].status == "cooling"
    assert accounts["b@example.com"].status == "ok"
    assert [call.header("chatgpt-account-id") for call in up.codex.responses_calls()] == [
        a.account_id,
        b.account_id,
    ]


async def test_every_account_limited_is_one_rate_limit_with_the_earliest_reset(up: FakeUpstreams) -> None:
    store = MemoryStore()
    a = await seed(up, store, "a@example.com")
    b = await seed(up, store, "b@example.com")
    up.codex.exhaust(a.account_id, resets_in_seconds=7200)
    up.codex.exhaust(b.account_id, resets_in_seconds=900)

    async with gateway_for(up, store) as gateway:
        with pytest.raises(RateLimitError) as caught:
            await gateway.complete(hello())
        with pytest.raises(RateLimitError) as again:
            await gateway.complete(hello())

    assert caught.value.retry_after is not None
    assert 850 < caught.value.retry_after <= 902
    assert again.value.retry_after is not None
    assert again.value.retry_after <= 902
    assert len(up.codex.responses_calls()) == 2, "cooling accounts are not asked again"


async def test_no_account_is_an_immediate_authentication_error(up: FakeUpstreams) -> None:
    async with gateway_for(up, MemoryStore()) as gateway:
        with pytest.raises(AuthenticationError):
            await gateway.complete(hello())

    assert up.codex.requests == []


async def test_an_accounts_models_come_from_the_shared_catalog(up: FakeUpstreams) -> None:
    store = MemoryStore()
    await seed(up, store, "a@example.com")
    up.codex.set_models([model_info("gpt-5.5"), model_info("gpt-5.4-mini", context_window=128_000)])

    async with gateway_for(up, store) as gateway:
        listed = await pool_of(gateway).models("a@example.com")
        served = await gateway.providers["codex"].models()

    assert [(m.id, m.context_window) for m in listed] == [("gpt-5.5", 272_000), ("gpt-5.4-mini", 128_000)]
    assert [m.id for m in served] == ["gpt-5.5", "gpt-5.4-mini"]
    assert len(up.codex.requests_to("/codex/models")) == 1, "the provider reuses the list the pool fetched"
