"""ChatGPT OAuth as the Codex CLI speaks it (protocols §5): PKCE, the authorize URL, the code exchange,
the token refresh, JWT claims, and the verdict on a failed refresh.

No server and no state here: :mod:`gateway_providers.codex.login` runs the callback listener and the
pool decides what to do with a verdict. Tokens never leave this module inside an error message or a
repr: errors quote the issuer's error code and description, never a request or response body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, urlencode

import httpx
import orjson

from gateway_core.errors import AuthenticationError, GatewayError, PermissionDeniedError, UpstreamError

CLIENT_ID: Final = "app_EMoamEEZ73f0CkXaXp7hrann"
SCOPE: Final = "openid profile email offline_access"
ORIGINATOR: Final = "codex_cli_rs"
CALLBACK_PATH: Final = "/auth/callback"
AUTH_CLAIM: Final = "https://api.openai.com/auth"
PROFILE_CLAIM: Final = "https://api.openai.com/profile"
TOKEN_TIMEOUT: Final = 30.0
"""Seconds an exchange or refresh may take before it counts as a transient failure."""

# Codex `classify_refresh_token_failure`: a 401 with one of these codes means "log in again".
PERMANENT_REFRESH_CODES: Final = frozenset(
    {"refresh_token_expired", "refresh_token_reused", "refresh_token_invalidated"}
)


# --- errors --------------------------------------------------------------------------------------


class RefreshTokenRejected(AuthenticationError):
    """The issuer refused the refresh token for good (expired, reused, invalidated): log in again (401).

    ``code`` carries the issuer's code, e.g. ``refresh_token_reused``.
    """


class RefreshFailed(UpstreamError):
    """The refresh did not go through but may next time: a 5xx, a timeout, a network error (502)."""


class LoginFailed(AuthenticationError):
    """The authorization code could not be exchanged for tokens, or the tokens name no account (401)."""


class LoginDenied(PermissionDeniedError):
    """The issuer sent the browser back with an ``error`` (e.g. ``missing_codex_entitlement``) (403)."""


# --- PKCE and the authorize URL ------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    """Unpadded base64url, as PKCE values and JWT segments are written."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Pkce:
    """A PKCE pair. The verifier is a secret until the exchange: its repr hides it."""

    verifier: str
    challenge: str

    def __repr__(self) -> str:
        return f"Pkce(verifier='***', challenge={self.challenge!r})"


def challenge_of(verifier: str) -> str:
    """S256: base64url(SHA-256(verifier)), unpadded."""
    return b64url(hashlib.sha256(verifier.encode()).digest())


def new_pkce() -> Pkce:
    """Codex `pkce.rs`: the verifier is unpadded base64url of 64 random bytes (86 characters)."""
    verifier = b64url(secrets.token_bytes(64))
    return Pkce(verifier=verifier, challenge=challenge_of(verifier))


def new_state() -> str:
    """Codex `server.rs`: ``state`` is base64url of 32 random bytes."""
    return b64url(secrets.token_bytes(32))


def redirect_uri(port: int) -> str:
    """The URI the issuer sends the browser back to: it says ``localhost`` though we bind 127.0.0.1."""
    return f"http://localhost:{port}{CALLBACK_PATH}"


def authorize_url(issuer: str, *, redirect: str, challenge: str, state: str) -> str:
    """``{issuer}/oauth/authorize`` with the query in the order the Codex CLI writes it."""
    params = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect),
        ("scope", SCOPE),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("state", state),
        ("originator", ORIGINATOR),
    ]
    # Codex percent-encodes spaces as %20 (not "+"), so the scope reads like the CLI's.
    return f"{issuer.rstrip('/')}/oauth/authorize?{urlencode(params, quote_via=quote)}"


# --- tokens and claims ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What ``/oauth/token`` answered. A refresh may carry any subset; its repr hides every token."""

    access_token: str | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    expires_in: float | None = None

    def __repr__(self) -> str:
        present = [n for n in ("access_token", "refresh_token", "id_token") if getattr(self, n)]
        return f"TokenGrant(present={present}, expires_in={self.expires_in})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Claims:
    """What relaygate reads out of the tokens (protocols §5 JWT claims)."""

    email: str | None = None
    account_id: str | None = None
    plan_type: str | None = None
    user_id: str | None = None
    expires_at: datetime | None = None
    """The access token's ``exp``."""


def decode_jwt(token: str | None) -> dict[str, Any] | None:
    """The payload of a JWT, unverified (nobody checks the signature); ``None`` when it is not one."""
    if not token:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def unix_time(seconds: float | None) -> datetime | None:
    """Unix seconds as an aware UTC datetime; ``None`` (or a value out of range) stays ``None``."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _claims_of(payload: Mapping[str, Any]) -> Claims:
    auth = payload.get(AUTH_CLAIM)
    auth = auth if isinstance(auth, Mapping) else {}
    profile = payload.get(PROFILE_CLAIM)
    profile = profile if isinstance(profile, Mapping) else {}
    expires_at = unix_time(_number(payload.get("exp")))
    return Claims(
        email=_text(payload.get("email")) or _text(profile.get("email")),
        account_id=_text(auth.get("chatgpt_account_id")),
        plan_type=_text(auth.get("chatgpt_plan_type")),
        user_id=_text(auth.get("chatgpt_user_id")) or _text(auth.get("user_id")),
        expires_at=expires_at,
    )


def read_claims(id_token: str | None, access_token: str | None) -> Claims:
    """Email, account id, plan and user from the id_token, each falling back to the access token;
    the expiry always from the access token (the id_token's ``exp`` says nothing about the bearer)."""
    from_id = _claims_of(decode_jwt(id_token) or {})
    from_access = _claims_of(decode_jwt(access_token) or {})
    return Claims(
        email=from_id.email or from_access.email,
        account_id=from_id.account_id or from_access.account_id,
        plan_type=from_id.plan_type or from_access.plan_type,
        user_id=from_id.user_id or from_access.user_id,
        expires_at=from_access.expires_at,
    )


# --- the token endpoint --------------------------------------------------------------------------


def error_code(body: object) -> str | None:
    """The issuer's error code in any of its shapes: ``{"error":{"code"}}``, ``{"error":"..."}``,
    ``{"code":"..."}`` (Codex `extract_refresh_token_error_code`)."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping) and isinstance(error.get("code"), str):
        return str(error["code"])
    if isinstance(error, str):
        return error
    code = body.get("code")
    return code if isinstance(code, str) else None


def _description(body: object) -> str | None:
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        return str(error["message"])
    text = body.get("error_description")
    return text if isinstance(text, str) else None


def _body(response: httpx.Response) -> object:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _explain(response: httpx.Response, body: object) -> str:
    """A one-line cause quoting only the issuer's code and description, never the body itself."""
    code = error_code(body)
    description = _description(body)
    parts = [f"HTTP {response.status_code}"]
    if code:
        parts.append(code)
    if description and description != code:
        parts.append(description[:200])
    return ": ".join(parts)


def classify_refresh_failure(response: httpx.Response) -> GatewayError:
    """Permanent (:class:`RefreshTokenRejected`) or transient (:class:`RefreshFailed`).

    Codex treats every 401 of the refresh as permanent and names the three codes; a 400
    ``invalid_grant`` is the OAuth way of saying the same thing. Anything else (5xx, 429, garbage) may
    pass on a later try.
    """
    body = _body(response)
    code = error_code(body)
    cause = _explain(response, body)
    normalised = code.lower() if code else None
    if response.status_code == 401 or (response.status_code == 400 and normalised == "invalid_grant"):
        return RefreshTokenRejected(
            f"the OAuth issuer refused the refresh token ({cause}); log in again",
            code=normalised if normalised in PERMANENT_REFRESH_CODES else (normalised or "refresh_refused"),
        )
    return RefreshFailed(f"token refresh failed ({cause}); it may succeed later", code=normalised)


def _grant(body: object) -> TokenGrant:
    if not isinstance(body, Mapping):
        return TokenGrant()
    return TokenGrant(
        access_token=_text(body.get("access_token")),
        refresh_token=_text(body.get("refresh_token")),
        id_token=_text(body.get("id_token")),
        expires_in=_number(body.get("expires_in")),
    )


class OAuthClient:
    """The issuer's token endpoint over the provider's shared HTTP client."""

    def __init__(self, http: httpx.AsyncClient, issuer: str, *, timeout: float = TOKEN_TIMEOUT) -> None:
        self._http = http
        self.issuer = issuer.rstrip("/")
        self._timeout = timeout

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/oauth/token"

    async def exchange_code(self, *, code: str, verifier: str, redirect: str) -> TokenGrant:
        """Form-encoded ``authorization_code`` grant; all three tokens are required in the answer."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        }
        try:
            response = await self._http.post(self.token_url, data=form, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"could not reach the OAuth issuer at {self.token_url}: {type(exc).__name__}"
            ) from None
        body = _body(response)
        if response.status_code >= 500:
            raise UpstreamError(f"the OAuth issuer failed the code exchange ({_explain(response, body)})")
        if response.status_code != 200:
            raise LoginFailed(
                f"the OAuth issuer refused the authorization code ({_explain(response, body)}); "
                "start the login again",
                code=error_code(body),
            )
        grant = _grant(body)
        if not (grant.access_token and grant.refresh_token and grant.id_token):
            raise LoginFailed("the OAuth issuer's token answer lacks the id, access or refresh token")
        return grant

    async def refresh(self, refresh_token: str) -> TokenGrant:
        """JSON ``refresh_token`` grant (protocols §5). The answer may carry any subset of the tokens;
        an answer without an access token is a transient failure (nothing usable came back)."""
        payload = {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": refresh_token}
        try:
            response = await self._http.post(
                self.token_url,
                content=orjson.dumps(payload),
                headers={"content-type": "application/json"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise RefreshFailed(
                f"could not reach the OAuth issuer at {self.token_url}: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise classify_refresh_failure(response)
        grant = _grant(_body(response))
        if grant.access_token is None:
            raise RefreshFailed("the OAuth issuer's refresh answer has no access token")
        return grant


def login_denied(error: str, description: str | None) -> GatewayError:
    """The error for a callback that carries ``error`` instead of ``code``."""
    detail = description or error
    if detail == "missing_codex_entitlement":
        return LoginDenied(
            "this ChatGPT workspace has no Codex entitlement (missing_codex_entitlement); "
            "log in with an account or workspace whose plan includes Codex",
            code=detail,
        )
    return LoginDenied(f"the login was refused by the OAuth issuer: {error}: {detail}"[:300], code=error)
