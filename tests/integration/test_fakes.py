"""The fake upstreams enforce the real backends' rules and answer in the recorded shapes.

Plain httpx against each fake on 127.0.0.1: if these hold, a gateway test that passes against the
fakes has spoken the upstream protocols as recorded in ../shared/protocols/fixtures.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import orjson
import pytest

from gateway_core.sse import ServerSentEvent, SSEDecoder
from tests.fakes import (
    CLIENT_ID,
    FakeCodex,
    FakeKilo,
    FakeUpstreams,
    Quota,
    UsageLimitReached,
    Window,
    chat_text,
    chat_tool_call,
    cut,
    failed,
    kilo_rate_limited,
    reasoning_text,
    run_fake_upstreams,
    stream_error,
    text,
    tool_call,
)
from tests.fakes.codex_answers import StreamReply
from tests.fakes.jwt import AUTH_CLAIM, b64url, decode_jwt
from tests.fakes.responses_stream import fixture_events
from tests.fixtures import REPO_ROOT, load_http, load_json

pytestmark = pytest.mark.anyio

CODEX_BODY: dict[str, Any] = {
    "model": "gpt-5.5",
    "instructions": "You are a helpful assistant.",
    "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "conversation-1",
}


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstreams]:
    async with run_fake_upstreams() as fakes:
        yield fakes


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


def events_of(raw: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return decoder.feed(raw) + decoder.flush()


def grammar(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Event types with runs of the same delta type collapsed: the shape, not the chunking."""
    shape: list[str] = []
    for name, _ in events:
        if not (shape and shape[-1] == name and name.endswith(".delta")):
            shape.append(name)
    return shape


def shapes(events: list[tuple[str, dict[str, Any]]]) -> dict[str, set[str]]:
    """Payload keys per event type; output items also by item type."""
    keys: dict[str, set[str]] = {}
    for name, payload in events:
        keys.setdefault(name, set()).update(payload)
        item = payload.get("item")
        if isinstance(item, dict):
            keys.setdefault(f"{name}/{item['type']}/{item.get('status')}", set()).update(item)
    return keys


def parsed(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    return [(e.event or "", e.json()) for e in events_of(raw)]


# --- OAuth -------------------------------------------------------------------------------------------


def authorize_url(issuer: str, challenge: str, state: str, **overrides: str) -> str:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": "http://localhost:1455/auth/callback",
        "scope": "openid profile email offline_access",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true",
        "state": state,
        "originator": "codex_cli_rs",
    }
    params.update(overrides)
    return f"{issuer}/oauth/authorize?{urlencode(params)}"


def new_verifier() -> tuple[str, str]:
    verifier = b64url(secrets.token_bytes(64))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


async def authorize(client: httpx.AsyncClient, up: FakeUpstreams, challenge: str) -> dict[str, list[str]]:
    answer = await client.get(authorize_url(up.oauth.base_url, challenge, "state-123"))
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith("http://localhost:1455/auth/callback?")
    return parse_qs(urlsplit(location).query)


async def exchange(client: httpx.AsyncClient, up: FakeUpstreams, code: str, verifier: str) -> httpx.Response:
    return await client.post(
        f"{up.oauth.base_url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://localhost:1455/auth/callback",
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        },
    )


async def refresh(client: httpx.AsyncClient, up: FakeUpstreams, token: str) -> httpx.Response:
    return await client.post(
        f"{up.oauth.base_url}/oauth/token",
        json={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": token},
    )


async def test_code_flow_with_the_right_verifier_yields_tokens_for_the_scripted_identity(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    identity = up.registry.add("ada@example.com", account_id="acc-ada", plan_type="pro")
    up.oauth.login_as(identity)
    verifier, challenge = new_verifier()

    query = await authorize(client, up, challenge)
    answer = await exchange(client, up, query["code"][0], verifier)

    assert query["state"] == ["state-123"]
    assert answer.status_code == 200
    tokens = answer.json()
    assert set(load_json("oauth/token_exchange_response.json")) <= set(tokens)
    claims = decode_jwt(tokens["id_token"])
    assert claims["email"] == "ada@example.com"
    assert claims[AUTH_CLAIM]["chatgpt_account_id"] == "acc-ada"
    assert claims[AUTH_CLAIM]["chatgpt_plan_type"] == "pro"
    assert decode_jwt(tokens["access_token"])["exp"] > time.time()


async def test_code_flow_with_a_wrong_verifier_is_refused(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    _, challenge = new_verifier()
    other_verifier, _ = new_verifier()
    query = await authorize(client, up, challenge)

    answer = await exchange(client, up, query["code"][0], other_verifier)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_an_authorization_code_works_only_once(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    verifier, challenge = new_verifier()
    code = (await authorize(client, up, challenge))["code"][0]

    first = await exchange(client, up, code, verifier)
    second = await exchange(client, up, code, verifier)

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"


async def test_authorize_names_the_parameter_it_refuses(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    _, challenge = new_verifier()
    url = authorize_url(up.oauth.base_url, challenge, "s", originator="something_else")

    answer = await client.get(url)

    assert answer.status_code == 400
    assert answer.json()["error_description"].startswith("originator:")


async def test_login_plays_the_browser_for_a_gateway_built_url(up: FakeUpstreams) -> None:
    identity = up.registry.add("bob@example.com", account_id="acc-bob")
    _, challenge = new_verifier()

    callback = up.oauth.login(authorize_url(up.oauth.base_url, challenge, "xyz"), identity)

    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == ["xyz"]
    assert query["code"][0].startswith("ac_")


async def test_tokens_from_the_issuer_are_accepted_by_the_codex_fake(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    verifier, challenge = new_verifier()
    code = (await authorize(client, up, challenge))["code"][0]
    tokens = (await exchange(client, up, code, verifier)).json()
    account = decode_jwt(tokens["id_token"])[AUTH_CLAIM]["chatgpt_account_id"]

    answer = await client.post(
        f"{up.codex.base_url}/codex/responses",
        json=CODEX_BODY,
        headers={"Authorization": f"Bearer {tokens['access_token']}", "ChatGPT-Account-ID": account},
    )

    assert answer.status_code == 200


async def test_refresh_rotates_and_the_old_refresh_token_is_then_reused(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    tokens = up.oauth.issue_tokens(up.registry.add("cy@example.com", account_id="acc-cy"))

    first = await refresh(client, up, tokens.refresh_token)
    reuse = await refresh(client, up, tokens.refresh_token)

    assert first.status_code == 200
    assert first.json()["refresh_token"] != tokens.refresh_token
    assert reuse.status_code == 401
    assert reuse.json() == load_json("oauth/token_refresh_error_401_refresh_token_reused.json")
    assert up.oauth.refresh_count("acc-cy") == 2


async def test_a_refreshed_access_token_is_valid_on_the_codex_fake(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    tokens = up.oauth.issue_tokens(up.registry.add("di@example.com", account_id="acc-di"))
    fresh = (await refresh(client, up, tokens.refresh_token)).json()

    answer = await client.post(
        f"{up.codex.base_url}/codex/responses",
        json=CODEX_BODY,
        headers={"authorization": f"Bearer {fresh['access_token']}", "chatgpt-account-id": "acc-di"},
    )

    assert answer.status_code == 200


async def test_concurrent_refreshes_with_one_token_rotate_once(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    tokens = up.oauth.issue_tokens(up.registry.add("ed@example.com", account_id="acc-ed"))
    up.oauth.refresh_delay = 0.05

    answers = await asyncio.gather(*(refresh(client, up, tokens.refresh_token) for _ in range(3)))

    assert sorted(a.status_code for a in answers) == [200, 401, 401]
    assert [a.outcome for a in up.oauth.refresh_attempts].count("ok") == 1


@pytest.mark.parametrize(
    ("kind", "status", "fixture"),
    [
        ("expired", 401, "oauth/token_refresh_error_401_refresh_token_expired.json"),
        ("server_error", 500, "oauth/token_refresh_error_500.json"),
    ],
)
async def test_scripted_refresh_failures_replay_the_recorded_bodies(
    up: FakeUpstreams, client: httpx.AsyncClient, kind: Any, status: int, fixture: str
) -> None:
    tokens = up.oauth.issue_tokens(up.registry.add("fi@example.com", account_id="acc-fi"))
    up.oauth.fail_refresh(kind, account="acc-fi")

    failure = await refresh(client, up, tokens.refresh_token)
    retry = await refresh(client, up, tokens.refresh_token)

    assert (failure.status_code, failure.json()) == (status, load_json(fixture))
    assert retry.status_code == 200


async def test_refresh_must_be_json(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    tokens = up.oauth.issue_tokens(up.registry.add("gu@example.com"))

    answer = await client.post(
        f"{up.oauth.base_url}/oauth/token",
        data={"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
    )

    assert answer.status_code == 400


# --- Codex -------------------------------------------------------------------------------------------


async def post_responses(
    client: httpx.AsyncClient, codex: FakeCodex, headers: dict[str, str], body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(f"{codex.base_url}/codex/responses", json=body or CODEX_BODY, headers=headers)


async def test_codex_answers_an_unknown_token_with_the_recorded_401(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    status, headers, body = load_http("codex/codex_401_unauthorized.http")

    answer = await post_responses(
        client, up.codex, {"authorization": "Bearer nobody", "chatgpt-account-id": "acc-x"}
    )

    assert answer.status_code == status == 401
    assert answer.content == body
    assert set(headers) <= set(answer.headers)


async def test_codex_refuses_an_account_header_that_is_not_the_tokens(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    account = up.codex.add_account("ha@example.com", account_id="acc-ha")

    answer = await post_responses(
        client, up.codex, dict(account.headers(), **{"chatgpt-account-id": "acc-other"})
    )

    assert answer.status_code == 401


async def test_codex_refuses_an_expired_token(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    account = up.codex.add_account("ia@example.com", lifetime=0)

    answer = await post_responses(client, up.codex, account.headers())

    assert answer.status_code == 401
    assert answer.headers["x-openai-authorization-error"] == "token_expired"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"temperature": 0.2}, "Unsupported parameter: temperature"),
        ({"store": True}, "Store must be set to false"),
    ],
)
async def test_codex_answers_forbidden_bodies_with_a_detail(
    up: FakeUpstreams, client: httpx.AsyncClient, change: dict[str, Any], detail: str
) -> None:
    account = up.codex.add_account("ja@example.com")

    answer = await post_responses(client, up.codex, account.headers(), {**CODEX_BODY, **change})

    assert answer.status_code == 400
    assert answer.json() == {"detail": detail}


async def test_the_default_stream_is_the_recorded_text_stream_for_the_requested_model(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    account = up.codex.add_account("ka@example.com")

    answer = await post_responses(client, up.codex, account.headers())

    events = parsed(answer.content)
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert [name for name, _ in events] == [
        name for name, _ in fixture_events("responses/responses_stream_text.sse")
    ]
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))
    assert all(name == p["type"] for name, p in events)
    assert events[0][1]["response"]["model"] == events[-1][1]["response"]["model"] == "gpt-5.5"


@pytest.mark.parametrize(
    ("answer", "fixture"),
    [
        (text("Oi!"), "responses/responses_stream_text.sse"),
        (tool_call("weather", {"location": "Florence, Italy"}), "responses/responses_stream_tool_call.sse"),
        (
            reasoning_text("**Finalizing the response**\n\nI can mention the time.", "Right now it is 40 C."),
            "responses/responses_stream_reasoning_summary_text.sse",
        ),
    ],
)
async def test_generated_streams_follow_the_recorded_grammar(
    up: FakeUpstreams, client: httpx.AsyncClient, answer: StreamReply, fixture: str
) -> None:
    account = up.codex.add_account("la@example.com")
    up.codex.script(answer)
    # encrypted_content is sent only when asked for, as in the recorded request.
    recorded_request = load_json(fixture.replace(".sse", ".request.json"))
    body = {k: v for k, v in CODEX_BODY.items() if k != "include" or k in recorded_request}

    events = parsed((await post_responses(client, up.codex, account.headers(), body)).content)

    recorded = fixture_events(fixture)
    assert grammar(events) == grammar(recorded)
    assert shapes(events) == shapes(recorded)
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))


async def test_a_scripted_tool_call_carries_its_arguments_and_a_call_id(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    account = up.codex.add_account("ma@example.com")
    up.codex.script(tool_call("Read", {"file_path": "/tmp/x"}))

    events = parsed((await post_responses(client, up.codex, account.headers())).content)

    completed = events[-1][1]["response"]
    call = completed["output"][-1]
    assert call["type"] == "function_call"
    assert orjson.loads(call["arguments"]) == {"file_path": "/tmp/x"}
    assert call["call_id"].startswith("call_")
    usage = completed["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_failure_endings_replace_response_completed(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    account = up.codex.add_account("na@example.com")
    up.codex.script(failed("context_length_exceeded"))
    up.codex.script(stream_error("server_is_overloaded"))
    up.codex.script(cut())

    endings = [
        parsed((await post_responses(client, up.codex, account.headers())).content)[-1] for _ in range(3)
    ]

    assert endings[0][0] == "response.failed"
    assert endings[0][1]["response"]["error"]["code"] == "context_length_exceeded"
    assert endings[1][0] == "error"
    assert endings[1][1]["code"] == "server_is_overloaded"
    assert endings[2][0] == "response.output_item.done"


async def test_a_scripted_usage_limit_carries_the_recorded_headers_and_resets_from_now(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    account = up.codex.add_account("oa@example.com", plan_type="plus")
    up.codex.script(UsageLimitReached(resets_in_seconds=120))
    _, recorded_headers, _ = load_http("codex/codex_429_usage_limit_reached.http")

    answer = await post_responses(client, up.codex, account.headers())

    assert answer.status_code == 429
    error = answer.json()["error"]
    assert error["type"] == "usage_limit_reached"
    assert error["resets_in_seconds"] == 120
    assert abs(error["resets_at"] - (time.time() + 120)) < 5
    assert {k for k in recorded_headers if k.startswith("x-codex-")} <= set(answer.headers)
    assert int(answer.headers["x-codex-primary-reset-at"]) > time.time()


async def test_scripts_for_one_account_leave_the_others_alone(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    limited = up.codex.add_account("pa@example.com")
    other = up.codex.add_account("pb@example.com")
    up.codex.script(UsageLimitReached(), account=limited.account_id, times=2)

    statuses = [
        (await post_responses(client, up.codex, acct.headers())).status_code
        for acct in (other, limited, limited, limited)
    ]

    assert statuses == [200, 429, 429, 200]


async def test_an_exhausted_account_stays_limited_until_restored(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    account = up.codex.add_account("qa@example.com")
    up.codex.exhaust(account.account_id, resets_in_seconds=600)

    limited = await post_responses(client, up.codex, account.headers())
    up.codex.restore(account.account_id)
    served = await post_responses(client, up.codex, account.headers())

    assert limited.status_code == 429
    assert 595 <= limited.json()["error"]["resets_in_seconds"] <= 601
    assert served.status_code == 200


async def test_successful_answers_carry_the_accounts_quota_headers(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    account = up.codex.add_account("ra@example.com", plan_type="pro")
    up.codex.set_quota(account.account_id, Quota(primary=Window(42, 300, 1000), has_credits=True))

    answer = await post_responses(client, up.codex, account.headers())

    assert answer.headers["x-codex-primary-used-percent"] == "42"
    assert answer.headers["x-codex-primary-window-minutes"] == "300"
    assert answer.headers["x-codex-plan-type"] == "pro"
    assert answer.headers["x-codex-credits-has-credits"] == "True"
    assert 995 <= int(answer.headers["x-codex-primary-reset-after-seconds"]) <= 1000


async def test_wham_usage_reports_the_accounts_values_in_the_recorded_shape(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    account = up.codex.add_account("sa@example.com", account_id="acc-sa", plan_type="team")
    up.codex.set_quota(account.account_id, Quota(secondary=Window(55, 10080, 86400)))
    _, _, recorded = load_http("codex/codex_wham_usage.http")

    answer = await client.get(f"{up.codex.base_url}/wham/usage", headers=account.headers())

    body = answer.json()
    assert set(body) == set(orjson.loads(recorded))
    assert (body["email"], body["account_id"], body["plan_type"]) == ("sa@example.com", "acc-sa", "team")
    assert body["rate_limit"]["secondary_window"]["used_percent"] == 55
    assert body["rate_limit"]["secondary_window"]["limit_window_seconds"] == 604800


async def test_wham_usage_checks_auth(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{up.codex.base_url}/wham/usage")

    assert answer.status_code == 401


async def test_models_needs_client_version(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    account = up.codex.add_account("ta@example.com")
    up.codex.set_models(["gpt-5.5", "gpt-5.6"])

    missing = await client.get(f"{up.codex.base_url}/codex/models", headers=account.headers())
    listed = await client.get(
        f"{up.codex.base_url}/codex/models", params={"client_version": "0.142.5"}, headers=account.headers()
    )

    assert missing.status_code == 400
    assert [m["slug"] for m in listed.json()["models"]] == ["gpt-5.5", "gpt-5.6"]
    assert listed.headers["etag"]


async def test_a_stall_before_the_headers_trips_a_client_timeout(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    account = up.codex.add_account("ua@example.com")
    up.codex.script(text("late", delay_headers=2))

    with pytest.raises(httpx.ReadTimeout):
        await client.post(
            f"{up.codex.base_url}/codex/responses", json=CODEX_BODY, headers=account.headers(), timeout=0.2
        )


async def test_an_aborted_stream_breaks_the_body(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    account = up.codex.add_account("va@example.com")
    up.codex.script(text("Hello there, friend", cut_after=5, abort=True))

    with pytest.raises(httpx.RemoteProtocolError):
        await post_responses(client, up.codex, account.headers())


async def test_requests_are_recorded_with_lower_case_headers_and_parsed_bodies(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    account = up.codex.add_account("wa@example.com")

    await post_responses(client, up.codex, {**account.headers(), "Session_ID": "s-1"})

    [recorded] = up.codex.responses_calls(account.account_id)
    assert recorded.body == CODEX_BODY
    assert recorded.headers["session_id"] == "s-1"
    assert recorded.path == "/backend-api/codex/responses"


# --- Kilo --------------------------------------------------------------------------------------------


def chat_body(model: str, *, stream: bool = True) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}


async def test_kilo_serves_free_models_without_a_key(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    answer = await client.post(
        f"{up.kilo.base_url}/chat/completions", json=chat_body("minimax/minimax-m2.5:free")
    )

    assert answer.status_code == 200
    assert answer.text.startswith(": OPENROUTER PROCESSING\n\n")
    events = events_of(answer.content)
    assert events[-1].data == "[DONE]"
    last = events[-2].json()
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["cost"] == 0


async def test_kilo_wants_a_key_for_paid_models(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    url = f"{up.kilo.base_url}/chat/completions"

    keyless = await client.post(url, json=chat_body("moonshotai/kimi-k2.5"))
    keyed = await client.post(
        url, json=chat_body("moonshotai/kimi-k2.5"), headers={"authorization": "Bearer sk-or-v1-test"}
    )

    assert keyless.status_code == 401
    assert keyless.json()["error"]["code"] == 401
    assert keyed.status_code == 200


async def test_kilo_answers_unknown_models_with_its_flat_404(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    answer = await client.post(f"{up.kilo.base_url}/chat/completions", json=chat_body("nobody/nothing:free"))

    assert (answer.status_code, answer.json()) == (404, {"error": "Model not found"})


async def test_kilo_non_streamed_bodies_are_padded_json(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    up.kilo.script(chat_tool_call("weather", {"location": "Florence"}, reasoning="Call the tool."))

    answer = await client.post(
        f"{up.kilo.base_url}/chat/completions", json=chat_body("moonshotai/kimi-k2.5:free", stream=False)
    )

    assert answer.content[:1].isspace()
    choice = orjson.loads(answer.content)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["id"] == "functions.weather:0"


async def test_kilo_streams_tool_calls_in_the_recorded_shape(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    up.kilo.script(chat_tool_call("weather", {"location": "Florence"}, reasoning="Call it."))

    answer = await client.post(
        f"{up.kilo.base_url}/chat/completions", json=chat_body("moonshotai/kimi-k2.5:free")
    )

    chunks = [e.json() for e in events_of(answer.content) if e.data != "[DONE]"]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0]["reasoning_details"][0]["type"] == "reasoning.text"
    opening = next(d["tool_calls"][0] for d in deltas if "tool_calls" in d)
    assert opening["function"]["name"] == "weather"
    pieces = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas if "tool_calls" in d)
    assert orjson.loads(pieces) == {"location": "Florence"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" in chunks[-1]


async def test_kilo_scripted_429_has_the_flat_shape_and_retry_after(
    up: FakeUpstreams, client: httpx.AsyncClient
) -> None:
    up.kilo.script(kilo_rate_limited(retry_after=7))

    answer = await client.post(
        f"{up.kilo.base_url}/chat/completions", json=chat_body("moonshotai/kimi-k2.5:free")
    )

    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"
    assert answer.json()["error"] == "Rate limit exceeded"


async def test_kilo_mid_stream_error_ends_without_done(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    up.kilo.script(chat_text("one two three", error_after=2))

    answer = await client.post(
        f"{up.kilo.base_url}/chat/completions", json=chat_body("moonshotai/kimi-k2.5:free")
    )

    last = events_of(answer.content)[-1].json()
    assert last["error"]["code"] == "server_error"
    assert last["choices"][0]["finish_reason"] == "error"


async def test_kilo_lists_free_models(up: FakeUpstreams, client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{up.kilo.base_url}/models")

    free = [m for m in answer.json()["data"] if m["id"].endswith(":free")]
    assert {"moonshotai/kimi-k2.5:free", "minimax/minimax-m2.5:free"} <= {m["id"] for m in free}
    assert all(m["pricing"]["prompt"] == "0" and m["context_length"] > 0 for m in free)


# --- runners -----------------------------------------------------------------------------------------


def test_a_fake_serves_from_a_background_thread_for_sync_tests() -> None:
    kilo = FakeKilo()
    with kilo.in_thread():
        answer = httpx.get(f"{kilo.base_url}/models", timeout=5)
        recorded = kilo.requests

    assert answer.status_code == 200
    assert [r.path for r in recorded] == ["/api/gateway/models"]


def test_a_fake_runs_standalone_and_prints_its_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.codex", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        account = httpx.post(
            f"{base_url.removesuffix('/backend-api')}/_fake/accounts", json={"email": "x@y.z"}
        )
        headers = {
            "authorization": f"Bearer {account.json()['access_token']}",
            "chatgpt-account-id": account.json()["account_id"],
        }
        answer = httpx.get(f"{base_url}/wham/usage", headers=headers)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    assert base_url.startswith("http://127.0.0.1:")
    assert answer.status_code == 200
    assert answer.json()["email"] == "x@y.z"
