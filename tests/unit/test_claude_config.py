"""Claude Code's settings file in proxy and direct mode (DESIGN §6.1, §8; protocols README §6.6).

Every test works on a real file in a temporary folder, through :class:`ClaudeConfig` as the routes
use it, with a fixed clock so backup names are known.
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway_core.errors import ApiError, ConflictError
from gateway_core.store import MemoryStore
from gateway_server import claude_config
from gateway_server.claude_api import ClaudeConfig, gateway_base_url
from gateway_server.config import ServerConfig

URL = "http://127.0.0.1:8081"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
BACKUP_NAME = "settings.json.bak-20250102T030405"
PROXY_ENV = {
    "ANTHROPIC_BASE_URL": URL,
    "ANTHROPIC_API_KEY": "relaygate",
    "ANTHROPIC_DEFAULT_OPUS_MODEL": "claude-opus-5-5",
    "ANTHROPIC_DEFAULT_SONNET_MODEL": "claude-sonnet-4-5",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL": "claude-haiku-4-5",
}

# A user's file as a person writes it: four-space indent, no final newline, a token and a key.
ORIGINAL = b"""{
    "model": "sonnet",
    "permissions": {"allow": ["Bash(ls:*)"]},
    "env": {
        "ANTHROPIC_AUTH_TOKEN": "sk-ant-oat-secret",
        "ANTHROPIC_API_KEY": "sk-ant-api-secret",
        "DISABLE_TELEMETRY": "1"
    },
    "statusLine": {"type": "command", "command": "echo hi"}
}"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / ".claude" / "settings.json"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def claude(path: Path, store: MemoryStore) -> ClaudeConfig:
    return ClaudeConfig(path, store, clock=lambda: NOW)


def written(path: Path) -> dict[str, Any]:
    content = orjson.loads(path.read_bytes())
    assert isinstance(content, dict)
    return content


def content(path: Path) -> bytes:
    return path.read_bytes()


def modified(path: Path) -> int:
    return path.stat().st_mtime_ns


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def existing(path: Path, content: bytes, file_mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(file_mode)


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def is_link(path: Path) -> bool:
    return path.is_symlink()


def exists(path: Path) -> bool:
    return path.exists()


def backups(path: Path) -> list[str]:
    return sorted(entry.name for entry in path.parent.iterdir() if ".bak-" in entry.name)


def leftovers(path: Path) -> list[str]:
    """Anything in the folder besides the settings file and its backups (a temporary file)."""
    return sorted(
        entry.name for entry in path.parent.iterdir() if entry.name != path.name and ".bak-" not in entry.name
    )


# --- proxy mode ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_proxy_on_a_fresh_machine_creates_the_folder_and_the_file(
    claude: ClaudeConfig, path: Path
) -> None:
    body = await claude.proxy(URL)

    assert body["success"] is True
    assert body["changed"] is True
    assert body["backup"] is None
    assert written(path) == {"env": PROXY_ENV}
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert backups(path) == []
    assert leftovers(path) == []


@pytest.mark.anyio
async def test_proxy_writes_the_env_keys_in_claude_codes_own_format(claude: ClaudeConfig, path: Path) -> None:
    await claude.proxy(URL)
    assert content(path) == orjson.dumps({"env": PROXY_ENV}, option=orjson.OPT_INDENT_2) + b"\n"


@pytest.mark.anyio
async def test_proxy_writes_the_gateway_key_when_it_has_one(path: Path, store: MemoryStore) -> None:
    claude = ClaudeConfig(path, store, api_key="gateway-secret", clock=lambda: NOW)
    await claude.proxy(URL)
    assert written(path)["env"]["ANTHROPIC_API_KEY"] == "gateway-secret"


@pytest.mark.anyio
async def test_proxy_keeps_every_unrelated_key_in_its_place(claude: ClaudeConfig, path: Path) -> None:
    existing(path, ORIGINAL)

    await claude.proxy(URL)

    config = written(path)
    assert list(config) == ["model", "permissions", "env", "statusLine"]
    assert config["model"] == "sonnet"
    assert config["permissions"] == {"allow": ["Bash(ls:*)"]}
    assert config["statusLine"] == {"type": "command", "command": "echo hi"}
    assert config["env"] == {"ANTHROPIC_API_KEY": "relaygate", "DISABLE_TELEMETRY": "1"} | PROXY_ENV


@pytest.mark.anyio
async def test_proxy_removes_the_anthropic_auth_token(claude: ClaudeConfig, path: Path) -> None:
    existing(path, ORIGINAL)
    await claude.proxy(URL)
    assert "ANTHROPIC_AUTH_TOKEN" not in written(path)["env"]


@pytest.mark.anyio
async def test_proxy_backs_the_previous_file_up_beside_it_with_a_utc_timestamp(
    claude: ClaudeConfig, path: Path
) -> None:
    existing(path, ORIGINAL)

    body = await claude.proxy(URL)

    backup = path.with_name(BACKUP_NAME)
    assert body["backup"] == str(backup)
    assert backups(path) == [BACKUP_NAME]
    assert backup.read_bytes() == ORIGINAL
    assert mode(backup) == 0o600


@pytest.mark.anyio
async def test_a_second_backup_in_the_same_second_does_not_overwrite_the_first(
    claude: ClaudeConfig, path: Path
) -> None:
    existing(path, ORIGINAL)
    await claude.proxy(URL)
    proxied = content(path)

    await claude.direct(URL)

    assert backups(path) == [BACKUP_NAME, f"{BACKUP_NAME}-1"]
    assert path.with_name(BACKUP_NAME).read_bytes() == ORIGINAL
    assert path.with_name(f"{BACKUP_NAME}-1").read_bytes() == proxied


@pytest.mark.anyio
async def test_the_result_is_0600_even_when_the_file_was_readable_by_others(
    claude: ClaudeConfig, path: Path
) -> None:
    existing(path, ORIGINAL, 0o644)
    await claude.proxy(URL)
    assert mode(path) == 0o600


@pytest.mark.anyio
async def test_proxy_again_with_nothing_to_change_writes_nothing(claude: ClaudeConfig, path: Path) -> None:
    await claude.proxy(URL)
    before = modified(path)

    body = await claude.proxy(URL)

    assert body["changed"] is False
    assert "already" in body["message"]
    assert modified(path) == before
    assert backups(path) == []


@pytest.mark.anyio
async def test_an_empty_file_counts_as_empty_settings(claude: ClaudeConfig, path: Path) -> None:
    existing(path, b"")
    await claude.proxy(URL)
    assert written(path) == {"env": PROXY_ENV}


@pytest.mark.anyio
async def test_a_symlinked_settings_file_is_written_through_its_link(
    claude: ClaudeConfig, path: Path, tmp_path: Path
) -> None:
    real = tmp_path / "dotfiles" / "claude-settings.json"
    existing(real, b'{"model": "opus"}')
    link(path, real)

    await claude.proxy(URL)

    assert is_link(path)
    assert written(real) == {"model": "opus", "env": PROXY_ENV}


# --- files we refuse to touch -------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "broken",
    [b'{"env": {"A": "1",}', b"not json at all", b'["a", "list"]', b'{"env": "not an object"}'],
    ids=["trailing-comma", "text", "array", "env-not-object"],
)
@pytest.mark.parametrize("switch", ["proxy", "direct"])
async def test_a_file_that_is_not_a_json_object_is_refused_and_left_untouched(
    claude: ClaudeConfig, path: Path, broken: bytes, switch: str
) -> None:
    existing(path, broken)
    before = modified(path)

    with pytest.raises(ConflictError) as refused:
        await (claude.proxy(URL) if switch == "proxy" else claude.direct(URL))

    assert refused.value.status == 409
    assert str(path) in refused.value.message
    assert content(path) == broken
    assert modified(path) == before
    assert backups(path) == []
    assert leftovers(path) == []


@pytest.mark.anyio
async def test_a_failed_write_leaves_the_file_and_no_temporary_file(
    claude: ClaudeConfig, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing(path, ORIGINAL)

    def refuse(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ApiError, match="No space left"):
        await claude.proxy(URL)

    assert content(path) == ORIGINAL
    assert leftovers(path) == []


# --- direct mode --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_proxy_then_direct_restores_the_original_bytes(claude: ClaudeConfig, path: Path) -> None:
    existing(path, ORIGINAL)
    await claude.proxy(URL)

    body = await claude.direct(URL)

    assert content(path) == ORIGINAL
    assert body["changed"] is True
    assert "restored" in body["message"]


@pytest.mark.anyio
async def test_direct_puts_the_anthropic_auth_token_back(claude: ClaudeConfig, path: Path) -> None:
    existing(path, ORIGINAL)
    await claude.proxy(URL)
    await claude.direct(URL)
    assert written(path)["env"]["ANTHROPIC_AUTH_TOKEN"] == "sk-ant-oat-secret"


@pytest.mark.anyio
async def test_proxy_twice_then_direct_still_restores_the_original(claude: ClaudeConfig, path: Path) -> None:
    existing(path, ORIGINAL)
    await claude.proxy(URL)
    await claude.proxy("http://127.0.0.1:9000")

    await claude.direct("http://127.0.0.1:9000")

    assert content(path) == ORIGINAL


@pytest.mark.anyio
async def test_direct_remembers_the_original_across_a_restart(path: Path, store: MemoryStore) -> None:
    existing(path, ORIGINAL)
    await ClaudeConfig(path, store, clock=lambda: NOW).proxy(URL)

    await ClaudeConfig(path, store, clock=lambda: NOW).direct(URL)

    assert content(path) == ORIGINAL


@pytest.mark.anyio
async def test_direct_keeps_edits_made_while_in_proxy_mode(claude: ClaudeConfig, path: Path) -> None:
    existing(path, ORIGINAL)
    await claude.proxy(URL)
    edited = written(path)
    edited["model"] = "opus"
    edited["env"]["MAX_THINKING_TOKENS"] = "0"
    existing(path, orjson.dumps(edited))

    await claude.direct(URL)

    config = written(path)
    assert config["model"] == "opus"
    assert config["env"] == {
        "ANTHROPIC_API_KEY": "sk-ant-api-secret",
        "DISABLE_TELEMETRY": "1",
        "MAX_THINKING_TOKENS": "0",
        "ANTHROPIC_AUTH_TOKEN": "sk-ant-oat-secret",
    }


@pytest.mark.anyio
async def test_direct_after_proxy_on_a_fresh_machine_leaves_no_proxy_key(
    claude: ClaudeConfig, path: Path
) -> None:
    await claude.proxy(URL)
    await claude.direct(URL)
    assert written(path) == {}


@pytest.mark.anyio
async def test_direct_writes_the_api_key_only_when_given(claude: ClaudeConfig, path: Path) -> None:
    existing(path, b'{"model": "opus"}')
    await claude.proxy(URL)

    await claude.direct(URL, api_key="sk-ant-new")

    assert written(path) == {"model": "opus", "env": {"ANTHROPIC_API_KEY": "sk-ant-new"}}


@pytest.mark.anyio
async def test_direct_without_a_file_and_without_a_key_changes_nothing(
    claude: ClaudeConfig, path: Path
) -> None:
    body = await claude.direct(URL)
    assert body["changed"] is False
    assert not exists(path)


@pytest.mark.anyio
async def test_direct_without_a_snapshot_removes_only_what_proxy_mode_would_write(
    claude: ClaudeConfig, path: Path
) -> None:
    mixed = {
        "env": PROXY_ENV | {"ANTHROPIC_DEFAULT_OPUS_MODEL": "my-opus", "OTHER": "x"},
    }
    existing(path, orjson.dumps(mixed))

    await claude.direct(URL)

    assert written(path) == {"env": {"ANTHROPIC_DEFAULT_OPUS_MODEL": "my-opus", "OTHER": "x"}}


# --- show ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_show_a_missing_file(claude: ClaudeConfig, path: Path) -> None:
    body = await claude.show(URL)
    assert body == {
        "success": True,
        "path": str(path),
        "exists": False,
        "valid": True,
        "invalidReason": None,
        "config": None,
        "mode": "direct",
        "baseUrl": URL,
    }


@pytest.mark.anyio
async def test_show_masks_secrets_and_reports_proxy_mode(claude: ClaudeConfig, path: Path) -> None:
    existing(path, b'{"apiKey": "sk-top", "env": {"ANTHROPIC_AUTH_TOKEN": "t", "MAX_THINKING_TOKENS": "0"}}')
    assert (await claude.show(URL))["config"] == {
        "apiKey": "***",
        "env": {"ANTHROPIC_AUTH_TOKEN": "***", "MAX_THINKING_TOKENS": "0"},
    }
    await claude.proxy(URL)

    body = await claude.show(URL)

    assert body["mode"] == "proxy"
    assert body["config"]["env"]["ANTHROPIC_API_KEY"] == "relaygate", "the placeholder is no secret"
    assert body["config"]["apiKey"] == "***"


@pytest.mark.anyio
async def test_show_an_invalid_file_says_why_without_failing(claude: ClaudeConfig, path: Path) -> None:
    existing(path, b"{oops")
    body = await claude.show(URL)
    assert (body["exists"], body["valid"], body["config"]) == (True, False, None)
    assert "not valid JSON" in body["invalidReason"]


# --- the gateway's address ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "bound", "expected"),
    [
        ("127.0.0.1", None, "http://127.0.0.1:8081"),
        ("127.0.0.1", ("127.0.0.1", 50123), "http://127.0.0.1:50123"),
        ("0.0.0.0", ("10.0.0.5", 8081), "http://127.0.0.1:8081"),
        ("localhost", None, "http://127.0.0.1:8081"),
        ("::1", None, "http://[::1]:8081"),
    ],
)
def test_the_base_url_is_the_bound_port_on_loopback(
    host: str, bound: tuple[str, int] | None, expected: str
) -> None:
    assert gateway_base_url(ServerConfig(host=host, port=8081), bound) == expected


def test_the_settings_path_defaults_to_the_users_claude_folder() -> None:
    from gateway_core.settings import Settings

    assert claude_config.settings_path(Settings()) == Path("~/.claude/settings.json").expanduser()
    assert claude_config.settings_path(Settings({"RELAYGATE_CLAUDE_SETTINGS": "/x/s.json"})) == Path(
        "/x/s.json"
    )
