"""The Haiku lane through the real server (DESIGN §4, §6): Claude Code's haiku requests go to the fake
Kilo gateway with the resolved ``haikuKiloModel`` id and come back as Anthropic answers; when Kilo is
unavailable before its first byte they fall back to the fake Codex backend's ``gpt-5.4-mini``.

The server is built as ``relaygate serve`` builds it — ``create_app`` over ``RELAYGATE_*`` settings
pointing at the fakes, every installed plugin loaded from its entry point — with a SQLite store in
``tmp_path`` holding one Codex account whose tokens the fake issuer minted. Clients are the official
Anthropic SDK, or plain HTTP for the recorded Claude Code captures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from gateway_core.settings import Settings
from gateway_core.sse import SSEDecoder
from gateway_core.store import AccountRecord, SQLiteStore, Store, Tokens
from gateway_server import ServerConfig, create_app
from tests.fakes import (
    FakeUpstreams,
    KiloHttpReply,
    chat_text,
    chat_tool_call,
    kilo_rate_limited,
    run_fake_upstreams,
    service_unavailable,
)
from tests.fakes.jwt import decode_jwt
from tests.fakes.kilo import ChatAnswer
from tests.fixtures import fixture_path, load_json
from tests.serving import serve

pytestmark = pytest.mark.anyio

HAIKU = "claude-haiku-4-5-20251001"
KIMI = "moonshotai/kimi-k2.5:free"
"""What the default ``haikuKiloModel`` (``kimi-k2.5``) resolves to."""
FALLBACK = "gpt-5.4-mini"
CLOSED_PORT = "http://127.0.0.1:9/api/gateway"
TIMEOUT = 20.0

READ_TOOL: dict[str, Any] = {
    "name": "Read",
    "description": "Read a file from the local filesystem",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string"}},
        "required": ["file_path"],
    },
}
CAPTURES = ["cc332_haiku_budget_thinking_request.json", "cc_subagent_explore_haiku_request.json"]
# Hop-by-hop and addressing headers of a capture that belong to its own connection, not to the request.
_CONNECTION_HEADERS = {"host", "content-length", "connection", "accept-encoding"}


@dataclass(frozen=True)
class Lane:
    """The running server and the fakes behind it."""

    up: FakeUpstreams
    url: str

    def sdk(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            base_url=self.url, api_key="sk-ant-placeholder", max_retries=0, timeout=TIMEOUT
        )

    def kilo_bodies(self) -> list[dict[str, Any]]:
        return [call.body for call in self.up.kilo.requests_to("/chat/completions", "POST")]

    def codex_models(self) -> list[str]:
        return [call.body["model"] for call in self.up.codex.responses_calls()]


async def seed_codex_account(up: FakeUpstreams, store: Store, email: str = "dev@example.com") -> None:
    """An account the fake issuer minted tokens for, stored as if logged in earlier."""
    identity = up.registry.add(email, account_id="acc-dev", plan_type="plus")
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


@asynccontextmanager
async def served(tmp_path: Path, **env: str) -> AsyncIterator[Lane]:
    """The fakes, a store with one Codex account, and the server over them (``env`` adds settings)."""
    async with run_fake_upstreams() as up:
        home = tmp_path / "relaygate-home"
        store = await SQLiteStore.open(home)
        try:
            await seed_codex_account(up, store)
            settings = Settings({**up.env(), "RELAYGATE_HOME": str(home), **env})
            config = ServerConfig.from_settings(settings, port=0)
            async with serve(create_app(config=config, settings=settings, store=store)) as url:
                yield Lane(up, url)
        finally:
            await store.aclose()


def ask(prompt: str = "Read /tmp/notes.txt") -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}]


def sse_frames(raw: bytes) -> list[tuple[str | None, str]]:
    decoder = SSEDecoder()
    return [(event.event, event.data) for event in [*decoder.feed(raw), *decoder.flush()]]


def served_by(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    return headers.get("x-relaygate-provider"), headers.get("x-relaygate-model")


# --- the lane on Kilo ------------------------------------------------------------------------------------


def assert_read_tool_answer(message: anthropic.types.Message) -> None:
    """The scripted answer: thinking with its signature, then the Read tool call, for the haiku model."""
    assert message.model == HAIKU
    assert message.stop_reason == "tool_use"
    thinking, tool_use = message.content
    assert thinking.type == "thinking"
    assert thinking.thinking == "I should read the file first."
    assert thinking.signature
    assert tool_use.type == "tool_use"
    assert (tool_use.name, tool_use.input) == ("Read", {"file_path": "/tmp/notes.txt"})
    assert message.usage.output_tokens > 0


async def test_a_haiku_request_reaches_kilo_and_returns_thinking_and_a_tool_call(tmp_path: Path) -> None:
    async with served(tmp_path) as lane:
        lane.up.kilo.script(
            chat_tool_call("Read", {"file_path": "/tmp/notes.txt"}, reasoning="I should read the file first.")
        )
        async with (
            lane.sdk() as sdk,
            sdk.messages.stream(
                model=HAIKU,
                max_tokens=4096,
                thinking={"type": "enabled", "budget_tokens": 2048},
                tools=[READ_TOOL],  # type: ignore[list-item]
                messages=ask(),  # type: ignore[arg-type]
            ) as stream,
        ):
            headers = stream.response.headers
            message = await stream.get_final_message()

        (body,) = lane.kilo_bodies()

    assert body["model"] == KIMI
    assert served_by(headers) == ("kilo", KIMI)
    assert_read_tool_answer(message)


async def test_the_thinking_block_returned_next_turn_is_replayed_to_kilo(tmp_path: Path) -> None:
    async with served(tmp_path) as lane:
        lane.up.kilo.script(chat_tool_call("Read", {"file_path": "/tmp/notes.txt"}, reasoning="Read it."))
        async with lane.sdk() as sdk:
            first = await sdk.messages.create(
                model=HAIKU,
                max_tokens=4096,
                tools=[READ_TOOL],  # type: ignore[list-item]
                messages=ask(),  # type: ignore[arg-type]
            )
            tool_use = first.content[-1]
            assert tool_use.type == "tool_use"
            result = {"type": "tool_result", "tool_use_id": tool_use.id, "content": "hello"}
            turns = [
                *ask(),
                {"role": "assistant", "content": first.content},
                {"role": "user", "content": [result]},
            ]
            second = await sdk.messages.create(
                model=HAIKU,
                max_tokens=4096,
                tools=[READ_TOOL],  # type: ignore[list-item]
                messages=turns,  # type: ignore[arg-type]
            )

        _, replay = lane.kilo_bodies()

    assistant = replay["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["reasoning_details"][0]["text"] == "Read it."
    assert assistant["tool_calls"][0]["id"] == "functions.Read:0"
    assert replay["messages"][2] == {"role": "tool", "tool_call_id": "functions.Read:0", "content": "hello"}
    assert second.stop_reason == "end_turn"


async def test_without_a_key_kilo_sees_no_authorization(tmp_path: Path) -> None:
    async with served(tmp_path) as lane:
        async with lane.sdk() as sdk:
            await sdk.messages.create(model=HAIKU, max_tokens=256, messages=ask("hi"))  # type: ignore[arg-type]

        (call,) = lane.up.kilo.requests_to("/chat/completions", "POST")

    assert call.header("authorization") is None
    assert call.header("x-api-key") is None


async def test_with_a_key_kilo_sees_it_as_the_bearer(tmp_path: Path) -> None:
    async with served(tmp_path, RELAYGATE_HAIKU_API_KEY="sk-or-v1-test") as lane:
        async with lane.sdk() as sdk:
            await sdk.messages.create(model=HAIKU, max_tokens=256, messages=ask("hi"))  # type: ignore[arg-type]

        (call,) = lane.up.kilo.requests_to("/chat/completions", "POST")

    assert call.header("authorization") == "Bearer sk-or-v1-test"


async def test_with_the_lane_off_haiku_goes_to_codex_mini(tmp_path: Path) -> None:
    async with served(tmp_path, RELAYGATE_HAIKU_LANE="off") as lane:
        async with lane.sdk() as sdk:
            raw = await sdk.messages.with_raw_response.create(
                model=HAIKU,
                max_tokens=256,
                messages=ask("hi"),  # type: ignore[arg-type]
            )
            message = await raw.parse()

        assert lane.kilo_bodies() == []
        assert lane.codex_models() == [FALLBACK]

    assert served_by(raw.headers) == ("codex", FALLBACK)
    assert message.model == HAIKU


async def test_switching_the_haiku_model_setting_changes_the_next_request(tmp_path: Path) -> None:
    async with served(tmp_path) as lane, lane.sdk() as sdk, httpx.AsyncClient(base_url=lane.url) as admin:
        await sdk.messages.create(model=HAIKU, max_tokens=64, messages=ask("hi"))  # type: ignore[arg-type]
        switched = await admin.post("/settings/haiku-model", json={"haikuKiloModel": "minimax-2.5"})
        raw = await sdk.messages.with_raw_response.create(
            model=HAIKU,
            max_tokens=64,
            messages=ask("hi again"),  # type: ignore[arg-type]
        )
        shown = await admin.get("/settings/haiku-model")

        assert [body["model"] for body in lane.kilo_bodies()] == [KIMI, "minimax/minimax-m2.5:free"]
    assert switched.status_code == 200
    assert shown.json() == {"success": True, "haikuKiloModel": "minimax-2.5"}
    assert served_by(raw.headers) == ("kilo", "minimax/minimax-m2.5:free")


# --- falling back before the first byte ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "env"),
    [
        (kilo_rate_limited(retry_after=30), {}),
        (service_unavailable(), {}),
        (KiloHttpReply(status=502, body={"error": {"code": 502, "message": "Provider returned error"}}), {}),
        (None, {"RELAYGATE_KILO_BASE_URL": CLOSED_PORT}),
    ],
    ids=["429", "503", "502", "connection-refused"],
)
async def test_kilo_failing_before_the_first_byte_falls_back_to_codex_mini(
    tmp_path: Path, failure: KiloHttpReply | None, env: dict[str, str]
) -> None:
    async with served(tmp_path, **env) as lane:
        if failure is not None:
            lane.up.kilo.script(failure)
        async with (
            lane.sdk() as sdk,
            sdk.messages.stream(model=HAIKU, max_tokens=256, messages=ask("hi")) as stream,  # type: ignore[arg-type]
        ):
            headers = stream.response.headers
            message = await stream.get_final_message()

        assert lane.codex_models() == [FALLBACK]

    assert served_by(headers) == ("codex", FALLBACK)
    assert message.model == HAIKU
    assert "text" in [block.type for block in message.content]


# A non-streamed request asks Kilo for one JSON body (stream:false); it must fall back all the same.
STALL_ENV = {"RELAYGATE_KILO_FIRST_EVENT_TIMEOUT": "0.2", "RELAYGATE_KILO_IDLE_TIMEOUT": "0.3"}


@pytest.mark.parametrize(
    ("failure", "env"),
    [
        (kilo_rate_limited(retry_after=30), {}),
        (service_unavailable(), {}),
        (KiloHttpReply(status=502, body={"error": {"code": 502, "message": "Provider returned error"}}), {}),
        (chat_text("too late", delay_headers=5.0), STALL_ENV),
        (None, {"RELAYGATE_KILO_BASE_URL": CLOSED_PORT}),
    ],
    ids=["429", "503", "502", "no-answer-in-time", "connection-refused"],
)
async def test_a_non_streamed_request_falls_back_too(
    tmp_path: Path, failure: ChatAnswer | None, env: dict[str, str]
) -> None:
    async with served(tmp_path, **env) as lane:
        if failure is not None:
            lane.up.kilo.script(failure)
        async with lane.sdk() as sdk:
            raw = await sdk.messages.with_raw_response.create(
                model=HAIKU,
                max_tokens=256,
                messages=ask("hi"),  # type: ignore[arg-type]
            )
            message = await raw.parse()

        asked = [body["stream"] for body in lane.kilo_bodies()]
        assert lane.codex_models() == [FALLBACK]

    assert asked == ([] if failure is None else [False])
    assert served_by(raw.headers) == ("codex", FALLBACK)
    assert message.model == HAIKU
    assert "text" in [block.type for block in message.content]


async def test_a_non_streamed_haiku_request_asks_kilo_for_one_body(tmp_path: Path) -> None:
    async with served(tmp_path) as lane:
        lane.up.kilo.script(
            chat_tool_call("Read", {"file_path": "/tmp/notes.txt"}, reasoning="I should read the file first.")
        )
        async with lane.sdk() as sdk:
            raw = await sdk.messages.with_raw_response.create(  # type: ignore[call-overload]
                model=HAIKU,
                max_tokens=4096,
                thinking={"type": "enabled", "budget_tokens": 2048},
                tools=[READ_TOOL],
                messages=ask(),
            )
            message = await raw.parse()

        (body,) = lane.kilo_bodies()

    assert body["stream"] is False
    assert "stream_options" not in body
    assert served_by(raw.headers) == ("kilo", KIMI)
    assert_read_tool_answer(message)


async def test_a_non_streamed_openai_chat_request_on_the_lane_asks_kilo_for_one_body(tmp_path: Path) -> None:
    request = {"model": HAIKU, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    async with served(tmp_path) as lane, httpx.AsyncClient(base_url=lane.url, timeout=TIMEOUT) as http:
        lane.up.kilo.script(chat_text("Hello from Kilo."))
        answer = await http.post("/v1/chat/completions", json=request)
        (body,) = lane.kilo_bodies()

    assert answer.status_code == 200, answer.text
    assert body["stream"] is False
    assert served_by(answer.headers) == ("kilo", KIMI)
    completion = answer.json()
    assert completion["object"] == "chat.completion"
    assert completion["model"] == HAIKU
    assert completion["choices"][0]["message"]["content"] == "Hello from Kilo."


async def test_an_explicit_kilo_model_is_not_diverted_and_reports_the_rate_limit(tmp_path: Path) -> None:
    async with served(tmp_path) as lane:
        lane.up.kilo.script(kilo_rate_limited(retry_after=30))
        async with lane.sdk() as sdk:
            with pytest.raises(anthropic.RateLimitError) as caught:
                await sdk.messages.create(model=f"kilo/{KIMI}", max_tokens=256, messages=ask("hi"))  # type: ignore[arg-type]

        assert lane.codex_models() == []

    assert caught.value.response.headers["retry-after"] == "30"


# --- a stream that breaks after it started ---------------------------------------------------------------


async def test_a_kilo_stream_breaking_midway_ends_in_band_and_the_next_request_is_served(
    tmp_path: Path,
) -> None:
    request = {"model": HAIKU, "max_tokens": 256, "stream": True, "messages": ask("hi")}
    async with served(tmp_path) as lane, httpx.AsyncClient(base_url=lane.url, timeout=TIMEOUT) as http:
        lane.up.kilo.script(chat_text("one two three four five six", reasoning="think", error_after=4))
        broken = await http.post("/v1/messages", json=request)
        healthy = await http.post("/v1/messages", json=request)

    broken_frames = sse_frames(broken.content)
    assert broken.status_code == 200
    assert served_by(broken.headers) == ("kilo", KIMI)
    assert broken_frames[0][0] == "message_start"
    last_event, last_data = broken_frames[-1]
    assert last_event == "error"
    assert orjson.loads(last_data)["type"] == "error"
    assert "message_stop" not in [event for event, _ in broken_frames]

    assert healthy.status_code == 200
    assert served_by(healthy.headers) == ("kilo", KIMI)
    assert sse_frames(healthy.content)[-1][0] == "message_stop"


# --- recorded Claude Code haiku traffic ------------------------------------------------------------------


def assert_valid_chat_request(body: dict[str, Any]) -> None:
    """What the Kilo/OpenRouter gateway needs of a Chat body (protocols §2.1, §3, §7.3)."""
    assert body["model"] == KIMI
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "metadata" not in body
    assert "user" not in body
    assert b"cache_control" not in orjson.dumps(body)
    for tool in body["tools"]:
        assert tool["type"] == "function"
        assert 0 < len(tool["function"]["name"]) <= 64
    messages = body["messages"]
    assert messages[0]["role"] == "system"
    called: set[str] = set()
    for message in messages:
        assert message["role"] in {"system", "user", "assistant", "tool"}
        for call in message.get("tool_calls") or []:
            called.add(call["id"])
        if message["role"] == "tool":
            assert message["tool_call_id"] in called


@pytest.mark.parametrize("name", CAPTURES)
async def test_recorded_claude_code_haiku_requests_reach_kilo_as_valid_chat_requests(
    tmp_path: Path, name: str
) -> None:
    recorded = load_json(fixture_path(f"claude_code/{name}"))
    headers = {
        key: value for key, value in recorded["headers"].items() if key.lower() not in _CONNECTION_HEADERS
    }
    tool_names = [tool["name"] for tool in recorded["body"]["tools"] if not tool.get("defer_loading")]

    async with served(tmp_path) as lane, httpx.AsyncClient(base_url=lane.url, timeout=TIMEOUT) as http:
        answer = await http.post(
            recorded["path"],
            params=recorded["query"],
            content=orjson.dumps(recorded["body"]),
            headers=headers,
        )
        (body,) = lane.kilo_bodies()

    assert answer.status_code == 200, answer.text
    assert served_by(answer.headers) == ("kilo", KIMI)
    assert sse_frames(answer.content)[-1][0] == "message_stop"
    assert_valid_chat_request(body)
    assert [tool["function"]["name"] for tool in body["tools"]] == tool_names


# --- tokens and models -----------------------------------------------------------------------------------


async def test_haiku_token_counts_are_estimated_without_asking_kilo(tmp_path: Path) -> None:
    async with served(tmp_path) as lane:
        async with lane.sdk() as sdk:
            counted = await sdk.messages.count_tokens(
                model=HAIKU,
                tools=[READ_TOOL],  # type: ignore[list-item]
                messages=ask(),  # type: ignore[arg-type]
            )

        assert lane.up.kilo.requests == []

    assert counted.input_tokens > 10


async def test_kilos_free_models_are_listed_under_the_provider_prefix(tmp_path: Path) -> None:
    async with served(tmp_path) as lane, lane.sdk() as sdk:
        ids = [model.id async for model in sdk.models.list(limit=1000)]

    assert ids[:3] == ["claude-opus-5-5", "claude-sonnet-4-5", "claude-haiku-4-5"]
    assert {f"kilo/{KIMI}", "kilo/minimax/minimax-m2.5:free"} <= set(ids)
    assert "kilo/moonshotai/kimi-k2.5" not in ids
