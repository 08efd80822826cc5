"""render_request: canonical -> a body the Codex backend accepts (protocols §4.2–§4.4, §6.7, §7.1, §7.4)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway_core.formats._names import shorten_call_id
from gateway_core.formats.openai_responses import (
    ALLOWED_BODY_KEYS,
    DEFAULT_INSTRUCTIONS,
    render_request,
    tool_name_map,
)
from gateway_core.models import (
    Base64Source,
    DocumentPart,
    Effort,
    ImagePart,
    OutputFormat,
    PlainTextSource,
    ReasoningPart,
    Request,
    TextPart,
    Thinking,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolReferencePart,
    ToolResultPart,
    UrlSource,
)
from tests.codex_rules import assert_codex_accepts
from tests.unit._openai_responses_support import assistant, request, system, user

CALL = ToolCallPart(id="toolu_01", name="Read", arguments={"file_path": "/tmp/a"})
READ = Tool(name="Read", description="Read a file", input_schema={"type": "object", "properties": {}})


def render(req: Request, **options: Any) -> dict[str, Any]:
    body = render_request(req, upstream_model="gpt-5.5", **options)
    assert_codex_accepts(body)
    return body


def items(req: Request, **options: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = render(req, **options)["input"]
    return result


# --- body -------------------------------------------------------------------------------------------


def test_body_is_stateless_streaming_and_names_the_upstream_model() -> None:
    body = render(request())

    assert body["model"] == "gpt-5.5"
    assert body["store"] is False
    assert body["stream"] is True


def test_body_never_carries_parameters_the_backend_refuses() -> None:
    req = request(
        max_tokens=128000,
        temperature=1.0,
        top_p=0.9,
        top_k=5,
        stop_sequences=("END",),
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.1,
        service_tier="auto",
        user_id='{"device_id":"0"}',
        context_management={"edits": []},
        safeguards=({"type": "dangerous_tool_use"},),
    )

    body = render(req, prompt_cache_key="session-1", effort_default="high")

    assert set(body) <= ALLOWED_BODY_KEYS
    assert ALLOWED_BODY_KEYS.isdisjoint({"temperature", "top_p", "max_output_tokens", "metadata", "seed"})


def test_prompt_cache_key_is_sent_when_given() -> None:
    assert render(request(), prompt_cache_key="session-1")["prompt_cache_key"] == "session-1"
    assert "prompt_cache_key" not in render(request())


# --- instructions --------------------------------------------------------------------------------------


def test_system_text_parts_become_instructions_joined_by_blank_lines() -> None:
    req = request(system=(TextPart(text="You are Claude."), TextPart(text="Be brief.")))

    assert render(req)["instructions"] == "You are Claude.\n\nBe brief."


def test_claude_code_billing_header_block_is_dropped_from_instructions() -> None:
    billing = TextPart(text="x-anthropic-billing-header: cc_version=2.1.332.0b8; cc_entrypoint=sdk-cli;")
    req = request(system=(billing, TextPart(text="You are Claude.")))

    assert render(req)["instructions"] == "You are Claude."


def test_instructions_are_never_empty() -> None:
    billing_only = (TextPart(text="x-anthropic-billing-header: cc_version=1"),)

    assert render(request())["instructions"] == DEFAULT_INSTRUCTIONS
    assert render(request(system=billing_only))["instructions"] == DEFAULT_INSTRUCTIONS
    assert render(request(system=(TextPart(text="  "),)))["instructions"] == DEFAULT_INSTRUCTIONS


# --- messages --------------------------------------------------------------------------------------------


def test_mid_conversation_system_message_becomes_a_developer_message_in_place() -> None:
    req = request(user("hi"), system("Agents: Explore"), assistant("hello"), user("bye"))

    assert [(item["type"], item.get("role")) for item in items(req)] == [
        ("message", "user"),
        ("message", "developer"),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert items(req)[1]["content"] == [{"type": "input_text", "text": "Agents: Explore"}]


def test_user_text_and_images_become_input_items() -> None:
    png = ImagePart(source=Base64Source(media_type="image/png", data="iVBORw0"))
    remote = ImagePart(source=UrlSource(url="https://example.com/cat.jpg"))

    (message,) = items(request(user("look", png, remote)))

    assert message == {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0"},
            {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
        ],
    }


def test_pdf_document_becomes_an_input_file_with_a_data_url() -> None:
    pdf = DocumentPart(source=Base64Source(media_type="application/pdf", data="JVBERi0"), title="spec.pdf")

    (message,) = items(request(user(pdf)))

    assert message["content"] == [
        {"type": "input_file", "filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBERi0"}
    ]


def test_plain_text_document_becomes_input_text() -> None:
    doc = DocumentPart(source=PlainTextSource(data="line one"), title="notes")

    (message,) = items(request(user(doc)))

    assert message["content"] == [{"type": "input_text", "text": "notes\n\nline one"}]


def test_assistant_text_becomes_output_text() -> None:
    (_, message) = items(request(user("hi"), assistant("hello")))

    assert message == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "hello"}],
    }


def test_tool_call_flushes_the_pending_message_and_carries_json_arguments() -> None:
    rendered = items(request(user("read it"), assistant("Reading.", CALL)))

    assert rendered[1]["content"] == [{"type": "output_text", "text": "Reading."}]
    assert rendered[2] == {
        "type": "function_call",
        "call_id": "toolu_01",
        "name": "Read",
        "arguments": '{"file_path":"/tmp/a"}',
    }
    assert orjson.loads(rendered[2]["arguments"]) == CALL.arguments


def test_tool_result_follows_its_call_before_the_users_text() -> None:
    result = ToolResultPart(tool_call_id="toolu_01", content=(TextPart(text="file body"),))
    req = request(user("read it"), assistant(CALL), user("and then?", result))

    rendered = items(req)

    assert [item["type"] for item in rendered] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert rendered[2] == {"type": "function_call_output", "call_id": "toolu_01", "output": "file body"}
    assert rendered[3]["content"] == [{"type": "input_text", "text": "and then?"}]


def test_failed_tool_result_is_prefixed_with_error() -> None:
    result = ToolResultPart(tool_call_id="toolu_01", content=(TextPart(text="No such file"),), is_error=True)

    output = items(request(user("x"), assistant(CALL), user(result)))[-1]["output"]

    assert output == "Error: No such file"


def test_tool_result_with_an_image_is_a_list_of_input_items() -> None:
    png = ImagePart(source=Base64Source(media_type="image/png", data="iVBORw0"))
    result = ToolResultPart(tool_call_id="toolu_01", content=(TextPart(text="a chart"), png), is_error=True)

    output = items(request(user("x"), assistant(CALL), user(result)))[-1]["output"]

    assert output == [
        {"type": "input_text", "text": "Error: a chart"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0"},
    ]


def test_tool_reference_is_announced_as_text() -> None:
    search = ToolCallPart(id="toolu_02", name="ToolSearch", arguments={"query": "select:WebFetch"})
    result = ToolResultPart(tool_call_id="toolu_02", content=(ToolReferencePart(tool_name="WebFetch"),))

    rendered = items(request(user("x"), assistant(search), user(result, "Tool loaded.")))

    assert rendered[-2]["output"] == "Tool WebFetch loaded."
    assert rendered[-1]["content"] == [{"type": "input_text", "text": "Tool loaded."}]


def test_orphan_tool_result_becomes_user_text_instead_of_an_output_the_backend_refuses() -> None:
    orphan = ToolResultPart(tool_call_id="toolu_gone", content=(TextPart(text="42"),), is_error=True)

    rendered = items(request(user("earlier context", orphan)))

    assert all(item["type"] == "message" for item in rendered)
    assert rendered[0]["content"] == [
        {"type": "input_text", "text": "Result of tool call toolu_gone (error):"},
        {"type": "input_text", "text": "Error: 42"},
        {"type": "input_text", "text": "earlier context"},
    ]


def test_long_call_ids_are_shortened_the_same_way_on_call_and_result() -> None:
    long_id = "toolu_" + "x" * 80
    call = CALL.model_copy(update={"id": long_id})
    result = ToolResultPart(tool_call_id=long_id, content=(TextPart(text="ok"),))

    rendered = items(request(user("x"), assistant(call), user(result)))

    assert rendered[1]["call_id"] == rendered[2]["call_id"] == shorten_call_id(long_id)
    assert len(rendered[1]["call_id"]) <= 64


def test_long_tool_names_are_shortened_everywhere_and_the_map_restores_them() -> None:
    name = "mcp__a_very_long_server_name__and_an_even_longer_tool_name_that_overflows"
    tool = Tool(name=name, input_schema={"type": "object"})
    call = ToolCallPart(id="toolu_01", name=name, arguments={})
    req = request(user("x"), assistant(call), tools=(tool,), tool_choice=ToolChoice(type="tool", name=name))

    body = render(req)

    short = body["tools"][0]["name"]
    assert len(short) <= 64
    assert body["input"][1]["name"] == short
    assert body["tool_choice"] == {"type": "function", "name": short}
    assert tool_name_map(req).to_client(short) == name


# --- reasoning replay -------------------------------------------------------------------------------


def test_reasoning_minted_by_the_provider_is_replayed_in_place_without_ids() -> None:
    reasoning = ReasoningPart(text="**Plan**", signature="gAAAA-token", provider="codex")

    rendered = items(request(user("x"), assistant(reasoning, "answer")))

    assert rendered[1] == {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "**Plan**"}],
        "content": None,
        "encrypted_content": "gAAAA-token",
    }
    assert rendered[2]["role"] == "assistant"


def test_reasoning_without_text_is_replayed_with_an_empty_summary() -> None:
    reasoning = ReasoningPart(text="", signature="gAAAA-token", provider="codex")

    assert items(request(user("x"), assistant(reasoning, "a")))[1]["summary"] == []


@pytest.mark.parametrize(
    "reasoning",
    [
        ReasoningPart(text="thought", signature="EqQBCkYIBx", provider="anthropic"),
        ReasoningPart(text="thought", signature="gAAAA-token", provider="openrouter"),
        ReasoningPart(text="thought", signature=None, provider="codex"),
        ReasoningPart(text="thought", signature="", provider="codex"),
        ReasoningPart(text="", signature="opaque", provider="anthropic", redacted=True),
    ],
)
def test_reasoning_from_other_providers_or_without_token_is_dropped(reasoning: ReasoningPart) -> None:
    rendered = items(request(user("x"), assistant(reasoning, "answer")))

    assert [item["type"] for item in rendered] == ["message", "message"]


def test_reasoning_is_replayed_for_the_provider_named_in_the_options() -> None:
    reasoning = ReasoningPart(text="t", signature="tok", provider="codex-team")

    assert (
        items(request(user("x"), assistant(reasoning, "a")), provider="codex-team")[1]["type"] == "reasoning"
    )
    assert items(request(user("x"), assistant(reasoning, "a")))[1]["type"] == "message"


def test_no_input_item_ever_carries_an_item_id() -> None:
    reasoning = ReasoningPart(text="t", signature="tok", provider="codex")
    result = ToolResultPart(tool_call_id="toolu_01", content=(TextPart(text="ok"),))
    req = request(user("x"), assistant(reasoning, "a", CALL), user(result))

    assert all("id" not in item for item in items(req))


# --- tools -------------------------------------------------------------------------------------------------


def test_tools_are_flat_functions_without_schema_uri_and_not_strict() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": {}}
    tool = Tool(name="Read", description="Read a file", input_schema=schema, strict=True)

    (rendered,) = render(request(tools=(tool,)))["tools"]

    assert rendered == {
        "type": "function",
        "name": "Read",
        "description": "Read a file",
        "parameters": {"type": "object", "properties": {}},
        "strict": False,
    }


def test_deferred_tools_are_dropped_until_a_tool_reference_names_them() -> None:
    placeholder = Tool(name="DeferredToolPlaceholder", defer_loading=True)
    web_fetch = Tool(name="WebFetch", description="Fetch", defer_loading=True)
    loaded = ToolResultPart(tool_call_id="toolu_01", content=(ToolReferencePart(tool_name="WebFetch"),))
    tools = (READ, web_fetch, placeholder)

    before = render(request(tools=tools))["tools"]
    after = render(request(user("x"), assistant(CALL), user(loaded), tools=tools))["tools"]

    assert [tool["name"] for tool in before] == ["Read"]
    assert [tool["name"] for tool in after] == ["Read", "WebFetch"]
    assert all("defer_loading" not in tool for tool in after)


def test_web_search_server_tool_becomes_the_backends_web_search_and_other_server_tools_are_dropped() -> None:
    web_search = Tool(name="web_search", type="web_search_20250305", options={"max_uses": 5})
    code = Tool(name="code_execution", type="code_execution_20250522")

    assert render(request(tools=(READ, web_search, code)))["tools"][1:] == [{"type": "web_search"}]


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice(type="auto"), "auto"),
        (ToolChoice(type="any"), "required"),
        (ToolChoice(type="tool", name="Read"), {"type": "function", "name": "Read"}),
        (ToolChoice(type="none"), "none"),
        (None, "auto"),
    ],
)
def test_tool_choice_maps_to_the_responses_spelling(choice: ToolChoice | None, wire: object) -> None:
    assert render(request(tools=(READ,), tool_choice=choice))["tool_choice"] == wire


@pytest.mark.parametrize(("flag", "wire"), [(None, True), (True, True), (False, False)])
def test_parallel_tool_calls_default_to_true(flag: bool | None, wire: bool) -> None:
    assert render(request(tools=(READ,), parallel_tool_calls=flag))["parallel_tool_calls"] is wire


# --- reasoning effort -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thinking", "effort", "expected"),
    [
        (Thinking(type="adaptive"), "medium", "medium"),
        (Thinking(type="adaptive"), "max", "xhigh"),
        (Thinking(type="adaptive"), None, "high"),
        (None, None, "high"),
        (Thinking(type="enabled", budget_tokens=1024), None, "low"),
        (Thinking(type="enabled", budget_tokens=4000), None, "medium"),
        (Thinking(type="enabled", budget_tokens=16000), None, "high"),
        (Thinking(type="enabled", budget_tokens=31999), None, "xhigh"),
    ],
)
def test_thinking_maps_to_reasoning_effort_with_summaries_and_encrypted_content(
    thinking: Thinking | None, effort: Effort | None, expected: str
) -> None:
    body = render(request(thinking=thinking, effort=effort), effort_default="high")

    assert body["reasoning"] == {"effort": expected, "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]


def test_disabled_thinking_asks_for_effort_none_without_summary_or_encrypted_content() -> None:
    body = render(request(thinking=Thinking(type="disabled")), effort_default="high")

    assert body["reasoning"] == {"effort": "none"}
    assert "include" not in body


def test_without_any_effort_the_model_default_applies_but_reasoning_is_still_kept() -> None:
    body = render(request())

    assert body["reasoning"] == {"summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]


# --- structured output ------------------------------------------------------------------------------------


def test_json_schema_output_format_becomes_text_format() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    req = request(output_format=OutputFormat(type="json_schema", json_schema=schema, strict=True))

    assert render(req)["text"] == {
        "format": {"type": "json_schema", "name": "output", "schema": schema, "strict": True}
    }


def test_json_schema_output_format_keeps_its_name() -> None:
    req = request(
        output_format=OutputFormat(type="json_schema", json_schema={"type": "object"}, name="title")
    )

    assert render(req)["text"]["format"]["name"] == "title"
    assert "strict" not in render(req)["text"]["format"]
