"""The bundled server with the official SDKs as clients, on a scripted in-process provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
import httpx
import openai
import pytest

from gateway_core.errors import RateLimitError
from gateway_core.gateway import Gateway
from gateway_core.models import ToolCallPart, Usage
from gateway_core.streaming import (
    MessageDelta,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    StreamEvent,
    ToolArgumentsDelta,
)
from gateway_server import ServerConfig, create_app
from tests.serving import serve
from tests.unit._fake_provider import FakeProvider, text_events

TOOL_CALL: list[StreamEvent] = [
    MessageStart(id="resp_1", model="gpt-5.5", usage=Usage(input_tokens=12)),
    PartStart(0, ToolCallPart(id="call_abc", name="Read", arguments={})),
    ToolArgumentsDelta(0, '{"file_path":'),
    ToolArgumentsDelta(0, ' "/tmp/a.txt"}'),
    PartStop(0),
    MessageDelta(stop_reason="tool_use", usage=Usage(input_tokens=12, output_tokens=9)),
    MessageStop(),
]


@pytest.fixture
async def codex() -> FakeProvider:
    return FakeProvider("codex", events=text_events("Hello", ", world"), models=["gpt-5.5"])


@pytest.fixture
async def base_url(codex: FakeProvider) -> AsyncIterator[str]:
    app = create_app(Gateway([codex]), config=ServerConfig(port=0))
    async with serve(app) as url:
        yield url


@pytest.fixture
async def claude(base_url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="unused", max_retries=0) as client:
        yield client


@pytest.fixture
async def gpt(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0) as client:
        yield client


@pytest.mark.anyio
async def test_anthropic_sdk_non_stream_answer_echoes_the_requested_model(
    claude: anthropic.AsyncAnthropic,
) -> None:
    raw = await claude.messages.with_raw_response.create(
        model="claude-opus-4-8", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    message = await raw.parse()
    assert [block.text for block in message.content if block.type == "text"] == ["Hello, world"]
    assert message.model == "claude-opus-4-8"
    assert message.stop_reason == "end_turn"
    assert raw.headers["x-relaygate-provider"] == "codex"
    assert raw.headers["x-relaygate-model"] == "gpt-5.5"


@pytest.mark.anyio
async def test_anthropic_sdk_stream_equals_non_stream(claude: anthropic.AsyncAnthropic) -> None:
    client = claude
    request = {
        "model": "claude-sonnet-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with client.messages.stream(**request) as stream:  # type: ignore[arg-type]
        streamed = await stream.get_final_message()
    whole = await client.messages.create(**request)  # type: ignore[call-overload]
    assert streamed.model_dump(exclude={"id"}) == whole.model_dump(exclude={"id"})


@pytest.mark.anyio
async def test_tool_call_reaches_both_sdks(
    codex: FakeProvider, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI
) -> None:
    codex.events = TOOL_CALL
    message = await claude.messages.create(
        model="gpt-5.5", max_tokens=64, messages=[{"role": "user", "content": "read it"}]
    )
    (block,) = message.content
    assert block.type == "tool_use"
    assert (block.id, block.name, block.input) == ("call_abc", "Read", {"file_path": "/tmp/a.txt"})
    completion = await gpt.chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "read it"}]
    )
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_abc",
        "Read",
        '{"file_path":"/tmp/a.txt"}',
    )
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.anyio
async def test_openai_sdk_stream_with_usage(gpt: openai.AsyncOpenAI) -> None:
    client = gpt
    stream = await client.chat.completions.create(
        model="gpt-5.5",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = [], None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(text) == "Hello, world"
    assert usage is not None
    assert usage.completion_tokens == 2


@pytest.mark.anyio
async def test_early_upstream_error_is_a_real_http_status_in_each_shape(
    codex: FakeProvider, base_url: str
) -> None:
    codex.fail = RateLimitError("usage limit reached", retry_after=30.2)
    async with httpx.AsyncClient(base_url=base_url) as http:
        messages = await http.post(
            "/v1/messages",
            json={
                "model": "gpt-5.5",
                "max_tokens": 5,
                "stream": True,
                "messages": [{"role": "user", "content": "x"}],
            },
        )
        chat = await http.post(
            "/v1/chat/completions", json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "x"}]}
        )
    assert messages.status_code == chat.status_code == 429
    assert messages.headers["retry-after"] == chat.headers["retry-after"] == "31"
    assert messages.json() == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "usage limit reached"},
    }
    assert chat.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.anyio
async def test_malformed_bodies_get_400_naming_the_problem(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        not_json = await http.post("/v1/messages", content=b"{nope")
        empty = await http.post("/v1/chat/completions", content=b"")
        bad_block = await http.post(
            "/v1/messages",
            json={
                "model": "x",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "foo"}]}],
            },
        )
    assert not_json.status_code == empty.status_code == bad_block.status_code == 400
    assert "not valid JSON" in not_json.json()["error"]["message"]
    assert empty.json()["error"]["type"] == "invalid_request_error"
    assert "request body is empty" in empty.json()["error"]["message"]
    assert bad_block.json()["error"]["message"] == 'messages.0.content.0.type: unknown block type "foo"'


@pytest.mark.anyio
async def test_beta_query_head_preconnect_health_and_models(
    base_url: str, claude: anthropic.AsyncAnthropic, gpt: openai.AsyncOpenAI
) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        beta = await http.post(
            "/v1/messages?beta=true",
            json={"model": "gpt-5.5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        )
        head = await http.head("/")
        health = await http.get("/health")
        count = await http.post(
            "/v1/messages/count_tokens?beta=true",
            json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "x"}]},
        )
    assert beta.status_code == 200
    assert head.status_code == 200
    assert health.json()["status"] == "ok"
    assert count.json() == {"input_tokens": 7}
    models = await claude.models.list()
    assert "gpt-5.5" in [model.id for model in models.data]
    openai_models = await gpt.models.list()
    assert "gpt-5.5" in [model.id for model in openai_models.data]


@pytest.mark.anyio
async def test_api_key_guards_everything_but_health(codex: FakeProvider) -> None:
    app = create_app(Gateway([codex]), config=ServerConfig(port=0, api_key="s3cret"))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        body = {"model": "gpt-5.5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
        refused = await http.post("/v1/messages", json=body)
        by_header = await http.post("/v1/messages", json=body, headers={"x-api-key": "s3cret"})
        by_bearer = await http.post("/v1/messages", json=body, headers={"authorization": "Bearer s3cret"})
        health = await http.get("/health")
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"
    assert by_header.status_code == by_bearer.status_code == health.status_code == 200


@pytest.mark.anyio
async def test_a_foreign_host_name_is_refused_on_loopback(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        rebinding = await http.get("/health", headers={"host": "attacker.example"})
        local = await http.get("/health", headers={"host": "localhost:8081"})
    assert rebinding.status_code == 403
    assert local.status_code == 200
