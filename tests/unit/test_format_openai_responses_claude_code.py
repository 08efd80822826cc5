"""Every real Claude Code request, parsed by the Anthropic format and rendered for Codex, is accepted.

Driven by the captures in fixtures/claude_code (protocols §6, §6.7): the backend rules of
tests/codex_rules.py, the prompt-cache stability of ``instructions`` across turns, the system message
kept in place, the deferred-tool rule and the thinking -> effort table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway_core.formats import anthropic
from gateway_core.formats.openai_responses import render_request
from gateway_core.models import Request
from tests.codex_rules import assert_codex_accepts
from tests.fixtures import claude_code_body, fixture_files

CAPTURES = fixture_files("claude_code", "cc*_request.json")


def canonical(name: str) -> Request:
    body = claude_code_body(name)
    if "max_tokens" not in body:  # /context sends count_tokens bodies
        return anthropic.parse_count_tokens_request(body)
    return anthropic.parse_request(body)


def codex_body(name: str, **options: Any) -> dict[str, Any]:
    return render_request(canonical(name), upstream_model="gpt-5.5", effort_default="high", **options)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.name.removesuffix("_request.json"))
def test_every_claude_code_capture_renders_to_a_body_codex_accepts(path: Path) -> None:
    body = codex_body(path.name.removesuffix("_request.json"), prompt_cache_key="session")

    assert_codex_accepts(body)


def test_instructions_are_byte_identical_across_turns_of_one_conversation() -> None:
    turn1 = codex_body("cc332_tool_read_turn1")
    turn2 = codex_body("cc332_tool_read_turn2_tool_result")
    billing = claude_code_body("cc332_tool_read_turn1")["system"][0]["text"]

    assert billing.startswith("x-anthropic-billing-header:")
    assert turn1["instructions"] == turn2["instructions"]
    assert "x-anthropic-billing-header" not in turn1["instructions"]


def test_billing_header_changes_between_turns_so_keeping_it_would_break_the_cache() -> None:
    first = claude_code_body("cc332_p_text_main")["system"][0]["text"]
    later = claude_code_body("cc332_tool_read_turn2_tool_result")["system"][0]["text"]

    assert first != later
    turn1, turn2 = codex_body("cc332_p_text_main"), codex_body("cc332_tool_read_turn2_tool_result")
    assert turn1["instructions"] == turn2["instructions"]


def test_claude_code_system_message_becomes_a_developer_message_at_its_position() -> None:
    body = codex_body("cc332_tool_read_turn2_tool_result")
    system_text = claude_code_body("cc332_tool_read_turn2_tool_result")["messages"][1]["content"]

    kinds = [(item["type"], item.get("role")) for item in body["input"]]
    assert kinds == [
        ("message", "user"),
        ("message", "developer"),
        ("message", "assistant"),
        ("function_call", None),
        ("function_call_output", None),
    ]
    assert body["input"][1]["content"] == [{"type": "input_text", "text": system_text}]


def test_tool_round_trip_keeps_the_claude_code_call_id_and_result() -> None:
    body = codex_body("cc332_tool_read_missing_is_error")
    raw = claude_code_body("cc332_tool_read_missing_is_error")["messages"]
    tool_use = raw[2]["content"][-1]
    tool_result = raw[3]["content"][0]

    call, output = body["input"][-2:]
    assert call["call_id"] == output["call_id"] == tool_use["id"]
    assert call["name"] == tool_use["name"]
    assert output["output"] == "Error: " + tool_result["content"]


def test_placeholder_is_dropped_and_a_referenced_deferred_tool_is_sent() -> None:
    before = [tool["name"] for tool in codex_body("cc332_tool_read_turn1")["tools"]]
    after = [tool["name"] for tool in codex_body("cc332_toolsearch_tool_reference")["tools"]]

    assert "DeferredToolPlaceholder" not in before + after
    assert "WebFetch" not in before
    assert "WebFetch" in after


def test_tool_reference_result_reads_as_text() -> None:
    body = codex_body("cc332_toolsearch_tool_reference")

    outputs = [item["output"] for item in body["input"] if item["type"] == "function_call_output"]
    assert outputs == ["Tool WebFetch loaded."]


def test_anthropic_thinking_signature_is_never_sent_to_codex() -> None:
    raw = claude_code_body("cc332_thinking_empty_signature_echo")
    assert raw["messages"][2]["content"][0]["type"] == "thinking"

    body = codex_body("cc332_thinking_empty_signature_echo")

    assert all(item["type"] != "reasoning" for item in body["input"])


@pytest.mark.parametrize(
    ("name", "effort"),
    [
        ("cc332_p_text_main", {"effort": "medium", "summary": "auto"}),
        ("cc332_haiku_budget_thinking", {"effort": "xhigh", "summary": "auto"}),
        ("cc_older_model_budget_thinking", {"effort": "xhigh", "summary": "auto"}),
        ("cc_p_text_main", {"effort": "high", "summary": "auto"}),
        ("cc_subagent_explore_haiku", {"effort": "none"}),
    ],
)
def test_claude_code_thinking_maps_to_the_effort_table(name: str, effort: dict[str, str]) -> None:
    assert codex_body(name)["reasoning"] == effort
