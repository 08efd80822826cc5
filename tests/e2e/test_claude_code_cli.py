"""The real Claude Code CLI (pinned, from the npm registry) against the gateway on the fake upstreams.

Each test starts the fakes and the gateway as ``relaygate serve`` builds it (tests/e2e_support.py),
logs in an account, then runs ``claude -p`` in a temporary project with an isolated HOME,
``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` and ``ANTHROPIC_BASE_URL`` pointing at the gateway.
Assertions cover the CLI's exit code and output and what the fakes received.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.claude_code import CLAUDE_CODE_VERSION, ensure_claude_code
from tests.e2e_support import Served, served_gateway
from tests.fakes.codex_answers import text, tool_call
from tests.fakes.kilo import chat_text
from tests.fakes.responses_stream import Reasoning

CLI_TIMEOUT = 180.0


@pytest.fixture(scope="session")
def claude_binary() -> Path:
    """Installs the CLI on first use; an install failure fails the suite with npm's output."""
    return ensure_claude_code()


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


@dataclass
class ClaudeCode:
    binary: Path
    served: Served
    project: Path
    home: Path

    async def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "TMPDIR": str(self.home),
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "ANTHROPIC_BASE_URL": self.served.url,
            "ANTHROPIC_API_KEY": "sk-ant-placeholder",
            "DISABLE_AUTOUPDATER": "1",
            **(env or {}),
        }
        process = await asyncio.create_subprocess_exec(
            str(self.binary),
            *args,
            cwd=self.project,
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail(f"claude {' '.join(args)} did not finish within {CLI_TIMEOUT} s")
        return Run(process.returncode or 0, stdout.decode(), stderr.decode())


@pytest.fixture
async def claude(claude_binary: Path, tmp_path: Path) -> AsyncIterator[ClaudeCode]:
    project = tmp_path / "project"
    home = tmp_path / "home"
    project.mkdir()
    home.mkdir()
    (project / "notes.txt").write_text("the secret number is 42\n")
    async with served_gateway(tmp_path) as served:
        await served.login()
        yield ClaudeCode(claude_binary, served, project, home)


def codex_bodies(served: Served) -> list[dict[str, Any]]:
    return [call.body for call in served.codex.responses_calls()]


@pytest.mark.anyio
async def test_the_pinned_cli_is_the_version_the_suite_targets(claude_binary: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        str(claude_binary), "--version", stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    assert stdout.decode().startswith(CLAUDE_CODE_VERSION)


@pytest.mark.anyio
async def test_print_mode_gets_a_plain_answer(claude: ClaudeCode) -> None:
    claude.served.codex.script(text("Hello from the gateway."))
    run = await claude.run("-p", "say hi")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "Hello from the gateway."
    (body,) = codex_bodies(claude.served)
    assert body["instructions"]
    assert body["model"] == "gpt-5.5"
    assert not any(item.get("role") == "system" for item in body["input"])


@pytest.mark.anyio
async def test_read_tool_round_trip(claude: ClaudeCode) -> None:
    notes = str(claude.project / "notes.txt")
    claude.served.codex.script(tool_call("Read", {"file_path": notes}, call_id="call_read_1"))
    claude.served.codex.script(text("The number is 42."))
    run = await claude.run("-p", "what number is in notes.txt?", "--allowedTools", "Read")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "The number is 42."
    first, second = codex_bodies(claude.served)
    calls = [item for item in second["input"] if item["type"] == "function_call"]
    outputs = [item for item in second["input"] if item["type"] == "function_call_output"]
    assert [call["call_id"] for call in calls] == ["call_read_1"]
    assert orjson.loads(calls[0]["arguments"]) == {"file_path": notes}
    assert [output["call_id"] for output in outputs] == ["call_read_1"]
    assert "the secret number is 42" in str(outputs[0]["output"])
    position = second["input"].index(calls[0])
    assert second["input"][position + 1] == outputs[0]
    assert first["instructions"] == second["instructions"]


@pytest.mark.anyio
async def test_a_turn_with_reasoning_is_replayed_to_the_upstream(claude: ClaudeCode) -> None:
    notes = str(claude.project / "notes.txt")
    thought = Reasoning(summary=("**Reading the file**",), encrypted_content="enc-reasoning-1")
    claude.served.codex.script(
        tool_call("Read", {"file_path": notes}, call_id="call_read_2", reasoning=thought)
    )
    claude.served.codex.script(text("Done thinking: 42."))
    run = await claude.run(
        "-p",
        "think, then read notes.txt",
        "--allowedTools",
        "Read",
        "--output-format",
        "stream-json",
        "--verbose",
    )
    assert run.returncode == 0, run.stderr
    thinking = [
        block
        for line in run.json_lines()
        if line.get("type") == "assistant"
        for block in line["message"]["content"]
        if block.get("type") == "thinking"
    ]
    assert thinking, "Claude Code shows the reasoning as a thinking block"
    assert thinking[0]["signature"].startswith("rg1.")
    first, second = codex_bodies(claude.served)
    assert first["reasoning"]["summary"] == "auto"
    assert "reasoning.encrypted_content" in first["include"]
    replayed = [item for item in second["input"] if item["type"] == "reasoning"]
    assert [item["encrypted_content"] for item in replayed] == ["enc-reasoning-1"]
    position = second["input"].index(replayed[0])
    assert second["input"][position + 1]["type"] == "function_call"


@pytest.mark.anyio
async def test_stream_json_output_reports_each_message_and_the_result(claude: ClaudeCode) -> None:
    claude.served.codex.script(text("Streaming works."))
    run = await claude.run("-p", "say hi", "--output-format", "stream-json", "--verbose")
    assert run.returncode == 0, run.stderr
    lines = run.json_lines()
    assistant_texts = [
        block["text"]
        for line in lines
        if line.get("type") == "assistant"
        for block in line["message"]["content"]
        if block.get("type") == "text"
    ]
    assert assistant_texts == ["Streaming works."]
    (result,) = [line for line in lines if line.get("type") == "result"]
    assert result["subtype"] == "success"
    assert result["is_error"] is False
    assert result["result"] == "Streaming works."


@pytest.mark.anyio
async def test_a_haiku_model_turn_is_served_by_the_haiku_lane(claude: ClaudeCode) -> None:
    claude.served.up.kilo.script(chat_text("Hi from the Haiku lane."))
    run = await claude.run("-p", "say hi", "--model", "claude-haiku-4-5-20251001")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "Hi from the Haiku lane."
    (call,) = claude.served.up.kilo.requests_to("/chat/completions", "POST")
    assert call.body["model"] == "moonshotai/kimi-k2.5:free"
    assert codex_bodies(claude.served) == []


@pytest.mark.anyio
async def test_a_sub_agent_on_haiku_runs_on_the_haiku_lane(claude: ClaudeCode) -> None:
    served = claude.served
    served.codex.script(
        tool_call(
            "Agent",
            {
                "description": "Say hello",
                "prompt": "Say hello.",
                "subagent_type": "general-purpose",
                "model": "haiku",
            },
            call_id="call_agent_1",
        )
    )
    served.codex.set_default(text("The helper said hello."))
    served.up.kilo.set_default(chat_text("hello"))
    run = await claude.run("-p", "ask a helper to say hello", "--allowedTools", "Agent")
    assert run.returncode == 0, run.stderr
    kilo_calls = served.up.kilo.requests_to("/chat/completions", "POST")
    assert kilo_calls, "the sub-agent's request should reach the Haiku lane"
    assert all(call.body["model"] == "moonshotai/kimi-k2.5:free" for call in kilo_calls)
    assert any("Say hello." in orjson.dumps(call.body["messages"]).decode() for call in kilo_calls)
