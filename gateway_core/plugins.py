"""Finding plugins and collecting what they register.

:func:`create_plugin_manager` builds a fresh pluggy manager — there is no module-global one, so every
gateway and every test has its own (STYLE §7) — and loads the ``relaygate`` entry-point group, where
built-in providers sit beside third-party ones. :class:`Plugins` is the typed facade over it: it calls
the hooks of :mod:`gateway_core.hookspecs` and gives back core objects.

Plugins are code we did not write, so every failure is reported as a :class:`PluginError` that names
the plugin — never a traceback from deep inside pluggy or importlib.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType

import pluggy

from gateway_core import hookspecs
from gateway_core.accounts import AccountPool
from gateway_core.hookspecs import PROJECT_NAME
from gateway_core.provider import Provider
from gateway_core.settings import Settings
from gateway_core.store import MemoryStore, Store

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin function as the implementation of a ``relaygate_*`` hook."""

# Provider names are the first segment of `provider/model` names, so they cannot hold a slash; lower
# case keeps `Codex/gpt-5.5` and `codex/gpt-5.5` the same route.
_PROVIDER_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")

_HOST = "the host"


class PluginError(Exception):
    """A plugin failed to load, or registered something it must not. ``plugin`` names it."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


def _describe(owner: str) -> str:
    return owner if owner == _HOST else f"plugin {owner!r}"


class ProviderRegistry:
    """Where plugins put their providers, in the ``relaygate_register_providers`` hook (STYLE §8).

    Provider names are unique across all plugins; the registry remembers which plugin registered each
    one, so a clash names both. Things that belong to a provider (an account pool, later) will be
    registered here too, keyed by the provider's name.
    """

    def __init__(self) -> None:
        self._providers: dict[str, Provider] = {}
        self._owners: dict[str, str] = {}
        self._account_pools: dict[str, AccountPool] = {}
        self._current = _HOST

    def register(self, provider: Provider) -> None:
        """Add ``provider``; it is reached as ``<provider.name>/<model>``.

        Raises :class:`PluginError` when the object is not a provider, its name is not a valid
        provider name, or another plugin already registered that name.
        """
        owner = self._current
        if not isinstance(provider, Provider):
            raise PluginError(
                f"{_describe(owner)} registered {provider!r}, which is not a provider "
                "(it needs name, models(), stream() and count_tokens())",
                plugin=None if owner == _HOST else owner,
            )
        name = provider.name
        if not isinstance(name, str) or not _PROVIDER_NAME.fullmatch(name):
            raise PluginError(
                f"{_describe(owner)} registered a provider named {name!r}; provider names are lower-case "
                "letters, digits, '.', '_' and '-', without '/'",
                plugin=None if owner == _HOST else owner,
            )
        if name in self._providers:
            raise PluginError(
                f"{_describe(owner)} registered provider {name!r}, which {_describe(self._owners[name])} "
                "already registered; provider names must be unique, so uninstall or disable one of them",
                plugin=None if owner == _HOST else owner,
            )
        self._providers[name] = provider
        self._owners[name] = owner

    @property
    def providers(self) -> Mapping[str, Provider]:
        """The registered providers by name, in registration order (read-only)."""
        return MappingProxyType(self._providers)

    def register_account_pool(self, pool: AccountPool) -> None:
        """Add the account pool of a provider this plugin registered (``pool.provider`` names it).

        The admin routes (``/accounts*``, ``/auth/callback``) then manage that provider's accounts.
        """
        owner = self._current
        plugin = None if owner == _HOST else owner
        if not isinstance(pool, AccountPool):
            raise PluginError(
                f"{_describe(owner)} registered {pool!r}, which is not an account pool", plugin=plugin
            )
        name = pool.provider
        if self._owners.get(name) != owner:
            raise PluginError(
                f"{_describe(owner)} registered an account pool for provider {name!r}, "
                "which it did not register",
                plugin=plugin,
            )
        if name in self._account_pools:
            raise PluginError(
                f"{_describe(owner)} registered a second account pool for {name!r}", plugin=plugin
            )
        self._account_pools[name] = pool

    @property
    def account_pools(self) -> Mapping[str, AccountPool]:
        """Account pools by provider name (read-only)."""
        return MappingProxyType(self._account_pools)

    def owner(self, name: str) -> str:
        """The plugin that registered provider ``name`` (``"the host"`` for providers added directly)."""
        return self._owners[name]

    @contextmanager
    def _registering_for(self, plugin: str) -> Iterator[None]:
        self._current = plugin
        try:
            yield
        finally:
            self._current = _HOST


class Plugins:
    """Typed access to a plugin manager's hooks."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self._manager = manager

    @property
    def manager(self) -> pluggy.PluginManager:
        """The underlying pluggy manager (to register or block plugins before calling hooks)."""
        return self._manager

    def names(self) -> list[str]:
        """The names of the registered plugins (entry-point names for installed ones)."""
        return sorted(name for name, _ in self._manager.list_name_plugin())

    def register_providers(
        self, settings: Settings, registry: ProviderRegistry | None = None, *, store: Store | None = None
    ) -> ProviderRegistry:
        """Call ``relaygate_register_providers`` on every plugin and return the filled registry.

        Each plugin is called on its own so that whatever goes wrong is reported naming it.
        """
        registry = ProviderRegistry() if registry is None else registry
        store = MemoryStore() if store is None else store
        hook_name = hookspecs.relaygate_register_providers.__name__
        implementations = self._manager.hook.relaygate_register_providers.get_hookimpls()
        implementers = [implementation.plugin for implementation in implementations]
        for implementation in implementations:
            plugin = implementation.plugin_name
            others = [other for other in implementers if other is not implementation.plugin]
            call = self._manager.subset_hook_caller(hook_name, remove_plugins=others)
            with registry._registering_for(plugin):
                try:
                    call(registry=registry, settings=settings, store=store)
                except PluginError:
                    raise
                except Exception as exc:
                    raise PluginError(
                        f"plugin {plugin!r} failed in {hook_name}: {type(exc).__name__}: {exc}", plugin=plugin
                    ) from exc
        return registry


def create_plugin_manager(
    *, load_entrypoints: bool = True, plugins: Iterable[object] = ()
) -> pluggy.PluginManager:
    """A new plugin manager with the relaygate hooks, the installed plugins and ``plugins``.

    ``load_entrypoints=False`` leaves out everything installed (built-ins included), which is what a
    test or a library user who registers providers by hand wants. ``plugins`` are modules or objects
    with hook implementations, registered after the installed ones.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    if load_entrypoints:
        for entry_point in _entry_points():
            _load_entry_point(manager, entry_point)
    for plugin in plugins:
        _register(manager, plugin, _plugin_name(manager, plugin))
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        name = manager.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin {name!r} is not a valid relaygate plugin: {exc}", plugin=name) from exc
    return manager


def _entry_points() -> Iterable[EntryPoint]:
    # Looked up on every call (not cached at import) so a plugin installed while the process runs is found.
    return entry_points(group=PROJECT_NAME)


def _load_entry_point(manager: pluggy.PluginManager, entry_point: EntryPoint) -> None:
    """Load and register one installed plugin. pluggy's ``load_setuptools_entrypoints`` does the same
    but lets an import error escape without saying which plugin caused it."""
    name = entry_point.name
    if manager.get_plugin(name) is not None or manager.is_blocked(name):
        return
    distribution = f" from {entry_point.dist.name}" if entry_point.dist is not None else ""
    try:
        plugin = entry_point.load()
    except Exception as exc:
        raise PluginError(
            f"plugin {name!r} ({entry_point.value}{distribution}) failed to load: "
            f"{type(exc).__name__}: {exc}",
            plugin=name,
        ) from exc
    _register(manager, plugin, name)


def _register(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    try:
        manager.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(f"plugin {name!r} could not be registered: {exc}", plugin=name) from exc


def _plugin_name(manager: pluggy.PluginManager, plugin: object) -> str:
    """A readable, unique name for a plugin given as an object: its module or class name."""
    base = getattr(plugin, "__name__", None)
    if not isinstance(base, str):
        base = type(plugin).__qualname__
    name, counter = base, 1
    while manager.has_plugin(name):
        counter += 1
        name = f"{base}#{counter}"
    return name
