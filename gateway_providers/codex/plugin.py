"""The ``codex`` plugin: registered through our own distribution's ``relaygate`` entry point, exactly
like a third-party plugin (DESIGN §3; pyproject ``[project.entry-points.relaygate]``).

The hook only builds objects — the settings, one shared HTTP client (no connection is opened until a
request needs it), the model catalog, the account pool over the host's store, and the provider — and
registers the provider and its pool. No I/O happens here: accounts are read from the store, and tokens
refreshed, when a request or an admin route first needs them.
"""

from __future__ import annotations

from gateway_core.plugins import ProviderRegistry, hookimpl
from gateway_core.settings import Settings
from gateway_core.store import Store
from gateway_providers.codex.accounts import CodexAccountPool
from gateway_providers.codex.config import CodexSettings
from gateway_providers.codex.lease import Lease
from gateway_providers.codex.models import ModelCatalog
from gateway_providers.codex.provider import CodexProvider
from gateway_providers.codex.transport import create_http_client


def build(settings: Settings, store: Store) -> tuple[CodexProvider[Lease], CodexAccountPool]:
    """The provider and its account pool, wired as the hook registers them (a library user who builds
    a gateway by hand can call this too). One HTTP client serves the backend, the OAuth issuer and the
    usage endpoint; one catalog serves the provider and ``GET /accounts/models``.

    Raises :class:`ValueError` naming the variable when a ``RELAYGATE_*`` value is invalid.
    """
    codex_settings = CodexSettings.from_settings(settings)
    http = create_http_client(codex_settings)
    catalog = ModelCatalog(codex_settings, http)
    pool = CodexAccountPool(store, codex_settings, http, models_source=catalog)
    return CodexProvider(codex_settings, pool, http, catalog=catalog), pool


@hookimpl
def relaygate_register_providers(registry: ProviderRegistry, settings: Settings, store: Store) -> None:
    """Register the ``codex`` provider and its account pool."""
    provider, pool = build(settings, store)
    registry.register(provider)
    registry.register_account_pool(pool)
