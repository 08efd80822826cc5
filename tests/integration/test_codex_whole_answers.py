"""Whole answers from the Codex backend, built without decoding its deltas (``RequestContext.streaming``).

The backend always streams (protocols §4.2). A caller that reads only the complete answer — a
non-streamed client request, :meth:`Gateway.complete` — has the provider drop the delta events
undecoded and build the answer from the ``.done`` events that repeat them. To see which events built
an answer, :class:`Redrafted` streams deltas that say the answer in capitals while its ``.done`` events
and final items say it as written: a whole answer must come out as written, a streamed one in capitals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import TextBlock, ThinkingBlock

from gateway_core.formats.openai_responses import WHOLE_ANSWER_SKIPPABLE
from gateway_core.gateway import Gateway
from gateway_core.models import Message, ReasoningPart, Request, TextPart, ToolCallPart
from gateway_core.provider import RequestContext
from gateway_core.streaming import (
    ErrorEvent,
    MessageStop,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
    accumulate,
)
from gateway_providers.codex.config import CodexSettings
from gateway_providers.codex.provider import CodexProvider
from gateway_providers.codex.transport import create_http_client
from tests.codex_lease_pool import FakeLease, FakeLeasePool
from tests.e2e_support import MODEL, Served, served_gateway
from tests.fakes import Account, FakeCodex, StreamReply, reasoning_text, run_fake_codex, tool_call
from tests.fakes.codex_answers import CodexCall
from tests.fakes.responses_stream import Event

pytestmark = pytest.mark.anyio

SUMMARY = ("**Weighing it**", "the answer is short")
ANSWER = "Short and to the point, as asked."
ASK: Any = [{"role": "user", "content": "Say something short."}]


@dataclass(frozen=True)
class Redrafted(StreamReply):
    """A generated answer whose deltas say it in capitals; its ``.done`` events and items as written."""

    def events(self, call: CodexCall) -> list[Event]:
        return [
            (name, {**payload, "delta": str(payload["delta"]).upper()})
            if name in WHOLE_ANSWER_SKIPPABLE
            else (name, payload)
            for name, payload in super().events(call)
        ]


def redrafted() -> Redrafted:
    return Redrafted(items=reasoning_text(SUMMARY, ANSWER, encrypted_content="gAAAAB-whole").items)


@pytest.fixture
async def codex() -> AsyncIterator[FakeCodex]:
    async with run_fake_codex() as fake:
        yield fake


@asynccontextmanager
async def codex_provider(
    codex: FakeCodex, account: Account, *, idle_timeout: float = 300.0
) -> AsyncIterator[tuple[CodexProvider[FakeLease], FakeLeasePool]]:
    settings = CodexSettings(base_url=codex.base_url, idle_timeout=idle_timeout)
    pool = FakeLeasePool([FakeLease(account.email, account.account_id, account.access_token)])
    provider = CodexProvider(settings, pool, create_http_client(settings))
    try:
        yield provider, pool
    finally:
        await provider.aclose()


def user_request(prompt: str = "hi") -> Request:
    return Request(
        model="claude-opus-4-8", messages=(Message(role="user", content=(TextPart(text=prompt),)),)
    )


def context(*, streaming: bool) -> RequestContext:
    return RequestContext(requested_model="claude-opus-4-8", upstream_model="gpt-5.5", streaming=streaming)


async def collect(provider: CodexProvider[FakeLease], *, streaming: bool) -> list[StreamEvent]:
    events = provider.stream(user_request(), context(streaming=streaming))
    try:
        return [event async for event in events]
    finally:
        await events.aclose()  # type: ignore[attr-defined]


# --- the provider --------------------------------------------------------------------------------------


async def test_a_whole_answer_equals_the_streamed_one_from_far_fewer_events(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.script(reasoning_text(SUMMARY, ANSWER, encrypted_content="gAAAAB-whole"), times=2)

    async with codex_provider(codex, account) as (provider, _):
        streamed = await collect(provider, streaming=True)
        whole = await collect(provider, streaming=False)

    assert accumulate(whole).model_copy(update={"id": ""}) == accumulate(streamed).model_copy(
        update={"id": ""}
    )
    assert [e.text for e in whole if isinstance(e, TextDelta)] == [ANSWER]
    assert len([e for e in streamed if isinstance(e, TextDelta)]) == len(ANSWER.split())
    assert len(whole) < len(streamed)


async def test_a_whole_answer_is_built_from_the_done_events(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.script(redrafted(), times=2)

    async with codex_provider(codex, account) as (provider, _):
        whole = accumulate(await collect(provider, streaming=False))
        streamed = accumulate(await collect(provider, streaming=True))

    assert whole.content == (
        ReasoningPart(text="\n\n".join(SUMMARY), signature="gAAAAB-whole", provider="codex"),
        TextPart(text=ANSWER),
    )
    assert streamed.content[1] == TextPart(text=ANSWER.upper())


async def test_a_whole_tool_call_keeps_its_arguments(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    arguments = {"file_path": "/home/user/project/a long name.txt", "limit": 20}
    codex.script(tool_call("Read", arguments, call_id="call_whole", preamble="Reading it."))

    async with codex_provider(codex, account) as (provider, pool):
        events = await collect(provider, streaming=False)

    response = accumulate(events)
    assert response.content[1:] == (
        TextPart(text="Reading it."),
        ToolCallPart(id="call_whole", name="Read", arguments=arguments),
    )
    assert response.stop_reason == "tool_use"
    assert len([e for e in events if isinstance(e, ToolArgumentsDelta)]) == 1
    (record,) = pool.usage
    assert (record.usage, record.error) == (response.usage, False)


async def test_a_long_whole_answer_is_not_taken_for_a_stalled_one(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    words = " ".join(f"word{i}" for i in range(16))
    codex.script(reasoning_text(("thinking",), words, delay_between_events=0.04))

    async with codex_provider(codex, account, idle_timeout=0.3) as (provider, _):
        events = await collect(provider, streaming=False)  # ~0.9 s of deltas, none decoded

    assert not any(isinstance(event, ErrorEvent) for event in events)
    assert isinstance(events[-1], MessageStop)
    assert accumulate(events).content[1] == TextPart(text=words)
    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == ["thinking"]


async def test_gateway_complete_asks_the_provider_for_a_whole_answer(codex: FakeCodex) -> None:
    account = codex.add_account("a@example.com")
    codex.script(redrafted())

    async with codex_provider(codex, account) as (provider, _):
        response = await Gateway([provider]).complete(user_request())

    assert response.content[1] == TextPart(text=ANSWER)


# --- through the server ----------------------------------------------------------------------------------


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with served_gateway(tmp_path, env={"RELAYGATE_HAIKU_LANE": "off"}) as served:
        await served.login()
        yield served


async def test_a_non_streamed_message_is_answered_whole_without_the_deltas(served: Served) -> None:
    served.codex.script(redrafted(), times=2)
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}

    async with served.anthropic() as claude:
        whole = await claude.messages.create(model=MODEL, max_tokens=4096, messages=ASK, thinking=thinking)
        async with claude.messages.stream(
            model=MODEL, max_tokens=4096, messages=ASK, thinking=thinking
        ) as stream:
            streamed = await stream.get_final_message()

    thinking_block, text_block = whole.content
    assert isinstance(thinking_block, ThinkingBlock)
    assert (thinking_block.thinking, thinking_block.signature != "") == ("\n\n".join(SUMMARY), True)
    assert isinstance(text_block, TextBlock)
    assert text_block.text == ANSWER
    assert (whole.stop_reason, whole.usage) == (streamed.stop_reason, streamed.usage)
    assert [b.text for b in streamed.content if isinstance(b, TextBlock)] == [ANSWER.upper()]
