"""The Codex backend checker (tests/codex_rules.py) refuses what the backend refuses, with its detail text."""

from __future__ import annotations

from typing import Any

import pytest

from tests.codex_rules import CodexRejection, assert_codex_accepts, codex_rejection

CALL = {"type": "function_call", "call_id": "call_1", "name": "Read", "arguments": "{}"}
OUTPUT = {"type": "function_call_output", "call_id": "call_1", "output": "ok"}
USER = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}


def valid(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-5.5",
        "instructions": "You are a helpful assistant.",
        "input": [USER, CALL, OUTPUT],
        "tools": [{"type": "function", "name": "Read", "parameters": {"type": "object"}, "strict": False}],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "store": False,
        "stream": True,
    }
    body.update(changes)
    return body


def without(key: str) -> dict[str, Any]:
    body = valid()
    del body[key]
    return body


def test_a_codex_style_body_is_accepted() -> None:
    assert codex_rejection(valid()) is None
    assert_codex_accepts(valid())


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (without("store"), "Store must be set to false"),
        (valid(store=True), "Store must be set to false"),
        (valid(stream=False), "Stream must be set to true"),
        (without("instructions"), "Instructions are required"),
        (valid(instructions=""), "Instructions are required"),
        (valid(max_output_tokens=4000), "Unsupported parameter: max_output_tokens"),
        (valid(temperature=1.0), "Unsupported parameter: temperature"),
        (valid(metadata={}), "Unsupported parameter: metadata"),
        (valid(previous_response_id="resp_1"), "Unsupported parameter: previous_response_id"),
        (
            valid(input=[{"type": "message", "role": "system", "content": "x"}]),
            "System messages are not allowed",
        ),
        (valid(input=[USER, OUTPUT]), "No tool call found for function call output with call_id call_1."),
        (
            valid(input=[USER, OUTPUT, CALL]),
            "No tool call found for function call output with call_id call_1.",
        ),
    ],
)
def test_backend_rules_are_enforced_with_their_detail(body: dict[str, Any], detail: str) -> None:
    assert codex_rejection(body) == detail
    with pytest.raises(CodexRejection) as caught:
        assert_codex_accepts(body)
    assert caught.value.detail == detail


@pytest.mark.parametrize(
    "body",
    [
        valid(input=[{**USER, "id": "msg_1"}]),
        valid(input=[USER, {**CALL, "id": "fc_1"}, OUTPUT]),
        valid(input=[USER, {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"}]),
    ],
)
def test_item_ids_are_refused_with_store_false(body: dict[str, Any]) -> None:
    assert "Items are not persisted when `store` is set to false" in (codex_rejection(body) or "")


def test_tool_names_must_be_short_and_plain() -> None:
    long_name = "x" * 65
    tools = [{"type": "function", "name": long_name, "parameters": {"type": "object"}}]

    assert "maximum length 64" in (codex_rejection(valid(tools=tools)) or "")
    assert "does not match pattern" in (codex_rejection(valid(input=[USER, {**CALL, "name": "a.b"}])) or "")


def test_call_ids_must_fit_64_characters() -> None:
    long_id = "call_" + "x" * 60
    items = [USER, {**CALL, "call_id": long_id}, {**OUTPUT, "call_id": long_id}]

    assert "maximum length 64" in (codex_rejection(valid(input=items)) or "")


def test_nested_chat_completions_tools_are_refused() -> None:
    tools = [{"type": "function", "function": {"name": "Read", "parameters": {}}}]

    assert codex_rejection(valid(tools=tools)) is not None
