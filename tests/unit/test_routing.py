"""Model name -> provider, upstream model, effort and lane (DESIGN §4)."""

from __future__ import annotations

import dataclasses

import pytest

from gateway_core.errors import InvalidRequestError, NotFoundError
from gateway_core.routing import LaneSettings, LaneTarget, Route, lane_of, resolve_haiku_model, route_model
from gateway_core.settings import Settings

INSTALLED = ("codex", "kilo", "echo")
DEFAULTS = LaneSettings()


def route(model: str, lanes: LaneSettings = DEFAULTS, providers: tuple[str, ...] = INSTALLED) -> Route:
    return route_model(model, lanes=lanes, providers=providers)


@pytest.mark.parametrize(
    ("model", "provider", "upstream", "effort", "lane"),
    [
        ("claude-opus-4-8", "codex", "gpt-5.5", "high", "opus"),
        ("claude-opus-5-5", "codex", "gpt-5.5", "high", "opus"),
        ("claude-3-opus-latest", "codex", "gpt-5.5", "high", "opus"),
        ("claude-sonnet-4-5-20250929", "codex", "gpt-5.5", "medium", "sonnet"),
        ("claude-sonnet-4-20250514", "codex", "gpt-5.5", "medium", "sonnet"),
        ("claude-haiku-4-5-20251001", "kilo", "moonshotai/kimi-k2.5:free", None, "haiku"),
        ("Claude-3-Haiku", "kilo", "moonshotai/kimi-k2.5:free", None, "haiku"),
        ("CLAUDE-SONNET-9", "codex", "gpt-5.5", "medium", "sonnet"),
    ],
)
def test_claude_names_go_to_their_lane(
    model: str, provider: str, upstream: str, effort: str | None, lane: str
) -> None:
    result = route(model)

    assert (result.provider, result.upstream_model, result.effort, result.lane) == (
        provider,
        upstream,
        effort,
        lane,
    )


def test_a_plain_model_name_goes_to_codex_verbatim() -> None:
    assert route("gpt-5.5") == Route("codex", "gpt-5.5")


def test_an_unknown_plain_name_is_not_substituted() -> None:
    assert route("some-future-model-7") == Route("codex", "some-future-model-7")


def test_provider_slash_model_goes_to_that_provider() -> None:
    assert route("codex/gpt-5.5") == Route("codex", "gpt-5.5")


def test_the_model_after_the_provider_keeps_its_slashes_verbatim() -> None:
    assert route("kilo/minimax/minimax-m2.5:free") == Route("kilo", "minimax/minimax-m2.5:free")


def test_an_explicit_provider_wins_over_a_lane_word() -> None:
    assert route("kilo/anthropic/claude-haiku-4.5") == Route("kilo", "anthropic/claude-haiku-4.5")


def test_the_provider_segment_is_case_insensitive() -> None:
    assert route("Codex/gpt-5.5").provider == "codex"


def test_an_unknown_provider_is_not_found_naming_it_and_the_installed_ones() -> None:
    with pytest.raises(NotFoundError) as caught:
        route("nosuch/model-1")

    assert '"nosuch"' in caught.value.message
    assert "codex, echo, kilo" in caught.value.message
    assert caught.value.param == "model"


def test_a_lane_whose_provider_is_not_installed_is_not_found() -> None:
    with pytest.raises(NotFoundError, match='"kilo"'):
        route("claude-haiku-4-5", providers=("codex",))


def test_a_plain_name_without_codex_installed_is_not_found() -> None:
    with pytest.raises(NotFoundError, match=r'"codex".*installed providers: echo'):
        route("gpt-5.5", providers=("echo",))


@pytest.mark.parametrize("model", ["", "   ", "/gpt-5.5", "codex/"])
def test_malformed_names_are_invalid_requests_naming_the_model_field(model: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        route(model)

    assert caught.value.param == "model"


def test_haiku_lane_off_goes_to_codex_mini() -> None:
    lanes = LaneSettings(haiku_lane=False)

    assert route("claude-haiku-4-5-20251001", lanes) == Route("codex", "gpt-5.4-mini", None, "haiku")


def test_haiku_lane_on_falls_back_to_codex_mini() -> None:
    assert route("claude-haiku-4-5").fallback == Route("codex", "gpt-5.4-mini", None, "haiku")


def test_other_lanes_have_no_fallback() -> None:
    assert route("claude-opus-4-8").fallback is None


def test_haiku_lane_switch_is_read_from_the_settings_passed_in() -> None:
    assert LaneSettings.from_settings(Settings({"RELAYGATE_HAIKU_LANE": "off"})).haiku_lane is False
    assert LaneSettings.from_settings(Settings({"RELAYGATE_HAIKU_LANE": "on"})).haiku_lane is True
    assert LaneSettings.from_settings(Settings()).haiku_lane is True


def test_an_unreadable_haiku_lane_switch_names_the_variable() -> None:
    with pytest.raises(ValueError, match="RELAYGATE_HAIKU_LANE"):
        LaneSettings.from_settings(Settings({"RELAYGATE_HAIKU_LANE": "sometimes"}))


@pytest.mark.parametrize(
    ("value", "resolved"),
    [
        ("kimi-k2.5", "moonshotai/kimi-k2.5:free"),
        ("minimax-2.5", "minimax/minimax-m2.5:free"),
        ("Kimi-K2.5", "moonshotai/kimi-k2.5:free"),
        ("openai/gpt-oss-20b:free", "openai/gpt-oss-20b:free"),
        ("meta-llama/llama-3.3-70b-instruct", "meta-llama/llama-3.3-70b-instruct"),
    ],
)
def test_haiku_kilo_model_aliases_resolve_and_full_ids_stay_verbatim(value: str, resolved: str) -> None:
    assert resolve_haiku_model(value) == resolved


@pytest.mark.parametrize(
    "value", ["", "kimi", "gpt-5.5", "vendor/", "/model", "has space/model", "a/" + "b" * 300, 3]
)
def test_implausible_haiku_kilo_models_are_refused_naming_the_setting(value: object) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        resolve_haiku_model(value)

    assert caught.value.param == "haikuKiloModel"
    assert caught.value.message.startswith("haikuKiloModel: ")


def test_lane_settings_keep_the_haiku_model_as_set_and_route_the_resolved_id() -> None:
    lanes = LaneSettings(haiku_kilo_model="minimax-2.5")

    assert lanes.haiku_kilo_model == "minimax-2.5"
    assert route("claude-haiku-4-5", lanes).upstream_model == "minimax/minimax-m2.5:free"


def test_replacing_the_haiku_model_validates_the_new_value() -> None:
    with pytest.raises(InvalidRequestError):
        dataclasses.replace(DEFAULTS, haiku_kilo_model="not a model")


def test_changed_lane_targets_are_used() -> None:
    lanes = dataclasses.replace(DEFAULTS, opus=LaneTarget("kilo", "moonshotai/kimi-k2.5", "low"))

    assert route("claude-opus-4-8", lanes) == Route("kilo", "moonshotai/kimi-k2.5", "low", "opus")


def test_lane_of_finds_lane_words_anywhere_in_any_case() -> None:
    assert lane_of("my-OPUS-proxy") == "opus"
    assert lane_of("gpt-5.5") is None
