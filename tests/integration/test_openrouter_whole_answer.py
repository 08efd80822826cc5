"""The ``kilo`` provider for a caller that reads only the whole answer (``RequestContext.streaming``
false: ``Gateway.complete``, a non-streaming client): one ``stream:false`` request, one JSON body.

Against the fake Kilo gateway on 127.0.0.1, answering the recorded OpenRouter bodies
(fixtures/openrouter, keep-alive whitespace included) or its own answers rendered both ways from one
script, so a streamed and a non-streamed request can be compared on the same answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import anyio
import orjson
import pytest
from aiohttp import web

from gateway_core.errors import (
    AuthenticationError,
    BillingError,
    GatewayError,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gateway_core.formats import openai_chat
from gateway_core.gateway import Gateway
from gateway_core.models import ReasoningPart, Request, Response, TextPart, Tool, ToolCallPart
from gateway_core.provider import RequestContext
from gateway_core.streaming import MessageStop, accumulate
from gateway_providers.openrouter.provider import OpenRouterProvider
from tests.fakes import (
    ChatUsage,
    FakeKilo,
    chat_text,
    chat_tool_call,
    kilo_rate_limited,
    openrouter_error,
    payment_required,
    run_fake_kilo,
    service_unavailable,
)
from tests.fakes.chat_stream import PROCESSING, ChatContent, encode_chunk, new_context, stream_chunks
from tests.fakes.kilo import DEFAULT_KEY, ChatAnswer, ChatCall
from tests.fixtures import fixture_path
from tests.integration._kilo_support import (
    FREE,
    HAIKU,
    PAID,
    ask,
    chat_calls,
    collect,
    kilo_provider,
)

pytestmark = pytest.mark.anyio

USAGE = ChatUsage(prompt_tokens=120, completion_tokens=40, reasoning_tokens=12, cost=0.00042)
"""Explicit usage: the fake would otherwise estimate it from the request's size, which differs by the
stream keys alone."""


@pytest.fixture
async def kilo() -> AsyncIterator[FakeKilo]:
    async with run_fake_kilo() as fake:
        yield fake


def whole(request: Request, upstream_model: str = FREE) -> RequestContext:
    """The context of a caller that reads only the whole answer."""
    return RequestContext(requested_model=request.model, upstream_model=upstream_model, streaming=False)


def streamed(request: Request, upstream_model: str = FREE) -> RequestContext:
    return RequestContext(requested_model=request.model, upstream_model=upstream_model)


async def answer(provider: OpenRouterProvider, request: Request, ctx: RequestContext) -> Response:
    return accumulate(await collect(provider, request, ctx))


def recorded_body(name: str) -> bytes:
    """A recorded non-streamed answer as it came off the wire: keep-alive whitespace, then the JSON."""
    return fixture_path(f"openrouter/{name}").read_bytes().split(b"\n", 1)[1]


class RawBody:
    """Answers with ``body`` as it is, as ``content_type``."""

    def __init__(self, body: bytes, content_type: str = "application/json") -> None:
        self.body = body
        self.content_type = content_type

    async def respond(self, call: ChatCall) -> web.StreamResponse:
        return web.Response(body=self.body, headers={"content-type": self.content_type})


def weather_tool() -> Tool:
    return Tool(
        name="weather", input_schema={"type": "object", "properties": {"location": {"type": "string"}}}
    )


# --- what reaches the gateway ------------------------------------------------------------------------


async def test_a_whole_answer_is_asked_for_with_stream_false(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        await collect(provider, ask(), whole(ask()))

    (call,) = chat_calls(kilo)
    assert call.body["stream"] is False
    assert "stream_options" not in call.body
    assert call.body["model"] == FREE
    assert call.body["usage"] == {"include": True}, "the answer's usage still carries its cost"
    assert call.header("accept") == "application/json"


async def test_the_request_is_the_streamed_one_but_for_the_stream_keys(kilo: FakeKilo) -> None:
    request = ask("weather in Paris?", tools=(weather_tool(),), max_tokens=512)

    async with kilo_provider(kilo) as provider:
        await collect(provider, request, streamed(request))
        await collect(provider, request, whole(request))

    streamed_body, whole_body = (call.body for call in chat_calls(kilo))
    assert streamed_body["stream"] is True
    drop = {"stream", "stream_options"}
    assert {k: v for k, v in whole_body.items() if k not in drop} == {
        k: v for k, v in streamed_body.items() if k not in drop
    }


async def test_a_paid_model_without_a_key_is_still_refused_before_it_is_sent(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        with pytest.raises(AuthenticationError) as caught:
            await collect(provider, ask(), whole(ask(), upstream_model=PAID))

    assert "RELAYGATE_HAIKU_API_KEY" in caught.value.message
    assert chat_calls(kilo) == []


async def test_a_paid_model_with_the_key_is_answered_whole(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo, RELAYGATE_HAIKU_API_KEY=DEFAULT_KEY) as provider:
        events = await collect(provider, ask(), whole(ask(), upstream_model=PAID))

    (call,) = chat_calls(kilo)
    assert call.header("authorization") == f"Bearer {DEFAULT_KEY}"
    assert call.body["stream"] is False
    assert isinstance(events[-1], MessageStop)


# --- answers: the recorded bodies, and the same answer both ways -----------------------------------------


async def test_a_recorded_padded_body_is_the_answer_with_reasoning_and_cost(kilo: FakeKilo) -> None:
    raw = recorded_body("openrouter_completion_simple_kimi_k2.5.response.json")
    assert raw[:1].isspace(), "the recording keeps OpenRouter's keep-alive whitespace"
    kilo.script(RawBody(raw))

    async with kilo_provider(kilo) as provider:
        events = await collect(provider, ask(), whole(ask()))

    response = accumulate(events)
    assert isinstance(events[-1], MessageStop)
    assert response == openai_chat.parse_response(orjson.loads(raw), provider="kilo", model=HAIKU)
    reasoning, text = response.content
    assert isinstance(reasoning, ReasoningPart)
    assert reasoning.text.startswith(" The user wants me to say")
    assert (reasoning.provider, bool(reasoning.signature)) == ("kilo", True)
    assert isinstance(text, TextPart)
    assert text.text.startswith(" Oi!")
    assert response.model == HAIKU
    assert response.stop_reason == "end_turn"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 202)
    assert response.usage.cost == pytest.approx(0.00045364)


async def test_a_recorded_tool_call_body_is_the_answer(kilo: FakeKilo) -> None:
    raw = recorded_body("openrouter_completion_tool_calls_kimi_k2.5.response.json")
    kilo.script(RawBody(raw))
    request = ask("weather in Florence?", tools=(weather_tool(),))

    async with kilo_provider(kilo) as provider:
        response = await answer(provider, request, whole(request))

    assert response == openai_chat.parse_response(orjson.loads(raw), provider="kilo", model=HAIKU)
    call = response.content[-1]
    assert isinstance(call, ToolCallPart)
    assert call.name == "weather"
    assert call.id.startswith("functions.weather:")
    assert response.stop_reason == "tool_use"


SAME_ANSWERS = {
    "reasoning-and-text": lambda: chat_text(
        "Hello there, how can I help?", reasoning="The user greets me.", usage=USAGE
    ),
    "tool-call": lambda: chat_tool_call(
        "weather", {"location": "Florence, Italy"}, text="Let me look.", reasoning="Check it.", usage=USAGE
    ),
    "text-only": lambda: chat_text("Just text.", usage=USAGE),
}


@pytest.mark.parametrize("script", SAME_ANSWERS.values(), ids=SAME_ANSWERS.keys())
async def test_the_whole_answer_equals_the_streamed_one(
    kilo: FakeKilo, script: Callable[[], ChatAnswer]
) -> None:
    kilo.script(script(), times=2)
    request = ask("weather in Florence?", tools=(weather_tool(),))

    async with kilo_provider(kilo) as provider:
        from_stream = await answer(provider, request, streamed(request))
        from_body = await answer(provider, request, whole(request))

    assert [call.body["stream"] for call in chat_calls(kilo)] == [True, False]
    # Generation ids differ per call; everything the client sees of the answer is the same.
    assert from_body.model_copy(update={"id": from_stream.id}) == from_stream
    assert from_body.usage.cost == pytest.approx(0.00042)


async def test_a_gateway_that_streams_anyway_is_read_as_a_stream(kilo: FakeKilo) -> None:
    kilo.script(StreamAnyway(ChatContent(text="streamed regardless", reasoning="hm")))

    async with kilo_provider(kilo) as provider:
        response = await answer(provider, ask(), whole(ask()))

    assert response.content[-1] == TextPart(text="streamed regardless")
    assert response.stop_reason == "end_turn"


class StreamAnyway:
    """Streams its answer whatever the request says (a gateway that ignores ``stream:false``)."""

    def __init__(self, content: ChatContent) -> None:
        self.content = content

    async def respond(self, call: ChatCall) -> web.StreamResponse:
        ctx = new_context(call.model, "Chutes", call.body_size, call.free)
        response = web.StreamResponse(status=200, headers={"content-type": "text/event-stream"})
        await response.prepare(call.request)
        await response.write(PROCESSING)
        for chunk in stream_chunks(self.content, ChatUsage(), ctx):
            await response.write(encode_chunk(chunk))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


# --- failures before the answer: raised, the same kinds as when streamed -------------------------------


FAILURES = {
    "429": (kilo_rate_limited(retry_after=30), RateLimitError),
    "503": (service_unavailable(), OverloadedError),
    "502": (openrouter_error(502, "Provider returned error"), UpstreamError),
    "402": (payment_required(), BillingError),
    "200-error-body": (
        RawBody(b'{"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-min"}}'),
        RateLimitError,
    ),
    "200-not-json": (RawBody(b"<html>Bad gateway</html>", "text/html"), UpstreamError),
    "200-empty": (RawBody(b"\n   \n"), UpstreamError),
}


@pytest.mark.parametrize(("failure", "kind"), FAILURES.values(), ids=FAILURES.keys())
async def test_a_failure_before_the_answer_is_raised_as_when_streamed(
    kilo: FakeKilo, failure: ChatAnswer, kind: type[GatewayError]
) -> None:
    kilo.script(failure, times=2)

    async with kilo_provider(kilo, RELAYGATE_HAIKU_API_KEY=DEFAULT_KEY) as provider:
        with pytest.raises(GatewayError) as when_streamed:
            await collect(provider, ask(), streamed(ask()))
        with pytest.raises(kind) as when_whole:
            await collect(provider, ask(), whole(ask()))

    assert type(when_whole.value) is type(when_streamed.value)
    assert (when_whole.value.status, when_whole.value.retry_after) == (
        when_streamed.value.status,
        when_streamed.value.retry_after,
    )


async def test_an_unknown_model_is_not_found_naming_it(kilo: FakeKilo) -> None:
    async with kilo_provider(kilo) as provider:
        with pytest.raises(NotFoundError) as caught:
            await collect(provider, ask(), whole(ask(), upstream_model="nobody/nothing:free"))

    assert "nobody/nothing:free" in caught.value.message


async def test_an_unreachable_gateway_is_an_upstream_failure() -> None:
    async with kilo_provider(None, RELAYGATE_KILO_CONNECT_TIMEOUT="2") as provider:
        with pytest.raises(UpstreamError):
            await collect(provider, ask(), whole(ask()))


# --- the deadline: first_event_timeout + idle_timeout for the whole exchange -----------------------------


async def test_an_answer_slower_than_the_first_event_timeout_is_still_awaited(kilo: FakeKilo) -> None:
    # A non-streamed gateway answers when it is done: the first-event bound alone would cut this one.
    kilo.script(chat_text("worth the wait", delay_headers=0.6))

    async with kilo_provider(
        kilo, RELAYGATE_KILO_FIRST_EVENT_TIMEOUT="0.3", RELAYGATE_KILO_IDLE_TIMEOUT="2"
    ) as provider:
        response = await answer(provider, ask(), whole(ask()))

    assert response.content[-1] == TextPart(text="worth the wait")


async def test_no_answer_within_both_timeouts_is_an_upstream_timeout(kilo: FakeKilo) -> None:
    kilo.script(chat_text("too late", delay_headers=5.0))

    started = time.monotonic()
    async with kilo_provider(
        kilo, RELAYGATE_KILO_FIRST_EVENT_TIMEOUT="0.2", RELAYGATE_KILO_IDLE_TIMEOUT="0.3"
    ) as provider:
        with pytest.raises(UpstreamTimeoutError) as caught:
            await collect(provider, ask(), whole(ask()))

    assert caught.value.status == 504
    assert 0.4 < time.monotonic() - started < 3.0


class PaddedThenSilent:
    """Sends the headers and OpenRouter's keep-alive whitespace, then nothing: a body that never ends."""

    def __init__(self) -> None:
        self.disconnected = asyncio.Event()

    async def respond(self, call: ChatCall) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"content-type": "application/json"})
        await response.prepare(call.request)
        try:
            for _ in range(200):
                await response.write(b"\n         \n")
                await asyncio.sleep(0.05)
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response


async def test_a_body_kept_alive_past_the_deadline_is_a_timeout_and_the_connection_dropped(
    kilo: FakeKilo,
) -> None:
    silent = PaddedThenSilent()
    kilo.script(silent)

    started = time.monotonic()
    async with kilo_provider(
        kilo, RELAYGATE_KILO_FIRST_EVENT_TIMEOUT="0.2", RELAYGATE_KILO_IDLE_TIMEOUT="0.3"
    ) as provider:
        with pytest.raises(UpstreamTimeoutError):
            await collect(provider, ask(), whole(ask()))
        with anyio.fail_after(3):
            await silent.disconnected.wait()

    assert time.monotonic() - started < 3.0


# --- through the Gateway ----------------------------------------------------------------------------------


async def test_gateway_complete_asks_kilo_for_one_body(kilo: FakeKilo) -> None:
    kilo.script(chat_text("Hello!", reasoning="hi back", usage=USAGE))

    async with kilo_provider(kilo) as provider:
        response = await Gateway([provider]).complete(ask().model_copy(update={"model": f"kilo/{FREE}"}))

    (call,) = chat_calls(kilo)
    assert call.body["stream"] is False
    assert response.content[-1] == TextPart(text="Hello!")
    assert response.model == f"kilo/{FREE}"


class NotesPeer:
    """Answers as ``answer`` does, noting the client address of each request's connection."""

    def __init__(self, answer: ChatAnswer) -> None:
        self.answer = answer
        self.peers: list[object] = []

    async def respond(self, call: ChatCall) -> web.StreamResponse:
        transport = call.request.transport
        self.peers.append(transport.get_extra_info("peername") if transport is not None else None)
        return await self.answer.respond(call)


async def test_the_connection_is_released_for_the_next_request(kilo: FakeKilo) -> None:
    noted = NotesPeer(chat_text("again"))
    kilo.set_default(noted)

    async with kilo_provider(kilo) as provider:
        for _ in range(3):
            await collect(provider, ask(), whole(ask()))

    assert len(noted.peers) == 3
    assert len(set(noted.peers)) == 1, (
        "each body was read to its end and its connection went back to the pool"
    )
