"""The Gateway facade: routing, primed streams, complete == accumulate(stream), models, cancellation."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest

from gateway_core.errors import (
    ApiError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    UpstreamError,
)
from gateway_core.gateway import Gateway
from gateway_core.plugins import ProviderRegistry, hookimpl
from gateway_core.routing import LaneSettings
from gateway_core.settings import Settings
from gateway_core.streaming import (
    ErrorEvent,
    MessageStart,
    MessageStop,
    PartStart,
    StreamEvent,
    TextDelta,
    accumulate,
)
from tests.unit._fake_provider import FakeProvider, text_events, user_request

pytestmark = pytest.mark.anyio


async def collect(gateway: Gateway, model: str) -> list[StreamEvent]:
    async with await gateway.stream(user_request(model)) as stream:
        return [event async for event in stream]


# --- complete and stream ---------------------------------------------------------------------------


async def test_complete_is_the_accumulated_stream() -> None:
    gateway = Gateway([FakeProvider("codex", events=text_events("Hel", "lo", " there"))])

    streamed = accumulate(await collect(gateway, "gpt-5.5"))
    completed = await gateway.complete(user_request("gpt-5.5"))

    assert completed == streamed
    assert completed.content[0].model_dump()["text"] == "Hello there"


async def test_the_stream_reports_the_model_the_client_asked_for() -> None:
    gateway = Gateway([FakeProvider("codex", events=text_events("hi", model="gpt-5.5"))])

    events = await collect(gateway, "claude-opus-4-8")

    assert isinstance(events[0], MessageStart)
    assert events[0].model == "claude-opus-4-8"


async def test_the_complete_answer_reports_the_model_the_client_asked_for() -> None:
    gateway = Gateway([FakeProvider("codex", events=text_events("hi", model="gpt-5.5"))])

    response = await gateway.complete(user_request("claude-sonnet-4-5-20250929"))

    assert response.model == "claude-sonnet-4-5-20250929"


async def test_the_provider_is_called_with_the_routed_model_and_lane_effort() -> None:
    provider = FakeProvider("codex")
    gateway = Gateway([provider])

    await gateway.complete(user_request("claude-opus-4-8"), session_id="session-1")

    context = provider.contexts[0]
    assert (context.requested_model, context.upstream_model, context.effort) == (
        "claude-opus-4-8",
        "gpt-5.5",
        "high",
    )
    assert context.session_id == "session-1"


async def test_the_stream_names_the_provider_and_model_that_really_serve_it() -> None:
    gateway = Gateway([FakeProvider("codex"), FakeProvider("kilo")])

    async with await gateway.stream(user_request("kilo/minimax/minimax-m2.5:free")) as stream:
        assert (stream.provider, stream.upstream_model) == ("kilo", "minimax/minimax-m2.5:free")


async def test_client_credentials_never_reach_the_provider() -> None:
    provider = FakeProvider("codex")
    gateway = Gateway([provider])
    headers = {"Authorization": "Bearer k", "X-Api-Key": "k", "Cookie": "c", "Anthropic-Beta": "b"}

    await gateway.complete(user_request("gpt-5.5"), headers=headers)

    assert dict(provider.contexts[0].headers) == {"anthropic-beta": "b"}


async def test_an_unknown_provider_is_not_found() -> None:
    gateway = Gateway([FakeProvider("codex")])

    with pytest.raises(NotFoundError, match='"nosuch"'):
        await gateway.complete(user_request("nosuch/model"))


async def test_replacing_the_lanes_changes_the_next_route() -> None:
    gateway = Gateway([FakeProvider("codex"), FakeProvider("kilo")])

    gateway.lanes = LaneSettings(haiku_lane=False)

    assert gateway.route("claude-haiku-4-5").provider == "codex"


# --- priming: failures before the first event raise -----------------------------------------------


async def test_an_error_before_the_first_event_raises_before_the_stream_is_returned() -> None:
    provider = FakeProvider("codex", fail=RateLimitError("slow down", retry_after=30))
    gateway = Gateway([provider])

    with pytest.raises(RateLimitError) as caught:
        await gateway.stream(user_request("gpt-5.5"))

    assert caught.value.retry_after == 30
    assert provider.finalised


async def test_an_error_event_first_raises_its_error() -> None:
    gateway = Gateway([FakeProvider("codex", events=[ErrorEvent(InvalidRequestError("too long"))])])

    with pytest.raises(InvalidRequestError, match="too long"):
        await gateway.stream(user_request("gpt-5.5"))


async def test_a_provider_that_answers_nothing_is_an_upstream_error() -> None:
    gateway = Gateway([FakeProvider("codex", events=[])])

    with pytest.raises(UpstreamError, match='"codex"'):
        await gateway.stream(user_request("gpt-5.5"))


async def test_a_provider_bug_before_the_first_event_is_an_api_error_naming_it() -> None:
    gateway = Gateway([FakeProvider("codex", fail=RuntimeError("oops"))])

    with pytest.raises(ApiError, match=r'provider "codex" failed: RuntimeError: oops'):
        await gateway.stream(user_request("gpt-5.5"))


async def test_the_first_event_is_not_lost_by_priming() -> None:
    gateway = Gateway([FakeProvider("codex")])

    first, *rest = text_events("Hello", " world")
    assert isinstance(first, MessageStart)

    assert await collect(gateway, "gpt-5.5") == [dataclasses.replace(first, model="gpt-5.5"), *rest]


# --- failures after the first event end the stream in-band ----------------------------------------


async def test_a_gateway_error_raised_mid_stream_becomes_an_error_event() -> None:
    gateway = Gateway([FakeProvider("codex", fail=RateLimitError("limit"), fail_at=2)])

    events = await collect(gateway, "gpt-5.5")

    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, RateLimitError)


async def test_a_provider_bug_mid_stream_becomes_an_api_error_event() -> None:
    gateway = Gateway([FakeProvider("codex", fail=KeyError("x"), fail_at=2)])

    events = await collect(gateway, "gpt-5.5")

    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, ApiError)


async def test_a_stream_cut_short_ends_with_an_upstream_error_event() -> None:
    gateway = Gateway([FakeProvider("codex", events=text_events("hi")[:3])])

    events = await collect(gateway, "gpt-5.5")

    assert isinstance(events[-1], ErrorEvent)
    assert isinstance(events[-1].error, UpstreamError)


async def test_complete_raises_the_error_that_ended_the_stream() -> None:
    gateway = Gateway([FakeProvider("codex", fail=RateLimitError("limit"), fail_at=3)])

    with pytest.raises(RateLimitError):
        await gateway.complete(user_request("gpt-5.5"))


# --- closing and cancellation --------------------------------------------------------------------


async def test_closing_a_stream_early_closes_the_provider_iterator() -> None:
    provider = FakeProvider("codex")
    gateway = Gateway([provider])

    stream = await gateway.stream(user_request("gpt-5.5"))
    await stream.__anext__()
    await stream.aclose()

    assert provider.finalised
    assert not provider.ran_past_answer


async def cancel_after_two_events(gateway: Gateway, *, consumer_blocks_elsewhere: bool) -> list[StreamEvent]:
    """Consume a stream in a task and cancel it after two events, as a client disconnect does."""
    received: list[StreamEvent] = []
    two_events = anyio.Event()

    async def consume() -> None:
        async with await gateway.stream(user_request("gpt-5.5")) as stream:
            async for event in stream:
                received.append(event)
                if len(received) == 2:
                    two_events.set()
                    if consumer_blocks_elsewhere:
                        await anyio.sleep_forever()  # a slow client write, outside the provider

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await two_events.wait()
            await anyio.sleep(0.01)
            group.cancel_scope.cancel()
    return received


async def test_cancelling_the_consumer_while_it_waits_elsewhere_closes_the_provider_iterator() -> None:
    provider = FakeProvider("codex")
    gateway = Gateway([provider])

    received = await cancel_after_two_events(gateway, consumer_blocks_elsewhere=True)

    assert [type(event) for event in received] == [MessageStart, PartStart]
    assert provider.finalised
    assert not provider.ran_past_answer


async def test_cancelling_the_consumer_while_the_provider_waits_upstream_closes_it() -> None:
    provider = FakeProvider("codex", hang_after=2)
    gateway = Gateway([provider])

    received = await cancel_after_two_events(gateway, consumer_blocks_elsewhere=False)

    assert [type(event) for event in received] == [MessageStart, PartStart]
    assert provider.finalised


async def test_a_finished_stream_lets_the_provider_run_to_its_end() -> None:
    provider = FakeProvider("codex")
    gateway = Gateway([provider])

    await gateway.complete(user_request("gpt-5.5"))

    assert provider.ran_past_answer
    assert provider.finalised


async def test_closing_the_gateway_closes_its_providers() -> None:
    provider = FakeProvider("codex")

    async with Gateway([provider]):
        pass

    assert provider.aclosed


# --- the Haiku lane fallback ----------------------------------------------------------------------


async def test_an_unavailable_haiku_lane_falls_back_to_codex_before_answering() -> None:
    kilo = FakeProvider("kilo", fail=RateLimitError("free tier exhausted"))
    codex = FakeProvider("codex", events=text_events("from codex"))
    gateway = Gateway([codex, kilo])

    async with await gateway.stream(user_request("claude-haiku-4-5-20251001")) as stream:
        assert (stream.provider, stream.upstream_model) == ("codex", "gpt-5.4-mini")
        events = [event async for event in stream]

    assert isinstance(events[0], MessageStart)
    assert events[0].model == "claude-haiku-4-5-20251001"
    assert codex.contexts[0].upstream_model == "gpt-5.4-mini"


async def test_a_bad_request_on_the_haiku_lane_does_not_fall_back() -> None:
    kilo = FakeProvider("kilo", fail=InvalidRequestError("messages.0: bad"))
    codex = FakeProvider("codex")
    gateway = Gateway([codex, kilo])

    with pytest.raises(InvalidRequestError):
        await gateway.complete(user_request("claude-haiku-4-5"))

    assert codex.contexts == []


async def test_other_lanes_never_fall_back() -> None:
    codex = FakeProvider("codex", fail=RateLimitError("limit"))
    gateway = Gateway([codex, FakeProvider("kilo")])

    with pytest.raises(RateLimitError):
        await gateway.complete(user_request("claude-opus-4-8"))


async def test_haiku_lane_off_goes_straight_to_codex() -> None:
    kilo = FakeProvider("kilo")
    codex = FakeProvider("codex")
    gateway = Gateway([codex, kilo], lanes=LaneSettings(haiku_lane=False))

    await gateway.complete(user_request("claude-haiku-4-5"))

    assert kilo.contexts == []
    assert codex.contexts[0].upstream_model == "gpt-5.4-mini"


# --- count_tokens ---------------------------------------------------------------------------------


async def test_count_tokens_asks_the_routed_provider() -> None:
    kilo = FakeProvider("kilo", tokens=42)
    gateway = Gateway([FakeProvider("codex", tokens=1), kilo])

    assert await gateway.count_tokens(user_request("claude-haiku-4-5")) == 42
    assert kilo.contexts[0].upstream_model == "moonshotai/kimi-k2.5:free"


async def test_count_tokens_on_an_unknown_provider_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        await Gateway([FakeProvider("codex")]).count_tokens(user_request("nosuch/x"))


# --- models ---------------------------------------------------------------------------------------


async def test_models_lists_the_lane_aliases_and_every_providers_models_by_the_name_that_routes_there() -> (
    None
):
    gateway = Gateway(
        [
            FakeProvider("codex", models=["gpt-5.5", "gpt-5.4-mini"]),
            FakeProvider("kilo", models=["minimax/minimax-m2.5:free"]),
            FakeProvider("echo", models=["echo-1"]),
        ]
    )

    models = await gateway.models()

    assert [(model.id, model.provider) for model in models] == [
        ("claude-opus-5-5", "codex"),
        ("claude-sonnet-4-5", "codex"),
        ("claude-haiku-4-5", "kilo"),
        ("gpt-5.5", "codex"),
        ("gpt-5.4-mini", "codex"),
        ("kilo/minimax/minimax-m2.5:free", "kilo"),
        ("echo/echo-1", "echo"),
    ]
    assert models[0].display_name == "Opus lane: codex/gpt-5.5"


async def test_models_are_deduplicated() -> None:
    gateway = Gateway([FakeProvider("codex", models=["gpt-5.5", "gpt-5.5", "claude-opus-5-5"])])

    ids = [model.id for model in await gateway.models()]

    assert len(ids) == len(set(ids))


async def test_a_provider_that_cannot_list_its_models_does_not_break_the_list() -> None:
    gateway = Gateway(
        [
            FakeProvider("codex", models=["gpt-5.5"]),
            FakeProvider("kilo", models_error=UpstreamError("kilo is down")),
        ]
    )

    ids = [model.id for model in await gateway.models()]

    assert "gpt-5.5" in ids


async def test_a_provider_that_hangs_listing_its_models_is_left_out_after_the_timeout() -> None:
    gateway = Gateway(
        [FakeProvider("codex", models=["gpt-5.5"]), FakeProvider("echo", models_hang=True)],
        models_timeout=0.05,
    )

    with anyio.fail_after(5):
        ids = [model.id for model in await gateway.models()]

    assert "gpt-5.5" in ids


async def test_lane_aliases_whose_provider_is_missing_are_not_listed() -> None:
    gateway = Gateway([FakeProvider("codex")])

    ids = [model.id for model in await gateway.models()]

    assert "claude-haiku-4-5" not in ids
    assert "claude-opus-5-5" in ids


# --- construction from plugins --------------------------------------------------------------------


class EchoLikePlugin:
    @hookimpl
    def relaygate_register_providers(self, registry: ProviderRegistry, settings: Settings) -> None:
        registry.register(FakeProvider("codex", events=text_events(settings.get("RELAYGATE_GREETING", "?"))))


async def test_a_gateway_built_from_plugins_serves_their_providers_with_the_settings_given() -> None:
    gateway = Gateway.from_plugins(
        EchoLikePlugin(), settings={"RELAYGATE_GREETING": "hi"}, load_entrypoints=False
    )

    response = await gateway.complete(user_request("gpt-5.5"))

    assert response.content[0].model_dump()["text"] == "hi"


async def test_a_gateway_built_from_plugins_applies_the_haiku_lane_setting() -> None:
    gateway = Gateway.from_plugins(
        EchoLikePlugin(), settings={"RELAYGATE_HAIKU_LANE": "off"}, load_entrypoints=False
    )

    assert gateway.lanes.haiku_lane is False


async def test_events_after_the_message_stop_are_not_delivered() -> None:
    events = [*text_events("hi"), TextDelta(index=0, text="late")]
    gateway = Gateway([FakeProvider("codex", events=events)])

    delivered = await collect(gateway, "gpt-5.5")

    assert isinstance(delivered[-1], MessageStop)


# --- forward: the same events without a coroutine per event --------------------------------------


def event_summary(events: list[StreamEvent]) -> list[object]:
    """Events compared by value, errors by kind and message (error objects differ per run)."""
    return [(type(e.error), e.error.message) if isinstance(e, ErrorEvent) else e for e in events]


@pytest.mark.parametrize(
    "make_provider",
    [
        lambda: FakeProvider("codex"),
        lambda: FakeProvider("codex", fail=RateLimitError("limit"), fail_at=2),
        lambda: FakeProvider("codex", fail=KeyError("x"), fail_at=2),
        lambda: FakeProvider("codex", events=text_events("hi")[:3]),
        lambda: FakeProvider("codex", events=[*text_events("hi"), TextDelta(index=0, text="late")]),
    ],
    ids=["complete", "gateway-error", "provider-bug", "cut-short", "late-event"],
)
async def test_forward_delivers_what_iterating_the_stream_gives(
    make_provider: Callable[[], FakeProvider],
) -> None:
    iterated = await collect(Gateway([make_provider()]), "gpt-5.5")
    provider = make_provider()
    forwarded: list[StreamEvent] = []
    async with await Gateway([provider]).stream(user_request("gpt-5.5")) as stream:
        await stream.forward(forwarded.append)

    assert event_summary(forwarded) == event_summary(iterated)
    assert isinstance(forwarded[0], MessageStart)
    assert forwarded[0].model == "gpt-5.5"
    assert provider.finalised


async def test_forward_waits_for_what_deliver_asks_it_to() -> None:
    provider = FakeProvider("codex", events=text_events("a", "b", "c"))
    waited: list[int] = []

    async def wait(count: int) -> None:
        await anyio.lowlevel.checkpoint()
        waited.append(count)

    delivered: list[StreamEvent] = []

    def deliver(event: StreamEvent) -> Awaitable[None] | None:
        delivered.append(event)
        return wait(len(delivered)) if isinstance(event, TextDelta) else None

    async with await Gateway([provider]).stream(user_request("gpt-5.5")) as stream:
        await stream.forward(deliver)

    assert waited == [3, 4, 5], "each wait finished before the next event was delivered"
    assert isinstance(delivered[-1], MessageStop)
