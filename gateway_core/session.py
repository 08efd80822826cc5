"""A stable conversation key, so an upstream's prompt cache keeps hitting across turns.

Claude Code names its session in the ``X-Claude-Code-Session-Id`` header and again inside
``metadata.user_id``, a JSON-encoded string ``{"device_id", "account_uuid", "session_id"}``
(protocols §6.2, §6.3). Other clients give neither; their requests get no key and the upstream
decides caching by itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import orjson

from gateway_core.models import Request

SESSION_HEADER = "x-claude-code-session-id"
_MAX_KEY_LENGTH = 64


def _bounded(key: str) -> str:
    """Keys are sent upstream as ``prompt_cache_key`` / ``session_id``: keep them short and opaque."""
    key = key.strip()
    if len(key) <= _MAX_KEY_LENGTH and key.isascii() and key.isprintable():
        return key
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _from_user_id(user_id: str) -> str | None:
    if not user_id.startswith("{"):
        return None
    try:
        decoded = orjson.loads(user_id)
    except orjson.JSONDecodeError:
        return None
    session = decoded.get("session_id") if isinstance(decoded, dict) else None
    return session if isinstance(session, str) and session else None


def session_key(headers: Mapping[str, str], request: Request) -> str | None:
    """The conversation key of a request: the Claude Code session header, else the session inside
    ``metadata.user_id``, else ``None``. ``headers`` must have lower-case names."""
    header = headers.get(SESSION_HEADER)
    if header:
        return _bounded(header)
    if request.user_id:
        session = _from_user_id(request.user_id)
        if session:
            return _bounded(session)
    return None
