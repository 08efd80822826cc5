"""The plugin manager, the provider registry and the errors a bad plugin gets."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint

import pytest

from gateway_core import plugins as plugins_module
from gateway_core.plugins import PluginError, Plugins, ProviderRegistry, create_plugin_manager, hookimpl
from gateway_core.settings import Settings
from tests.unit._fake_provider import FakeProvider


class ProvidesOne:
    """A plugin object registering one provider, named from a setting."""

    def __init__(self, provider_name: str = "codex") -> None:
        self.provider_name = provider_name
        self.seen_settings: Settings | None = None

    @hookimpl
    def relaygate_register_providers(self, registry: ProviderRegistry, settings: Settings) -> None:
        self.seen_settings = settings
        registry.register(FakeProvider(self.provider_name))


class Broken:
    @hookimpl
    def relaygate_register_providers(self, registry: ProviderRegistry) -> None:
        raise KeyError("RELAYGATE_BROKEN_URL")


class RegistersJunk:
    @hookimpl
    def relaygate_register_providers(self, registry: ProviderRegistry) -> None:
        registry.register(object())  # type: ignore[arg-type]


class Misspelt:
    @hookimpl
    def relaygate_register_provider(self, registry: ProviderRegistry) -> None:
        """Not a relaygate hook: one letter short."""


class WrongArguments:
    @hookimpl
    def relaygate_register_providers(self, registry: ProviderRegistry, config: object) -> None:
        """Asks for an argument the hook does not have."""


def providers_of(*plugin_objects: object, settings: Settings | None = None) -> dict[str, object]:
    manager = create_plugin_manager(load_entrypoints=False, plugins=plugin_objects)
    registry = Plugins(manager).register_providers(Settings() if settings is None else settings)
    return dict(registry.providers)


def use_entry_points(monkeypatch: pytest.MonkeyPatch, entry_points: Iterable[EntryPoint]) -> None:
    listed = list(entry_points)
    monkeypatch.setattr(plugins_module, "_entry_points", lambda: listed)


def test_hook_implementations_on_plain_objects_register_providers() -> None:
    assert sorted(providers_of(ProvidesOne("codex"), ProvidesOne("kilo"))) == ["codex", "kilo"]


def test_plugins_receive_the_settings_the_host_passes() -> None:
    plugin = ProvidesOne()
    settings = Settings({"RELAYGATE_X": "1"})

    providers_of(plugin, settings=settings)

    assert plugin.seen_settings is settings


def test_an_implementation_may_take_only_some_of_the_hook_arguments() -> None:
    class RegistryOnly:
        @hookimpl
        def relaygate_register_providers(self, registry: ProviderRegistry) -> None:
            registry.register(FakeProvider("echo"))

    assert list(providers_of(RegistryOnly())) == ["echo"]


def test_two_plugins_registering_the_same_provider_name_is_an_error_naming_both() -> None:
    with pytest.raises(PluginError) as caught:
        providers_of(ProvidesOne("kilo"), ProvidesOne("kilo"))

    message = str(caught.value)
    assert "'ProvidesOne'" in message
    assert "'ProvidesOne#2'" in message
    assert "'kilo'" in message
    assert caught.value.plugin in ("ProvidesOne", "ProvidesOne#2")


def test_the_registry_remembers_which_plugin_registered_a_provider() -> None:
    manager = create_plugin_manager(load_entrypoints=False, plugins=[ProvidesOne("kilo")])

    registry = Plugins(manager).register_providers(Settings())

    assert registry.owner("kilo") == "ProvidesOne"


def test_a_plugin_failing_in_its_hook_is_reported_naming_it() -> None:
    with pytest.raises(
        PluginError, match=r"plugin 'Broken' failed in relaygate_register_providers: KeyError"
    ) as caught:
        providers_of(Broken())

    assert caught.value.plugin == "Broken"
    assert isinstance(caught.value.__cause__, KeyError)


def test_registering_something_that_is_not_a_provider_is_an_error() -> None:
    with pytest.raises(PluginError, match=r"plugin 'RegistersJunk' registered .* not a provider"):
        providers_of(RegistersJunk())


@pytest.mark.parametrize("name", ["", "Codex", "my/provider", "has space"])
def test_provider_names_must_be_usable_as_the_first_segment_of_a_model_name(name: str) -> None:
    with pytest.raises(PluginError, match="provider names are lower-case"):
        providers_of(ProvidesOne(name))


def test_a_misspelt_hook_is_an_error_naming_the_plugin() -> None:
    with pytest.raises(PluginError, match=r"plugin 'Misspelt' is not a valid relaygate plugin"):
        create_plugin_manager(load_entrypoints=False, plugins=[Misspelt()])


def test_a_hook_asking_for_unknown_arguments_is_an_error_naming_the_plugin() -> None:
    with pytest.raises(PluginError, match=r"plugin 'WrongArguments' could not be registered"):
        create_plugin_manager(load_entrypoints=False, plugins=[WrongArguments()])


def test_installed_plugins_are_loaded_from_the_relaygate_entry_point_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_entry_points(monkeypatch, [EntryPoint("fake", f"{__name__}:INSTALLED_PLUGIN", "relaygate")])

    manager = create_plugin_manager()

    assert manager.get_plugin("fake") is INSTALLED_PLUGIN
    assert list(Plugins(manager).register_providers(Settings()).providers) == ["installed"]


def test_an_entry_point_listed_twice_is_loaded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    entry_point = EntryPoint("fake", f"{__name__}:INSTALLED_PLUGIN", "relaygate")
    use_entry_points(monkeypatch, [entry_point, entry_point])

    assert Plugins(create_plugin_manager()).names() == ["fake"]


def test_a_plugin_that_fails_to_import_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch, [EntryPoint("broken", "relaygate_no_such_module_xyz", "relaygate")])

    with pytest.raises(
        PluginError, match=r"plugin 'broken' \(relaygate_no_such_module_xyz\) failed to load"
    ) as caught:
        create_plugin_manager()

    assert caught.value.plugin == "broken"
    assert isinstance(caught.value.__cause__, ImportError)


def test_entry_points_are_not_touched_when_loading_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    use_entry_points(monkeypatch, [EntryPoint("broken", "relaygate_no_such_module_xyz", "relaygate")])

    manager = create_plugin_manager(load_entrypoints=False)

    assert Plugins(manager).names() == []


def test_each_manager_is_independent() -> None:
    first = create_plugin_manager(load_entrypoints=False, plugins=[ProvidesOne()])
    second = create_plugin_manager(load_entrypoints=False)

    assert Plugins(first).names() == ["ProvidesOne"]
    assert Plugins(second).names() == []


def test_the_host_registering_a_duplicate_directly_gets_a_clear_error() -> None:
    registry = ProviderRegistry()
    registry.register(FakeProvider("codex"))

    with pytest.raises(PluginError, match=r"the host registered provider 'codex', which the host already"):
        registry.register(FakeProvider("codex"))


INSTALLED_PLUGIN = ProvidesOne("installed")
