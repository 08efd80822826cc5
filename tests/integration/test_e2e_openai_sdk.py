"""The official OpenAI SDK against the real server's ``/v1`` (protocols §2, §7.3), answered by the
fake Codex backend through the ``codex`` plugin, after a browser login."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.codex_rules import assert_codex_accepts
from tests.e2e_support import MODEL, UPSTREAM_MODEL, Served, served_gateway, sse_frames
from tests.fakes import model_info, text, tool_call
from tests.fixtures import fixture_files, load_json

pytestmark = pytest.mark.anyio

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK: Any = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """One event loop for the module, so the logged-in gateway below is started once."""
    return "asyncio"


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    async with served_gateway(tmp_path_factory.mktemp("openai")) as served:
        served.codex.set_models([model_info("gpt-5.5"), model_info("gpt-5.6-codex")])
        await served.login()
        yield served


@pytest.fixture
def served(gateway: Served) -> Served:
    gateway.codex.reset()
    return gateway


async def test_a_chat_completion_is_answered_by_the_codex_backend(served: Served) -> None:
    served.codex.script(text("Sunny in Paris."))

    async with served.openai() as gpt:
        raw = await gpt.chat.completions.with_raw_response.create(model=MODEL, messages=ASK)
        completion = raw.parse()

    (choice,) = completion.choices
    assert (choice.message.role, choice.message.content) == ("assistant", "Sunny in Paris.")
    assert choice.finish_reason == "stop"
    assert completion.model == MODEL
    assert raw.headers["x-relaygate-model"] == UPSTREAM_MODEL
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    (call,) = served.codex.responses_calls()
    assert_codex_accepts(call.body)


async def test_a_streamed_chat_completion_ends_with_its_usage(served: Served) -> None:
    served.codex.script(text("Sunny and warm in Paris today."))

    async with served.openai() as gpt:
        stream = await gpt.chat.completions.create(
            model=MODEL, messages=ASK, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]

    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "Sunny and warm in Paris today."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


async def test_a_tool_call_comes_back_with_parsed_arguments_and_its_result_goes_upstream(
    served: Served,
) -> None:
    served.codex.script(tool_call("get_weather", {"city": "Paris"}, call_id="call_weather1"))
    served.codex.script(text("It is 21 C in Paris."))

    async with served.openai() as gpt:
        first = await gpt.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER_TOOL])
        (call,) = first.choices[0].message.tool_calls or []
        assert call.type == "function"
        reply: Any = [
            *ASK,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "21 C"},
        ]
        second = await gpt.chat.completions.create(model=MODEL, messages=reply, tools=[WEATHER_TOOL])

    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    assert second.choices[0].message.content == "It is 21 C in Paris."
    items = served.codex.responses_calls()[1].body["input"]
    (at,) = [i for i, item in enumerate(items) if item["type"] == "function_call"]
    assert items[at + 1] == {
        "type": "function_call_output",
        "call_id": items[at]["call_id"],
        "output": "21 C",
    }
    assert items[at]["call_id"] == call.id


async def test_the_model_list_names_the_lanes_and_the_backends_models(served: Served) -> None:
    async with served.openai() as gpt:
        ids = [model.id async for model in gpt.models.list()]

    assert {"claude-opus-5-5", "claude-sonnet-4-5", "gpt-5.5", "gpt-5.6-codex"} <= set(ids)


@pytest.mark.parametrize(
    "path", fixture_files("claude_code", "sdk_*.json"), ids=lambda p: p.name.removesuffix(".json")
)
async def test_a_recorded_openai_sdk_request_is_answered(served: Served, path: Path) -> None:
    capture = load_json(path)
    headers = {k: v for k, v in capture["headers"].items() if k.lower() not in ("host", "content-length")}

    async with httpx.AsyncClient(timeout=20) as client:
        answer = await client.post(
            f"{served.url}{capture['path']}", content=orjson.dumps(capture["body"]), headers=headers
        )

    assert answer.status_code == 200, answer.text
    if capture["body"].get("stream"):
        frames = sse_frames(answer.content)
        assert frames[-1] == (None, "[DONE]")
        chunks = [orjson.loads(data) for _, data in frames[:-1]]
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"]["total_tokens"] > 0
    else:
        assert answer.json()["choices"][0]["message"]["content"]
    (call,) = served.codex.responses_calls()
    assert_codex_accepts(call.body)
