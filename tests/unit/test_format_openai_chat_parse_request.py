"""OpenAI SDK client requests -> canonical (protocols §2.1, §7.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway_core.errors import InvalidRequestError
from gateway_core.formats.openai_chat import parse_request, stream_include_usage
from gateway_core.models import (
    Base64Source,
    ImagePart,
    Message,
    OutputFormat,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    UrlSource,
)
from tests.fixtures import fixture_files, fixture_path, load_json

CLIENT_REQUESTS = fixture_files("openai_chat", "*.request.json") + fixture_files(
    "openrouter", "*.request.json"
)


def sdk_body(name: str) -> dict[str, Any]:
    """The body of an OpenAI SDK request captured in ``claude_code/``."""
    body: dict[str, Any] = load_json(fixture_path(f"claude_code/{name}.json"))["body"]
    return body


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}], **fields}


def invalid(request: object) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(request)
    return caught.value


# --- recorded requests ---------------------------------------------------------------------------


def test_sdk_non_streaming_request_puts_the_system_message_in_request_system() -> None:
    request = parse_request(sdk_body("sdk_008_POST_v1_chat_completions"))

    assert request.model == "claude-sonnet-4-5"
    assert request.system == (TextPart(text="be brief"),)
    assert request.messages == (Message(role="user", content=(TextPart(text="say hi"),)),)
    assert request.max_tokens == 32
    assert request.stream is False


def test_sdk_streaming_request_asks_for_the_usage_chunk() -> None:
    wire = sdk_body("sdk_009_POST_v1_chat_completions")

    request = parse_request(wire)

    assert request.stream is True
    assert request.system == ()
    assert stream_include_usage(wire) is True


@pytest.mark.parametrize("path", CLIENT_REQUESTS, ids=lambda p: p.name)
def test_every_recorded_chat_request_parses(path: Path) -> None:
    request = parse_request(load_json(path))

    assert request.messages
    assert request.system == (TextPart(text="You are a helpful assistant"),)


def test_tool_round_trip_request_gives_a_tool_call_and_its_result_in_a_user_turn() -> None:
    request = parse_request(load_json("openai_chat/openai_chat_stream_tool_result_followup.request.json"))

    user, assistant, results = request.messages
    assert user.role == "user"
    assert assistant == Message(
        role="assistant",
        content=(
            ToolCallPart(
                id="call_7kE4IjtnwXcGbX6hDM7xFu8T", name="weather", arguments={"location": "Florence, Italy"}
            ),
        ),
    )
    assert results == Message(
        role="user",
        content=(
            ToolResultPart(tool_call_id="call_7kE4IjtnwXcGbX6hDM7xFu8T", content=(TextPart(text="40 C"),)),
        ),
    )
    assert request.tools[0].name == "weather"
    assert request.tools[0].input_schema["required"] == ["location"]
    assert request.tools[0].strict is False
    assert request.tool_choice == ToolChoice(type="auto")


def test_openrouter_ids_in_a_recorded_request_are_kept_verbatim() -> None:
    request = parse_request(
        load_json("openrouter/openrouter_stream_tool_result_followup_kimi_k2.5.request.json")
    )

    call = request.messages[1].content[0]
    result = request.messages[2].content[0]
    assert isinstance(call, ToolCallPart)
    assert isinstance(result, ToolResultPart)
    assert call.id == result.tool_call_id == "functions.weather:0"


def test_max_completion_tokens_is_read_as_max_tokens() -> None:
    request = parse_request(
        load_json("openai_chat/openai_chat_stream_text_gpt5_reasoning_tokens.request.json")
    )

    assert request.max_tokens == 4000


def test_include_usage_is_false_unless_asked() -> None:
    assert stream_include_usage(body(stream=True)) is False
    assert stream_include_usage(body(stream=True, stream_options={"include_usage": False})) is False


# --- messages ------------------------------------------------------------------------------------


def test_leading_system_and_developer_messages_become_request_system() -> None:
    request = parse_request(
        body(
            messages=[
                {"role": "system", "content": "one"},
                {"role": "developer", "content": [{"type": "text", "text": "two"}]},
                {"role": "user", "content": "hi"},
            ]
        )
    )

    assert request.system == (TextPart(text="one"), TextPart(text="two"))
    assert [m.role for m in request.messages] == ["user"]


def test_a_system_message_later_in_the_conversation_stays_in_place() -> None:
    request = parse_request(
        body(
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "agents: none"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "bye"},
            ]
        )
    )

    assert [m.role for m in request.messages] == ["user", "system", "assistant", "user"]
    assert request.messages[1].content == (TextPart(text="agents: none"),)


def test_data_url_images_become_inline_base64_and_other_urls_stay_urls() -> None:
    request = parse_request(
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "compare"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    ],
                }
            ]
        )
    )

    _, inline, remote = request.messages[0].content
    assert inline == ImagePart(source=Base64Source(media_type="image/png", data="iVBORw0KGgo="))
    assert remote == ImagePart(source=UrlSource(url="https://example.com/cat.jpg"))


def test_consecutive_tool_messages_and_the_next_user_text_form_one_user_turn() -> None:
    request = parse_request(
        body(
            messages=[
                {"role": "user", "content": "weather in two cities"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "a", "type": "function", "function": {"name": "w", "arguments": '{"c":"x"}'}},
                        {"id": "b", "type": "function", "function": {"name": "w", "arguments": '{"c":"y"}'}},
                    ],
                },
                {"role": "tool", "tool_call_id": "a", "content": "1 C"},
                {"role": "tool", "tool_call_id": "b", "content": [{"type": "text", "text": "2 C"}]},
                {"role": "user", "content": "thanks"},
            ]
        )
    )

    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    assert request.messages[2].content == (
        ToolResultPart(tool_call_id="a", content=(TextPart(text="1 C"),)),
        ToolResultPart(tool_call_id="b", content=(TextPart(text="2 C"),)),
        TextPart(text="thanks"),
    )


def test_assistant_text_and_empty_arguments_are_read() -> None:
    request = parse_request(
        body(
            messages=[
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": "on it",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "now", "arguments": ""}}
                    ],
                },
            ]
        )
    )

    assert request.messages[1].content == (
        TextPart(text="on it"),
        ToolCallPart(id="c1", name="now", arguments={}),
    )


# --- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "canonical"),
    [
        ("none", ToolChoice(type="none")),
        ("auto", ToolChoice(type="auto")),
        ("required", ToolChoice(type="any")),
        ({"type": "function", "function": {"name": "weather"}}, ToolChoice(type="tool", name="weather")),
    ],
)
def test_tool_choice_maps_to_canonical(wire: object, canonical: ToolChoice) -> None:
    assert parse_request(body(tool_choice=wire)).tool_choice == canonical


def test_sampling_and_control_options_are_read() -> None:
    request = parse_request(
        body(
            stop="END",
            temperature=0.2,
            top_p=0.9,
            seed=7,
            presence_penalty=0.5,
            frequency_penalty=-0.5,
            user="u-1",
            reasoning_effort="high",
            parallel_tool_calls=False,
            max_tokens=10,
            max_completion_tokens=20,
        )
    )

    assert request.stop_sequences == ("END",)
    assert (request.temperature, request.top_p, request.seed) == (0.2, 0.9, 7)
    assert (request.presence_penalty, request.frequency_penalty) == (0.5, -0.5)
    assert request.user_id == "u-1"
    assert request.effort == "high"
    assert request.parallel_tool_calls is False
    assert request.max_tokens == 20


def test_openrouter_style_reasoning_effort_is_read_too() -> None:
    assert parse_request(body(reasoning={"effort": "low", "exclude": False})).effort == "low"
    assert invalid(body(reasoning={"effort": "lots"})).param == "reasoning.effort"


def test_response_formats_map_to_output_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    wire = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}

    assert parse_request(body(response_format=wire)).output_format == OutputFormat(
        type="json_schema", json_schema=schema, name="answer", strict=True
    )
    assert parse_request(body(response_format={"type": "json_object"})).output_format == OutputFormat(
        type="json_object"
    )


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "path"),
    [
        (body(n=2), "n"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        (body(messages=[]), "messages"),
        (body(messages=[{"role": "function", "content": "x"}]), "messages.0.role"),
        (
            body(
                messages=[
                    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "file", "file": {}}]}
                ]
            ),
            "messages.0.content.1.type",
        ),
        (
            body(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
            "messages.0.content.0.type",
        ),
        (
            body(
                messages=[
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    },
                ]
            ),
            "messages.1.tool_calls.0.function.arguments",
        ),
        (
            body(
                messages=[
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
                        ],
                    },
                ]
            ),
            "messages.1.tool_calls.0.function.arguments",
        ),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages.0.tool_call_id"),
        (body(tools=[{"type": "web_search"}]), "tools.0.type"),
        (body(tools=[{"type": "function", "function": {"description": "no name"}}]), "tools.0.function.name"),
        (body(tool_choice="sometimes"), "tool_choice"),
        (body(tool_choice={"type": "allowed_tools"}), "tool_choice.type"),
        (body(reasoning_effort="extreme"), "reasoning_effort"),
        (body(response_format={"type": "xml"}), "response_format.type"),
        (body(stop=["a", 3]), "stop.1"),
        (body(temperature="hot"), "temperature"),
        (body(stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
        (
            body(messages=[{"role": "system", "content": [{"type": "image_url"}]}]),
            "messages.0.content.0.type",
        ),
    ],
)
def test_bad_input_is_an_invalid_request_naming_the_field(request_body: dict[str, Any], path: str) -> None:
    error = invalid(request_body)

    assert error.param == path
    assert error.message.startswith(f"{path}: ")


def test_a_body_that_is_not_an_object_is_an_invalid_request() -> None:
    assert "expected an object" in invalid(["not", "a", "request"]).message


def test_unsupported_parts_say_why() -> None:
    error = invalid(
        body(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])
    )

    assert "audio input is not supported" in error.message


def test_unknown_fields_are_ignored() -> None:
    request = parse_request(body(logit_bias={"1": 2}, store=False, metadata={"a": "b"}, prompt_cache_key="k"))

    assert request.model == "gpt-5.5"
