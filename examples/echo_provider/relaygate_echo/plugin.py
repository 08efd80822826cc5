"""The plugin module named by the ``relaygate`` entry point: it registers the echo provider."""

from __future__ import annotations

from gateway_core import ProviderRegistry, Settings, hookimpl
from relaygate_echo.provider import EchoProvider

PREFIX_SETTING = "RELAYGATE_ECHO_PREFIX"
"""Optional text put in front of every echoed answer (shows how a plugin reads its settings)."""


@hookimpl
def relaygate_register_providers(registry: ProviderRegistry, settings: Settings) -> None:
    """Build the provider from the host's settings and register it; no I/O happens here."""
    registry.register(EchoProvider(prefix=settings.get(PREFIX_SETTING, "")))
