"""A new user's path through the real server: log in with a ChatGPT account, then talk to it with the
official Anthropic SDK, the way Claude Code does (DESIGN §4–§7, protocols §7).

The server is built exactly as ``relaygate serve`` builds it (``create_app`` from ``RELAYGATE_*``
settings, the ``codex`` plugin from its entry point, SQLite in ``RELAYGATE_HOME``) and served on
127.0.0.1; the ChatGPT backend and the OAuth issuer are the fakes of :mod:`tests.fakes`, which refuse
what the real ones refuse.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import anthropic
import orjson
import pytest

from gateway_providers._tokenizer import count_texts, load_tokenizer
from gateway_providers.codex.tokens import countable
from tests.e2e_support import ACCOUNT_ID, EMAIL, MODEL, PLAN, UPSTREAM_MODEL, Served, browse, served_gateway
from tests.fakes import Reasoning, model_info, reasoning_text, text, tool_call

pytestmark = pytest.mark.anyio

READ_TOOL: Any = {
    "name": "Read",
    "description": "Read a file from the local filesystem.",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string", "description": "Absolute path of the file"}},
        "required": ["file_path"],
    },
}
ASK: Any = [{"role": "user", "content": "What does /home/user/project/notes.txt say?"}]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """One event loop for the module, so the logged-in gateway below is started once."""
    return "asyncio"


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[Served]:
    """A gateway of its own, with no account yet."""
    async with served_gateway(tmp_path) as served:
        yield served


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """The gateway after a browser login; the Haiku lane is off, so every lane is served by codex."""
    home = tmp_path_factory.mktemp("claude-code")
    async with served_gateway(home, env={"RELAYGATE_HAIKU_LANE": "off"}) as served:
        served.codex.set_models([model_info(UPSTREAM_MODEL), model_info("gpt-5.6-codex")])
        await served.login()
        yield served


@pytest.fixture
def served(gateway: Served) -> Served:
    """The shared logged-in gateway, its fake backend's script and recording emptied."""
    gateway.codex.reset()
    return gateway


def with_state(callback_url: str, state: str) -> str:
    """``callback_url`` with its ``state`` replaced."""
    parts = urlsplit(callback_url)
    query = dict(parse_qsl(parts.query))
    query["state"] = state
    return parts._replace(query=urlencode(query)).geturl()


def json_keys(value: Any) -> set[str]:
    """Every object key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value).union(*(json_keys(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(json_keys(item) for item in value))
    return set()


# --- 1. logging in -----------------------------------------------------------------------------------


async def test_a_browser_login_adds_the_account_with_the_id_token_claims(fresh: Served) -> None:
    account = await fresh.login()

    assert account["email"] == EMAIL
    assert account["accountId"] == ACCOUNT_ID
    assert account["planType"] == PLAN
    assert account["status"] == "ok"
    assert account["isActive"] is True
    assert account["tokenExpired"] is False
    listing = await fresh.accounts()
    assert (listing["activeAccount"], listing["total"]) == (EMAIL, 1)


async def test_the_account_listing_never_carries_a_token(fresh: Served) -> None:
    await fresh.login()

    raw = (await fresh.admin.get("/accounts")).text
    assert {key for key in json_keys(orjson.loads(raw)) if "token" in key.lower()} == {"tokenExpired"}
    assert fresh.oauth.secrets(), "the issuer minted tokens"
    assert [secret for secret in fresh.oauth.secrets() if secret in raw] == []


async def test_the_login_start_does_not_reveal_the_pkce_verifier(fresh: Served) -> None:
    started = await fresh.begin_login()

    assert set(started) == {"status", "oauth_url", "state", "callback_port"}
    query = dict(parse_qsl(urlsplit(started["oauth_url"]).query))
    assert query["code_challenge_method"] == "S256"
    assert "code_verifier" not in query


async def test_the_one_shot_callback_listener_closes_after_the_login(fresh: Served) -> None:
    started = await fresh.begin_login()
    port = started["callback_port"]
    fresh.oauth.login_as(fresh.identity)
    await browse(started["oauth_url"])

    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "nothing listens on the callback port any more"


async def test_a_login_completes_through_the_gateways_own_callback(fresh: Served) -> None:
    started = await fresh.begin_login()
    callback = fresh.callback_url(started["oauth_url"])

    page = await browse(fresh.on_gateway(callback))

    assert page.status == 200
    assert EMAIL in page.text
    assert (await fresh.account())["status"] == "ok"


async def test_a_login_completes_by_pasting_the_callback_url(fresh: Served) -> None:
    started = await fresh.begin_login()
    callback = fresh.callback_url(started["oauth_url"])

    answer = await fresh.admin.post("/accounts/add/manual", json={"callbackUrl": callback})

    assert answer.status_code == 200, answer.text
    assert answer.json()["success"] is True
    assert answer.json()["email"] == EMAIL
    assert [secret for secret in fresh.oauth.secrets() if secret in answer.text] == []
    assert (await fresh.account())["accountId"] == ACCOUNT_ID


@pytest.mark.parametrize("receiver", ["listener", "gateway"])
async def test_a_callback_with_a_wrong_state_is_refused_and_stores_nothing(
    fresh: Served, receiver: str
) -> None:
    started = await fresh.begin_login()
    callback = fresh.callback_url(started["oauth_url"])
    forged = with_state(callback, "forged-state")
    if receiver == "gateway":
        forged = fresh.on_gateway(forged)

    page = await browse(forged)

    assert page.status == 400
    assert "state" in page.text
    assert (await fresh.accounts())["total"] == 0
    assert fresh.oauth.exchanges == 0, "the code was not spent"
    genuine = await browse(callback)
    assert genuine.status == 200, "the login in progress survives a forged callback"
    assert (await fresh.accounts())["total"] == 1


# --- 2. the Anthropic SDK ------------------------------------------------------------------------------


async def test_a_message_is_answered_by_the_codex_backend(served: Served) -> None:
    served.codex.script(text("Hello from Codex."))

    async with served.anthropic() as claude:
        raw = await claude.messages.with_raw_response.create(model=MODEL, max_tokens=256, messages=ASK)
        message = await raw.parse()

    assert [block.text for block in message.content if block.type == "text"] == ["Hello from Codex."]
    assert (message.model, message.stop_reason) == (MODEL, "end_turn")
    assert (raw.headers["x-relaygate-provider"], raw.headers["x-relaygate-model"]) == (
        "codex",
        UPSTREAM_MODEL,
    )
    (call,) = served.codex.responses_calls()
    assert call.body["model"] == UPSTREAM_MODEL
    assert call.header("chatgpt-account-id") == ACCOUNT_ID


async def test_a_streamed_answer_equals_the_whole_answer(served: Served) -> None:
    answer = reasoning_text(("Thinking it over.",), "The same answer twice.", encrypted_content="gAAAAB-same")
    served.codex.script(answer, times=2)
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}

    async with served.anthropic() as claude:
        whole = await claude.messages.create(model=MODEL, max_tokens=4096, messages=ASK, thinking=thinking)
        async with claude.messages.stream(
            model=MODEL, max_tokens=4096, messages=ASK, thinking=thinking
        ) as stream:
            kinds = [event.type async for event in stream]
            streamed = await stream.get_final_message()

    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in whole.content]
    assert [b.type for b in whole.content] == ["thinking", "text"]
    assert (streamed.stop_reason, streamed.usage) == (whole.stop_reason, whole.usage)


async def test_a_tool_call_round_trip(served: Served) -> None:
    served.codex.script(tool_call("Read", {"file_path": "/home/user/project/notes.txt"}, call_id="call_e2e"))
    served.codex.script(text("The notes say: buy milk."))

    async with served.anthropic() as claude:
        first = await claude.messages.with_raw_response.create(
            model=MODEL, max_tokens=1024, tools=[READ_TOOL], messages=ASK
        )
        assistant = first.http_response.json()["content"]
        message = await first.parse()
        (use,) = [block for block in message.content if block.type == "tool_use"]
        result: Any = {"type": "tool_result", "tool_use_id": use.id, "content": "buy milk"}
        second = await claude.messages.create(
            model=MODEL,
            max_tokens=1024,
            tools=[READ_TOOL],
            messages=[
                *ASK,
                {"role": "assistant", "content": assistant},
                {"role": "user", "content": [result]},
            ],
        )

    assert (use.name, use.input) == ("Read", {"file_path": "/home/user/project/notes.txt"})
    assert message.stop_reason == "tool_use"
    assert [block.text for block in second.content if block.type == "text"] == ["The notes say: buy milk."]
    items = served.codex.responses_calls()[1].body["input"]
    (at,) = [i for i, item in enumerate(items) if item["type"] == "function_call"]
    call, output = items[at], items[at + 1]
    assert (call["name"], orjson.loads(call["arguments"])) == ("Read", use.input)
    assert output["type"] == "function_call_output"
    assert output["call_id"] == call["call_id"] == use.id
    assert output["output"] == "buy milk"


async def test_a_streamed_tool_call_reaches_the_sdk_with_its_input(served: Served) -> None:
    served.codex.script(
        tool_call("Read", {"file_path": "/home/user/project/notes.txt"}, preamble="Let me look.")
    )

    async with (
        served.anthropic() as claude,
        claude.messages.stream(model=MODEL, max_tokens=1024, tools=[READ_TOOL], messages=ASK) as stream,
    ):
        final = await stream.get_final_message()

    *before, use = final.content
    assert use.type == "tool_use"
    assert (use.name, use.input) == ("Read", {"file_path": "/home/user/project/notes.txt"})
    assert [block.text for block in before if block.type == "text"] == ["Let me look."]
    assert final.stop_reason == "tool_use"


async def test_thinking_carries_the_reasoning_back_to_the_backend(served: Served) -> None:
    opaque = "gAAAAABe2e-opaque-reasoning-" + "x" * 40
    served.codex.script(reasoning_text(("Looking at the file first.",), "Done.", encrypted_content=opaque))
    served.codex.script(text("Continuing."))
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}

    async with served.anthropic() as claude:
        first = await claude.messages.with_raw_response.create(
            model=MODEL, max_tokens=4096, thinking=thinking, messages=ASK
        )
        assistant = first.http_response.json()["content"]
        message = await first.parse()
        await claude.messages.create(
            model=MODEL,
            max_tokens=4096,
            thinking=thinking,
            messages=[
                *ASK,
                {"role": "assistant", "content": assistant},
                {"role": "user", "content": "go on"},
            ],
        )

    block = message.content[0]
    assert block.type == "thinking"
    assert block.thinking == "Looking at the file first."
    assert block.signature.startswith("rg1.")
    assert opaque not in block.signature, "the token travels wrapped"
    items = served.codex.responses_calls()[1].body["input"]
    reasoning = [item for item in items if item["type"] == "reasoning"]
    assert [item["encrypted_content"] for item in reasoning] == [opaque]
    kinds = [item.get("role", item["type"]) for item in items]
    assert kinds.index("reasoning") < kinds.index("assistant"), "replayed in place, before the answer text"


async def test_count_tokens_counts_exactly_what_the_backend_would_receive(served: Served) -> None:
    async with served.anthropic() as claude:
        counted = await claude.messages.count_tokens(model=MODEL, tools=[READ_TOOL], messages=ASK)
        again = await claude.messages.count_tokens(model=MODEL, tools=[READ_TOOL], messages=ASK)
        await claude.messages.create(model=MODEL, max_tokens=256, tools=[READ_TOOL], messages=ASK)

    (call,) = served.codex.responses_calls()
    texts, estimated = countable(call.body)
    assert counted.input_tokens > 0
    assert counted.input_tokens == again.input_tokens
    assert counted.input_tokens == count_texts(load_tokenizer(), texts) + estimated


async def test_the_model_list_has_the_lane_aliases_and_the_backends_models(served: Served) -> None:
    async with served.anthropic() as claude:
        ids = [model.id async for model in claude.models.list()]

    assert ids[:3] == ["claude-opus-5-5", "claude-sonnet-4-5", "claude-haiku-4-5"]
    assert {"gpt-5.5", "gpt-5.6-codex"} <= set(ids), "the account's catalog, not a bundled list"


async def test_an_answer_without_reasoning_summary_still_has_its_thinking_signature(served: Served) -> None:
    served.codex.script(text("Short.", reasoning=Reasoning(encrypted_content="gAAAAB-no-summary")))

    async with served.anthropic() as claude:
        message = await claude.messages.create(
            model=MODEL, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048}, messages=ASK
        )

    block = message.content[0]
    assert block.type == "thinking"
    assert (block.thinking, block.signature[:4]) == ("", "rg1.")


async def test_the_sdk_sees_a_missing_account_as_an_authentication_error(fresh: Served) -> None:
    async with fresh.anthropic() as claude:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await claude.messages.create(model=MODEL, max_tokens=64, messages=ASK)

    assert caught.value.status_code == 401
    assert fresh.codex.responses_calls() == []
