"""The Codex provider's pieces without a server: settings, headers, failover rules, and the provider
driven through ``httpx.MockTransport`` with a small lease pool (tests/codex_lease_pool.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import anyio
import httpx
import orjson
import pytest
from httpx_aiohttp import AiohttpTransport

from gateway_core.errors import (
    AuthenticationError,
    BillingError,
    GatewayError,
    InvalidRequestError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gateway_core.models import Message, Request, TextPart
from gateway_core.provider import Provider, RequestContext
from gateway_core.settings import Settings
from gateway_core.sse import encode_json_event
from gateway_core.streaming import MessageStart, MessageStop, PartStart, StreamEvent
from gateway_providers.codex import failover
from gateway_providers.codex.config import CodexSettings
from gateway_providers.codex.failover import Action
from gateway_providers.codex.provider import CodexProvider
from gateway_providers.codex.transport import create_http_client, responses_headers, user_agent
from tests.codex_lease_pool import FakeLease, FakeLeasePool
from tests.fakes import Completed, Failed, Reasoning
from tests.fakes.responses_stream import Message as OutputMessage
from tests.fakes.responses_stream import build_events

pytestmark = pytest.mark.anyio

A = FakeLease("a@example.com", "acct-a", "token-a")
B = FakeLease("b@example.com", "acct-b", "token-b")


# --- settings ------------------------------------------------------------------------------------------


def test_settings_default_to_the_real_backend_and_codex_timeouts() -> None:
    settings = CodexSettings.from_settings(Settings())

    assert settings.base_url == "https://chatgpt.com/backend-api"
    assert settings.oauth_issuer == "https://auth.openai.com"
    assert settings.callback_port == 1455
    assert settings.auth_file == Path("~/.codex/auth.json")
    assert (settings.connect_timeout, settings.first_event_timeout, settings.idle_timeout) == (10, 120, 300)
    assert settings.responses_url == "https://chatgpt.com/backend-api/codex/responses"
    assert settings.models_url == "https://chatgpt.com/backend-api/codex/models"
    assert settings.usage_url == "https://chatgpt.com/backend-api/wham/usage"
    assert settings.redirect_uri == "http://localhost:1455/auth/callback"


def test_settings_read_the_documented_variables() -> None:
    settings = CodexSettings.from_settings(
        Settings(
            {
                "RELAYGATE_CODEX_BASE_URL": "http://127.0.0.1:9000/backend-api/",
                "RELAYGATE_OAUTH_ISSUER": "http://127.0.0.1:9001",
                "RELAYGATE_OAUTH_CALLBACK_PORT": "1456",
                "RELAYGATE_CODEX_AUTH_FILE": "/tmp/auth.json",
                "RELAYGATE_CODEX_CLIENT_VERSION": "0.150.0",
                "RELAYGATE_CODEX_FIRST_EVENT_TIMEOUT": "2.5",
                "RELAYGATE_CODEX_IDLE_TIMEOUT": "7",
            }
        )
    )

    assert settings.base_url == "http://127.0.0.1:9000/backend-api"
    assert settings.token_url == "http://127.0.0.1:9001/oauth/token"
    assert settings.redirect_uri == "http://localhost:1456/auth/callback"
    assert settings.auth_file == Path("/tmp/auth.json")
    assert settings.client_version == "0.150.0"
    assert (settings.first_event_timeout, settings.idle_timeout) == (2.5, 7.0)


def test_a_base_without_backend_api_reads_usage_from_the_codex_api_path() -> None:
    settings = CodexSettings(base_url="https://example.test/proxy")

    assert settings.usage_url == "https://example.test/proxy/api/codex/usage"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RELAYGATE_CODEX_BASE_URL", "chatgpt.com/backend-api"),
        ("RELAYGATE_CODEX_BASE_URL", "ftp://chatgpt.com"),
        ("RELAYGATE_OAUTH_ISSUER", "https://auth.openai.com?x=1"),
        ("RELAYGATE_OAUTH_CALLBACK_PORT", "70000"),
        ("RELAYGATE_OAUTH_CALLBACK_PORT", "port"),
        ("RELAYGATE_CODEX_CLIENT_VERSION", "latest"),
        ("RELAYGATE_CODEX_CONNECT_TIMEOUT", "0"),
        ("RELAYGATE_CODEX_FIRST_EVENT_TIMEOUT", "-1"),
        ("RELAYGATE_CODEX_IDLE_TIMEOUT", "inf"),
        ("RELAYGATE_CODEX_MODELS_TTL", "soon"),
    ],
)
def test_an_invalid_setting_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        CodexSettings.from_settings(Settings({name: value}))


def test_blank_settings_take_their_defaults() -> None:
    settings = CodexSettings.from_settings(Settings({"RELAYGATE_CODEX_BASE_URL": "  "}))

    assert settings.base_url == "https://chatgpt.com/backend-api"


# --- headers and the client ----------------------------------------------------------------------------


def test_responses_headers_carry_the_account_and_the_codex_cli_identity() -> None:
    headers = responses_headers(CodexSettings(), A, "session-1")

    assert headers["authorization"] == "Bearer token-a"
    assert headers["chatgpt-account-id"] == "acct-a"
    assert headers["originator"] == "codex_cli_rs"
    assert headers["version"] == CodexSettings().client_version
    assert headers["accept"] == "text/event-stream"
    assert headers["content-type"] == "application/json"
    assert headers["session_id"] == "session-1"


def test_without_a_session_no_session_header_is_sent() -> None:
    assert "session_id" not in responses_headers(CodexSettings(), A, None)


def test_the_user_agent_has_the_codex_cli_shape() -> None:
    agent = user_agent("0.142.5")

    assert agent.startswith("codex_cli_rs/0.142.5 (")
    assert agent.endswith(") relaygate")
    assert "; " in agent


async def test_the_shared_client_is_built_without_opening_anything() -> None:
    client = create_http_client(CodexSettings())

    transport = client._transport
    assert isinstance(transport, AiohttpTransport)
    assert not isinstance(transport.client, aiohttp.ClientSession), "it is made on the first request"
    assert client.timeout.connect == 10.0
    await client.aclose()


# --- failover rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (AuthenticationError("Unauthorized"), Action.REAUTHENTICATE),
        (RateLimitError("limit", code="usage_limit_reached", retry_after=60), Action.COOL_DOWN),
        (RateLimitError("slow down", code="rate_limit_exceeded", retry_after=2), Action.RETRY_ONCE),
        (BillingError("no codex", code="usage_not_included"), Action.NEXT_ACCOUNT),
        (UpstreamError("500"), Action.RETRY_ONCE),
        (UpstreamTimeoutError("stall"), Action.RETRY_ONCE),
        (OverloadedError("busy"), Action.RETRY_ONCE),
        (InvalidRequestError("Unsupported parameter: x"), Action.FAIL),
        (RequestTooLargeError("too long", code="context_length_exceeded"), Action.FAIL),
        (PermissionDeniedError("cloudflare"), Action.FAIL),
    ],
)
def test_each_failure_has_its_action(error: GatewayError, action: Action) -> None:
    assert failover.classify(error) is action


def test_a_usage_limit_resets_after_its_retry_delay() -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    error = RateLimitError("limit", code="usage_limit_reached", retry_after=600)

    assert failover.resets_at(error, now) == now + timedelta(seconds=600)
    assert failover.resets_at(RateLimitError("limit"), now) is None


def test_with_nothing_tried_the_pools_verdict_is_reported() -> None:
    no_account = AuthenticationError("no account")

    assert failover.exhausted(no_account, []) is no_account


def test_an_exhausted_pool_reports_the_earliest_reset_of_the_limits_seen() -> None:
    failures = [
        RateLimitError("a", code="usage_limit_reached", retry_after=7200),
        UpstreamError("b failed"),
        RateLimitError("c", code="usage_limit_reached", retry_after=600),
    ]

    error = failover.exhausted(AuthenticationError("nobody left"), failures)

    assert isinstance(error, RateLimitError)
    assert error.retry_after == 600


def test_an_exhausted_pool_after_refusals_says_the_accounts_were_refused() -> None:
    refused = AuthenticationError("Unauthorized", code="token_expired")

    error = failover.exhausted(AuthenticationError("nobody left"), [refused])

    assert isinstance(error, AuthenticationError)
    assert "refused every account" in error.message
    assert "Unauthorized" in error.message
    assert error.code == "token_expired"


def test_an_exhausted_pool_otherwise_reports_the_last_upstream_failure() -> None:
    last = UpstreamError("b failed")

    assert failover.exhausted(AuthenticationError("nobody left"), [UpstreamError("a failed"), last]) is last


# --- the provider over a mock transport --------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


class Trickle(httpx.AsyncByteStream):
    """A response body: ``frames``, then optionally silence for ``hang`` seconds."""

    def __init__(self, frames: list[bytes], *, hang: float = 0.0) -> None:
        self.frames = frames
        self.hang = hang

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self.frames:
            yield frame
        if self.hang:
            await anyio.sleep(self.hang)


def frames(body: dict[str, object], *, failed: str | None = None) -> list[bytes]:
    items = () if failed else (Reasoning(), OutputMessage("Hello!"))
    ending = Failed(failed) if failed else Completed()
    events = build_events(items, ending, model="gpt-5.5", request=body)
    return [encode_json_event(payload, event=name) for name, payload in events]


def models_response() -> httpx.Response:
    return httpx.Response(200, json={"models": []})


def provider_with(
    handler: Handler, pool: FakeLeasePool, *, idle_timeout: float = 300.0
) -> tuple[CodexProvider[FakeLease], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/codex/models"):
            return models_response()
        seen.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return CodexProvider(CodexSettings(idle_timeout=idle_timeout), pool, client), seen


def request_for(prompt: str = "hi") -> Request:
    return Request(
        model="claude-opus-4-8", messages=(Message(role="user", content=(TextPart(text=prompt),)),)
    )


CTX = RequestContext(requested_model="claude-opus-4-8", upstream_model="gpt-5.5", session_id="session-1")


async def collect(provider: CodexProvider[FakeLease], request: Request | None = None) -> list[StreamEvent]:
    events = provider.stream(request or request_for(), CTX)
    try:
        return [event async for event in events]
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def test_the_provider_implements_the_provider_protocol() -> None:
    provider, _ = provider_with(lambda _: httpx.Response(500), FakeLeasePool([A]))

    assert isinstance(provider, Provider)
    assert provider.name == "codex"


async def test_the_body_is_the_rendered_request_with_the_session_as_cache_key() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        return httpx.Response(200, stream=Trickle(frames(body)))

    provider, seen = provider_with(answer, FakeLeasePool([A]))
    await collect(provider)

    body = orjson.loads(seen[0].content)
    assert body["prompt_cache_key"] == "session-1"
    assert body["model"] == "gpt-5.5"
    assert body["input"][0]["content"] == [{"type": "input_text", "text": "hi"}]


async def test_a_failure_in_band_before_any_content_is_answered_by_another_account() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        limited = request.headers["chatgpt-account-id"] == "acct-a"
        code = "usage_limit_reached" if limited else None
        return httpx.Response(200, stream=Trickle(frames(body, failed=code)))

    pool = FakeLeasePool([A, B])
    provider, seen = provider_with(answer, pool)
    events = await collect(provider)

    assert isinstance(events[0], MessageStart)
    assert isinstance(events[-1], MessageStop)
    assert [r.headers["chatgpt-account-id"] for r in seen] == ["acct-a", "acct-b"]
    assert [email for email, _, _ in pool.limited] == ["a@example.com"]


async def test_nothing_is_yielded_until_the_answer_has_content() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        created = frames(orjson.loads(request.content))[:2]  # response.created, response.in_progress
        return httpx.Response(200, stream=Trickle(created, hang=5))

    provider, _ = provider_with(answer, FakeLeasePool([A]), idle_timeout=0.2)

    with pytest.raises(UpstreamTimeoutError):
        await collect(provider)


async def test_a_stall_before_content_is_retried_once_on_another_account() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        if request.headers["chatgpt-account-id"] == "acct-a":
            return httpx.Response(200, stream=Trickle(frames(body)[:2], hang=5))
        return httpx.Response(200, stream=Trickle(frames(body)))

    provider, seen = provider_with(answer, FakeLeasePool([A, B]), idle_timeout=0.2)
    events = await collect(provider)

    assert isinstance(events[-1], MessageStop)
    assert any(isinstance(event, PartStart) for event in events)
    assert len(seen) == 2


async def test_a_429_without_a_usage_limit_is_a_rate_limit_with_its_delay() -> None:
    body = {
        "error": {"type": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 2s."}
    }

    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json=body, headers={"retry-after": "2"})

    provider, seen = provider_with(answer, FakeLeasePool([A, B]))
    with pytest.raises(RateLimitError) as caught:
        await collect(provider)

    assert caught.value.retry_after == 2
    assert len(seen) == 2, "retried once on the other account"


async def test_a_plan_without_codex_moves_on_and_is_reported_when_nobody_is_left() -> None:
    body = {"error": {"type": "usage_not_included", "message": "Your plan does not include Codex."}}
    provider, seen = provider_with(lambda _: httpx.Response(429, json=body), FakeLeasePool([A, B]))

    with pytest.raises(BillingError):
        await collect(provider)

    assert len(seen) == 2


async def test_no_account_at_all_fails_at_once_with_authentication() -> None:
    provider, seen = provider_with(lambda _: httpx.Response(500), FakeLeasePool([]))

    with pytest.raises(AuthenticationError):
        await collect(provider)

    assert seen == []


async def test_failed_attempts_are_recorded_as_errors_of_their_account() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["chatgpt-account-id"] == "acct-a":
            return httpx.Response(500, json={"error": {"code": "server_error", "message": "boom"}})
        return httpx.Response(200, stream=Trickle(frames(orjson.loads(request.content))))

    pool = FakeLeasePool([A, B])
    provider, _ = provider_with(answer, pool)
    await collect(provider)

    assert [(record.email, record.error) for record in pool.usage] == [
        ("a@example.com", True),
        ("b@example.com", False),
    ]


async def test_count_tokens_sends_nothing_upstream() -> None:
    provider, seen = provider_with(lambda _: httpx.Response(500), FakeLeasePool([A]))

    tokens = await provider.count_tokens(request_for("hello there"), CTX)

    assert tokens > 0
    assert seen == []


async def test_aclose_closes_the_pool_and_the_client() -> None:
    pool = FakeLeasePool([A])
    provider, _ = provider_with(lambda _: httpx.Response(500), pool)

    await provider.aclose()

    assert pool.closed
    assert provider._http.is_closed
