"""``relaygate claude proxy|direct|show`` and ``relaygate settings …``, through a running gateway and
in-process when none answers.

The command runs in a worker thread with its own event loop, exactly as from a shell, while the test
gateway (when there is one) serves from the test's loop.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson
import pytest

from gateway_server.cli import main
from tests.lanes_support import routed, served

ORIGINAL = b'{"model": "opus", "env": {"ANTHROPIC_AUTH_TOKEN": "sk-ant-oat"}}\n'


async def relaygate(*argv: str) -> int:
    """Run the command line as a user would (its own event loop, in a thread); its exit status."""
    return await anyio.to_thread.run_sync(main, list(argv))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def read_json(path: Path) -> dict[str, Any]:
    content = orjson.loads(path.read_bytes())
    assert isinstance(content, dict)
    return content


def read_raw(path: Path) -> bytes:
    return path.read_bytes()


def write_raw(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No gateway where the CLI looks (until a test starts one), state and Claude settings in tmp."""
    for name in ("RELAYGATE_API_KEY", "RELAYGATE_HOST", "RELAYGATE_HAIKU_LANE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAYGATE_PORT", str(closed_port()))
    monkeypatch.setenv("RELAYGATE_HOME", str(tmp_path / "home"))
    claude_settings = tmp_path / "claude" / "settings.json"
    monkeypatch.setenv("RELAYGATE_CLAUDE_SETTINGS", str(claude_settings))
    return claude_settings


def point_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("RELAYGATE_HOST", "127.0.0.1")
    monkeypatch.setenv("RELAYGATE_PORT", url.rsplit(":", 1)[1])


# --- claude -------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_claude_proxy_show_direct_through_the_running_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with served(tmp_path) as server:
        point_at(monkeypatch, server.url)
        write_raw(server.claude_settings, ORIGINAL)

        assert await relaygate("claude", "proxy") == 0
        out = capsys.readouterr().out
        assert f"Claude Code now uses relaygate at {server.url}" in out
        assert "backed up to" in out
        assert read_json(server.claude_settings)["env"]["ANTHROPIC_BASE_URL"] == server.url

        assert await relaygate("claude", "show") == 0
        out = capsys.readouterr().out
        assert "Mode: proxy" in out
        assert f"ANTHROPIC_BASE_URL={server.url}" in out

        assert await relaygate("claude", "direct") == 0
        assert "restored" in capsys.readouterr().out
        assert read_raw(server.claude_settings) == ORIGINAL


@pytest.mark.anyio
async def test_claude_commands_run_in_process_when_no_gateway_answers(
    environment: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAYGATE_PORT", "8099")
    write_raw(environment, ORIGINAL)

    assert await relaygate("claude", "proxy", "--json") == 0
    body = orjson.loads(capsys.readouterr().out)
    assert (body["success"], body["mode"]) == (True, "proxy")
    assert read_json(environment)["env"]["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8099"

    assert await relaygate("claude", "direct") == 0
    assert read_raw(environment) == ORIGINAL


@pytest.mark.anyio
async def test_claude_direct_with_an_api_key(environment: Path) -> None:
    assert await relaygate("claude", "direct", "--api-key", "sk-ant-mine") == 0
    assert read_json(environment) == {"env": {"ANTHROPIC_API_KEY": "sk-ant-mine"}}


@pytest.mark.anyio
async def test_claude_proxy_on_an_invalid_file_exits_1_with_one_line(
    environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_raw(environment, b"{broken")

    assert await relaygate("claude", "proxy") == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("relaygate: ")
    assert "not valid JSON" in captured.err
    assert captured.err.count("\n") == 1
    assert read_raw(environment) == b"{broken"


# --- settings -----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_settings_commands_change_the_running_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with served(tmp_path) as server:
        point_at(monkeypatch, server.url)

        assert await relaygate("settings", "haiku-model") == 0
        assert "kimi-k2.5" in capsys.readouterr().out
        assert await relaygate("settings", "haiku-model", "minimax-2.5") == 0
        assert "minimax/minimax-m2.5:free" in capsys.readouterr().out
        assert await routed(server.http) == ("kilo", "minimax/minimax-m2.5:free")

        assert (
            await relaygate("settings", "model-map", "opus", "kilo/z-ai/glm-4.6:free", "--effort", "low") == 0
        )
        assert "opus -> kilo/z-ai/glm-4.6:free" in capsys.readouterr().out
        assert await routed(server.http, "claude-opus-5-5") == ("kilo", "z-ai/glm-4.6:free")

        assert await relaygate("settings", "model-map", "opus", "nowhere/x") == 1
        assert 'unknown provider "nowhere"' in capsys.readouterr().err

        assert await relaygate("settings", "model-map", "opus", "default") == 0
        assert await routed(server.http, "claude-opus-5-5") == ("codex", "gpt-5.5")


@pytest.mark.anyio
async def test_a_setting_changed_in_process_is_picked_up_by_the_next_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await relaygate("settings", "haiku-model", "minimax-2.5") == 0
    assert "Haiku lane model set to minimax-2.5" in capsys.readouterr().out

    async with served(tmp_path) as server:
        assert (await server.http.get("/settings/haiku-model")).json()["haikuKiloModel"] == "minimax-2.5"
