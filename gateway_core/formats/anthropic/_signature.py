"""The thinking ``signature`` codec: how reasoning tokens of any provider ride in Anthropic thinking blocks.

Claude Code returns thinking blocks exactly as it got them, and ``signature`` is the only opaque field
that survives the round trip (protocols §7.8). So a continuation token minted by another provider (an
OpenAI ``encrypted_content``) travels as ``"rg1." + base64url(JSON {"p": provider, "t": token})``.
Genuine Anthropic signatures are standard base64, which never contains a ``.``, so the prefix can never
be mistaken for one, and a token is only ever replayed to the provider that minted it (DESIGN §2).

A signature carrying our prefix that does not decode is ours but damaged: its token cannot be trusted
and its minter is unknown, so it is *dropped* (``(None, None)``). The thinking text survives, no upstream
ever receives the damaged bytes, and an Anthropic upstream never sees a forged signature.
"""

from __future__ import annotations

import base64
import binascii

import orjson

ANTHROPIC = "anthropic"
"""The provider name stamped on tokens minted by Anthropic itself."""

PREFIX = "rg1."
"""Version 1 of our envelope for tokens minted by other providers."""


def encode_signature(token: str | None, provider: str | None, *, native: str = ANTHROPIC) -> str:
    """The wire ``signature`` for a reasoning token.

    Tokens of ``native`` (or of no known provider) go out verbatim; any other provider's token is
    wrapped in the ``rg1.`` envelope. No token gives ``""``, as Anthropic sends before its signature.
    """
    if not token:
        return ""
    if provider is None or provider == native:
        return token
    payload = orjson.dumps({"p": provider, "t": token})
    return PREFIX + base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_signature(signature: str | None, *, native: str = ANTHROPIC) -> tuple[str | None, str | None]:
    """``(token, provider)`` for a wire ``signature``.

    ``""`` or ``None`` gives ``(None, None)``; a plain signature was minted by ``native``; an ``rg1.``
    envelope gives back the wrapped token and its provider, or ``(None, None)`` when it is damaged.
    """
    if not signature:
        return None, None
    if not signature.startswith(PREFIX):
        return signature, native
    return _open_envelope(signature[len(PREFIX) :])


def _open_envelope(encoded: str) -> tuple[str | None, str | None]:
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError):
        return None, None
    if not isinstance(payload, dict):
        return None, None
    provider, token = payload.get("p"), payload.get("t")
    if not isinstance(provider, str) or not provider or not isinstance(token, str) or not token:
        return None, None
    return token, provider
