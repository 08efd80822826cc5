"""Fake ChatGPT OAuth issuer: ``base_url`` plays ``RELAYGATE_OAUTH_ISSUER`` (protocols §5).

- ``GET /oauth/authorize`` checks the query exactly as the Codex CLI sends it (response_type, client_id,
  a ``http://localhost:PORT/auth/callback`` redirect, the four scopes, an S256 challenge, state and the
  three Codex flags) and redirects (302) to ``redirect_uri?code=...&scope=...&state=...`` for the next
  scripted identity. A bad query gets 400 naming the parameter.
- ``POST /oauth/token``, form-encoded ``authorization_code`` grant: the code is one-time, bound to its
  redirect_uri and PKCE challenge (S256 of the verifier). JSON ``refresh_token`` grant: refresh tokens
  ROTATE (the presented one dies at once, reuse gets the recorded ``refresh_token_reused`` 401);
  scripted failures replay the recorded bodies. Every refresh attempt is counted per account.

Tokens are unsigned JWTs (:mod:`tests.fakes.jwt`); access tokens are registered in the shared
:class:`~tests.fakes.identities.IdentityRegistry`, so a linked :class:`~tests.fakes.codex.FakeCodex`
accepts them until their ``exp``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import threading
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
from aiohttp import web

from tests.fakes.identities import CLIENT_ID, Identity, IdentityRegistry, TokenSet
from tests.fakes.jwt import b64url
from tests.fakes.server import FakeServer, json_response, main
from tests.fixtures import load_json

REQUIRED_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
GRANTED_SCOPE = "openid profile email offline_access"
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
# RFC 7636 §4.1: 43 to 128 characters of the unreserved set.
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")

RefreshFailure = Literal["expired", "reused", "invalidated", "server_error"]
# Recorded refresh failure bodies, by scripted kind: (status, fixture).
_REFRESH_FAILURES: dict[str, tuple[int, str]] = {
    "expired": (401, "oauth/token_refresh_error_401_refresh_token_expired.json"),
    "reused": (401, "oauth/token_refresh_error_401_refresh_token_reused.json"),
    "invalidated": (401, "oauth/token_refresh_error_401_refresh_token_invalidated.json"),
    "server_error": (500, "oauth/token_refresh_error_500.json"),
}


class AuthorizeError(ValueError):
    """An authorize query the issuer refuses; the message names the parameter."""


def pkce_challenge(verifier: str) -> str:
    """S256: base64url(SHA-256(verifier)), unpadded."""
    return b64url(hashlib.sha256(verifier.encode()).digest())


def check_authorize_query(query: Mapping[str, str]) -> None:
    """Raise :class:`AuthorizeError` unless ``query`` is what the Codex CLI sends (protocols §5)."""

    def need(name: str, expected: str | None = None) -> str:
        value = query.get(name)
        if not value:
            raise AuthorizeError(f"{name}: missing")
        if expected is not None and value != expected:
            raise AuthorizeError(f"{name}: expected {expected!r}, got {value!r}")
        return value

    need("response_type", "code")
    need("client_id", CLIENT_ID)
    redirect = urlsplit(need("redirect_uri"))
    if redirect.scheme != "http" or redirect.hostname != "localhost" or redirect.path != "/auth/callback":
        raise AuthorizeError(
            f"redirect_uri: expected http://localhost:PORT/auth/callback, got {query['redirect_uri']!r}"
        )
    missing = REQUIRED_SCOPES - set(need("scope").split())
    if missing:
        raise AuthorizeError(f"scope: missing {' '.join(sorted(missing))}")
    challenge = need("code_challenge")
    if len(challenge) != 43 or not _B64URL.match(challenge):
        raise AuthorizeError("code_challenge: expected 43 base64url characters (S256 of the verifier)")
    need("code_challenge_method", "S256")
    need("state")
    need("id_token_add_organizations", "true")
    need("codex_cli_simplified_flow", "true")
    need("originator", "codex_cli_rs")


class _RefreshState(StrEnum):
    ACTIVE = "active"
    ROTATED = "rotated"
    EXPIRED = "expired"
    INVALIDATED = "invalidated"


@dataclass
class _PendingCode:
    identity: Identity
    redirect_uri: str
    challenge: str
    used: bool = False


@dataclass
class _RefreshToken:
    identity: Identity
    state: _RefreshState = _RefreshState.ACTIVE


@dataclass(frozen=True)
class Denial:
    """A scripted refusal at the authorize step, sent back to the redirect as ``error``."""

    error: str = "access_denied"
    description: str = "missing_codex_entitlement"


@dataclass(frozen=True)
class RefreshAttempt:
    """One refresh request as the issuer judged it."""

    account_id: str | None
    outcome: str


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return json_response({"error": error, "error_description": description}, status=status)


class FakeOAuth(FakeServer):
    """The fake issuer; see the module docstring. Script with :meth:`login_as`, :meth:`deny_next`,
    :meth:`fail_refresh`; read :meth:`refresh_count` and :attr:`refresh_attempts`."""

    name = "fake-oauth"

    def __init__(self, registry: IdentityRegistry | None = None) -> None:
        super().__init__()
        self.registry = registry or IdentityRegistry()
        self.access_lifetime: float | None = None
        """Lifetime of minted access tokens in seconds (``None``: the registry's default)."""
        self.refresh_delay = 0.0
        """Seconds a successful refresh takes to answer (after rotating), to widen race windows."""
        self.refresh_fields: tuple[str, ...] = ("id_token", "access_token", "refresh_token")
        """Which tokens a refresh answer carries (upstream may send any subset)."""
        self._lock = threading.Lock()
        self._logins: deque[Identity | Denial] = deque()
        self._codes: dict[str, _PendingCode] = {}
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        self._failures: dict[str | None, deque[RefreshFailure]] = {}
        self._attempts: list[RefreshAttempt] = []
        self.exchanges = 0

    # --- identities and tokens -----------------------------------------------------------------------

    def default_identity(self) -> Identity:
        """The login used when none is scripted (claims of ``fixtures/oauth/id_token_claims_test.json``)."""
        claims = load_json("oauth/id_token_claims_test.json")
        auth = claims["https://api.openai.com/auth"]
        try:
            return self.registry.get(claims["email"])
        except KeyError:
            return self.registry.add(
                claims["email"], account_id=auth["chatgpt_account_id"], plan_type=auth["chatgpt_plan_type"]
            )

    def issue_tokens(self, identity: Identity, *, lifetime: float | None = None) -> TokenSet:
        """Mint a full token set without HTTP (to seed a store or an ``auth.json``); refreshable here."""
        seconds = lifetime if lifetime is not None else self.access_lifetime
        access = self.registry.issue_access_token(identity, lifetime=seconds)
        refresh = "rt_" + secrets.token_urlsafe(32)
        with self._lock:
            self._refresh_tokens[refresh] = _RefreshToken(identity)
        expires_in = int(seconds if seconds is not None else self.registry.access_lifetime)
        return TokenSet(
            identity=identity,
            id_token=identity.id_token(now=self.registry.clock()),
            access_token=access,
            refresh_token=refresh,
            expires_in=expires_in,
        )

    # --- scripting -----------------------------------------------------------------------------------

    def login_as(self, identity: Identity | Denial) -> None:
        """The next authorize request logs in as ``identity`` (or is refused with a :class:`Denial`)."""
        with self._lock:
            self._logins.append(identity)

    def deny_next(self, description: str = "missing_codex_entitlement") -> None:
        self.login_as(Denial(description=description))

    def fail_refresh(self, kind: RefreshFailure, *, account: str | None = None, times: int = 1) -> None:
        """The next ``times`` refreshes (of ``account`` if given) fail with the recorded ``kind`` body."""
        with self._lock:
            self._failures.setdefault(account, deque()).extend([kind] * times)

    def expire_refresh_tokens(self, account_id: str) -> None:
        """Every live refresh token of the account now answers ``refresh_token_expired``."""
        self._set_refresh_state(account_id, _RefreshState.EXPIRED)

    def invalidate_refresh_tokens(self, account_id: str) -> None:
        self._set_refresh_state(account_id, _RefreshState.INVALIDATED)

    def _set_refresh_state(self, account_id: str, state: _RefreshState) -> None:
        with self._lock:
            for entry in self._refresh_tokens.values():
                if entry.identity.account_id == account_id and entry.state is _RefreshState.ACTIVE:
                    entry.state = state

    @property
    def refresh_attempts(self) -> list[RefreshAttempt]:
        with self._lock:
            return list(self._attempts)

    def refresh_count(self, account_id: str) -> int:
        """How many refresh requests presented a token of this account (whatever the outcome)."""
        with self._lock:
            return Counter(a.account_id for a in self._attempts)[account_id]

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._logins.clear()
            self._failures.clear()
            self._attempts.clear()

    # --- browser side --------------------------------------------------------------------------------

    def _authorize(self, query: Mapping[str, str], login: Identity | Denial | None = None) -> str:
        """Validate, mint a code for ``login`` (else the next scripted identity), return the redirect URL."""
        check_authorize_query(query)
        if login is None:
            with self._lock:
                login = self._logins.popleft() if self._logins else None
        identity = login or self.default_identity()
        params: dict[str, str]
        if isinstance(identity, Denial):
            params = {"error": identity.error, "error_description": identity.description}
        else:
            code = "ac_" + secrets.token_urlsafe(32)
            with self._lock:
                self._codes[code] = _PendingCode(identity, query["redirect_uri"], query["code_challenge"])
            params = {"code": code, "scope": query["scope"]}
        params["state"] = query["state"]
        return f"{query['redirect_uri']}?{urlencode(params)}"

    def login(self, authorize_url: str, identity: Identity | None = None) -> str:
        """Play the user approving ``authorize_url`` (as built by the gateway) as ``identity``;
        returns the callback URL (``redirect_uri?code=...&state=...``) for the test to GET."""
        query = dict(parse_qsl(urlsplit(authorize_url).query, keep_blank_values=True))
        return self._authorize(query, identity)

    # --- HTTP ----------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/oauth/authorize", self._authorize_route)
        app.router.add_post("/oauth/token", self._token_route)

    async def _authorize_route(self, request: web.Request) -> web.Response:
        try:
            location = self._authorize(dict(request.query))
        except AuthorizeError as exc:
            return _oauth_error(400, "invalid_request", str(exc))
        return web.Response(status=302, headers={"location": location})

    async def _token_route(self, request: web.Request) -> web.Response:
        raw = await request.read()
        content_type = request.content_type
        if content_type == "application/x-www-form-urlencoded":
            form = dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
            if form.get("grant_type") != "authorization_code":
                return _oauth_error(
                    400, "invalid_request", "form-encoded requests must use authorization_code"
                )
            return self._exchange(form)
        if content_type == "application/json":
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return _oauth_error(400, "invalid_request", "body is not JSON")
            if not isinstance(body, dict) or body.get("grant_type") != "refresh_token":
                return _oauth_error(400, "invalid_request", "JSON requests must use the refresh_token grant")
            return await self._refresh(body)
        return _oauth_error(400, "invalid_request", f"unsupported content type {content_type!r}")

    def _tokens_body(self, tokens: TokenSet, fields: tuple[str, ...]) -> dict[str, Any]:
        all_fields = {
            "id_token": tokens.id_token,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
        }
        body: dict[str, Any] = {k: v for k, v in all_fields.items() if k in fields}
        body.update(token_type="Bearer", expires_in=tokens.expires_in, scope=GRANTED_SCOPE)
        return body

    def _exchange(self, form: Mapping[str, str]) -> web.Response:
        for name in ("code", "redirect_uri", "client_id", "code_verifier"):
            if not form.get(name):
                return _oauth_error(400, "invalid_request", f"{name}: missing")
        if form["client_id"] != CLIENT_ID:
            return _oauth_error(401, "invalid_client", "unknown client_id")
        with self._lock:
            pending = self._codes.get(form["code"])
            if pending is None:
                return _oauth_error(400, "invalid_grant", "unknown authorization code")
            if pending.used:
                return _oauth_error(400, "invalid_grant", "authorization code already used")
            pending.used = True
        if form["redirect_uri"] != pending.redirect_uri:
            return _oauth_error(400, "invalid_grant", "redirect_uri does not match the authorize request")
        verifier = form["code_verifier"]
        if not _VERIFIER.match(verifier) or pkce_challenge(verifier) != pending.challenge:
            return _oauth_error(400, "invalid_grant", "code_verifier does not match the code_challenge")
        with self._lock:
            self.exchanges += 1
        tokens = self.issue_tokens(pending.identity)
        return json_response(self._tokens_body(tokens, ("id_token", "access_token", "refresh_token")))

    def _scripted_failure(self, account_id: str | None) -> RefreshFailure | None:
        with self._lock:
            for key in (account_id, None):
                queue = self._failures.get(key)
                if queue:
                    return queue.popleft()
        return None

    def _judge_refresh(self, token: str) -> tuple[_RefreshToken | None, str]:
        """Check a refresh token and rotate it atomically; returns (entry, outcome)."""
        with self._lock:
            entry = self._refresh_tokens.get(token)
            if entry is None:
                outcome = "invalidated"
            elif entry.state is _RefreshState.ROTATED:
                outcome = "reused"
            elif entry.state is _RefreshState.EXPIRED:
                outcome = "expired"
            elif entry.state is _RefreshState.INVALIDATED:
                outcome = "invalidated"
            else:
                entry.state = _RefreshState.ROTATED
                outcome = "ok"
            return entry, outcome

    async def _refresh(self, body: Mapping[str, Any]) -> web.Response:
        if body.get("client_id") != CLIENT_ID:
            return _oauth_error(401, "invalid_client", "unknown client_id")
        token = body.get("refresh_token")
        if not isinstance(token, str) or not token:
            return _oauth_error(400, "invalid_request", "refresh_token: missing")
        with self._lock:
            known = self._refresh_tokens.get(token)
        account_id = known.identity.account_id if known is not None else None
        failure = self._scripted_failure(account_id)
        entry, outcome = (None, failure) if failure is not None else self._judge_refresh(token)
        with self._lock:
            self._attempts.append(RefreshAttempt(account_id, outcome))
        if outcome != "ok" or entry is None:
            status, fixture = _REFRESH_FAILURES[outcome]
            return json_response(load_json(fixture), status=status)
        tokens = self.issue_tokens(entry.identity)
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        return json_response(self._tokens_body(tokens, self.refresh_fields))

    # --- control API ---------------------------------------------------------------------------------

    def add_control_routes(self, app: web.Application) -> None:
        app.router.add_post("/_fake/identities", self._control_identities)
        app.router.add_post("/_fake/refresh-failures", self._control_failures)

    async def _control_identities(self, request: web.Request) -> web.Response:
        """``{"email", "account_id"?, "plan_type"?, "login"?: bool, "tokens"?: bool}``."""
        spec = await request.json(loads=orjson.loads)
        identity = self.registry.add(
            spec["email"], account_id=spec.get("account_id"), plan_type=spec.get("plan_type", "plus")
        )
        if spec.get("login", True):
            self.login_as(identity)
        result: dict[str, Any] = {"email": identity.email, "account_id": identity.account_id}
        if spec.get("tokens"):
            result["auth_json"] = self.issue_tokens(identity).auth_json()
        return json_response(result)

    async def _control_failures(self, request: web.Request) -> web.Response:
        """``{"kind": "expired"|"reused"|"invalidated"|"server_error", "account"?, "times"?}``."""
        spec = await request.json(loads=orjson.loads)
        self.fail_refresh(spec["kind"], account=spec.get("account"), times=spec.get("times", 1))
        return json_response({"ok": True})


@asynccontextmanager
async def run_fake_oauth(registry: IdentityRegistry | None = None) -> AsyncIterator[FakeOAuth]:
    """Start a :class:`FakeOAuth` on 127.0.0.1 in the running loop."""
    async with FakeOAuth(registry) as oauth:
        yield oauth


if __name__ == "__main__":
    main(FakeOAuth)
