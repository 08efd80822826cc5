"""The read-only settings the host hands to plugins and routing."""

from __future__ import annotations

import pytest

from gateway_core.settings import Settings


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
