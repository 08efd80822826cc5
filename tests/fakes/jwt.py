"""Unsigned JWTs in the shape the ChatGPT issuer hands out, for tests.

Nobody verifies these signatures: Codex and relaygate only base64url-decode the middle segment
(protocols §5), so the fakes mint ``alg: none`` tokens exactly like ``openai/codex``'s own login tests
(``fixtures/oauth/token_exchange_response.json``: header ``{"alg":"none","typ":"JWT"}``, signature
``c2ln``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import orjson

AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"

# The recorded test tokens carry this header and this dummy signature ("sig").
_HEADER = {"alg": "none", "typ": "JWT"}
_SIGNATURE = "c2ln"


def b64url(raw: bytes) -> str:
    """Unpadded base64url, as JWT segments and PKCE values are written."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(claims: Mapping[str, Any]) -> str:
    """``header.payload.signature`` with compact JSON segments (key order kept)."""
    header = json.dumps(_HEADER, separators=(",", ":")).encode()
    payload = json.dumps(dict(claims), separators=(",", ":")).encode()
    return f"{b64url(header)}.{b64url(payload)}.{_SIGNATURE}"


def decode_jwt(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified; raises ``ValueError`` when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT: expected three dot-separated segments")
    try:
        claims = orjson.loads(b64url_decode(parts[1]))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"not a JWT: {exc}") from exc
    if not isinstance(claims, dict):
        raise ValueError("not a JWT: the payload is not a JSON object")
    return claims
