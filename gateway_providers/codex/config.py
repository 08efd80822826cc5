"""The Codex provider's settings, read once from the host's :class:`~gateway_core.settings.Settings`.

Every name here is a ``RELAYGATE_*`` variable the host resolved (DESIGN §5); the plugin never looks at
the process environment itself. A value that is present but wrong raises :class:`ValueError` naming the
variable, so the host can report it against this plugin before any request is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway_core.settings import get_seconds, get_text, get_url

BASE_URL = "RELAYGATE_CODEX_BASE_URL"
OAUTH_ISSUER = "RELAYGATE_OAUTH_ISSUER"
OAUTH_CALLBACK_PORT = "RELAYGATE_OAUTH_CALLBACK_PORT"
AUTH_FILE = "RELAYGATE_CODEX_AUTH_FILE"
CLIENT_VERSION = "RELAYGATE_CODEX_CLIENT_VERSION"
CONNECT_TIMEOUT = "RELAYGATE_CODEX_CONNECT_TIMEOUT"
FIRST_EVENT_TIMEOUT = "RELAYGATE_CODEX_FIRST_EVENT_TIMEOUT"
IDLE_TIMEOUT = "RELAYGATE_CODEX_IDLE_TIMEOUT"
MODELS_TTL = "RELAYGATE_CODEX_MODELS_TTL"

DEFAULT_BASE_URL = "https://chatgpt.com/backend-api"
DEFAULT_OAUTH_ISSUER = "https://auth.openai.com"
DEFAULT_CALLBACK_PORT = 1455
DEFAULT_AUTH_FILE = "~/.codex/auth.json"
DEFAULT_CLIENT_VERSION = "0.142.5"
"""The Codex CLI version we present (``version`` header, User-Agent, ``client_version`` of the model
list). The backend filters its model catalog by ``minimal_client_version``, so a recent one matters."""

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
"""The Codex CLI's public OAuth client id (DESIGN §7)."""
ORIGINATOR = "codex_cli_rs"
"""The ``originator`` header and authorize parameter the backend expects from the Codex CLI."""


@dataclass(frozen=True, slots=True)
class CodexSettings:
    """Where the Codex backend and the OAuth issuer are, and how long we wait for them."""

    base_url: str = DEFAULT_BASE_URL
    """``RELAYGATE_CODEX_BASE_URL``, without a trailing slash: ``{base}/codex/responses`` etc."""
    oauth_issuer: str = DEFAULT_OAUTH_ISSUER
    """``RELAYGATE_OAUTH_ISSUER``, no trailing slash: ``{issuer}/oauth/authorize`` and ``/oauth/token``."""
    callback_port: int = DEFAULT_CALLBACK_PORT
    """``RELAYGATE_OAUTH_CALLBACK_PORT``: the one-shot OAuth callback listener on 127.0.0.1."""
    auth_file: Path = Path(DEFAULT_AUTH_FILE)
    """``RELAYGATE_CODEX_AUTH_FILE``: the Codex CLI's ``auth.json`` that ``/accounts/import`` reads (``~``
    is expanded when the file is read, not here)."""
    client_version: str = DEFAULT_CLIENT_VERSION
    """``RELAYGATE_CODEX_CLIENT_VERSION``: the Codex CLI version we present."""
    connect_timeout: float = 10.0
    """``RELAYGATE_CODEX_CONNECT_TIMEOUT`` (seconds): opening a connection to the backend."""
    first_event_timeout: float = 120.0
    """``RELAYGATE_CODEX_FIRST_EVENT_TIMEOUT`` (seconds): from sending a request to its first SSE event.
    A request that gets nothing by then fails with 504 instead of hanging (protocols §9 "Stalls")."""
    idle_timeout: float = 300.0
    """``RELAYGATE_CODEX_IDLE_TIMEOUT`` (seconds): the longest silence between two events of a started
    answer (Codex's own stream idle timeout is 300 s); the stream then ends with an in-band error."""
    models_ttl: float = 600.0
    """``RELAYGATE_CODEX_MODELS_TTL`` (seconds): how long one account's model list is reused."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> CodexSettings:
        """Read and check the ``RELAYGATE_*`` values; unset or blank ones take their defaults."""
        return cls(
            base_url=get_url(settings, BASE_URL, DEFAULT_BASE_URL),
            oauth_issuer=get_url(settings, OAUTH_ISSUER, DEFAULT_OAUTH_ISSUER),
            callback_port=_port(OAUTH_CALLBACK_PORT, get_text(settings, OAUTH_CALLBACK_PORT)),
            auth_file=Path(get_text(settings, AUTH_FILE) or DEFAULT_AUTH_FILE),
            client_version=_version(
                CLIENT_VERSION, get_text(settings, CLIENT_VERSION) or DEFAULT_CLIENT_VERSION
            ),
            connect_timeout=get_seconds(settings, CONNECT_TIMEOUT, 10.0),
            first_event_timeout=get_seconds(settings, FIRST_EVENT_TIMEOUT, 120.0),
            idle_timeout=get_seconds(settings, IDLE_TIMEOUT, 300.0),
            models_ttl=get_seconds(settings, MODELS_TTL, 600.0),
        )

    @property
    def responses_url(self) -> str:
        return f"{self.base_url}/codex/responses"

    @property
    def models_url(self) -> str:
        return f"{self.base_url}/codex/models"

    @property
    def usage_url(self) -> str:
        """``{base}/wham/usage`` on the ChatGPT backend; bases without ``/backend-api`` use
        ``{base}/api/codex/usage`` (protocols §4.10)."""
        if "/backend-api" in self.base_url:
            return f"{self.base_url}/wham/usage"
        return f"{self.base_url}/api/codex/usage"

    @property
    def authorize_url(self) -> str:
        return f"{self.oauth_issuer}/oauth/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.oauth_issuer}/oauth/token"

    @property
    def redirect_uri(self) -> str:
        """The OAuth redirect the issuer knows for the Codex CLI (``localhost``, not ``127.0.0.1``)."""
        return f"http://localhost:{self.callback_port}/auth/callback"


def _port(name: str, value: str | None) -> int:
    if value is None:
        return DEFAULT_CALLBACK_PORT
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{name}: expected a TCP port between 1 and 65535, got {value!r}")
    return int(value)


def _version(name: str, value: str) -> str:
    # It travels in a header and a query string: keep it a plain dotted version.
    pieces = value.split(".")
    if not 2 <= len(pieces) <= 4 or not all(piece.isdigit() for piece in pieces):
        raise ValueError(f"{name}: expected a version such as {DEFAULT_CLIENT_VERSION!r}, got {value!r}")
    return value
