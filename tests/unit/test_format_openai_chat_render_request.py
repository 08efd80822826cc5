"""Canonical -> the Chat body sent to OpenRouter / Kilo (protocols §3, §6.7, §7.3, §7.4, §7.5)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway_core.formats._names import shorten_call_id, shorten_name
from gateway_core.formats.openai_chat import parse_request, render_request, tool_name_map
from gateway_core.models import (
    Base64Source,
    CacheControl,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    Request,
    TextPart,
    Thinking,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolReferencePart,
    ToolResultPart,
)
from gateway_core.streaming import accumulate
from tests.fixtures import claude_code_body, fixture_path, load_json
from tests.unit._openai_chat_support import decode_fixture

PNG = Base64Source(media_type="image/png", data="iVBORw0KGgo=")


def user(*parts: Part) -> Message:
    return Message(role="user", content=parts)


def assistant(*parts: Part) -> Message:
    return Message(role="assistant", content=parts)


def request(*messages: Message, **fields: Any) -> Request:
    return Request(model="claude-haiku-4-5", messages=messages or (user(TextPart(text="hi")),), **fields)


# --- recorded conversations ----------------------------------------------------------------------


def test_a_recorded_openai_request_renders_back_to_the_same_messages_and_tools() -> None:
    wire = load_json("openai_chat/openai_chat_stream_tool_result_followup.request.json")

    body = render_request(parse_request(wire), upstream_model="gpt-4o")

    assert normalised(body["messages"]) == normalised(wire["messages"])
    assert body["tools"] == wire["tools"]
    assert body["tool_choice"] == "auto"
    assert body["max_tokens"] == 4000


def normalised(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with call arguments parsed (spacing differs) and a null ``content`` left out."""
    out = []
    for message in messages:
        message = {k: v for k, v in message.items() if not (k == "content" and v is None)}
        if "tool_calls" in message:
            message["tool_calls"] = [
                {
                    **call,
                    "function": {
                        **call["function"],
                        "arguments": orjson.loads(call["function"]["arguments"]),
                    },
                }
                for call in message["tool_calls"]
            ]
        out.append(message)
    return out


def test_openrouter_reasoning_replays_as_reasoning_details_like_the_recorded_follow_up() -> None:
    """Turn 1 is the recorded OpenRouter stream; turn 2 must look like the recorded follow-up request."""
    answer = accumulate(decode_fixture(fixture_path("openrouter/openrouter_stream_tool_calls_kimi_k2.5.sse")))
    recorded = load_json("openrouter/openrouter_stream_tool_result_followup_kimi_k2.5.request.json")
    call = answer.content[-1]
    assert isinstance(call, ToolCallPart)
    follow_up = Request(
        model="claude-haiku-4-5",
        system=(TextPart(text="You are a helpful assistant"),),
        messages=(
            user(TextPart(text="What's the weather in Florence,Italy?")),
            assistant(*answer.content),
            user(ToolResultPart(tool_call_id=call.id, content=(TextPart(text="40 C"),))),
        ),
        tools=parse_request(recorded).tools,
        tool_choice=ToolChoice(type="auto"),
        max_tokens=4000,
    )

    body = render_request(follow_up, upstream_model="moonshotai/kimi-k2.5", provider="openrouter")

    ours, theirs = body["messages"][2], recorded["messages"][2]
    assert [m["role"] for m in body["messages"]] == [m["role"] for m in recorded["messages"]]
    assert ours["tool_calls"][0]["id"] == theirs["tool_calls"][0]["id"] == "functions.weather:0"
    assert body["messages"][3] == recorded["messages"][3]
    [our_detail] = ours["reasoning_details"]
    [their_detail] = theirs["reasoning_details"]
    assert {k: v for k, v in our_detail.items() if k != "text"} == {
        k: v for k, v in their_detail.items() if k != "text"
    }
    # The recording client dropped the first streamed piece (" The") from its replay; the rest is identical.
    assert our_detail["text"].endswith(their_detail["text"])
    assert body["tools"] == recorded["tools"]


def test_claude_code_tool_search_turn_applies_the_deferred_tool_rule() -> None:
    from gateway_core.formats.anthropic import parse_request as parse_anthropic

    canonical = parse_anthropic(claude_code_body("cc332_toolsearch_tool_reference"))

    body = render_request(canonical, upstream_model="moonshotai/kimi-k2.5:free", provider="kilo")

    sent = [tool["function"]["name"] for tool in body["tools"]]
    assert "WebFetch" in sent
    assert "DeferredToolPlaceholder" not in sent
    assert sent == [t.name for t in canonical.tools if t.name != "DeferredToolPlaceholder"]
    assert all(set(tool["function"]) <= {"name", "description", "parameters"} for tool in body["tools"])
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "system", "assistant", "tool", "user"]
    assert body["messages"][4] == {
        "role": "tool",
        "tool_call_id": "toolu_bfd8a3a45c0b46edb5b58755",
        "content": "Tool WebFetch loaded.",
    }
    assert body["messages"][5] == {"role": "user", "content": "Tool loaded."}
    assert body["messages"][3]["tool_calls"][0]["function"] == {
        "name": "ToolSearch",
        "arguments": '{"query":"select:WebFetch","max_results":5}',
    }


def test_claude_code_request_drops_what_other_upstreams_must_not_see() -> None:
    from gateway_core.formats.anthropic import parse_request as parse_anthropic

    canonical = parse_anthropic(claude_code_body("cc332_toolsearch_tool_reference"))

    body = render_request(canonical, upstream_model="moonshotai/kimi-k2.5:free", provider="kilo")
    raw = orjson.dumps(body)

    assert not body["messages"][0]["content"].startswith("x-anthropic-billing-header")
    assert b"x-anthropic-billing-header" not in raw
    for leaked in (
        b"cache_control",
        b"device_id",
        b"context_management",
        b"clear_thinking",
        b"defer_loading",
    ):
        assert leaked not in raw
    assert "user" not in body
    assert "metadata" not in body
    assert body["max_tokens"] == 128000
    assert body["reasoning"] == {"effort": "medium"}
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


# --- rules ---------------------------------------------------------------------------------------


def test_system_text_is_one_leading_message_and_system_turns_stay_in_place() -> None:
    body = render_request(
        request(
            user(TextPart(text="hi")),
            Message(role="system", content=(TextPart(text="skills: none"),)),
            system=(TextPart(text="one"), TextPart(text="two", cache_control=CacheControl())),
        )
    )

    assert body["messages"] == [
        {"role": "system", "content": "one\n\ntwo"},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "skills: none"},
    ]


def test_tool_results_come_before_the_users_text_and_images_move_to_a_user_message() -> None:
    body = render_request(
        request(
            user(TextPart(text="read both")),
            assistant(
                ToolCallPart(id="toolu_1", name="Read", arguments={"p": "a.png"}),
                ToolCallPart(id="toolu_2", name="Read", arguments={"p": "b.txt"}),
            ),
            user(
                TextPart(text="here you go"),
                ToolResultPart(tool_call_id="toolu_1", content=(ImagePart(source=PNG),)),
                ToolResultPart(tool_call_id="toolu_2", content=(TextPart(text="missing"),), is_error=True),
            ),
        )
    )

    _, call, first, second, follow = body["messages"]
    assert call["content"] is None
    assert [c["id"] for c in call["tool_calls"]] == ["toolu_1", "toolu_2"]
    assert first["role"] == "tool"
    assert first["tool_call_id"] == "toolu_1"
    assert "next user message" in first["content"]
    assert second == {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: missing"}
    assert follow == {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "text", "text": "here you go"},
        ],
    }


def test_user_images_and_documents_render_as_chat_parts() -> None:
    pdf = DocumentPart(source=Base64Source(media_type="application/pdf", data="JVBERi0="), title="spec.pdf")

    body = render_request(request(user(TextPart(text="look"), ImagePart(source=PNG), pdf)))

    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {
            "type": "file",
            "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        },
    ]


def test_deferred_tools_are_sent_only_once_a_tool_reference_loaded_them() -> None:
    tools = (
        Tool(name="Read"),
        Tool(name="WebFetch", defer_loading=True),
        Tool(name="CronCreate", defer_loading=True),
        Tool(name="DeferredToolPlaceholder", defer_loading=True),
        Tool(name="web_search", type="web_search_20250305"),
    )
    before = request(tools=tools)
    after = request(
        user(TextPart(text="find the fetch tool")),
        assistant(ToolCallPart(id="t1", name="ToolSearch", arguments={"query": "select:WebFetch"})),
        user(ToolResultPart(tool_call_id="t1", content=(ToolReferencePart(tool_name="WebFetch"),))),
        tools=tools,
    )

    assert [t["function"]["name"] for t in render_request(before)["tools"]] == ["Read"]
    assert [t["function"]["name"] for t in render_request(after)["tools"]] == ["Read", "WebFetch"]


def test_reasoning_replays_only_to_the_provider_that_minted_it() -> None:
    details = [{"type": "reasoning.encrypted", "data": "opaque", "index": 0}]
    ours = ReasoningPart(text="", signature=orjson.dumps(details).decode(), provider="openrouter")
    theirs = ReasoningPart(text="thinking", signature="EqQBCkYIBRgCKkA", provider="anthropic")
    conversation = request(user(TextPart(text="q")), assistant(ours, theirs, TextPart(text="a")))

    to_openrouter = render_request(conversation, provider="openrouter")["messages"][1]
    to_kilo = render_request(conversation, provider="kilo")["messages"][1]

    assert to_openrouter == {"role": "assistant", "content": "a", "reasoning_details": details}
    assert to_kilo == {"role": "assistant", "content": "a"}


def test_an_assistant_turn_left_empty_after_dropping_foreign_reasoning_is_omitted() -> None:
    foreign = ReasoningPart(text="hmm", signature="sig", provider="anthropic")

    body = render_request(request(user(TextPart(text="q")), assistant(foreign), user(TextPart(text="again"))))

    assert [m["role"] for m in body["messages"]] == ["user", "user"]


@pytest.mark.parametrize(
    ("fields", "reasoning"),
    [
        ({"thinking": Thinking(type="disabled")}, {"effort": "none", "exclude": True}),
        ({"thinking": Thinking(type="enabled", budget_tokens=31999)}, {"effort": "xhigh"}),
        ({"thinking": Thinking(type="enabled", budget_tokens=4000)}, {"effort": "medium"}),
        ({"thinking": Thinking(type="adaptive"), "effort": "max"}, {"effort": "xhigh"}),
        ({"effort": "low"}, {"effort": "low"}),
    ],
)
def test_thinking_and_effort_become_openrouter_reasoning(
    fields: dict[str, Any], reasoning: dict[str, Any]
) -> None:
    assert render_request(request(**fields))["reasoning"] == reasoning


def test_the_lane_default_effort_applies_when_the_request_names_none() -> None:
    assert "reasoning" not in render_request(request())
    assert render_request(request(), effort="medium")["reasoning"] == {"effort": "medium"}


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice(type="auto"), "auto"),
        (ToolChoice(type="any"), "required"),
        (ToolChoice(type="none"), "none"),
        (ToolChoice(type="tool", name="Read"), {"type": "function", "function": {"name": "Read"}}),
    ],
)
def test_tool_choice_maps_to_chat(choice: ToolChoice, wire: object) -> None:
    body = render_request(request(tools=(Tool(name="Read"),), tool_choice=choice, parallel_tool_calls=False))

    assert body["tool_choice"] == wire
    assert body["parallel_tool_calls"] is False


def test_without_tools_there_is_no_tool_choice() -> None:
    body = render_request(request(tool_choice=ToolChoice(type="any")))

    assert "tools" not in body
    assert "tool_choice" not in body


def test_long_tool_names_and_call_ids_are_shortened_consistently() -> None:
    long_name = "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_here"
    long_id = "toolu_" + "x" * 80
    conversation = request(
        user(TextPart(text="go")),
        assistant(ToolCallPart(id=long_id, name=long_name, arguments={})),
        user(ToolResultPart(tool_call_id=long_id, content=(TextPart(text="ok"),))),
        tools=(Tool(name=long_name),),
        tool_choice=ToolChoice(type="tool", name=long_name),
    )

    body = render_request(conversation)

    short = shorten_name(long_name)
    assert len(short) <= 64
    assert short != long_name
    assert body["tools"][0]["function"]["name"] == short
    assert body["tool_choice"]["function"]["name"] == short
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == short
    assert (
        body["messages"][1]["tool_calls"][0]["id"]
        == body["messages"][2]["tool_call_id"]
        == shorten_call_id(long_id)
    )
    assert tool_name_map(conversation).to_client(short) == long_name


def test_options_are_copied_and_stop_sequences_become_stop() -> None:
    body = render_request(
        request(max_tokens=100, temperature=0.5, top_p=0.9, top_k=40, seed=3, stop_sequences=("END", "STOP")),
        upstream_model="minimax/minimax-m2.5:free",
        stream=False,
    )

    assert body["model"] == "minimax/minimax-m2.5:free"
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["top_k"], body["seed"]) == (
        100,
        0.5,
        0.9,
        40,
        3,
    )
    assert body["stop"] == ["END", "STOP"]
    assert "stream" not in body
    assert "stream_options" not in body


def test_tool_schemas_pass_unchanged_as_parameters() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}},
        "additionalProperties": False,
    }

    body = render_request(request(tools=(Tool(name="count", description="Count.", input_schema=schema),)))

    assert body["tools"] == [
        {"type": "function", "function": {"name": "count", "description": "Count.", "parameters": schema}}
    ]
