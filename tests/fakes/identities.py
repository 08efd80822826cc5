"""Who the fake upstreams know: ChatGPT identities and the access tokens minted for them.

One :class:`IdentityRegistry` is shared by the fake OAuth issuer (which mints tokens) and the fake
Codex backend (which accepts them), so a token the gateway obtained through a real code exchange or
refresh is good for ``/codex/responses`` until its ``exp`` passes, exactly like upstream. Tests can
also register tokens the issuer never minted (an imported ``auth.json``) and revoke tokens on the
server side to provoke a 401.

Thread-safe: a fake may run in a background thread while the test scripts it from the main thread.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tests.fakes.jwt import AUTH_CLAIM, PROFILE_CLAIM, encode_jwt

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
DEFAULT_ACCESS_LIFETIME = 3600.0


@dataclass(frozen=True)
class Identity:
    """A ChatGPT login: the claims the id_token carries (``fixtures/oauth/id_token_claims_shape.json``)."""

    email: str
    account_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    plan_type: str = "plus"
    user_id: str = field(default_factory=lambda: f"user-{secrets.token_hex(8)}")

    def auth_claims(self) -> dict[str, Any]:
        return {
            "chatgpt_account_id": self.account_id,
            "chatgpt_plan_type": self.plan_type,
            "chatgpt_user_id": self.user_id,
            "user_id": self.user_id,
        }

    def id_token(self, *, now: float) -> str:
        return encode_jwt(
            {
                "email": self.email,
                AUTH_CLAIM: self.auth_claims(),
                PROFILE_CLAIM: {"email": self.email, "email_verified": True},
                "iss": "https://auth.openai.com",
                "aud": [CLIENT_ID],
                "iat": int(now),
                "exp": int(now) + 3600,
            }
        )

    def access_token(self, *, now: float, lifetime: float) -> str:
        # A random jti keeps two tokens minted in the same second distinct.
        return encode_jwt(
            {
                AUTH_CLAIM: self.auth_claims(),
                PROFILE_CLAIM: {"email": self.email, "email_verified": True},
                "iss": "https://auth.openai.com",
                "aud": ["https://api.openai.com/v1"],
                "client_id": CLIENT_ID,
                "iat": int(now),
                "exp": int(now + lifetime),
                "jti": secrets.token_hex(8),
                "scp": ["openid", "profile", "email", "offline_access"],
            }
        )


class TokenState(StrEnum):
    """Why the Codex backend accepts or refuses a bearer token."""

    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass
class _AccessToken:
    identity: Identity
    expires_at: float | None
    revoked: bool = False


@dataclass(frozen=True)
class TokenSet:
    """What a code exchange or refresh hands out."""

    identity: Identity
    id_token: str
    access_token: str
    refresh_token: str
    expires_in: int

    def auth_json(self, *, last_refresh: str = "2025-09-15T10:20:30.123456Z") -> dict[str, Any]:
        """The ``~/.codex/auth.json`` the Codex CLI would write for these tokens (``auth_json_chatgpt``)."""
        return {
            "auth_mode": "chatgpt",
            "OPENAI_API_KEY": None,
            "tokens": {
                "id_token": self.id_token,
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "account_id": self.identity.account_id,
            },
            "last_refresh": last_refresh,
        }


class IdentityRegistry:
    """Identities by email and the access tokens issued to them, with their expiry."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.access_lifetime = DEFAULT_ACCESS_LIFETIME
        self._lock = threading.Lock()
        self._identities: dict[str, Identity] = {}
        self._tokens: dict[str, _AccessToken] = {}

    def add(
        self,
        email: str,
        *,
        account_id: str | None = None,
        plan_type: str = "plus",
        user_id: str | None = None,
    ) -> Identity:
        """Register (or replace) the identity for ``email``."""
        identity = Identity(
            email=email,
            account_id=account_id or str(uuid.uuid4()),
            plan_type=plan_type,
            user_id=user_id or f"user-{secrets.token_hex(8)}",
        )
        with self._lock:
            self._identities[email] = identity
        return identity

    def get(self, email: str) -> Identity:
        with self._lock:
            return self._identities[email]

    def identities(self) -> list[Identity]:
        with self._lock:
            return list(self._identities.values())

    def by_account(self, account_id: str) -> Identity | None:
        with self._lock:
            return next((i for i in self._identities.values() if i.account_id == account_id), None)

    def issue_access_token(self, identity: Identity, *, lifetime: float | None = None) -> str:
        """Mint a JWT access token for ``identity`` that the Codex fake accepts until its ``exp``."""
        now = self.clock()
        seconds = self.access_lifetime if lifetime is None else lifetime
        token = identity.access_token(now=now, lifetime=seconds)
        # The backend trusts the token's own exp claim (whole seconds).
        self.register_access_token(token, identity, expires_at=int(now + seconds))
        return token

    def register_access_token(
        self, token: str, identity: Identity, *, expires_at: float | None = None
    ) -> None:
        """Accept any token (e.g. ``access-123`` from an ``auth.json`` fixture); ``None`` never expires."""
        with self._lock:
            self._identities.setdefault(identity.email, identity)
            self._tokens[token] = _AccessToken(identity=identity, expires_at=expires_at)

    def check(self, token: str) -> tuple[TokenState, Identity | None]:
        """What the backend thinks of a bearer token, and whose it is."""
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None:
            return TokenState.UNKNOWN, None
        if entry.revoked:
            return TokenState.REVOKED, entry.identity
        if entry.expires_at is not None and entry.expires_at <= self.clock():
            return TokenState.EXPIRED, entry.identity
        return TokenState.VALID, entry.identity

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens[token].revoked = True

    def revoke_account(self, account_id: str) -> int:
        """Invalidate every access token of an account (the next call answers 401); returns how many."""
        with self._lock:
            hits = [t for t in self._tokens.values() if t.identity.account_id == account_id and not t.revoked]
            for entry in hits:
                entry.revoked = True
        return len(hits)

    def expire_account(self, account_id: str) -> None:
        """Make every access token of an account expired as of now."""
        now = self.clock()
        with self._lock:
            for entry in self._tokens.values():
                if entry.identity.account_id == account_id:
                    entry.expires_at = now

    def access_tokens(self, account_id: str) -> list[str]:
        with self._lock:
            return [tok for tok, entry in self._tokens.items() if entry.identity.account_id == account_id]
