"""Tool names and call ids kept within upstream limits, reversibly (protocols §7.5).

OpenAI-style upstreams accept tool names of ``[a-zA-Z0-9_-]`` up to 64 characters and call ids up to
64 characters; Anthropic clients accept ids matching ``^[a-zA-Z0-9_-]+$``. Long MCP tool names, long
ids and OpenRouter's ``functions.weather:0`` ids therefore need rewriting on the way out and restoring
on the way back. Names are restored from the request's own ``tools`` list; ids are encoded so they
decode without any server state.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

MAX_NAME_LENGTH = 64
MAX_CALL_ID_LENGTH = 64
_SAFE = re.compile(r"^[a-zA-Z0-9_-]+$")
_UNSAFE_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_FOREIGN_ID_PREFIX = "rgid_"


def _digest(text: str, length: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def shorten_name(name: str, limit: int = MAX_NAME_LENGTH) -> str:
    """A name the upstream accepts: unchanged when it already fits, else a readable prefix + hash."""
    if len(name) <= limit and _SAFE.match(name):
        return name
    cleaned = _UNSAFE_CHARS.sub("_", name)
    suffix = "_" + _digest(name)
    return cleaned[: limit - len(suffix)] + suffix


class ToolNameMap:
    """Both directions of the name rewriting for one request's tools."""

    def __init__(self, names: Iterable[str], limit: int = MAX_NAME_LENGTH) -> None:
        self._to_upstream: dict[str, str] = {}
        self._to_client: dict[str, str] = {}
        for name in names:
            short = shorten_name(name, limit)
            self._to_upstream[name] = short
            self._to_client[short] = name

    def to_upstream(self, name: str) -> str:
        """The name to send upstream (names outside the map are shortened the same way)."""
        return self._to_upstream.get(name) or shorten_name(name)

    def to_client(self, name: str) -> str:
        """The client's original name for an upstream name; unknown names pass unchanged."""
        return self._to_client.get(name, name)


def shorten_call_id(call_id: str, limit: int = MAX_CALL_ID_LENGTH) -> str:
    """A call id within ``limit``: unchanged when it fits, else a deterministic prefix + hash.

    Deterministic, so a ``tool_use`` id and the ``tool_use_id`` of its result map to the same value.
    """
    if len(call_id) <= limit:
        return call_id
    suffix = "_" + _digest(call_id, 16)
    return call_id[: limit - len(suffix)] + suffix


def to_client_call_id(call_id: str) -> str:
    """An id a strict client accepts: safe ids unchanged, others (``functions.weather:0``) encoded."""
    if _SAFE.match(call_id) and not call_id.startswith(_FOREIGN_ID_PREFIX):
        return call_id
    encoded = base64.urlsafe_b64encode(call_id.encode()).decode().rstrip("=")
    return _FOREIGN_ID_PREFIX + encoded


def from_client_call_id(call_id: str) -> str:
    """Undo :func:`to_client_call_id`; any other id passes unchanged."""
    if not call_id.startswith(_FOREIGN_ID_PREFIX):
        return call_id
    encoded = call_id[len(_FOREIGN_ID_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return call_id
