"""Every recorded fixture goes through the code that consumes it (DESIGN §2: rules tested on fixtures).

Each file in ../shared/protocols/fixtures is routed by folder and name to its consumer: streams to
their format's decoder (which must end the stream cleanly or with an error event), bodies to the
parsers, upstream error answers to ``parse_error``, OAuth files to the login code, Claude Code
captures to the Anthropic parser. A fixture that no rule claims fails the test, so a new recording
cannot go untested.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway_core.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    RateLimitError,
    RequestTooLargeError,
)
from gateway_core.formats import anthropic, openai_chat, openai_responses
from gateway_core.sse import SSEDecoder
from gateway_core.streaming import ErrorEvent, MessageStop, StreamEvent
from gateway_providers.codex import credentials, oauth, quota
from tests.fixtures import FIXTURES, load_http, load_json, load_sse

NOW = datetime(2026, 11, 25, tzinfo=UTC)
ALL_FIXTURES = sorted(p for p in FIXTURES.glob("*/*") if p.name != "README.md")


def _decode(raw: bytes, decoder: Any) -> list[StreamEvent]:
    sse = SSEDecoder()
    events: list[StreamEvent] = []
    for frame in [*sse.feed(raw), *sse.flush()]:
        if frame.data != "[DONE]" or isinstance(decoder, openai_chat.StreamDecoder):
            events.extend(decoder.feed(frame))
    events.extend(decoder.close())
    return events


def stream(path: Path) -> None:
    folder = path.parent.name
    decoder: Any
    if folder == "anthropic":
        decoder = anthropic.StreamDecoder()
    elif folder in ("openai_chat", "openrouter"):
        decoder = openai_chat.StreamDecoder(provider=folder, model="m")
    else:
        decoder = openai_responses.StreamDecoder(model="m")
    events = _decode(load_sse(path), decoder)
    assert isinstance(events[-1], MessageStop | ErrorEvent), events[-1]
    if path.name.startswith("codex_response_failed_"):
        assert isinstance(events[-1], ErrorEvent)


def request_body(path: Path) -> None:
    body = load_json(path)
    folder = path.parent.name
    if folder == "anthropic":
        anthropic.parse_request(body)
    elif folder in ("openai_chat", "openrouter"):
        openai_chat.parse_request(body)
    else:
        openai_responses.parse_request(body)


def response_body(path: Path) -> None:
    folder = path.parent.name
    if folder == "anthropic":
        response = anthropic.parse_response(load_json(path))
    elif folder == "openai_chat":
        response = openai_chat.parse_response(load_json(path))
    elif folder == "openrouter":
        raw = path.read_bytes().split(b"\n", 1)[1]
        response = openai_chat.parse_response_bytes(raw, provider="openrouter")
    else:
        response = openai_responses.parse_response(load_json(path))
    assert response.content


def claude_code_capture(path: Path) -> None:
    capture = load_json(path)
    if capture["method"] == "HEAD":
        # The preconnect: the server answers HEAD / (tests/integration/test_server_inference.py).
        assert capture["path"] == "/"
        return
    if capture["path"].endswith("/chat/completions"):
        openai_chat.parse_request(capture["body"])
    elif capture["path"].endswith("/count_tokens"):
        anthropic.parse_count_tokens_request(capture["body"])
    else:
        assert anthropic.parse_request(capture["body"]).messages


EXPECTED_CODEX_ERRORS: dict[str, type[GatewayError]] = {
    "codex_401_unauthorized.http": AuthenticationError,
    "codex_429_usage_limit_reached.http": RateLimitError,
}


def codex_http(path: Path) -> None:
    status, headers, body = load_http(path)
    if path.name == "codex_wham_usage.http":
        usage = quota.quota_from_usage(orjson.loads(body), now=NOW)
        assert usage.primary is not None
        assert usage.secondary is not None
        return
    error = openai_responses.parse_error(status, body, headers, now=NOW.timestamp())
    assert isinstance(error, EXPECTED_CODEX_ERRORS[path.name])
    if status == 429:
        assert quota.quota_from_headers(headers, now=NOW) is not None


def codex_400_catalogue(path: Path) -> None:
    for entry in load_json(path):
        error = openai_responses.parse_error(entry["status"], orjson.dumps(entry["body"]), {})
        assert isinstance(error, InvalidRequestError | RequestTooLargeError)
        assert entry["body"]["detail"] in error.message


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def oauth_file(path: Path) -> None:
    name = path.name
    body = load_json(path)
    if name.startswith("auth_json_"):
        login = credentials.parse_auth_json(path.read_bytes().split(b"\n", 1)[1], source=name)
        assert login.email
        assert login.tokens.refresh_token
    elif name.startswith("id_token_claims_"):
        claims = oauth.read_claims(_unsigned_jwt(body), None)
        assert claims.email
    elif name == "token_exchange_response.json":
        assert oauth.read_claims(body["id_token"], body.get("access_token")).email
    elif name == "token_refresh_request.json":
        assert body["grant_type"] == "refresh_token"
        assert body["client_id"] == oauth.CLIENT_ID
    elif name == "token_refresh_response_200.json":
        assert body["refresh_token"]
    elif name.startswith("token_refresh_error_"):
        status = 500 if name.endswith("_500.json") else 401
        error = oauth.classify_refresh_failure(httpx.Response(status, json=body))
        expected = oauth.RefreshFailed if status == 500 else oauth.RefreshTokenRejected
        assert isinstance(error, expected)
    else:
        raise AssertionError(f"no rule for oauth fixture {name}")


RULES: list[tuple[Callable[[Path], bool], Callable[[Path], None]]] = [
    (lambda p: p.suffix == ".sse", stream),
    (lambda p: p.parent.name == "claude_code", claude_code_capture),
    (lambda p: p.name.endswith(".request.json"), request_body),
    (lambda p: p.name.endswith(".response.json"), response_body),
    (lambda p: p.parent.name == "codex" and p.suffix == ".http", codex_http),
    (lambda p: p.name == "codex_400_detail_errors.json", codex_400_catalogue),
    (lambda p: p.parent.name == "oauth", oauth_file),
]


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_goes_through_its_consumer(path: Path) -> None:
    consumers = [consume for claims, consume in RULES if claims(path)]
    assert consumers, f"no test consumes {path.parent.name}/{path.name}: add a rule here"
    consumers[0](path)


def test_the_fixture_tree_is_there() -> None:
    assert len(ALL_FIXTURES) > 90
