"""Every client format shares one parse of a tool list among the requests that repeat it
(``gateway_core.formats._tool_lists``), and only among requests whose lists are the same JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway_core.errors import InvalidRequestError
from gateway_core.formats import anthropic, openai_chat, openai_responses
from gateway_core.formats._tool_lists import LARGEST_SHARED
from gateway_core.models import Request
from tests.fixtures import claude_code_body, load_json

Parse = Callable[[Any], Request]


def _chat_schema(tool: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = tool["function"]["parameters"]
    return schema


FORMATS = [
    pytest.param(
        anthropic.parse_request,
        lambda: claude_code_body("cc_p_text_main"),
        lambda tool: tool["input_schema"],
        id="anthropic",
    ),
    pytest.param(
        openai_chat.parse_request,
        lambda: load_json("openai_chat/openai_chat_completion_tool_calls.request.json"),
        _chat_schema,
        id="openai_chat",
    ),
    pytest.param(
        openai_responses.parse_request,
        lambda: load_json("responses/responses_stream_tool_call.request.json"),
        lambda tool: tool["parameters"],
        id="openai_responses",
    ),
]
Body = Callable[[], dict[str, Any]]
Schema = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.mark.parametrize(("parse", "body", "schema"), FORMATS)
def test_a_repeated_tool_list_is_parsed_once(parse: Parse, body: Body, schema: Schema) -> None:
    first, again = parse(body()), parse(body())  # two bodies, each read from the recording

    assert first.tools
    assert all(mine is theirs for mine, theirs in zip(again.tools, first.tools, strict=True))


@pytest.mark.parametrize(("parse", "body", "schema"), FORMATS)
def test_shared_tools_keep_nothing_of_the_body_that_brought_them(
    parse: Parse, body: Body, schema: Schema
) -> None:
    sent = body()
    tools = parse(sent).tools

    schema(sent["tools"][0])["properties"]["injected"] = {"type": "string"}

    assert "injected" not in tools[0].input_schema["properties"]
    assert "injected" in parse(sent).tools[0].input_schema["properties"]


@pytest.mark.parametrize(("parse", "body", "schema"), FORMATS)
def test_a_refused_tool_list_is_refused_every_time(parse: Parse, body: Body, schema: Schema) -> None:
    sent = body()
    sent["tools"][0] = "not a tool"

    for _ in range(2):
        with pytest.raises(InvalidRequestError, match=r"^tools\.0: "):
            parse(sent)


def _anthropic_request(tool: dict[str, Any]) -> Request:
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}], "tools": [tool]}
    return anthropic.parse_request(body)


def test_tool_lists_equal_in_python_but_not_in_json_are_not_shared() -> None:
    def request_with(constant: object) -> Request:
        return _anthropic_request(
            {"name": "w", "input_schema": {"type": "object", "properties": {"x": {"const": constant}}}}
        )

    as_number, as_boolean = request_with(1), request_with(True)  # 1 == True in Python

    assert as_number.tools[0] is not as_boolean.tools[0]
    assert b'"const":1' in orjson.dumps(anthropic.render_request(as_number)["tools"])
    assert b'"const":true' in orjson.dumps(anthropic.render_request(as_boolean)["tools"])


def test_tools_an_application_built_from_objects_json_cannot_carry_are_parsed_as_given() -> None:
    marker = object()

    request = _anthropic_request({"name": "w", "input_schema": {"type": "object", "x-origin": marker}})

    assert request.tools[0].input_schema["x-origin"] is marker


def test_a_list_longer_than_what_is_kept_is_parsed_per_request() -> None:
    tool = {"name": "w", "description": "x" * LARGEST_SHARED, "input_schema": {"type": "object"}}

    first, again = _anthropic_request(tool), _anthropic_request(tool)

    assert first.tools == again.tools
    assert first.tools[0] is not again.tools[0]
