"""The bundled server's own configuration: where it listens and who may call it (DESIGN §5).

Read once at start-up from ``RELAYGATE_*`` variables (CLI flags override host and port). Provider
settings are not here: they reach plugins through :class:`gateway_core.settings.Settings`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from gateway_core.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and every loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How the server is reached and protected."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    """When set, every route but ``GET /health`` needs it (``x-api-key`` or ``Authorization: Bearer``)."""
    home: Path = field(default_factory=lambda: Path("~/.relaygate").expanduser())
    """The state folder (``RELAYGATE_HOME``)."""
    max_body_bytes: int = 32 * 1024 * 1024
    """Claude Code bodies are 50-120 KB; images and PDFs inflate them. Larger bodies get 413."""
    keepalive_seconds: float = 10.0
    """How long a stream may stay silent before the server sends a keep-alive frame."""

    @classmethod
    def from_settings(
        cls, settings: Settings, *, host: str | None = None, port: int | None = None
    ) -> ServerConfig:
        """The configuration from ``RELAYGATE_*`` settings; explicit ``host`` / ``port`` win."""
        raw_port = settings.get("RELAYGATE_PORT")
        try:
            env_port = int(raw_port) if raw_port else DEFAULT_PORT
        except ValueError:
            raise ValueError(f"RELAYGATE_PORT must be a port number, got {raw_port!r}") from None
        return cls(
            host=host or settings.get("RELAYGATE_HOST") or DEFAULT_HOST,
            port=port if port is not None else env_port,
            api_key=settings.get("RELAYGATE_API_KEY") or None,
            home=Path(settings.get("RELAYGATE_HOME") or "~/.relaygate").expanduser(),
        )

    def check_exposure(self) -> None:
        """Refuse to serve a non-loopback address without an API key: the gateway spends the user's plans."""
        if not is_loopback(self.host) and not self.api_key:
            raise ValueError(
                f"refusing to listen on {self.host} without RELAYGATE_API_KEY: anyone who can reach it "
                "could use your accounts. Set RELAYGATE_API_KEY or bind 127.0.0.1."
            )

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
