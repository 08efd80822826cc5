"""Every request Claude Code was recorded sending (fixtures/claude_code) replayed against the real
server, with its recorded path, query and headers: each gets a correct Anthropic answer, and every
request the server makes upstream is one the ChatGPT Codex backend accepts (protocols §6, §7.1, §9).

Only the credentials differ from the capture: the gateway's own ``x-api-key`` placeholder replaces
whatever key the capture carried. The Haiku lane is off, so the haiku captures reach the Codex
backend too and its rules are checked on them as well.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway_core.streaming import ErrorEvent, MessageStop, accumulate
from tests.codex_rules import assert_codex_accepts
from tests.e2e_support import Served, anthropic_events, served_gateway, sse_frames
from tests.fixtures import claude_code_body, fixture_files, fixture_path, load_json

pytestmark = pytest.mark.anyio

CAPTURES = [
    path for prefix in ("cc332_", "cc_") for path in fixture_files("claude_code", f"{prefix}*_request.json")
]
DROPPED_HEADERS = frozenset({"host", "content-length", "x-api-key", "authorization"})
SESSION_HEADER = "x-claude-code-session-id"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """One event loop for the module, so the server below is started once for every capture."""
    return "asyncio"


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    home = tmp_path_factory.mktemp("captures")
    async with served_gateway(home, env={"RELAYGATE_HAIKU_LANE": "off"}) as gateway:
        await gateway.login()
        yield gateway


@pytest.fixture
def served(gateway: Served) -> Served:
    """The shared gateway, its fake backend's recording emptied."""
    gateway.codex.reset()
    return gateway


def capture_name(path: Path) -> str:
    return path.name.removesuffix("_request.json")


def capture_path(name: str) -> Path:
    return fixture_path(f"claude_code/{name}_request.json")


def request_headers(capture: dict[str, Any]) -> dict[str, str]:
    headers = {name.lower(): value for name, value in capture["headers"].items()}
    kept = {name: value for name, value in headers.items() if name not in DROPPED_HEADERS}
    return {**kept, "x-api-key": "sk-ant-placeholder"}


async def replay(served: Served, path: Path) -> httpx.Response:
    """POST the capture to the gateway as Claude Code sent it: recorded path, query and headers."""
    capture = load_json(path)
    query = f"?{capture['query']}" if capture.get("query") else ""
    async with httpx.AsyncClient(timeout=20) as client:
        return await client.post(
            f"{served.url}{capture['path']}{query}",
            content=orjson.dumps(claude_code_body(capture_name(path))),
            headers=request_headers(capture),
        )


def check_stream(raw: bytes, model: str) -> None:
    """An Anthropic stream as Claude Code needs it: ``event:`` lines naming each data's type, ending
    with ``message_stop``, decoding to a complete answer for the model asked."""
    frames = sse_frames(raw)
    assert frames, "an empty stream"
    for event, data in frames:
        assert event is not None, f"a frame without an event: line: {data[:80]}"
        assert orjson.loads(data)["type"] == event
    assert frames[-1][0] == "message_stop"
    assert "error" not in [event for event, _ in frames]
    events = anthropic_events(raw)
    assert not [event for event in events if isinstance(event, ErrorEvent)]
    assert isinstance(events[-1], MessageStop)
    response = accumulate(events)
    assert response.model == model
    assert response.content
    assert response.stop_reason == "end_turn"


def check_message(body: dict[str, Any], model: str) -> None:
    assert (body["type"], body["role"], body["model"]) == ("message", "assistant", model)
    assert [block["type"] for block in body["content"]][-1] == "text"
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["output_tokens"] > 0


@pytest.mark.parametrize("path", CAPTURES, ids=capture_name)
async def test_a_recorded_claude_code_request_gets_a_correct_answer(served: Served, path: Path) -> None:
    capture = load_json(path)
    body = claude_code_body(capture_name(path))

    answer = await replay(served, path)

    assert answer.status_code == 200, answer.text
    if capture["path"].endswith("/count_tokens"):
        counted = answer.json()
        assert set(counted) == {"input_tokens"}
        assert counted["input_tokens"] > 0
        assert served.codex.responses_calls() == [], "counting is offline"
        return
    if body.get("stream"):
        assert answer.headers["content-type"].startswith("text/event-stream")
        check_stream(answer.content, body["model"])
    else:
        check_message(answer.json(), body["model"])
    assert answer.headers["x-relaygate-provider"] == "codex"


@pytest.mark.parametrize("path", [p for p in CAPTURES if "count_tokens" not in p.name], ids=capture_name)
async def test_what_reaches_the_backend_passes_its_rules_and_names_the_session(
    served: Served, path: Path
) -> None:
    capture = load_json(path)
    session = {name.lower(): value for name, value in capture["headers"].items()}[SESSION_HEADER]

    answer = await replay(served, path)

    assert answer.status_code == 200, answer.text
    (call,) = served.codex.responses_calls()
    assert_codex_accepts(call.body)
    assert call.header("session_id") == session
    assert call.body["prompt_cache_key"] == session


@pytest.mark.parametrize("version", ["cc332", "cc"])
async def test_instructions_stay_byte_identical_across_the_turns_of_a_conversation(
    served: Served, version: str
) -> None:
    for turn in ("tool_read_turn1", "tool_read_turn2_tool_result"):
        assert (await replay(served, capture_path(f"{version}_{turn}"))).status_code == 200

    first, second = (call.raw for call in served.codex.responses_calls())
    assert instructions_bytes(first) == instructions_bytes(second)
    assert b"x-anthropic-billing-header" not in instructions_bytes(first)


@pytest.mark.parametrize("version", ["cc332", "cc"])
async def test_a_recorded_tool_result_follows_its_function_call(served: Served, version: str) -> None:
    path = capture_path(f"{version}_tool_read_turn2_tool_result")
    (use,) = [
        block
        for message in claude_code_body(capture_name(path))["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block["type"] == "tool_use"
    ]

    assert (await replay(served, path)).status_code == 200

    items = served.codex.responses_calls()[0].body["input"]
    (at,) = [i for i, item in enumerate(items) if item["type"] == "function_call"]
    assert (items[at]["name"], orjson.loads(items[at]["arguments"])) == (use["name"], use["input"])
    assert items[at + 1]["type"] == "function_call_output"
    assert items[at + 1]["call_id"] == items[at]["call_id"]


def instructions_bytes(raw: bytes) -> bytes:
    """The ``instructions`` value exactly as serialised on the wire."""
    value = orjson.loads(raw)["instructions"]
    encoded = orjson.dumps(value)
    assert encoded in raw, "compact JSON as sent"
    return encoded
