"""parse_request: a Responses request -> canonical, and canonical -> render -> parse is the identity."""

from __future__ import annotations

from typing import Any

import pytest

from gateway_core.errors import InvalidRequestError
from gateway_core.formats.openai_responses import DEFAULT_INSTRUCTIONS, parse_request, render_request
from gateway_core.models import (
    Base64Source,
    DocumentPart,
    ImagePart,
    Message,
    OutputFormat,
    ReasoningPart,
    Request,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    UrlSource,
)
from tests.codex_rules import assert_codex_accepts
from tests.fixtures import fixture_files, load_json
from tests.unit._openai_responses_support import assistant, system, user

WEATHER = Tool(
    name="weather",
    description="Get weather information for a location",
    input_schema={
        "properties": {"location": {"description": "the city", "type": "string"}},
        "required": ["location"],
        "type": "object",
    },
)


def test_recorded_request_with_developer_message_reads_it_as_the_system_prompt() -> None:
    req = parse_request(load_json("responses/responses_stream_text.request.json"))

    assert req.model == "gpt-5"
    assert req.system == (TextPart(text="You are a helpful assistant"),)
    assert req.messages == (user("Say hi in Portuguese"),)
    assert req.max_tokens == 4000
    assert req.stream is True


def test_recorded_tool_round_trip_request_reads_calls_outputs_tools_and_effort() -> None:
    req = parse_request(load_json("responses/responses_stream_reasoning_summary_text.request.json"))

    call = ToolCallPart(
        id="call_zgUaIBRPTwxxOusyyKw5NVMH", name="weather", arguments={"location": "Florence, Italy"}
    )
    result = ToolResultPart(tool_call_id="call_zgUaIBRPTwxxOusyyKw5NVMH", content=(TextPart(text="40 C"),))
    assert req.messages == (user("What's the weather in Florence, Italy?"), assistant(call), user(result))
    assert req.tools == (WEATHER,)
    assert req.tool_choice == ToolChoice(type="auto")
    assert req.effort == "high"


@pytest.mark.parametrize("path", fixture_files("responses", "*.request.json"), ids=lambda path: path.name)
def test_every_recorded_request_parses_and_renders_to_a_body_codex_accepts(path: Any) -> None:
    req = parse_request(load_json(path))

    assert_codex_accepts(render_request(req, upstream_model="gpt-5.5"))


def test_input_may_be_a_plain_string() -> None:
    req = parse_request({"model": "gpt-5.5", "input": "hello"})

    assert req.messages == (user("hello"),)


def test_instructions_become_the_system_prompt_and_developer_messages_stay_in_place() -> None:
    body = {
        "model": "gpt-5.5",
        "instructions": "Be brief.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "skills"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"role": "system", "content": "late"},
        ],
    }

    req = parse_request(body)

    assert req.system == (TextPart(text="Be brief."),)
    assert req.messages == (system("skills"), user("hi"), system("late"))


def test_our_default_instructions_read_back_as_no_system_prompt() -> None:
    assert parse_request({"model": "m", "instructions": DEFAULT_INSTRUCTIONS, "input": "x"}).system == ()


def test_reasoning_items_carry_their_token_for_the_given_provider() -> None:
    item = {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "A"}, {"type": "summary_text", "text": "B"}],
        "encrypted_content": "gAAAA",
    }

    req = parse_request({"model": "m", "input": [item]}, provider="codex-team")

    assert req.messages == (
        assistant(ReasoningPart(text="A\n\nB", signature="gAAAA", provider="codex-team")),
    )


def test_error_prefixed_output_reads_as_a_failed_tool_result() -> None:
    items = [
        {"type": "function_call", "call_id": "c1", "name": "Read", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "Error: No such file"},
    ]

    (_, result_message) = parse_request({"model": "m", "input": items}).messages

    assert result_message == user(
        ToolResultPart(tool_call_id="c1", content=(TextPart(text="No such file"),), is_error=True)
    )


def test_images_and_files_read_back_as_canonical_sources() -> None:
    content = [
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0"},
        {"type": "input_image", "image_url": "https://example.com/a.png"},
        {"type": "input_file", "filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0"},
    ]

    (message,) = parse_request({"model": "m", "input": [{"role": "user", "content": content}]}).messages

    assert message.content == (
        ImagePart(source=Base64Source(media_type="image/png", data="iVBORw0")),
        ImagePart(source=UrlSource(url="https://example.com/a.png")),
        DocumentPart(source=Base64Source(media_type="application/pdf", data="JVBERi0"), title="spec.pdf"),
    )


def test_unknown_input_items_are_ignored() -> None:
    items = [{"type": "item_reference", "id": "msg_1"}, {"type": "message", "role": "user", "content": "hi"}]

    assert parse_request({"model": "m", "input": items}).messages == (user("hi"),)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m", "input": [{"type": "message", "role": "tool", "content": "x"}]}, "input.0.role"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "audio"}]}]},
            "input.0.content.0.type",
        ),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input.0.call_id"),
        ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "input": "x", "reasoning": {"effort": "huge"}}, "reasoning.effort"),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools.0.name"),
        ({"model": "m", "input": 3}, "input"),
    ],
)
def test_bad_requests_name_the_offending_field(body: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(body)

    assert caught.value.param == path
    assert str(caught.value).startswith(f"{path}: ")


def test_canonical_render_parse_round_trip_is_the_identity_on_what_the_format_carries() -> None:
    png = ImagePart(source=Base64Source(media_type="image/png", data="iVBORw0"))
    call = ToolCallPart(id="call_1", name="weather", arguments={"location": "Florence"})
    result = ToolResultPart(tool_call_id="call_1", content=(TextPart(text="40 C"),), is_error=True)
    original = Request(
        model="gpt-5.5",
        system=(TextPart(text="You are Claude."),),
        messages=(
            Message(role="user", content=(TextPart(text="weather?"), png)),
            system("Agents: Explore"),
            assistant(ReasoningPart(text="**Plan**", signature="gAAAA", provider="codex"), "Checking.", call),
            user(result, "thanks"),
        ),
        stream=True,
        tools=(WEATHER,),
        tool_choice=ToolChoice(type="tool", name="weather"),
        parallel_tool_calls=False,
        effort="medium",
        output_format=OutputFormat(
            type="json_schema", json_schema={"type": "object"}, name="answer", strict=True
        ),
    )

    body = render_request(original, upstream_model="gpt-5.5")

    assert parse_request(body) == original
