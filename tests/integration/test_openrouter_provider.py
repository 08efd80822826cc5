"""The ``kilo`` provider against the fake Kilo gateway (a real HTTP server on 127.0.0.1).

The fake enforces Kilo's rules (``:free`` models keyless, other models only with a known bearer key,
unknown ids a flat 404) and answers in OpenRouter's stream dialect (processing comments, reasoning
deltas with ``reasoning_details``, ``functions.<name>:<n>`` tool-call ids, usage with ``cost`` on the
last choice chunk), so every answer here proves the provider spoke the protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import orjson
import pytest
from aiohttp import web

from gateway_core.errors import (
    AuthenticationError,
    BillingError,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gateway_core.formats import anthropic
from gateway_core.gateway import Gateway
from gateway_core.models import (
    Message,
    ReasoningPart,
    TextPart,
    Thinking,
    Tool,
    ToolCallPart,
    ToolResultPart,
)
from gateway_core.plugins import PluginError, Plugins, create_plugin_manager
from gateway_core.settings import Settings
from gateway_core.store import MemoryStore
from gateway_core.streaming import (
    ErrorEvent,
    MessageDelta,
    MessageStart,
    MessageStop,
    PartStart,
    accumulate,
)
from gateway_providers.openrouter.models import FALLBACK_MODELS
from gateway_providers.openrouter.provider import OpenRouterProvider
from gateway_providers.openrouter.tokens import estimate_body_tokens
from tests.fakes import (
    ChatUsage,
    FakeKilo,
    chat_text,
    chat_tool_call,
    kilo_rate_limited,
    model_entry,
    openrouter_error,
    payment_required,
    run_fake_kilo,
    service_unavailable,
)
from tests.fakes.chat_stream import PROCESSING, ChatContent, encode_chunk, new_context, stream_chunks
from tests.fakes.kilo import DEFAULT_KEY, ChatCall
from tests.fixtures import fixture_files, load_json
from tests.integration._kilo_support import (
    FREE,
    HAIKU,
    PAID,
    ask,
    chat_calls,
    collect,
    context,
    kilo_provider,
)

pytestmark = pytest.mark.anyio


HAIKU_CAPTURES = [path for path in fixture_files("claude_code", "cc*_request.json") if "haiku" in path.name]


@pytest.fixture
async def kilo() -> AsyncIterator[FakeKilo]:
    async with run_fake_kilo() as fake:
        yield fake


def read_tool() -> Tool:
    return Tool(
        name="Read",
        description="Read a file",
        input_schema={"type": "object", "properties": {"file_path": {"type": "string"}}},
    )


def only_body(kilo: FakeKilo) -> dict[str, Any]:
    (call,) = chat_calls(kilo)
    body: dict[str, Any] = call.body
    return body


# --- what reaches the gateway ------------------------------------------------------------------------


async def test_the_upstream_model_id_is_sent_verbatim_and_streamed_to_a_streaming_caller(
    kilo: FakeKilo,
) -> None:
    request = ask(stream=False)  # the caller's context decides, not the client's flag

    async with kilo_provider(kilo) as provider:
        await collect(provider, request, context(request))

    body = only_body(kilo)
    assert body["model"] == FREE
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_a_free_model_is_asked_for_without_a_key(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        await collect(provider, ask(), context(ask()))

    (call,) = chat_calls(kilo)
    assert call.header("authorization") is None


async def test_the_configured_key_is_sent_as_a_bearer(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo, RELAYGATE_HAIKU_API_KEY=DEFAULT_KEY) as provider:
        events = await collect(provider, ask(), context(ask(), upstream_model=PAID))

    (call,) = chat_calls(kilo)
    assert call.header("authorization") == f"Bearer {DEFAULT_KEY}"
    assert isinstance(events[-1], MessageStop)


async def test_requests_name_relaygate_and_nothing_of_the_client(kilo: FakeKilo) -> None:
    ctx = context(ask(), headers={"anthropic-beta": "context-1m-2025-08-07", "x-app": "cli"})

    async with kilo_provider(kilo) as provider:
        await collect(provider, ask(), ctx)

    (call,) = chat_calls(kilo)
    assert call.header("x-title") == "relaygate"
    assert call.header("anthropic-beta") is None
    assert call.header("x-app") is None


async def test_thinking_becomes_an_openrouter_reasoning_effort(kilo: FakeKilo) -> None:
    request = ask(thinking=Thinking(type="enabled", budget_tokens=4000), max_tokens=8000)

    async with kilo_provider(kilo) as provider:
        await collect(provider, request, context(request))

    assert only_body(kilo)["reasoning"] == {"effort": "medium"}


async def test_the_lane_effort_applies_when_the_request_names_none(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        await collect(provider, ask(), context(ask(), effort="low"))

    assert only_body(kilo)["reasoning"] == {"effort": "low"}


@pytest.mark.parametrize("path", HAIKU_CAPTURES, ids=lambda path: path.name.removesuffix("_request.json"))
async def test_claude_code_haiku_captures_become_valid_chat_requests(kilo: FakeKilo, path: Path) -> None:
    request = anthropic.parse_request(load_json(path)["body"])

    async with kilo_provider(kilo) as provider:
        events = await collect(provider, request, context(request))

    body = only_body(kilo)
    assert isinstance(events[-1], MessageStop)
    assert [tool["function"]["name"] for tool in body["tools"]] == [
        tool.name for tool in request.tools if not tool.defer_loading
    ]
    assert "metadata" not in body
    assert "user" not in body
    assert b"cache_control" not in orjson.dumps(body)
    assert b"x-anthropic-billing-header" not in orjson.dumps(body)


# --- answers -----------------------------------------------------------------------------------------


async def test_reasoning_and_text_come_back_as_thinking_and_text(kilo: FakeKilo) -> None:
    kilo.script(chat_text("Hello there!", reasoning="The user greets me."))

    async with kilo_provider(kilo) as provider:
        response = accumulate(await collect(provider, ask(), context(ask())))

    reasoning, text = response.content
    assert isinstance(reasoning, ReasoningPart)
    assert reasoning.text == "The user greets me."
    assert reasoning.provider == "kilo"
    assert reasoning.signature is not None
    assert text == TextPart(text="Hello there!")
    assert response.model == HAIKU
    assert response.stop_reason == "end_turn"


async def test_a_tool_call_comes_back_with_its_name_and_arguments(kilo: FakeKilo) -> None:
    kilo.script(chat_tool_call("Read", {"file_path": "/tmp/x"}, reasoning="I should read it."))
    request = ask("read /tmp/x", tools=(read_tool(),))

    async with kilo_provider(kilo) as provider:
        response = accumulate(await collect(provider, request, context(request)))

    call = response.content[-1]
    assert isinstance(call, ToolCallPart)
    assert (call.name, call.arguments) == ("Read", {"file_path": "/tmp/x"})
    assert call.id == "functions.Read:0"
    assert response.stop_reason == "tool_use"


async def test_usage_keeps_the_upstream_cost(kilo: FakeKilo) -> None:
    kilo.script(chat_text("ok", usage=ChatUsage(prompt_tokens=120, completion_tokens=7, cost=0.00042)))

    async with kilo_provider(kilo, RELAYGATE_HAIKU_API_KEY=DEFAULT_KEY) as provider:
        events = await collect(provider, ask(), context(ask(), upstream_model=PAID))

    (delta,) = [event for event in events if isinstance(event, MessageDelta)]
    assert delta.usage is not None
    assert (delta.usage.input_tokens, delta.usage.output_tokens) == (120, 7)
    assert delta.usage.cost == pytest.approx(0.00042)


async def test_reasoning_is_replayed_to_the_provider_that_minted_it_only(kilo: FakeKilo) -> None:
    kilo.script(chat_tool_call("Read", {"file_path": "/tmp/x"}, reasoning="Read it first."))
    first = ask("read /tmp/x", tools=(read_tool(),))

    async with kilo_provider(kilo) as provider:
        answer = accumulate(await collect(provider, first, context(first)))
        call = answer.content[-1]
        assert isinstance(call, ToolCallPart)
        result = ToolResultPart(tool_call_id=call.id, content=(TextPart(text="40 C"),))
        foreign = ReasoningPart(text="elsewhere", signature="opaque", provider="codex")
        turns = (
            *first.messages,
            Message(role="assistant", content=answer.content),
            Message(role="user", content=(result,)),
        )
        second = first.model_copy(update={"messages": turns})
        other = first.model_copy(
            update={
                "messages": (*first.messages, Message(role="assistant", content=(foreign, call)), turns[-1])
            }
        )
        await collect(provider, second, context(second))
        await collect(provider, other, context(other))

    replayed, dropped = (call.body["messages"][1] for call in chat_calls(kilo)[1:])
    assert replayed["reasoning_details"][0]["text"] == "Read it first."
    assert "reasoning_details" not in dropped


# --- failures before the first event: raised, so the lane can fall back --------------------------------


async def test_kilos_rate_limit_is_raised_with_its_retry_after(kilo: FakeKilo) -> None:
    kilo.script(kilo_rate_limited(retry_after=30))

    async with kilo_provider(kilo) as provider:
        with pytest.raises(RateLimitError) as caught:
            await collect(provider, ask(), context(ask()))

    assert caught.value.retry_after == 30
    assert "Rate limit exceeded" in caught.value.message


async def test_an_unavailable_gateway_is_overloaded(kilo: FakeKilo) -> None:
    kilo.script(service_unavailable())

    async with kilo_provider(kilo) as provider:
        with pytest.raises(OverloadedError):
            await collect(provider, ask(), context(ask()))


async def test_an_openrouter_upstream_failure_is_an_upstream_error(kilo: FakeKilo) -> None:
    kilo.script(openrouter_error(502, "Provider returned error", raw="upstream exploded"))

    async with kilo_provider(kilo) as provider:
        with pytest.raises(UpstreamError) as caught:
            await collect(provider, ask(), context(ask()))

    assert "Provider returned error" in caught.value.message


async def test_an_empty_balance_is_a_billing_error(kilo: FakeKilo) -> None:
    kilo.script(payment_required())

    async with kilo_provider(kilo, RELAYGATE_HAIKU_API_KEY=DEFAULT_KEY) as provider:
        with pytest.raises(BillingError) as caught:
            await collect(provider, ask(), context(ask(), upstream_model=PAID))

    assert "Credits Required" in caught.value.message


async def test_an_unknown_model_is_not_found_naming_it(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        with pytest.raises(NotFoundError) as caught:
            await collect(provider, ask(), context(ask(), upstream_model="nobody/nothing:free"))

    assert "nobody/nothing:free" in caught.value.message
    assert caught.value.param == "model"


async def test_an_unreachable_gateway_is_an_upstream_failure() -> None:
    async with kilo_provider(None, RELAYGATE_KILO_CONNECT_TIMEOUT="2") as provider:
        with pytest.raises(UpstreamError):
            await collect(provider, ask(), context(ask()))


async def test_an_error_chunk_before_any_content_is_raised(kilo: FakeKilo) -> None:
    kilo.script(chat_text("never", error_after=0, error_message="Provider disconnected unexpectedly"))

    async with kilo_provider(kilo) as provider:
        with pytest.raises(UpstreamError) as caught:
            await collect(provider, ask(), context(ask()))

    assert "Provider disconnected" in caught.value.message


class Frames:
    """Streams the given SSE frames as they are, then ends the body."""

    def __init__(self, *frames: bytes) -> None:
        self.frames = frames

    async def respond(self, call: ChatCall) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"content-type": "text/event-stream"})
        await response.prepare(call.request)
        for frame in self.frames:
            await response.write(frame)
        await response.write_eof()
        return response


async def test_a_failure_after_an_empty_first_chunk_is_still_raised(kilo: FakeKilo) -> None:
    # OpenRouter's first chunk often carries only the role: nothing is committed until content comes.
    ctx = new_context(FREE, "Chutes", 100, True)
    empty = {
        "id": ctx.generation_id,
        "model": FREE,
        "choices": [{"index": 0, "delta": {"role": "assistant"}}],
    }
    failure = {"error": {"code": 429, "message": "Rate limit exceeded upstream"}}
    kilo.script(Frames(PROCESSING, encode_chunk(empty), encode_chunk(failure)))

    async with kilo_provider(kilo) as provider:
        with pytest.raises(RateLimitError):
            await collect(provider, ask(), context(ask()))


async def test_a_stream_that_ends_before_any_content_is_raised(kilo: FakeKilo) -> None:
    kilo.script(Frames(PROCESSING))

    async with kilo_provider(kilo) as provider:
        with pytest.raises(UpstreamError):
            await collect(provider, ask(), context(ask()))


async def test_no_first_event_in_time_is_an_upstream_timeout(kilo: FakeKilo) -> None:
    kilo.script(chat_text("late", delay_first_chunk=5.0))

    started = time.monotonic()
    async with kilo_provider(kilo, RELAYGATE_KILO_FIRST_EVENT_TIMEOUT="0.4") as provider:
        with pytest.raises(UpstreamTimeoutError) as caught:
            await collect(provider, ask(), context(ask()))

    assert caught.value.status == 504
    assert time.monotonic() - started < 3.0


async def test_no_answer_headers_in_time_is_an_upstream_timeout(kilo: FakeKilo) -> None:
    kilo.script(chat_text("late", delay_headers=5.0))

    async with kilo_provider(kilo, RELAYGATE_KILO_FIRST_EVENT_TIMEOUT="0.4") as provider:
        with pytest.raises(UpstreamTimeoutError):
            await collect(provider, ask(), context(ask()))


# --- paid models and keys ------------------------------------------------------------------------------


async def test_a_paid_model_without_a_key_is_refused_before_it_is_sent(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        with pytest.raises(AuthenticationError) as caught:
            await collect(provider, ask(), context(ask(), upstream_model=PAID))

    assert "RELAYGATE_HAIKU_API_KEY" in caught.value.message
    assert PAID in caught.value.message
    assert chat_calls(kilo) == []


async def test_a_model_the_list_prices_at_zero_is_asked_for_without_a_key(kilo: FakeKilo) -> None:
    kilo.set_models([model_entry("kilo/free-model", prompt_price="0", completion_price="0")])
    kilo.free_models.add("kilo/free-model")

    async with kilo_provider(kilo) as provider:
        events = await collect(provider, ask(), context(ask(), upstream_model="kilo/free-model"))

    assert isinstance(events[-1], MessageStop)
    (call,) = chat_calls(kilo)
    assert call.header("authorization") is None


async def test_a_paid_model_refused_upstream_says_which_setting_to_fix() -> None:
    # The model list cannot be read, so the gateway decides, and answers OpenRouter's 401.
    async with KiloWithoutModels() as kilo, kilo_provider(kilo) as provider:
        with pytest.raises(AuthenticationError) as caught:
            await collect(provider, ask(), context(ask(), upstream_model=PAID))

    assert len(chat_calls(kilo)) == 1
    assert "RELAYGATE_HAIKU_API_KEY" in caught.value.message
    assert "No auth credentials found" in caught.value.message


async def test_a_refused_key_is_reported_as_the_configured_key(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo, RELAYGATE_HAIKU_API_KEY="sk-or-v1-wrong") as provider:
        with pytest.raises(AuthenticationError) as caught:
            await collect(provider, ask(), context(ask(), upstream_model=PAID))

    assert "refused the key in RELAYGATE_HAIKU_API_KEY" in caught.value.message
    assert "sk-or-v1-wrong" not in caught.value.message


class KiloWithoutModels(FakeKilo):
    """The fake gateway whose model list fails (an outage of ``/models`` only)."""

    async def _models_route(self, request: web.Request) -> web.Response:
        return web.Response(status=503, text="down")


# --- failures after the first event: in band -----------------------------------------------------------


async def test_an_error_chunk_after_content_ends_the_stream_in_band(kilo: FakeKilo) -> None:
    kilo.script(chat_text("one two three four five six", reasoning="think", error_after=4))

    async with kilo_provider(kilo) as provider:
        events = await collect(provider, ask(), context(ask()))

    assert any(isinstance(event, PartStart) for event in events)
    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, UpstreamError)
    assert not any(isinstance(event, MessageStop) for event in events)


async def test_a_stream_cut_before_its_end_ends_with_an_error_event(kilo: FakeKilo) -> None:
    kilo.script(chat_text("one two three four five six", cut_after=3))

    async with kilo_provider(kilo) as provider:
        events = await collect(provider, ask(), context(ask()))

    assert isinstance(events[-1], ErrorEvent)
    assert not any(isinstance(event, MessageStop) for event in events)


async def test_a_dropped_connection_ends_with_an_error_event(kilo: FakeKilo) -> None:
    kilo.script(chat_text("one two three four five six", cut_after=3, abort=True))

    async with kilo_provider(kilo) as provider:
        events = await collect(provider, ask(), context(ask()))

    assert isinstance(events[-1], ErrorEvent)


class StallAfterContent:
    """Streams the answer's first ``chunks`` chunks, then keeps the connection open with OpenRouter
    processing comments only, and notes when the client goes away."""

    def __init__(self, chunks: int = 3, *, keepalive: float = 0.05) -> None:
        self.chunks = chunks
        self.keepalive = keepalive
        self.disconnected = asyncio.Event()

    async def respond(self, call: ChatCall) -> web.StreamResponse:
        ctx = new_context(call.model, "Chutes", call.body_size, call.free)
        content = ChatContent(text="a long answer that never ends", reasoning="thinking")
        frames = [encode_chunk(chunk) for chunk in stream_chunks(content, ChatUsage(), ctx)]
        response = web.StreamResponse(status=200, headers={"content-type": "text/event-stream"})
        await response.prepare(call.request)
        try:
            for frame in frames[: self.chunks]:
                await response.write(frame)
            for _ in range(400):
                await asyncio.sleep(self.keepalive)
                await response.write(PROCESSING)
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response


async def test_a_stream_that_goes_idle_ends_with_an_in_band_timeout(kilo: FakeKilo) -> None:
    kilo.script(StallAfterContent())

    async with kilo_provider(kilo, RELAYGATE_KILO_IDLE_TIMEOUT="0.3") as provider:
        events = await collect(provider, ask(), context(ask()))

    assert any(isinstance(event, PartStart) for event in events)
    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, UpstreamTimeoutError)


async def test_a_client_that_goes_away_closes_the_upstream_connection(kilo: FakeKilo) -> None:
    answer = StallAfterContent()
    kilo.script(answer)

    async with kilo_provider(kilo) as provider:
        gateway = Gateway([provider])
        stream = await gateway.stream(ask(model=f"kilo/{FREE}"))
        first = await stream.__anext__()
        await stream.aclose()
        with anyio.fail_after(3):
            await answer.disconnected.wait()

    assert isinstance(first, MessageStart)


# --- a gateway that answers one JSON body ---------------------------------------------------------------


class JsonAnswer:
    """Answers a streamed request with a plain JSON body (a gateway that ignores ``stream:true``)."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body

    async def respond(self, call: ChatCall) -> web.StreamResponse:
        return web.Response(body=orjson.dumps(self.body), content_type="application/json")


async def test_a_json_answer_to_a_streamed_request_is_read_as_that_answer(kilo: FakeKilo) -> None:
    recorded = load_json("openrouter/openrouter_completion_tool_calls_kimi_k2.5.response.json")
    kilo.script(JsonAnswer(recorded))
    request = ask("weather?", tools=(Tool(name="weather", input_schema={"type": "object"}),))

    async with kilo_provider(kilo) as provider:
        events = await collect(provider, request, context(request))

    response = accumulate(events)
    assert isinstance(events[-1], MessageStop)
    assert response.stop_reason == "tool_use"
    call = response.content[-1]
    assert isinstance(call, ToolCallPart)
    assert call.name == "weather"


async def test_a_200_json_error_is_raised_before_any_event(kilo: FakeKilo) -> None:
    kilo.script(JsonAnswer({"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-min"}}))

    async with kilo_provider(kilo) as provider:
        with pytest.raises(RateLimitError):
            await collect(provider, ask(), context(ask()))


# --- models and tokens ------------------------------------------------------------------------------------


async def test_models_are_the_gateways_free_models_with_their_upstream_ids(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        models = await provider.models()

    assert [model.id for model in models] == ["moonshotai/kimi-k2.5:free", "minimax/minimax-m2.5:free"]
    kimi = models[0]
    assert (kimi.provider, kimi.display_name, kimi.context_window) == (
        "kilo",
        "MoonshotAI: Kimi K2.5 (free)",
        262_144,
    )


async def test_models_are_cached(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        await provider.models()
        await provider.models()

    assert len(kilo.requests_to("/models", "GET")) == 1


async def test_models_fall_back_when_the_gateway_is_unreachable() -> None:
    async with kilo_provider(None) as provider:
        models = await provider.models()

    assert [model.id for model in models] == [model.id for model in FALLBACK_MODELS]
    assert models[0].id == "moonshotai/kimi-k2.5:free"


async def test_models_fall_back_when_the_list_fails() -> None:
    async with KiloWithoutModels() as kilo, kilo_provider(kilo) as provider:
        models = await provider.models()

    assert {model.id for model in models} >= {"moonshotai/kimi-k2.5:free", "minimax/minimax-m2.5:free"}


async def test_gateway_models_list_kilos_free_models_under_the_provider_prefix(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        ids = [model.id for model in await Gateway([provider]).models()]

    assert "kilo/moonshotai/kimi-k2.5:free" in ids


async def test_count_tokens_estimates_the_translated_request_offline(kilo: FakeKilo) -> None:
    request = anthropic.parse_request(load_json(HAIKU_CAPTURES[0])["body"])

    async with kilo_provider(kilo) as provider:
        tokens = await provider.count_tokens(request, context(request))
        assert kilo.requests == []
        await collect(provider, request, context(request))

    assert tokens == await estimate_body_tokens(only_body(kilo))
    assert tokens > 1_000


# --- the plugin -------------------------------------------------------------------------------------------


async def test_the_entry_point_registers_the_kilo_provider(kilo: FakeKilo) -> None:
    settings = Settings({"RELAYGATE_KILO_BASE_URL": kilo.base_url})
    registry = Plugins(create_plugin_manager()).register_providers(settings, store=MemoryStore())

    provider = registry.providers["kilo"]
    assert isinstance(provider, OpenRouterProvider)
    assert registry.owner("kilo") == "kilo"
    assert provider.settings.base_url == kilo.base_url
    await registry.providers["codex"].aclose()  # type: ignore[attr-defined]
    await provider.aclose()


async def test_registering_does_no_io(kilo: FakeKilo) -> None:
    async with Gateway.from_plugins(settings={"RELAYGATE_KILO_BASE_URL": kilo.base_url}) as gateway:
        provider = gateway.providers["kilo"]
        assert isinstance(provider, OpenRouterProvider)
        session = provider._http._transport.client  # type: ignore[attr-defined]
        assert not isinstance(session, aiohttp.ClientSession), "no HTTP session opened"

    assert kilo.requests == []


async def test_closing_the_provider_closes_its_http_client(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        await collect(provider, ask(), context(ask()))
        http = provider._http
        assert not http.is_closed

    assert http.is_closed


async def test_the_provider_stays_registered_when_the_haiku_lane_is_off(kilo: FakeKilo) -> None:
    settings = {"RELAYGATE_KILO_BASE_URL": kilo.base_url, "RELAYGATE_HAIKU_LANE": "off"}
    async with Gateway.from_plugins(settings=settings) as gateway:
        route = gateway.route(f"kilo/{FREE}")
        haiku = gateway.route(HAIKU)

    assert (route.provider, route.upstream_model) == ("kilo", FREE)
    assert (haiku.provider, haiku.upstream_model) == ("codex", "gpt-5.4-mini")


async def test_an_invalid_setting_is_reported_against_the_plugin() -> None:
    with pytest.raises(PluginError, match="RELAYGATE_KILO_IDLE_TIMEOUT") as caught:
        Gateway.from_plugins(settings={"RELAYGATE_KILO_IDLE_TIMEOUT": "never"})

    assert caught.value.plugin == "kilo"
