"""What a client sees when something goes wrong, through the real server (DESIGN §6, §7, §8;
protocols §7.9, §9): errors in the shape of the API called, with the status that says what happened;
failures after the answer started as an in-band ``event: error``; bounded waits instead of hangs;
keep-alives during long silences; and no token, code or PKCE verifier in any answer or log line.

The waits are shortened through the documented settings (``RELAYGATE_CODEX_FIRST_EVENT_TIMEOUT``,
``RELAYGATE_CODEX_IDLE_TIMEOUT``) and ``ServerConfig.keepalive_seconds``; the time limits asserted
here only check that nothing hangs, not how fast anything is.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from gateway_core.streaming import ErrorEvent, MessageStop, accumulate
from tests.e2e_support import (
    MODEL,
    Dripping,
    Served,
    Spliced,
    anthropic_events,
    browse,
    served_gateway,
    sse_frames,
    within,
)
from tests.fakes import text

pytestmark = pytest.mark.anyio

FIRST_EVENT_TIMEOUT = 1.0
IDLE_TIMEOUT = 1.0
KEEPALIVE_SECONDS = 0.05
NOT_HANGING = 5.0
"""Seconds within which an answer that must come "at once" has to arrive (a loose bound)."""

HELLO: dict[str, Any] = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": "hi"}]}
CHAT_HELLO: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
FIRST_TEXT = "response.output_text.delta"


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[Served]:
    """The gateway with no account."""
    async with served_gateway(tmp_path) as served:
        yield served


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """One event loop for the module, so the logged-in gateway below is started once."""
    return "asyncio"


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """The gateway after a login, with short upstream waits and frequent keep-alives."""
    env = {
        "RELAYGATE_CODEX_FIRST_EVENT_TIMEOUT": str(FIRST_EVENT_TIMEOUT),
        "RELAYGATE_CODEX_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
    }
    home = tmp_path_factory.mktemp("faults")
    async with served_gateway(home, env=env, keepalive_seconds=KEEPALIVE_SECONDS) as served:
        await served.login()
        yield served


@pytest.fixture
def served(gateway: Served) -> Served:
    """The shared gateway, its fake backend's script and recording emptied."""
    gateway.codex.reset()
    return gateway


def anthropic_error(answer: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an Anthropic-shaped error answer, after checking the shape."""
    body = answer.json()
    assert body["type"] == "error"
    assert set(body["error"]) >= {"type", "message"}
    error: dict[str, Any] = body["error"]
    return error


def openai_error(answer: httpx.Response) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error answer, after checking the shape."""
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


def answer_text(raw: bytes) -> str:
    """The text of a complete Anthropic stream."""
    events = anthropic_events(raw)
    assert isinstance(events[-1], MessageStop), events[-1]
    response = accumulate(events)
    return "".join(part.text for part in response.content if part.type == "text")


async def post_stream(served: Served, body: dict[str, Any] | None = None) -> httpx.Response:
    return await served.admin.post("/v1/messages", json={**(body or HELLO), "stream": True})


# --- no account ------------------------------------------------------------------------------------


async def test_no_account_is_a_401_at_once(fresh: Served) -> None:
    answer, _ = await within(NOT_HANGING, lambda: fresh.admin.post("/v1/messages", json=HELLO))

    assert answer.status_code == 401
    error = anthropic_error(answer)
    assert error["type"] == "authentication_error"
    assert "account" in error["message"].lower()


async def test_no_account_is_a_401_status_for_a_stream_too(fresh: Served) -> None:
    answer, _ = await within(NOT_HANGING, lambda: post_stream(fresh))

    assert answer.status_code == 401
    assert anthropic_error(answer)["type"] == "authentication_error"


async def test_no_account_is_a_401_in_the_openai_shape_on_chat_completions(fresh: Served) -> None:
    answer, _ = await within(NOT_HANGING, lambda: fresh.admin.post("/v1/chat/completions", json=CHAT_HELLO))

    assert answer.status_code == 401
    assert openai_error(answer)["type"] == "authentication_error"


# --- bad input -------------------------------------------------------------------------------------

BAD_MESSAGES: list[tuple[str, bytes, str]] = [
    ("malformed-json", b'{"model": "claude-opus-5-5", "messages": [', "JSON"),
    ("empty-body", b"", "body"),
    ("no-model", orjson.dumps({k: v for k, v in HELLO.items() if k != "model"}), "model"),
    ("no-messages", orjson.dumps({k: v for k, v in HELLO.items() if k != "messages"}), "messages"),
    ("no-max-tokens", orjson.dumps({k: v for k, v in HELLO.items() if k != "max_tokens"}), "max_tokens"),
    (
        "unknown-block",
        orjson.dumps({**HELLO, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]}),
        "messages.0.content.0.type",
    ),
]

BAD_CHATS: list[tuple[str, bytes, str]] = [
    ("malformed-json", b'{"model": "claude-opus-5-5", "messages": [', "JSON"),
    ("no-model", orjson.dumps({"messages": CHAT_HELLO["messages"]}), "model"),
    ("no-messages", orjson.dumps({"model": MODEL}), "messages"),
    (
        "unknown-part",
        orjson.dumps({**CHAT_HELLO, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]}),
        "messages.0.content.0.type",
    ),
]


@pytest.mark.parametrize(
    ("body", "field"), [case[1:] for case in BAD_MESSAGES], ids=[c[0] for c in BAD_MESSAGES]
)
async def test_a_bad_message_request_is_a_400_naming_the_field(
    served: Served, body: bytes, field: str
) -> None:
    answer = await served.admin.post(
        "/v1/messages", content=body, headers={"content-type": "application/json"}
    )

    assert answer.status_code == 400
    error = anthropic_error(answer)
    assert error["type"] == "invalid_request_error"
    assert field in error["message"]
    assert served.codex.responses_calls() == []


@pytest.mark.parametrize(("body", "field"), [case[1:] for case in BAD_CHATS], ids=[c[0] for c in BAD_CHATS])
async def test_a_bad_chat_request_is_a_400_in_the_openai_shape(
    served: Served, body: bytes, field: str
) -> None:
    answer = await served.admin.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )

    assert answer.status_code == 400
    error = openai_error(answer)
    assert error["type"] == "invalid_request_error"
    assert field in error["message"]
    if field != "JSON":
        assert error["param"] == field
    assert served.codex.responses_calls() == []


# --- failures after the answer started ---------------------------------------------------------------


def assert_in_band_error(raw: bytes) -> dict[str, Any]:
    """A stream that started and then failed: ``event: error`` last, no ``message_stop``."""
    frames = sse_frames(raw)
    names = [event for event, _ in frames]
    assert names[0] == "message_start"
    assert "content_block_delta" in names, "the answer had started"
    assert names[-1] == "error"
    assert "message_stop" not in names
    payload: dict[str, Any] = orjson.loads(frames[-1][1])
    assert payload["type"] == "error"
    assert isinstance(anthropic_events(raw)[-1], ErrorEvent)
    return payload


async def test_garbage_from_the_backend_mid_stream_is_an_in_band_error(served: Served) -> None:
    garbage = b"<html><body>502 Bad Gateway</body></html>\r\n\r\ndata: {not json\n\n"
    served.codex.script(Spliced(text("This answer will not finish."), after=FIRST_TEXT, tail=garbage))

    answer = await post_stream(served)

    assert answer.status_code == 200
    payload = assert_in_band_error(answer.content)
    assert payload["error"]["type"] == "api_error"


async def test_a_backend_disconnect_mid_stream_is_an_in_band_error(served: Served) -> None:
    served.codex.script(Spliced(text("This answer will be cut."), after=FIRST_TEXT, abort=True))

    answer = await post_stream(served)

    assert answer.status_code == 200
    assert_in_band_error(answer.content)


@pytest.mark.parametrize("fault", ["garbage", "disconnect"])
async def test_the_server_keeps_serving_after_a_broken_stream(served: Served, fault: str) -> None:
    garbage = fault == "garbage"
    broken = Spliced(
        text("Broken."), after=FIRST_TEXT, tail=b"data: {oops\n\n" if garbage else b"", abort=not garbage
    )
    served.codex.script(broken)
    served.codex.script(text("Still here."))

    await post_stream(served)
    answer = await post_stream(served)

    assert answer.status_code == 200
    assert answer_text(answer.content) == "Still here."


async def test_a_non_streamed_answer_broken_mid_way_is_an_error_status(served: Served) -> None:
    served.codex.script(Spliced(text("Cut."), after=FIRST_TEXT, abort=True))

    answer = await served.admin.post("/v1/messages", json=HELLO)

    assert answer.status_code == 502
    assert anthropic_error(answer)["type"] == "api_error"


async def test_a_stream_that_goes_silent_ends_with_an_in_band_timeout(served: Served) -> None:
    stalled = Spliced(text("Then nothing."), after=FIRST_TEXT, pause=IDLE_TIMEOUT + 3, rest=True)
    served.codex.script(stalled)

    answer, _ = await within(IDLE_TIMEOUT + NOT_HANGING, lambda: post_stream(served))

    payload = assert_in_band_error(answer.content)
    assert payload["error"]["type"] == "timeout_error"


async def test_a_client_that_hangs_up_mid_stream_ends_the_upstream_request(served: Served) -> None:
    dripping = Dripping(text("word " * 100), interval=0.05)
    served.codex.script(dripping)

    async with served.anthropic() as claude, claude.messages.stream(**HELLO) as stream:
        async for event in stream:
            if event.type == "content_block_delta":
                break  # the user pressed Esc

    with anyio.fail_after(NOT_HANGING):
        await dripping.hung_up.wait()


# --- stalls and keep-alives --------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_backend_stalled_before_its_first_event_is_a_504(served: Served, stream: bool) -> None:
    served.codex.script(text("Too late.", delay_first_event=FIRST_EVENT_TIMEOUT + NOT_HANGING + 5))

    answer, _ = await within(
        FIRST_EVENT_TIMEOUT + NOT_HANGING,
        lambda: served.admin.post("/v1/messages", json={**HELLO, "stream": stream}),
    )

    assert answer.status_code == 504
    assert anthropic_error(answer)["type"] == "timeout_error"


async def test_a_long_silence_after_the_answer_started_carries_pings(served: Served) -> None:
    pause = KEEPALIVE_SECONDS * 6  # well inside the idle timeout
    served.codex.script(Spliced(text("Hello after a pause."), after=FIRST_TEXT, pause=pause, rest=True))

    answer = await post_stream(served)

    names = [event for event, _ in sse_frames(answer.content)]
    first_delta = names.index("content_block_delta")
    assert "ping" in names[first_delta:], "a keep-alive during the silence"
    pings = [orjson.loads(data) for event, data in sse_frames(answer.content) if event == "ping"]
    assert pings[0] == {"type": "ping"}
    assert names[-1] == "message_stop"
    assert answer_text(answer.content) == "Hello after a pause."


# --- secrets ---------------------------------------------------------------------------------------


async def test_no_token_code_or_verifier_reaches_an_answer_or_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    async with served_gateway(tmp_path) as served:
        await served.login()  # the one-shot listener
        started = await served.begin_login()  # the gateway's own callback
        seen.append((await browse(served.on_gateway(served.callback_url(started["oauth_url"])))).text)
        started = await served.begin_login()  # the pasted callback URL
        callback = served.callback_url(started["oauth_url"])
        answers = [await served.admin.post("/accounts/add/manual", json={"url": callback})]
        served.up.registry.revoke_account(served.identity.account_id)  # a 401, then a refresh
        answers.append(await served.admin.post("/v1/messages", json=HELLO))
        answers.append(await post_stream(served))
        answers.append(await served.admin.post("/v1/messages/count_tokens", json={"model": MODEL, **HELLO}))
        answers.append(await served.admin.post("/v1/chat/completions", json=CHAT_HELLO))
        answers.append(await served.admin.post("/accounts/refresh"))
        for path in ("/accounts", "/accounts/status", "/accounts/quota", "/accounts/usage", "/v1/models"):
            answers.append(await served.admin.get(path))
        secrets = served.oauth.secrets()

    assert [answer.status_code for answer in answers] == [200] * len(answers)
    assert served.oauth.exchanges == 3
    assert len(served.oauth.issued) >= 5, "three logins and two refreshes"
    seen.extend(answer.text for answer in answers)
    leaked = [secret for secret in secrets for body in seen if secret in body]
    assert leaked == []
    logged = [secret for secret in secrets if secret in caplog.text]
    assert logged == []
    assert {r.name.split(".")[0] for r in caplog.records} >= {"gateway_providers", "httpx"}, "logs captured"
