"""Lane choices: validated, stored as JSON, applied on top of the base lanes (DESIGN §4)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway_core.errors import InvalidRequestError
from gateway_core.gateway import Gateway
from gateway_core.lane_settings import LANES_SETTING, LaneChoices, PersistedLanes, effective_model_map
from gateway_core.routing import LaneSettings, LaneTarget
from gateway_core.store import MemoryStore, StoreError
from tests.unit._fake_provider import FakeProvider

INSTALLED = ("codex", "kilo", "openrouter")


def updated(value: object, choices: LaneChoices | None = None) -> LaneChoices:
    return (choices or LaneChoices()).with_model_map(
        value, providers=INSTALLED, haiku_provider="kilo", path="modelMap"
    )


def gateway() -> Gateway:
    return Gateway([FakeProvider("codex"), FakeProvider("kilo")])


class FailingStore(MemoryStore):
    async def set_setting(self, key: str, value: Any) -> None:
        raise StoreError("disk full")


# --- applying ---------------------------------------------------------------------------------------


def test_no_choice_leaves_the_base_lanes() -> None:
    base = LaneSettings(haiku_lane=False)
    assert LaneChoices().apply(base) == base


def test_a_lane_choice_replaces_only_that_lane() -> None:
    lanes = updated({"opus": {"provider": "codex", "model": "gpt-5.4", "effort": "xhigh"}}).apply(
        LaneSettings()
    )
    assert lanes.opus == LaneTarget("codex", "gpt-5.4", "xhigh")
    assert lanes.sonnet == LaneSettings().sonnet


def test_the_haiku_kilo_model_applies_while_the_lane_is_on_and_is_kept_while_off() -> None:
    choices = LaneChoices().with_haiku_kilo_model("minimax-2.5")
    assert choices.apply(LaneSettings()).target("haiku") == LaneTarget("kilo", "minimax/minimax-m2.5:free")
    off = choices.apply(LaneSettings(haiku_lane=False))
    assert off.target("haiku") == LaneTarget("codex", "gpt-5.4-mini")
    assert off.haiku_kilo_model == "minimax-2.5"


def test_a_haiku_entry_on_kilo_sets_the_haiku_kilo_model() -> None:
    choices = updated({"haiku": {"provider": "kilo", "model": "Kimi-K2.5"}})
    assert choices == LaneChoices(haiku_kilo_model="Kimi-K2.5")


def test_a_haiku_entry_elsewhere_replaces_the_haiku_lane_without_fallback() -> None:
    lanes = updated({"haiku": "openrouter/anthropic/claude-haiku-4.5"}).apply(LaneSettings())
    assert lanes.target("haiku") == LaneTarget("openrouter", "anthropic/claude-haiku-4.5")
    assert effective_model_map(lanes)["haiku"]["fallback"] is None


def test_setting_the_haiku_kilo_model_brings_the_haiku_lane_back() -> None:
    replaced = updated({"haiku": "codex/gpt-5.5"})
    lanes = replaced.with_haiku_kilo_model("kimi-k2.5").apply(LaneSettings())
    assert lanes.target("haiku") == LaneTarget("kilo", "moonshotai/kimi-k2.5:free")


def test_null_resets_a_lane_and_omitted_lanes_are_kept() -> None:
    choices = updated({"opus": "codex/a", "sonnet": "codex/b"})
    choices = updated({"opus": None}, choices)
    assert (choices.opus, choices.sonnet) == (None, LaneTarget("codex", "b"))


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ({"opus": {"provider": "ghost", "model": "m"}}, "modelMap.opus.provider"),
        ({"opus": {"model": "m"}}, "modelMap.opus.provider"),
        ({"opus": {"provider": "codex", "model": 3}}, "modelMap.opus.model"),
        ({"opus": {"provider": "codex", "model": "has space"}}, "modelMap.opus.model"),
        ({"sonnet": {"provider": "codex", "model": "m", "effort": "HIGH"}}, "modelMap.sonnet.effort"),
        ({"sonnet": "no-slash"}, "modelMap.sonnet"),
        ({"bard": None}, "modelMap.bard"),
        ([], "modelMap"),
    ],
)
def test_every_mistake_names_its_field(value: object, param: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        updated(value)
    assert refused.value.param == param
    assert refused.value.message.startswith(f"{param}: ")


def test_an_unknown_effort_lists_the_allowed_ones() -> None:
    with pytest.raises(InvalidRequestError, match="none, minimal, low, medium, high, xhigh, max or null"):
        updated({"opus": {"provider": "codex", "model": "m", "effort": "extreme"}})


def test_fields_other_than_provider_model_and_effort_are_ignored() -> None:
    choices = updated({"opus": {"provider": "codex", "model": "m", "fallback": None, "note": 1}})
    assert choices.opus == LaneTarget("codex", "m")


# --- storing ----------------------------------------------------------------------------------------


def test_only_what_was_set_is_stored_and_it_reads_back() -> None:
    choices = updated({"opus": "codex/m", "haiku": "kilo/minimax-2.5"})
    stored = choices.to_json()
    assert stored == {
        "haikuKiloModel": "minimax-2.5",
        "modelMap": {"opus": {"provider": "codex", "model": "m", "effort": None}},
    }
    assert LaneChoices.from_json(stored, haiku_provider="kilo") == choices


def test_a_stored_provider_that_is_no_longer_installed_still_reads_back() -> None:
    stored = {"modelMap": {"opus": {"provider": "uninstalled", "model": "m", "effort": None}}}
    choices = LaneChoices.from_json(stored, haiku_provider="kilo")
    assert choices.opus == LaneTarget("uninstalled", "m")


@pytest.mark.anyio
async def test_persisted_lanes_apply_and_store_every_change() -> None:
    store = MemoryStore()
    lanes = PersistedLanes(gateway(), store)
    await lanes.load()

    await lanes.set_haiku_kilo_model("minimax-2.5")

    assert lanes.gateway.route("claude-haiku-4-5").upstream_model == "minimax/minimax-m2.5:free"
    assert await store.get_setting(LANES_SETTING) == {"haikuKiloModel": "minimax-2.5"}
    again = PersistedLanes(gateway(), store)
    await again.load()
    assert again.haiku_kilo_model == "minimax-2.5"


@pytest.mark.anyio
async def test_a_change_the_store_refuses_leaves_the_gateway_as_it_was() -> None:
    lanes = PersistedLanes(gateway(), FailingStore())
    await lanes.load()

    with pytest.raises(StoreError):
        await lanes.set_haiku_kilo_model("minimax-2.5")

    assert lanes.haiku_kilo_model == "kimi-k2.5"
    assert lanes.gateway.route("claude-haiku-4-5").upstream_model == "moonshotai/kimi-k2.5:free"


@pytest.mark.anyio
async def test_a_stored_value_that_no_longer_reads_is_ignored_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    await store.set_setting(LANES_SETTING, {"haikuKiloModel": "not a model"})
    lanes = PersistedLanes(gateway(), store)

    await lanes.load()

    assert lanes.haiku_kilo_model == "kimi-k2.5"
    assert "ignoring the stored lane settings" in caplog.text


@pytest.mark.anyio
async def test_the_model_map_refuses_a_provider_the_gateway_does_not_have() -> None:
    lanes = PersistedLanes(gateway(), MemoryStore())
    await lanes.load()
    with pytest.raises(
        InvalidRequestError, match=r'unknown provider "openrouter" \(installed providers: codex, kilo\)'
    ):
        await lanes.update_model_map({"opus": "openrouter/x"})
