"""Bad Anthropic requests get an InvalidRequestError whose message starts with the field path; no crash."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_core.errors import InvalidRequestError
from gateway_core.formats.anthropic import parse_count_tokens_request, parse_request
from tests.fixtures import claude_code_body

Body = dict[str, Any]


def _valid() -> Body:
    """A small request with one of every common block, based on a real tool round trip."""
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "sys"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "read it"}]},
            {"role": "system", "content": "listing"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/a"}}
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}]},
        ],
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
    }


def _set(path: str, value: Any) -> Callable[[Body], None]:
    def mutate(body: Body) -> None:
        *parents, last = path.split(".")
        target: Any = body
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _delete(path: str) -> Callable[[Body], None]:
    def mutate(body: Body) -> None:
        *parents, last = path.split(".")
        target: Any = body
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        del target[last]

    return mutate


CASES: list[tuple[str, Callable[[Body], None], str]] = [
    (
        "unknown block",
        _set("messages.3.content.0.type", "foo"),
        'messages.3.content.0.type: unknown block type "foo"',
    ),
    (
        "server tool block",
        _set(
            "messages.2.content.0",
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        ),
        'messages.2.content.0.type: server tool block "web_search_tool_result" is not supported',
    ),
    (
        "server tool use",
        _set("messages.2.content.0", {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}),
        'messages.2.content.0.type: server tool block "server_tool_use"',
    ),
    ("no model", _delete("model"), "model: field required"),
    ("model not a string", _set("model", 5), "model: expected a string, got an integer"),
    ("no messages", _delete("messages"), "messages: field required"),
    ("empty messages", _set("messages", []), "messages: at least one message is required"),
    ("messages not a list", _set("messages", {}), "messages: expected an array, got an object"),
    ("message not an object", _set("messages.0", "hi"), "messages.0: expected an object, got a string"),
    ("bad role", _set("messages.0.role", "tool"), 'messages.0.role: unknown role "tool"'),
    ("no content", _delete("messages.0.content"), "messages.0.content: field required"),
    (
        "content a number",
        _set("messages.0.content", 3),
        "messages.0.content: expected an array, got an integer",
    ),
    ("block without type", _delete("messages.0.content.0.type"), "messages.0.content.0.type: field required"),
    (
        "text not a string",
        _set("messages.0.content.0.text", None),
        "messages.0.content.0.text: field required",
    ),
    ("tool_use without id", _delete("messages.2.content.0.id"), "messages.2.content.0.id: field required"),
    (
        "tool_use input a list",
        _set("messages.2.content.0.input", []),
        "messages.2.content.0.input: expected an object",
    ),
    (
        "tool_result without id",
        _delete("messages.3.content.0.tool_use_id"),
        "messages.3.content.0.tool_use_id: field required",
    ),
    (
        "tool_result is_error a string",
        _set("messages.3.content.0.is_error", "yes"),
        "messages.3.content.0.is_error: expected a boolean",
    ),
    (
        "tool_result content block not allowed",
        _set("messages.3.content.0.content", [{"type": "thinking", "thinking": "x"}]),
        'messages.3.content.0.content.0.type: block type "thinking" is not allowed in a tool_result',
    ),
    (
        "image source from the files API",
        _set("messages.0.content.0", {"type": "image", "source": {"type": "file", "file_id": "f"}}),
        'messages.0.content.0.source.type: unsupported source type "file"',
    ),
    (
        "image without media type",
        _set("messages.0.content.0", {"type": "image", "source": {"type": "base64", "data": "AA=="}}),
        "messages.0.content.0.source.media_type: field required",
    ),
    (
        "cache_control of an unknown type",
        _set("messages.0.content.0.cache_control", {"type": "permanent"}),
        "messages.0.content.0.cache_control.type:",
    ),
    ("system a number", _set("system", 1), "system: expected an array, got an integer"),
    (
        "system image block",
        _set("system.0", {"type": "image"}),
        'system.0.type: block type "image" is not allowed',
    ),
    ("max_tokens zero", _set("max_tokens", 0), "max_tokens: must be at least 1"),
    ("max_tokens a string", _set("max_tokens", "10"), "max_tokens: expected an integer, got a string"),
    ("temperature a string", _set("temperature", "hot"), "temperature: expected a number, got a string"),
    ("top_k a float", _set("top_k", 1.5), "top_k: expected an integer, got a number"),
    ("stream a string", _set("stream", "yes"), "stream: expected a boolean, got a string"),
    ("stop sequence a number", _set("stop_sequences", ["a", 1]), "stop_sequences.1: expected a string"),
    ("tool without schema", _delete("tools.0.input_schema"), "tools.0.input_schema: field required"),
    ("tool without name", _delete("tools.0.name"), "tools.0.name: field required"),
    (
        "tool_choice unknown",
        _set("tool_choice", {"type": "required"}),
        "tool_choice.type: unknown tool_choice type",
    ),
    (
        "tool_choice tool without name",
        _set("tool_choice", {"type": "tool"}),
        "tool_choice.name: field required",
    ),
    (
        "disable_parallel_tool_use a string",
        _set("tool_choice", {"type": "auto", "disable_parallel_tool_use": "no"}),
        "tool_choice.disable_parallel_tool_use: expected a boolean",
    ),
    ("thinking unknown", _set("thinking", {"type": "deep"}), 'thinking.type: unknown thinking type "deep"'),
    (
        "thinking without budget",
        _set("thinking", {"type": "enabled"}),
        "thinking.budget_tokens: field required",
    ),
    (
        "effort unknown",
        _set("output_config", {"effort": "ultra"}),
        'output_config.effort: unknown effort "ultra"',
    ),
    (
        "output format not a schema",
        _set("output_config", {"format": {"type": "regex"}}),
        'output_config.format.type: unsupported output format "regex"',
    ),
    ("metadata a string", _set("metadata", "u"), "metadata: expected an object, got a string"),
    ("user_id a number", _set("metadata", {"user_id": 1}), "metadata.user_id: expected a string"),
    ("safeguards an object", _set("safeguards", {}), "safeguards: expected an array"),
    ("context_management a list", _set("context_management", []), "context_management: expected an object"),
]


@pytest.mark.parametrize(("mutate", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_field_is_named_in_the_error(mutate: Callable[[Body], None], message: str) -> None:
    body = _valid()
    parse_request(body)  # the base body is fine
    mutate(body)

    with pytest.raises(InvalidRequestError) as caught:
        parse_request(body)

    assert caught.value.message.startswith(message)
    assert caught.value.status == 400
    assert caught.value.param == message.split(":")[0]


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequestError, match=r"^body: expected an object, got an array$"):
        parse_request([])


def test_count_tokens_checks_max_tokens_when_given() -> None:
    body = _valid()
    body["max_tokens"] = "x"

    with pytest.raises(InvalidRequestError, match=r"^max_tokens: expected an integer"):
        parse_count_tokens_request(body)


# --- nothing but InvalidRequestError, whatever the JSON -------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


TEMPLATE = claude_code_body("cc332_toolsearch_tool_reference")
TEMPLATE["messages"] = TEMPLATE["messages"][2:]  # keep the fuzzing fast: the tool round trip only
TEMPLATE["tools"] = TEMPLATE["tools"][:2]
TEMPLATE_PATHS = _paths(TEMPLATE)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TEMPLATE_PATHS), JSON)
def test_any_value_anywhere_gives_a_result_or_an_invalid_request(path: tuple[Any, ...], value: Any) -> None:
    body = copy.deepcopy(TEMPLATE)
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    try:
        parse_request(body)
    except InvalidRequestError as exc:
        error = exc
    else:
        return
    assert error.param is None or error.message.startswith(error.param)


@settings(max_examples=200)
@given(JSON)
def test_any_json_body_gives_a_result_or_an_invalid_request(value: Any) -> None:
    with contextlib.suppress(InvalidRequestError):
        parse_request(value)
