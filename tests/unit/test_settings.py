"""The read-only settings the host hands to plugins and routing, and the readers of their common kinds."""

from __future__ import annotations

import pytest

from gateway_core.settings import Settings, get_seconds, get_text, get_url


def test_from_environ_keeps_only_the_projects_own_variables() -> None:
    settings = Settings.from_environ(
        {"RELAYGATE_PORT": "8081", "AWS_SECRET_ACCESS_KEY": "x", "HOME": "/root"}
    )

    assert dict(settings) == {"RELAYGATE_PORT": "8081"}


def test_settings_cannot_be_changed_through_the_mapping_they_were_built_from() -> None:
    source = {"RELAYGATE_HAIKU_LANE": "on"}
    settings = Settings(source)

    source["RELAYGATE_HAIKU_LANE"] = "off"

    assert settings["RELAYGATE_HAIKU_LANE"] == "on"


@pytest.mark.parametrize(
    ("raw", "expected"), [("on", True), ("OFF", False), ("true", True), ("0", False), ("", True)]
)
def test_switches_read_the_usual_words(raw: str, expected: bool) -> None:
    assert Settings({"RELAYGATE_FLAG": raw}).get_bool("RELAYGATE_FLAG", True) is expected


def test_an_unset_switch_is_its_default() -> None:
    assert Settings().get_bool("RELAYGATE_FLAG", False) is False


def test_an_unreadable_switch_names_the_setting() -> None:
    with pytest.raises(ValueError, match="RELAYGATE_FLAG"):
        Settings({"RELAYGATE_FLAG": "perhaps"}).get_bool("RELAYGATE_FLAG", True)


def test_repr_redacts_secret_values() -> None:
    text = repr(Settings({"RELAYGATE_HAIKU_API_KEY": "sk-or-secret", "RELAYGATE_PORT": "8081"}))

    assert "sk-or-secret" not in text
    assert "8081" in text


def test_text_values_lose_their_spaces_and_blank_ones_count_as_unset() -> None:
    settings = Settings({"RELAYGATE_A": "  x  ", "RELAYGATE_B": "   "})

    assert (get_text(settings, "RELAYGATE_A"), get_text(settings, "RELAYGATE_B")) == ("x", None)
    assert get_text(settings, "RELAYGATE_C") is None


def test_a_base_url_loses_its_trailing_slash_and_unset_is_the_default() -> None:
    settings = Settings({"RELAYGATE_BASE_URL": " https://openrouter.ai/api/v1/ "})

    assert get_url(settings, "RELAYGATE_BASE_URL", "https://x.test") == "https://openrouter.ai/api/v1"
    assert get_url(Settings(), "RELAYGATE_BASE_URL", "https://x.test/api/") == "https://x.test/api"


@pytest.mark.parametrize(
    "raw", ["api.kilo.ai/api", "ftp://api.kilo.ai", "https://api.kilo.ai/?x=1", "https://a.b/#f"]
)
def test_a_value_that_is_not_a_base_url_is_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(ValueError, match=r"^RELAYGATE_BASE_URL: "):
        get_url(Settings({"RELAYGATE_BASE_URL": raw}), "RELAYGATE_BASE_URL", "https://x.test")


def test_seconds_are_read_as_numbers_and_unset_is_the_default() -> None:
    settings = Settings({"RELAYGATE_IDLE_TIMEOUT": "15.5"})

    assert get_seconds(settings, "RELAYGATE_IDLE_TIMEOUT", 300.0) == 15.5
    assert get_seconds(settings, "RELAYGATE_OTHER_TIMEOUT", 300.0) == 300.0


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "inf", "nan"])
def test_a_duration_that_is_not_a_positive_number_is_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(ValueError, match=r"^RELAYGATE_IDLE_TIMEOUT: expected a positive number of seconds"):
        get_seconds(Settings({"RELAYGATE_IDLE_TIMEOUT": raw}), "RELAYGATE_IDLE_TIMEOUT", 300.0)
