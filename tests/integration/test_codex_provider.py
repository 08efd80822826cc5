"""The Codex provider against the fake Codex backend (a real HTTP server on 127.0.0.1).

The fake enforces the backend's rules (a body it would refuse gets the real 400 ``detail``, a token
it does not know gets the recorded 401), so every answer here proves the provider spoke the protocol.
Accounts come from a small lease pool (tests/codex_lease_pool.py) that records what the provider
told it; the same scenarios with the real account pool are at the end of the file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

from gateway_core.errors import (
    AuthenticationError,
    InvalidRequestError,
    OverloadedError,
    RateLimitError,
    RequestTooLargeError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gateway_core.formats import anthropic
from gateway_core.gateway import Gateway
from gateway_core.models import Message, Request, TextPart, Thinking
from gateway_core.provider import RequestContext
from gateway_core.session import session_key
from gateway_core.streaming import (
    ErrorEvent,
    MessageDelta,
    MessageStart,
    MessageStop,
    PartStart,
    StreamEvent,
    accumulate,
)
from gateway_providers.codex.config import CodexSettings
from gateway_providers.codex.models import FALLBACK_MODELS
from gateway_providers.codex.provider import CodexProvider
from gateway_providers.codex.tokens import count_body_tokens
from gateway_providers.codex.transport import create_http_client
from tests.codex_lease_pool import FakeLease, FakeLeasePool
from tests.fakes import (
    Account,
    Completed,
    Failed,
    FakeCodex,
    Reasoning,
    StreamReply,
    bad_request,
    cut,
    model_info,
    overloaded,
    reasoning_text,
    run_fake_codex,
    server_error,
    text,
    tool_call,
)
from tests.fakes.codex_answers import SSE_CONTENT_TYPE, CodexCall
from tests.fakes.responses_stream import Message as OutputMessage
from tests.fakes.responses_stream import build_events, encode_events
from tests.fixtures import fixture_files, fixture_path, load_json

pytestmark = pytest.mark.anyio

CAPTURES = [
    path
    for path in fixture_files("claude_code", "cc*_request.json")
    if path.name.startswith(("cc332_", "cc_"))
]


@pytest.fixture
async def codex() -> AsyncIterator[FakeCodex]:
    async with run_fake_codex() as fake:
        yield fake


def lease_of(account: Account) -> FakeLease:
    return FakeLease(account.email, account.account_id, account.access_token)


@asynccontextmanager
async def codex_provider(
    codex: FakeCodex,
    accounts: Sequence[Account],
    *,
    pool: FakeLeasePool | None = None,
    base_url: str | None = None,
    connect_timeout: float = 10.0,
    first_event_timeout: float = 120.0,
    idle_timeout: float = 300.0,
) -> AsyncIterator[tuple[CodexProvider[FakeLease], FakeLeasePool]]:
    settings = CodexSettings(
        base_url=base_url or codex.base_url,
        connect_timeout=connect_timeout,
        first_event_timeout=first_event_timeout,
        idle_timeout=idle_timeout,
    )
    pool = pool if pool is not None else FakeLeasePool([lease_of(a) for a in accounts])
    provider = CodexProvider(settings, pool, create_http_client(settings))
    try:
        yield provider, pool
    finally:
        await provider.aclose()


def user_request(prompt: str = "hi", *, model: str = "claude-opus-4-8", **fields: Any) -> Request:
    return Request(model=model, messages=(Message(role="user", content=(TextPart(text=prompt),)),), **fields)


def context(request: Request, *, session_id: str | None = "session-1", **fields: Any) -> RequestContext:
    return RequestContext(
        requested_model=request.model, upstream_model="gpt-5.5", session_id=session_id, **fields
    )


async def collect(
    provider: CodexProvider[FakeLease], request: Request, ctx: RequestContext
) -> list[StreamEvent]:
    events = provider.stream(request, ctx)
    try:
        return [event async for event in events]
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def accounts_called(codex: FakeCodex) -> list[str | None]:
    return [call.header("chatgpt-account-id") for call in codex.responses_calls()]


def capture(path: Path) -> tuple[dict[str, str], Request]:
    """A Claude Code capture: its headers (lower-case names) and its body, parsed as the server would."""
    recorded = load_json(path)
    headers = {name.lower(): value for name, value in recorded["headers"].items()}
    count = recorded["path"].endswith("/count_tokens")
    parse = anthropic.parse_count_tokens_request if count else anthropic.parse_request
    return headers, parse(recorded["body"])


# --- Claude Code traffic ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.name.removesuffix("_request.json"))
async def test_every_claude_code_capture_is_accepted_and_answered(codex: FakeCodex, path: Path) -> None:
    headers, request = capture(path)
    account = codex.add_account("a@example.com")
    ctx = context(request, session_id=session_key(headers, request), effort="medium")

    async with codex_provider(codex, [account]) as (provider, _):
        response = accumulate(await collect(provider, request, ctx))

    (call,) = codex.responses_calls()
    assert call.body["model"] == "gpt-5.5"
    assert call.body["stream"] is True
    assert call.body["store"] is False
    assert response.model == request.model
    assert response.content, "the recorded answer has text"


@pytest.mark.parametrize("path", CAPTURES[:3], ids=lambda path: path.name.removesuffix("_request.json"))
async def test_the_backend_sees_the_account_the_codex_cli_identity_and_the_session(
    codex: FakeCodex, path: Path
) -> None:
    headers, request = capture(path)
    account = codex.add_account("a@example.com")
    session = session_key(headers, request)

    async with codex_provider(codex, [account]) as (provider, _):
        await collect(provider, request, context(request, session_id=session))

    (call,) = codex.responses_calls()
    assert session is not None
    assert call.header("authorization") == f"Bearer {account.access_token}"
    assert call.header("chatgpt-account-id") == account.account_id
    assert call.header("originator") == "codex_cli_rs"
    assert (call.header("user-agent") or "").startswith("codex_cli_rs/")
    assert call.header("accept") == "text/event-stream"
    assert call.header("session_id") == session
    assert call.body["prompt_cache_key"] == session
    assert headers["x-claude-code-session-id"] == session


async def test_the_clients_credentials_and_betas_never_reach_the_backend(codex: FakeCodex) -> None:
    headers, request = capture(CAPTURES[0])
    account = codex.add_account("a@example.com")
    ctx = context(request, headers={"anthropic-beta": headers["anthropic-beta"], "x-app": "cli"})

    async with codex_provider(codex, [account]) as (provider, _):
        await collect(provider, request, ctx)

    sent = codex.responses_calls()[0].headers
    assert "x-api-key" not in sent
    assert "anthropic-beta" not in sent
    assert "x-app" not in sent
    assert headers["x-api-key"] not in str(sent)


async def test_the_streamed_answer_accumulates_to_the_complete_answer(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    answer = reasoning_text(("**Plan**", "then act"), "Done.", encrypted_content="gAAAA-token")
    codex.script(answer, times=2)

    async with codex_provider(codex, [account]) as (provider, _):
        gateway = Gateway([provider])
        async with await gateway.stream(user_request()) as stream:
            streamed = accumulate([event async for event in stream])
        completed = await gateway.complete(user_request())

    assert completed.model_copy(update={"id": streamed.id}) == streamed
    assert [part.type for part in streamed.content] == ["reasoning", "text"]


async def test_a_tool_call_comes_back_with_the_clients_tool_name(codex: FakeCodex) -> None:
    _, request = capture(fixture_path("claude_code/cc332_tool_read_turn1_request.json"))
    account = codex.add_account("a@example.com")
    codex.script(tool_call("Read", {"file_path": "/tmp/x"}, call_id="call_abc"))

    async with codex_provider(codex, [account]) as (provider, _):
        response = accumulate(await collect(provider, request, context(request)))

    (call,) = [part for part in response.content if part.type == "tool_call"]
    assert (call.name, call.arguments, response.stop_reason) == ("Read", {"file_path": "/tmp/x"}, "tool_use")


async def test_usage_is_recorded_for_the_account_after_the_answer(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")

    async with codex_provider(codex, [account]) as (provider, pool):
        events = await collect(provider, user_request(), context(user_request()))

    final = [event for event in events if isinstance(event, MessageDelta)][-1]
    (record,) = pool.usage
    assert (record.email, record.model, record.error) == ("a@example.com", "gpt-5.5", False)
    assert record.usage == final.usage
    assert record.usage is not None
    assert record.usage.output_tokens > 0
    assert record.latency_ms > 0


async def test_every_answer_shows_its_headers_to_the_pool(codex: FakeCodex) -> None:
    a, b = codex.add_account("a@example.com"), codex.add_account("b@example.com")
    codex.exhaust(a.account_id)

    async with codex_provider(codex, [a, b]) as (provider, pool):
        await collect(provider, user_request(), context(user_request()))

    assert [email for email, _ in pool.observed] == ["a@example.com", "b@example.com"]
    assert pool.statuses == [429, 200]
    assert all("x-codex-primary-used-percent" in headers for headers in pool.headers_seen())


# --- efforts and the context window ------------------------------------------------------------------


async def test_disabled_thinking_asks_for_the_lowest_effort_the_model_accepts(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    request = user_request(thinking=Thinking(type="disabled"))

    async with codex_provider(codex, [account]) as (provider, _):
        await collect(provider, request, context(request))
        codex.set_models([model_info("gpt-5.5", efforts=("none", "low", "medium", "high"))])
        provider.catalog.forget(account.email)
        await collect(provider, request, context(request))

    efforts = [call.body["reasoning"]["effort"] for call in codex.responses_calls()]
    assert efforts == ["low", "none"]


async def test_xhigh_becomes_high_on_a_model_without_it(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.set_models([model_info("gpt-5.5", efforts=("low", "medium", "high"))])
    request = user_request(effort="xhigh")

    async with codex_provider(codex, [account]) as (provider, _):
        await collect(provider, request, context(request))

    assert codex.responses_calls()[0].body["reasoning"]["effort"] == "high"


async def test_a_request_over_the_context_window_is_refused_before_it_is_sent(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.set_models([model_info("gpt-5.5", context_window=1_000)])
    request = user_request("lorem ipsum dolor " * 600)

    async with codex_provider(codex, [account]) as (provider, _):
        with pytest.raises(RequestTooLargeError) as caught:
            await collect(provider, request, context(request))

    assert caught.value.status == 413
    assert "1,000" in caught.value.message
    assert codex.responses_calls() == []


async def test_a_request_within_the_context_window_is_sent(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.set_models([model_info("gpt-5.5", context_window=5_000)])
    request = user_request("lorem ipsum dolor " * 600)

    async with codex_provider(codex, [account]) as (provider, _):
        await collect(provider, request, context(request))

    assert len(codex.responses_calls()) == 1


# --- upstream failures before the answer starts ---------------------------------------------------------


async def test_a_400_detail_is_an_invalid_request_with_the_upstream_text(codex: FakeCodex) -> None:
    a, b = codex.add_account("a@example.com"), codex.add_account("b@example.com")
    codex.script(bad_request("Unsupported parameter: temperature"))

    async with codex_provider(codex, [a, b]) as (provider, _):
        with pytest.raises(InvalidRequestError) as caught:
            await collect(provider, user_request(), context(user_request()))

    assert caught.value.message == "Unsupported parameter: temperature"
    assert len(codex.responses_calls()) == 1, "a bad request is not retried on another account"


async def test_a_401_refreshes_the_token_once_and_retries(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.registry.revoke(account.access_token)
    fresh = codex.registry.issue_access_token(account.identity)
    pool = FakeLeasePool(
        [lease_of(account)], refresher=lambda lease: FakeLease(lease.email, lease.account_id, fresh)
    )

    async with codex_provider(codex, [account], pool=pool) as (provider, _):
        events = await collect(provider, user_request(), context(user_request()))

    assert isinstance(events[-1], MessageStop)
    assert pool.refreshes == ["a@example.com"]
    tokens = [call.header("authorization") for call in codex.responses_calls()]
    assert tokens == [f"Bearer {account.access_token}", f"Bearer {fresh}"]


async def test_a_second_401_marks_the_account_invalid_and_moves_on(codex: FakeCodex) -> None:
    a, b = codex.add_account("a@example.com"), codex.add_account("b@example.com")
    codex.registry.revoke(a.access_token)
    pool = FakeLeasePool(
        [lease_of(a), lease_of(b)],
        refresher=lambda lease: FakeLease(lease.email, lease.account_id, "still-not-a-valid-token"),
    )

    async with codex_provider(codex, [a, b], pool=pool) as (provider, _):
        events = await collect(provider, user_request(), context(user_request()))

    assert isinstance(events[-1], MessageStop)
    assert "a@example.com" in pool.invalid
    assert [call.header("chatgpt-account-id") for call in codex.responses_calls()] == [
        a.account_id,
        a.account_id,
        b.account_id,
    ]


async def test_unauthorized_on_every_account_is_an_authentication_error(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.registry.revoke(account.access_token)

    async with codex_provider(codex, [account]) as (provider, pool):
        with pytest.raises(AuthenticationError):
            await collect(provider, user_request(), context(user_request()))

    assert pool.refreshes == ["a@example.com"]
    assert "a@example.com" in pool.invalid


async def test_a_usage_limit_moves_to_the_next_account_before_any_event(codex: FakeCodex) -> None:
    a, b = codex.add_account("a@example.com"), codex.add_account("b@example.com")
    codex.exhaust(a.account_id, resets_in_seconds=3600)

    async with codex_provider(codex, [a, b]) as (provider, pool):
        events = await collect(provider, user_request(), context(user_request()))

    assert isinstance(events[0], MessageStart)
    assert isinstance(events[-1], MessageStop)
    assert not any(isinstance(event, ErrorEvent) for event in events)
    ((email, resets_at, _),) = pool.limited
    assert email == "a@example.com"
    assert resets_at is not None
    assert 3500 < resets_at.timestamp() - time.time() <= 3602
    assert [call.header("chatgpt-account-id") for call in codex.responses_calls()] == [
        a.account_id,
        b.account_id,
    ]


async def test_every_account_limited_is_a_rate_limit_with_the_earliest_reset(codex: FakeCodex) -> None:
    a, b = codex.add_account("a@example.com"), codex.add_account("b@example.com")
    codex.exhaust(a.account_id, resets_in_seconds=7200)
    codex.exhaust(b.account_id, resets_in_seconds=600)

    async with codex_provider(codex, [a, b]) as (provider, _):
        with pytest.raises(RateLimitError) as caught:
            await collect(provider, user_request(), context(user_request()))

    assert caught.value.retry_after is not None
    assert 550 < caught.value.retry_after <= 602


async def test_a_server_error_is_retried_once_on_another_account(codex: FakeCodex) -> None:
    a, b = codex.add_account("a@example.com"), codex.add_account("b@example.com")
    codex.script(server_error(500), account=a.account_id)

    async with codex_provider(codex, [a, b]) as (provider, _):
        events = await collect(provider, user_request(), context(user_request()))

    assert isinstance(events[-1], MessageStop)
    assert [call.header("chatgpt-account-id") for call in codex.responses_calls()] == [
        a.account_id,
        b.account_id,
    ]


async def test_a_second_server_error_is_reported_as_an_upstream_failure(codex: FakeCodex) -> None:
    a, b, c = (codex.add_account(f"{name}@example.com") for name in "abc")
    codex.script(server_error(502), times=3)

    async with codex_provider(codex, [a, b, c]) as (provider, _):
        with pytest.raises(UpstreamError) as caught:
            await collect(provider, user_request(), context(user_request()))

    assert caught.value.status == 502
    assert len(codex.responses_calls()) == 2


async def test_an_overloaded_backend_is_reported_as_overloaded(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.script(overloaded())

    async with codex_provider(codex, [account]) as (provider, _):
        with pytest.raises(OverloadedError):
            await collect(provider, user_request(), context(user_request()))


async def test_an_in_band_failure_before_any_content_moves_to_another_account(codex: FakeCodex) -> None:
    a, b = codex.add_account("a@example.com"), codex.add_account("b@example.com")
    codex.script(StreamReply(items=(), ending=Failed("server_error")), account=a.account_id)

    async with codex_provider(codex, [a, b]) as (provider, _):
        events = await collect(provider, user_request(), context(user_request()))

    assert isinstance(events[-1], MessageStop)
    assert len(codex.responses_calls()) == 2


async def test_an_unreachable_backend_is_an_upstream_failure(codex: FakeCodex) -> None:
    a, b = codex.add_account("a@example.com"), codex.add_account("b@example.com")
    closed_port = "http://127.0.0.1:9/backend-api"

    async with codex_provider(codex, [a, b], base_url=closed_port, connect_timeout=2.0) as (provider, pool):
        with pytest.raises(UpstreamError):
            await collect(provider, user_request(), context(user_request()))

    assert pool.acquired == ["a@example.com", "b@example.com"]


# --- stalls and cuts -----------------------------------------------------------------------------------


async def test_no_first_event_in_time_is_an_upstream_timeout(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.script(text("late", delay_first_event=5.0))

    started = time.monotonic()
    async with codex_provider(codex, [account], first_event_timeout=0.4) as (provider, _):
        with pytest.raises(UpstreamTimeoutError) as caught:
            await collect(provider, user_request(), context(user_request()))

    assert caught.value.status == 504
    assert time.monotonic() - started < 3.0


async def test_no_answer_headers_in_time_is_an_upstream_timeout(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.script(text("late", delay_headers=5.0))

    async with codex_provider(codex, [account], first_event_timeout=0.4) as (provider, _):
        with pytest.raises(UpstreamTimeoutError):
            await collect(provider, user_request(), context(user_request()))


class StallAfterContent:
    """Streams the answer's first ``events`` events, then keeps the connection open, sending only
    keep-alive comments, and notes when the client goes away."""

    def __init__(self, events: int = 4, *, keepalive: float = 0.05) -> None:
        self.events = events
        self.keepalive = keepalive
        self.disconnected = asyncio.Event()

    async def respond(self, call: CodexCall) -> web.StreamResponse:
        items = (Reasoning(), OutputMessage("a long answer"))
        frames = encode_events(build_events(items, Completed(), model=call.model, request=call.body))
        response = web.StreamResponse(status=200, headers={"content-type": SSE_CONTENT_TYPE})
        await response.prepare(call.request)
        try:
            for frame in frames[: self.events]:
                await response.write(frame)
            for _ in range(400):
                await asyncio.sleep(self.keepalive)
                await response.write(b": keep-alive\n\n")
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response


async def test_a_stream_that_goes_idle_ends_with_an_in_band_timeout(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.script(StallAfterContent())

    async with codex_provider(codex, [account], idle_timeout=0.3) as (provider, pool):
        events = await collect(provider, user_request(), context(user_request()))

    assert any(isinstance(event, PartStart) for event in events)
    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, UpstreamTimeoutError)
    assert pool.usage[-1].error is True


async def test_a_stream_cut_before_completion_ends_with_an_error_event(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.script(cut("Hello, this answer is"))

    async with codex_provider(codex, [account]) as (provider, _):
        events = await collect(provider, user_request(), context(user_request()))

    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, UpstreamError)
    assert not any(isinstance(event, MessageStop) for event in events)


async def test_a_dropped_connection_ends_with_an_error_event(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.script(text("a reply whose connection drops", cut_after=8, abort=True))

    async with codex_provider(codex, [account]) as (provider, _):
        events = await collect(provider, user_request(), context(user_request()))

    assert isinstance(events[-1], ErrorEvent)


async def test_a_client_that_goes_away_closes_the_upstream_connection(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    answer = StallAfterContent()
    codex.script(answer)

    async with codex_provider(codex, [account]) as (provider, pool):
        gateway = Gateway([provider])
        stream = await gateway.stream(user_request())
        first = await stream.__anext__()
        await stream.aclose()
        with anyio.fail_after(3):
            await answer.disconnected.wait()

    assert isinstance(first, MessageStart)
    assert pool.usage[-1].error is True


async def test_a_cancelled_consumer_closes_the_upstream_connection(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    answer = StallAfterContent()
    codex.script(answer)

    async with codex_provider(codex, [account]) as (provider, _):
        gateway = Gateway([provider])
        with anyio.move_on_after(0.3):
            async with await gateway.stream(user_request()) as stream:
                async for _ in stream:
                    pass
        with anyio.fail_after(3):
            await answer.disconnected.wait()


# --- tokens and models -----------------------------------------------------------------------------------


async def test_count_tokens_counts_the_translated_request_offline(
    codex: FakeCodex,
) -> None:
    _, request = capture(CAPTURES[0])
    account = codex.add_account("a@example.com")

    async with codex_provider(codex, [account]) as (provider, _):
        tokens = await provider.count_tokens(request, context(request))
        await collect(provider, request, context(request))

    assert tokens == await count_body_tokens(codex.responses_calls()[0].body)
    assert tokens > 1_000
    assert len(codex.requests) == 2, "one model list and one answer: counting sent nothing"


async def test_models_come_from_the_backend_best_first(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.set_models(
        [
            model_info("gpt-5.4-mini", priority=3, context_window=128_000),
            model_info("gpt-5.5", priority=1),
            model_info("codex-auto-review", priority=0, visibility="hide"),
        ]
    )

    async with codex_provider(codex, [account]) as (provider, _):
        models = await provider.models()

    assert [(m.id, m.context_window) for m in models] == [("gpt-5.5", 272_000), ("gpt-5.4-mini", 128_000)]
    (call,) = codex.requests_to("/codex/models")
    assert call.query["client_version"]
    assert call.header("chatgpt-account-id") == account.account_id


async def test_models_are_cached(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")

    async with codex_provider(codex, [account]) as (provider, _):
        await provider.models()
        await provider.models()
        await collect(provider, user_request(), context(user_request()))

    assert len(codex.requests_to("/codex/models")) == 1


async def test_models_fall_back_without_an_account(codex: FakeCodex) -> None:
    async with codex_provider(codex, []) as (provider, _):
        models = await provider.models()

    assert [m.id for m in models] == [m.slug for m in FALLBACK_MODELS]
    assert codex.requests == []


async def test_models_fall_back_when_the_backend_fails(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.script(server_error(500), endpoint="models")

    async with codex_provider(codex, [account]) as (provider, _):
        models = await provider.models()

    assert [m.id for m in models] == [m.slug for m in FALLBACK_MODELS]


async def test_models_fall_back_when_the_backend_is_unreachable(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")

    async with codex_provider(codex, [account], base_url="http://127.0.0.1:9/backend-api") as (provider, _):
        models = await provider.models()

    assert [m.id for m in models] == [m.slug for m in FALLBACK_MODELS]
