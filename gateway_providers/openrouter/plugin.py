"""The ``kilo`` plugin: registered through our own distribution's ``relaygate`` entry point, exactly like
a third-party plugin (DESIGN §3; pyproject ``[project.entry-points.relaygate]``).

The hook only builds objects — the settings, one shared HTTP client (no connection is opened until a
request needs it), the free-model catalog and the provider — and registers the provider. It always
does: ``RELAYGATE_HAIKU_LANE=off`` only changes where the haiku lane routes, and ``kilo/<model>``
keeps working. No key is needed to register (Kilo serves its free models keylessly).
"""

from __future__ import annotations

from gateway_core.plugins import ProviderRegistry, hookimpl
from gateway_core.settings import Settings
from gateway_providers.openrouter.config import OpenRouterSettings
from gateway_providers.openrouter.models import FreeModelCatalog
from gateway_providers.openrouter.provider import OpenRouterProvider
from gateway_providers.openrouter.transport import create_http_client


def build(settings: Settings) -> OpenRouterProvider:
    """The ``kilo`` provider, wired as the hook registers it (a library user who builds a gateway by
    hand can call this too). Raises :class:`ValueError` naming the variable when a ``RELAYGATE_*``
    value is invalid."""
    config = OpenRouterSettings.from_settings(settings)
    http = create_http_client(config)
    return OpenRouterProvider(config, http, catalog=FreeModelCatalog(config, http))


@hookimpl
def relaygate_register_providers(registry: ProviderRegistry, settings: Settings) -> None:
    """Register the ``kilo`` provider."""
    registry.register(build(settings))
