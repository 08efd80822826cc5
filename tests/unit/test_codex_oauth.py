"""ChatGPT OAuth as the Codex CLI speaks it (protocols §5): PKCE, the authorize URL, claims, the token
endpoint and the verdict on a failed refresh."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest

from gateway_core.errors import AuthenticationError, InvalidRequestError, PermissionDeniedError, UpstreamError
from gateway_providers.codex.login import parse_pasted, parse_request_head
from gateway_providers.codex.oauth import (
    CLIENT_ID,
    LoginFailed,
    OAuthClient,
    RefreshFailed,
    RefreshTokenRejected,
    TokenGrant,
    authorize_url,
    challenge_of,
    classify_refresh_failure,
    decode_jwt,
    login_denied,
    new_pkce,
    new_state,
    read_claims,
    redirect_uri,
)
from tests.fakes import check_authorize_query
from tests.fakes.jwt import encode_jwt
from tests.fixtures import load_json

pytestmark = pytest.mark.anyio

_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
AUTH = "https://api.openai.com/auth"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- PKCE and the authorize URL ------------------------------------------------------------------


def test_verifier_is_unpadded_base64url_of_64_random_bytes() -> None:
    pkce = new_pkce()

    assert _B64URL.match(pkce.verifier)
    assert len(_unb64(pkce.verifier)) == 64
    assert len(pkce.verifier) == 86


def test_challenge_is_s256_of_the_verifier() -> None:
    pkce = new_pkce()

    digest = hashlib.sha256(pkce.verifier.encode()).digest()
    assert pkce.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert challenge_of(pkce.verifier) == pkce.challenge


def test_state_is_base64url_of_32_random_bytes() -> None:
    state = new_state()

    assert _B64URL.match(state)
    assert len(_unb64(state)) == 32


def test_every_pkce_pair_and_state_is_new() -> None:
    assert new_pkce().verifier != new_pkce().verifier
    assert new_state() != new_state()


def test_pkce_repr_hides_the_verifier() -> None:
    pkce = new_pkce()

    assert pkce.verifier not in repr(pkce)
    assert pkce.challenge in repr(pkce)


def test_authorize_url_has_the_codex_parameters_in_order() -> None:
    url = authorize_url("https://auth.example.com/", redirect=redirect_uri(1455), challenge="ch", state="st")

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://auth.example.com/oauth/authorize"
    assert parse_qsl(parts.query) == [
        ("response_type", "code"),
        ("client_id", "app_EMoamEEZ73f0CkXaXp7hrann"),
        ("redirect_uri", "http://localhost:1455/auth/callback"),
        ("scope", "openid profile email offline_access"),
        ("code_challenge", "ch"),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("state", "st"),
        ("originator", "codex_cli_rs"),
    ]


def test_authorize_url_encodes_spaces_as_percent_20_like_the_cli() -> None:
    url = authorize_url("https://a.example", redirect=redirect_uri(1455), challenge="c", state="s")

    assert "scope=openid%20profile%20email%20offline_access" in url
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback" in url


def test_authorize_url_passes_the_issuers_checks() -> None:
    pkce = new_pkce()
    url = authorize_url("https://a.example", redirect=redirect_uri(1457), challenge=pkce.challenge, state="s")

    check_authorize_query(dict(parse_qsl(urlsplit(url).query)))


def test_authorize_url_carries_the_challenge_never_the_verifier() -> None:
    pkce = new_pkce()

    url = authorize_url("https://a.example", redirect=redirect_uri(1455), challenge=pkce.challenge, state="s")

    assert pkce.verifier not in url
    assert "code_verifier" not in url


# --- claims --------------------------------------------------------------------------------------


def test_claims_come_from_the_recorded_id_token() -> None:
    tokens = load_json("oauth/token_exchange_response.json")

    claims = read_claims(tokens["id_token"], tokens["access_token"])

    assert claims.email == "user@example.com"
    assert claims.account_id == "12345678-0000-0000-0000-000000000000"
    assert claims.plan_type == "pro"
    assert claims.expires_at is None  # "access-123" is no JWT


def test_claims_fall_back_to_the_access_token() -> None:
    access = encode_jwt(
        {"https://api.openai.com/profile": {"email": "p@example.com"}, AUTH: {"chatgpt_account_id": "acc"}}
    )

    claims = read_claims(encode_jwt({AUTH: {"chatgpt_plan_type": "team"}}), access)

    assert claims.email == "p@example.com"
    assert claims.account_id == "acc"
    assert claims.plan_type == "team"


def test_expiry_comes_from_the_access_token_not_the_id_token() -> None:
    claims = read_claims(encode_jwt({"exp": 1}), encode_jwt({"exp": 1_800_000_000}))

    assert claims.expires_at is not None
    assert claims.expires_at.timestamp() == 1_800_000_000


def test_user_id_is_read_from_either_claim_name() -> None:
    assert read_claims(encode_jwt({AUTH: {"user_id": "u-1"}}), None).user_id == "u-1"
    assert read_claims(encode_jwt({AUTH: {"chatgpt_user_id": "u-2"}}), None).user_id == "u-2"


@pytest.mark.parametrize("token", [None, "", "opaque", "a.b", "a.!!!.c", "a.bnVsbA.c"])
def test_anything_but_a_jwt_object_decodes_to_none(token: str | None) -> None:
    assert decode_jwt(token) is None


# --- the token endpoint --------------------------------------------------------------------------


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body), headers={"content-type": "application/json"})


async def test_code_exchange_posts_the_form_the_issuer_expects() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _json(200, load_json("oauth/token_exchange_response.json"))

    async with _client(handler) as http:
        grant = await OAuthClient(http, "https://issuer.example/").exchange_code(
            code="the-code", verifier="the-verifier", redirect="http://localhost:1455/auth/callback"
        )

    request = seen[0]
    assert str(request.url) == "https://issuer.example/oauth/token"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(request.content.decode())) == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "http://localhost:1455/auth/callback",
        "client_id": CLIENT_ID,
        "code_verifier": "the-verifier",
    }
    assert grant.access_token == "access-123"
    assert grant.refresh_token == "refresh-123"


async def test_a_refused_code_is_a_login_failure_naming_the_issuers_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _json(400, {"error": "invalid_grant", "error_description": "code already used"})

    async with _client(handler) as http:
        with pytest.raises(LoginFailed) as caught:
            await OAuthClient(http, "https://i.example").exchange_code(code="c", verifier="v", redirect="r")

    assert caught.value.status == 401
    assert "invalid_grant" in caught.value.message
    assert "code already used" in caught.value.message


async def test_refresh_posts_the_recorded_json_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _json(200, load_json("oauth/token_refresh_response_200.json"))

    async with _client(handler) as http:
        grant = await OAuthClient(http, "https://i.example").refresh("initial-refresh-token")

    assert seen[0].headers["content-type"] == "application/json"
    assert orjson.loads(seen[0].content) == load_json("oauth/token_refresh_request.json")
    assert grant.access_token == "new-access-token"
    assert grant.refresh_token == "new-refresh-token"
    assert grant.id_token is None


def test_grant_repr_names_which_tokens_came_but_not_their_values() -> None:
    grant = TokenGrant(access_token="secret-a", refresh_token="secret-r")

    assert "secret" not in repr(grant)
    assert "access_token" in repr(grant)


@pytest.mark.parametrize(
    ("fixture", "code"),
    [
        ("oauth/token_refresh_error_401_refresh_token_expired.json", "refresh_token_expired"),
        ("oauth/token_refresh_error_401_refresh_token_reused.json", "refresh_token_reused"),
        ("oauth/token_refresh_error_401_refresh_token_invalidated.json", "refresh_token_invalidated"),
    ],
)
def test_recorded_401_refresh_failures_are_permanent(fixture: str, code: str) -> None:
    error = classify_refresh_failure(_json(401, load_json(fixture)))

    assert isinstance(error, RefreshTokenRejected)
    assert error.code == code
    assert error.status == 401


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "refresh_token_reused"}},
        {"error": "refresh_token_reused"},
        {"code": "refresh_token_reused"},
        {"error": {"code": "REFRESH_TOKEN_REUSED", "message": "reused"}},
    ],
)
def test_the_permanent_code_is_found_in_every_error_shape(body: dict[str, Any]) -> None:
    error = classify_refresh_failure(_json(401, body))

    assert isinstance(error, RefreshTokenRejected)
    assert error.code == "refresh_token_reused"


def test_recorded_500_refresh_failure_is_transient() -> None:
    error = classify_refresh_failure(_json(500, load_json("oauth/token_refresh_error_500.json")))

    assert isinstance(error, RefreshFailed)
    assert error.status == 502
    assert "temporary-failure" in error.message


@pytest.mark.parametrize("status", [429, 502, 503])
def test_other_statuses_are_transient(status: int) -> None:
    assert isinstance(classify_refresh_failure(_json(status, {"error": "slow_down"})), RefreshFailed)


def test_invalid_grant_is_permanent() -> None:
    error = classify_refresh_failure(_json(400, {"error": "invalid_grant", "error_description": "revoked"}))

    assert isinstance(error, RefreshTokenRejected)


async def test_a_network_failure_of_the_refresh_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with _client(handler) as http:
        with pytest.raises(RefreshFailed):
            await OAuthClient(http, "https://i.example").refresh("rt-secret")


async def test_a_refresh_answer_without_access_token_is_transient() -> None:
    async with _client(lambda request: _json(200, {"refresh_token": "x"})) as http:
        with pytest.raises(RefreshFailed):
            await OAuthClient(http, "https://i.example").refresh("rt-secret")


async def test_refresh_errors_never_quote_the_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _json(401, {"error": {"code": "refresh_token_reused", "message": "token rt-secret reused"}})

    async with _client(handler) as http:
        with pytest.raises(RefreshTokenRejected) as caught:
            await OAuthClient(http, "https://i.example").refresh("rt-secret-value")

    assert "rt-secret-value" not in str(caught.value)


# --- callbacks -----------------------------------------------------------------------------------


def test_missing_codex_entitlement_is_a_clear_permission_error() -> None:
    error = login_denied("access_denied", "missing_codex_entitlement")

    assert isinstance(error, PermissionDeniedError)
    assert "no Codex entitlement" in error.message


def test_other_denials_name_the_issuers_error() -> None:
    error = login_denied("access_denied", "the user cancelled")

    assert "access_denied" in error.message
    assert "the user cancelled" in error.message


def test_pasted_callback_url_yields_code_and_state() -> None:
    assert parse_pasted(" http://localhost:1455/auth/callback?code=ac_1&scope=x&state=st ") == (
        "ac_1",
        "st",
        None,
        None,
    )


def test_pasted_query_string_yields_code_and_state() -> None:
    assert parse_pasted("?code=ac_1&state=st")[:2] == ("ac_1", "st")
    assert parse_pasted("code=ac_1&state=st")[:2] == ("ac_1", "st")


def test_pasted_bare_code_has_no_state() -> None:
    assert parse_pasted("ac_abc.DEF-123") == ("ac_abc.DEF-123", None, None, None)


def test_pasted_denial_yields_the_error() -> None:
    parsed = parse_pasted(
        "/auth/callback?error=access_denied&error_description=missing_codex_entitlement&state=s"
    )

    assert parsed == (None, "s", "access_denied", "missing_codex_entitlement")


@pytest.mark.parametrize("text", ["", "   ", "two words"])
def test_pasting_nothing_useful_is_a_400(text: str) -> None:
    with pytest.raises(InvalidRequestError):
        parse_pasted(text)


def test_request_head_is_parsed_into_method_path_and_query() -> None:
    head = b"GET /auth/callback?code=a&state=b&code=ignored HTTP/1.1\r\nHost: localhost\r\n\r\n"

    assert parse_request_head(head) == ("GET", "/auth/callback", {"code": "a", "state": "b"})


@pytest.mark.parametrize("head", [b"\r\n\r\n", b"GET /\r\n\r\n", b"GET / SPDY/3\r\n\r\n"])
def test_a_malformed_request_head_is_refused(head: bytes) -> None:
    assert parse_request_head(head) is None


def test_error_classes_carry_the_documented_statuses() -> None:
    assert issubclass(RefreshTokenRejected, AuthenticationError)
    assert issubclass(RefreshFailed, UpstreamError)
    assert issubclass(LoginFailed, AuthenticationError)
