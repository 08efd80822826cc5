"""What the ChatGPT Codex backend refuses, as a checker tests and the fake Codex server share.

Written from the upstream facts of protocols §4.2–§4.4 and §9 (the 400 catalogue in
fixtures/codex/codex_400_detail_errors.json, the OpenAI messages for orphan outputs and item ids), not
from our renderer, so a renderer bug cannot hide behind its own rules. :func:`codex_rejection` gives
the FastAPI-style ``detail`` the backend would answer with (a fake server returns it as
``400 {"detail": ...}``); :func:`assert_codex_accepts` raises it as an assertion.
"""

from __future__ import annotations

import re
from typing import Any

ACCEPTED_KEYS = frozenset(
    {
        "model",
        "instructions",
        "input",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "store",
        "stream",
        "include",
        "prompt_cache_key",
        "text",
    }
)
"""Top-level keys the backend takes; everything else is answered "Unsupported parameter: X"
(max_output_tokens, temperature, top_p, penalties, seed, metadata, top_logprobs, truncation,
service_tier, previous_response_id, ...)."""

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX_CALL_ID = 64
_ITEM_ID_KEYS = ("id",)
_USER_CONTENT = frozenset({"input_text", "input_image", "input_file"})
_ASSISTANT_CONTENT = frozenset({"output_text", "refusal"})
_OUTPUT_CONTENT = frozenset({"input_text", "input_image", "input_file"})
_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})


class CodexRejection(AssertionError):
    """The backend would refuse the body; ``detail`` is what it would say."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def assert_codex_accepts(body: object) -> None:
    """Raise :class:`CodexRejection` (an AssertionError) when the backend would answer 400."""
    detail = codex_rejection(body)
    if detail is not None:
        raise CodexRejection(detail)


def codex_rejection(body: object) -> str | None:
    """The ``detail`` of the backend's 400 answer to ``body``, or ``None`` when it would accept it."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    for key in body:
        if key not in ACCEPTED_KEYS:
            return f"Unsupported parameter: {key}"
    if body.get("store") is not False:
        return "Store must be set to false"
    if body.get("stream") is not True:
        return "Stream must be set to true"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "Model is required"
    instructions = body.get("instructions")
    if not isinstance(instructions, str) or not instructions.strip():
        return "Instructions are required"
    return _check_tools(body) or _check_input(body.get("input")) or _check_reasoning(body)


def _check_tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools", [])
    if not isinstance(tools, list):
        return "Invalid type for 'tools': expected an array"
    names = set()
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            return f"Invalid type for 'tools[{index}]': expected an object"
        kind = tool.get("type")
        if kind == "web_search":
            continue
        if kind != "function":
            return f"Invalid value for 'tools[{index}].type': '{kind}'"
        if "function" in tool:
            return f"Unknown parameter: 'tools[{index}].function'"
        detail = _check_name(tool.get("name"), f"tools[{index}].name")
        if detail:
            return detail
        if tool["name"] in names:
            return f"Duplicate tool name: '{tool['name']}'"
        names.add(tool["name"])
        if not isinstance(tool.get("parameters"), dict):
            return f"Missing required parameter: 'tools[{index}].parameters'"
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        if choice.get("type") != "function" or choice.get("name") not in names:
            return f"Tool choice '{choice.get('name')}' not found in 'tools' parameter."
    elif choice == "required" and not names:
        return "Tool choice 'required' must be specified with 'tools' parameter."
    elif choice not in (None, "auto", "none", "required"):
        return f"Invalid value for 'tool_choice': '{choice}'"
    return None


def _check_input(items: object) -> str | None:
    if not isinstance(items, list):
        return "Invalid type for 'input': expected an array of input items"
    calls: set[str] = set()
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            return f"Invalid type for '{where}': expected an object"
        for key in _ITEM_ID_KEYS:
            if key in item:
                return (
                    f"Item with id '{item[key]}' not found. Items are not persisted when `store` is set to "
                    "false. Try again with `store` set to true, or remove this item from your input."
                )
        kind = item.get("type")
        if kind == "message":
            detail = _check_message(item, where)
        elif kind == "function_call":
            detail = _check_call(item, where)
            if detail is None:
                calls.add(item["call_id"])
        elif kind == "function_call_output":
            detail = _check_output(item, where, calls)
        elif kind == "reasoning":
            detail = _check_reasoning_item(item, where)
        else:
            detail = f"Invalid value for '{where}.type': '{kind}'"
        if detail:
            return detail
    return None


def _check_message(item: dict[str, Any], where: str) -> str | None:
    role = item.get("role")
    if role == "system":
        return "System messages are not allowed"
    if role not in ("user", "assistant", "developer"):
        return f"Invalid value for '{where}.role': '{role}'"
    content = item.get("content")
    if isinstance(content, str):
        return None
    if not isinstance(content, list) or not content:
        return f"Invalid '{where}.content': expected a non-empty array of content items"
    allowed = _ASSISTANT_CONTENT if role == "assistant" else _USER_CONTENT
    for position, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            return f"Invalid value: '{kind}'. Supported values are: {', '.join(sorted(allowed))}."
        detail = _check_content_part(part, f"{where}.content[{position}]")
        if detail:
            return detail
    return None


def _check_content_part(part: dict[str, Any], where: str) -> str | None:
    kind = part["type"]
    if kind in ("input_text", "output_text") and not isinstance(part.get("text"), str):
        return f"Missing required parameter: '{where}.text'"
    if kind == "input_image" and not isinstance(part.get("image_url"), str):
        return f"Missing required parameter: '{where}.image_url'"
    if kind == "input_file" and not any(isinstance(part.get(key), str) for key in ("file_data", "file_url")):
        return f"Missing required parameter: '{where}.file_data'"
    return None


def _check_call(item: dict[str, Any], where: str) -> str | None:
    detail = _check_call_id(item.get("call_id"), f"{where}.call_id") or _check_name(
        item.get("name"), f"{where}.name"
    )
    if detail:
        return detail
    if not isinstance(item.get("arguments"), str):
        return f"Invalid type for '{where}.arguments': expected a string"
    return None


def _check_output(item: dict[str, Any], where: str, calls: set[str]) -> str | None:
    call_id = item.get("call_id")
    detail = _check_call_id(call_id, f"{where}.call_id")
    if detail:
        return detail
    if call_id not in calls:
        return f"No tool call found for function call output with call_id {call_id}."
    output = item.get("output")
    if isinstance(output, str):
        return None
    if not isinstance(output, list):
        return f"Invalid type for '{where}.output': expected a string or an array"
    for position, part in enumerate(output):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _OUTPUT_CONTENT:
            return f"Invalid value for '{where}.output[{position}].type': '{kind}'"
        detail = _check_content_part(part, f"{where}.output[{position}]")
        if detail:
            return detail
    return None


def _check_reasoning_item(item: dict[str, Any], where: str) -> str | None:
    if not isinstance(item.get("encrypted_content"), str) or not item["encrypted_content"]:
        return f"Missing required parameter: '{where}.encrypted_content'"
    summary = item.get("summary")
    if not isinstance(summary, list):
        return f"Missing required parameter: '{where}.summary'"
    for position, part in enumerate(summary):
        if not isinstance(part, dict) or part.get("type") != "summary_text" or "text" not in part:
            return f"Invalid value for '{where}.summary[{position}]'"
    return None


def _check_reasoning(body: dict[str, Any]) -> str | None:
    reasoning = body.get("reasoning")
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        return "Invalid type for 'reasoning': expected an object"
    effort = reasoning.get("effort")
    if effort is not None and effort not in _EFFORTS:
        return f"Invalid value: '{effort}'. Supported values are: {', '.join(sorted(_EFFORTS))}."
    include = body.get("include", [])
    if not isinstance(include, list) or any(entry != "reasoning.encrypted_content" for entry in include):
        return f"Invalid value for 'include': {include!r}"
    return None


def _check_name(name: object, where: str) -> str | None:
    if not isinstance(name, str):
        return f"Missing required parameter: '{where}'"
    if len(name) > 64:
        return (
            f"Invalid '{where}': string too long. Expected a string with maximum length 64, "
            f"but got a string with length {len(name)} instead."
        )
    if not _NAME.match(name):
        return (
            f"Invalid '{where}': string does not match pattern. "
            "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
        )
    return None


def _check_call_id(call_id: object, where: str) -> str | None:
    if not isinstance(call_id, str) or not call_id:
        return f"Missing required parameter: '{where}'"
    if len(call_id) > _MAX_CALL_ID:
        return (
            f"Invalid '{where}': string too long. Expected a string with maximum length {_MAX_CALL_ID}, "
            f"but got a string with length {len(call_id)} instead."
        )
    return None
