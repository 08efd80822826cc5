"""The hooks a relaygate plugin can implement (DESIGN §3).

A plugin is any module or object with functions marked by :data:`gateway_core.plugins.hookimpl`, made
known through the ``relaygate`` entry-point group (built-in providers are entry points of our own
distribution, exactly like third-party ones). Every hook is named ``relaygate_*`` and speaks only in
core terms: a plugin never imports the web framework, and hooks do no I/O — they build objects and
register them; network and disk work happens later, inside the objects, when a request needs it.

An implementation may accept any subset of a hook's arguments, by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from gateway_core.settings import Settings

if TYPE_CHECKING:
    from gateway_core.plugins import ProviderRegistry
    from gateway_core.store import Store

PROJECT_NAME = "relaygate"
"""The pluggy project name and the entry-point group plugins are found under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def relaygate_register_providers(registry: ProviderRegistry, settings: Settings, store: Store) -> None:
    """Add this plugin's providers with ``registry.register(provider)``.

    Called once per plugin when a gateway is built, before any request is served. Create the provider
    objects here from ``settings`` — the host's resolved configuration (``RELAYGATE_*`` environment
    variables and CLI flags); read the names you document and nothing else — and register each one.
    Register nothing when a required setting is missing and the provider cannot work without it.
    ``store`` is where a provider keeps state between requests and restarts (accounts, tokens, marks,
    settings, usage); a provider with accounts also registers its pool with
    ``registry.register_account_pool(pool)``.

    Do no I/O here: no network calls, no file reads, no waiting. Raise an exception only for a setting
    that is present but invalid; the host reports it naming this plugin. Registering a provider name
    that another plugin already registered is an error.
    """
