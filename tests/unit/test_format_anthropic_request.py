"""Anthropic Messages requests -> canonical, driven by real Claude Code captures and recorded API traffic."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway_core.errors import InvalidRequestError
from gateway_core.formats.anthropic import parse_count_tokens_request, parse_request, render_request
from gateway_core.models import (
    Base64Source,
    CacheControl,
    ContentSource,
    DocumentPart,
    ImagePart,
    Message,
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
from tests.fixtures import claude_code_body, fixture_files, load_json

EPHEMERAL = CacheControl()
CAPTURES = [
    path
    for path in fixture_files("claude_code", "cc*_request.json")
    if load_json(path).get("body") is not None
]
API_REQUESTS = fixture_files("anthropic", "*.request.json")

# Top-level fields the format accepts and ignores (meaningless to other upstreams).
IGNORED_FIELDS = ("service_tier", "container", "mcp_servers", "inference_geo")


def _parse_capture(path: Path) -> tuple[dict[str, Any], Request]:
    capture = load_json(path)
    body: dict[str, Any] = capture["body"]
    parse = parse_count_tokens_request if capture["path"].endswith("count_tokens") else parse_request
    return body, parse(body)


def _blocks(content: Any) -> Any:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """A body modulo the documented normalisations of the format, and nothing else:
    string content == one text block; absent `stream` == false; per-message keys besides role/content,
    `tool_use.caller`, `metadata` keys besides user_id, a custom tool's `type: "custom"` and the ignored
    top-level fields are dropped; an absent tool_result content == no content; `signature` "" == absent."""
    out = copy.deepcopy(body)
    for key in IGNORED_FIELDS:
        out.pop(key, None)
    if out.get("stream") is False:
        del out["stream"]
    if "system" in out:
        out["system"] = _blocks(out["system"])
    if "metadata" in out:
        out["metadata"] = {key: value for key, value in out["metadata"].items() if key == "user_id"}
    for message in out["messages"]:
        for key in [key for key in message if key not in ("role", "content")]:
            del message[key]
        message["content"] = _blocks(message["content"])
        for block in message["content"]:
            block.pop("caller", None)
            if block["type"] == "tool_result" and "content" in block:
                block["content"] = _blocks(block["content"])
            if block["type"] == "thinking" and not block.get("signature"):
                block["signature"] = ""
    for tool in out.get("tools", []):
        if tool.get("type") == "custom":
            del tool["type"]
    return out


def _body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "claude-opus-5-5", "max_tokens": 1024, "messages": list(messages), **fields}


def _user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def _first_part(body: dict[str, Any]) -> Any:
    return parse_request(body).messages[0].content[0]


# --- every real request -------------------------------------------------------------------------


@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.stem)
def test_claude_code_capture_parses_and_renders_back_with_every_block(path: Path) -> None:
    body, request = _parse_capture(path)

    assert normalise(render_request(request)) == normalise(body)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.stem)
def test_claude_code_capture_is_a_fixed_point_of_render_then_parse(path: Path) -> None:
    _, request = _parse_capture(path)

    parse = parse_request if request.max_tokens is not None else parse_count_tokens_request
    assert parse(render_request(request)) == request


@pytest.mark.parametrize("path", API_REQUESTS, ids=lambda path: path.stem)
def test_recorded_api_request_parses_and_renders_back(path: Path) -> None:
    body = load_json(path)

    assert normalise(render_request(parse_request(body))) == normalise(body)


def test_normalise_sees_a_lost_block() -> None:
    """The round-trip comparison can fail: dropping one block is noticed."""
    body = claude_code_body("cc332_toolsearch_tool_reference")
    damaged = copy.deepcopy(body)
    del damaged["messages"][3]["content"][1]

    assert normalise(damaged) != normalise(body)


def test_single_plain_text_content_is_rendered_as_a_string() -> None:
    body = _body({"role": "user", "content": [{"type": "text", "text": "hi"}]})

    assert render_request(parse_request(body))["messages"][0]["content"] == "hi"


# --- system prompt and system messages ----------------------------------------------------------


def test_system_blocks_keep_their_cache_control() -> None:
    body = claude_code_body("cc332_p_text_main")

    system = parse_request(body).system

    assert [part.cache_control for part in system] == [None, EPHEMERAL, EPHEMERAL]
    assert system[0].text.startswith("x-anthropic-billing-header:")


def test_system_as_a_string_is_one_text_part() -> None:
    assert parse_request(_body(_user({"type": "text", "text": "hi"}), system="Be brief.")).system == (
        TextPart(text="Be brief."),
    )


def test_system_message_with_list_content_is_kept_last() -> None:
    """Turn 1 of Claude Code 2.1.332 ends with the system message (protocols §6.7): not an error."""
    body = claude_code_body("cc332_p_text_main")

    messages = parse_request(body).messages

    assert [message.role for message in messages] == ["user", "system"]
    assert messages[1].content == (
        TextPart(text=body["messages"][1]["content"][0]["text"], cache_control=EPHEMERAL),
    )


def test_system_message_with_string_content_stays_at_its_position() -> None:
    body = claude_code_body("cc332_tool_read_turn2_tool_result")

    messages = parse_request(body).messages

    assert [message.role for message in messages] == ["user", "system", "assistant", "user"]
    assert messages[1].content == (TextPart(text=body["messages"][1]["content"]),)


def test_system_message_takes_only_text_blocks() -> None:
    body = _body(_user({"type": "text", "text": "hi"}), {"role": "system", "content": [{"type": "image"}]})

    with pytest.raises(
        InvalidRequestError, match=r'^messages\.1\.content\.0\.type: block type "image" is not allowed'
    ):
        parse_request(body)


# --- content blocks -----------------------------------------------------------------------------


def test_string_content_is_one_text_part() -> None:
    assert parse_request(_body({"role": "user", "content": "hello"})).messages[0].content == (
        TextPart(text="hello"),
    )


def test_text_citations_are_kept() -> None:
    citation = {"type": "char_location", "cited_text": "x", "document_index": 0, "start_char_index": 0}

    part = _first_part(_body(_user({"type": "text", "text": "see", "citations": [citation]})))

    assert part == TextPart(text="see", citations=(citation,))


def test_base64_image() -> None:
    source = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}

    part = _first_part(
        _body(_user({"type": "image", "source": source, "cache_control": {"type": "ephemeral"}}))
    )

    assert part == ImagePart(
        source=Base64Source(media_type="image/png", data="iVBORw0KGgo="), cache_control=EPHEMERAL
    )


def test_url_image() -> None:
    part = _first_part(
        _body(_user({"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}))
    )

    assert part == ImagePart(source=UrlSource(url="https://x.test/a.png"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
            Base64Source(media_type="application/pdf", data="JVBERi0="),
        ),
        ({"type": "text", "media_type": "text/plain", "data": "plain"}, PlainTextSource(data="plain")),
        ({"type": "url", "url": "https://x.test/a.pdf"}, UrlSource(url="https://x.test/a.pdf")),
        ({"type": "content", "content": "chunk"}, ContentSource(content=(TextPart(text="chunk"),))),
        (
            {"type": "content", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            ContentSource(content=(TextPart(text="a"), TextPart(text="b"))),
        ),
    ],
    ids=["base64", "text", "url", "content-string", "content-blocks"],
)
def test_document_sources(source: dict[str, Any], expected: Any) -> None:
    block = {
        "type": "document",
        "source": source,
        "title": "T",
        "context": "C",
        "citations": {"enabled": True},
    }

    part = _first_part(_body(_user(block)))

    assert part == DocumentPart(source=expected, title="T", context="C", citations={"enabled": True})
    assert normalise(render_request(parse_request(_body(_user(block))))) == normalise(_body(_user(block)))


def test_tool_use_and_its_caller_is_tolerated() -> None:
    body = load_json("anthropic/anthropic_messages_thinking_tool_use.response.json")
    block = body["content"][1]

    part = _first_part(_body({"role": "assistant", "content": [block]}))

    assert block["caller"] == {"type": "direct"}
    assert part == ToolCallPart(id=block["id"], name="weather", arguments={"location": "Florence, Italy"})


def test_tool_result_without_is_error_is_none() -> None:
    part = parse_request(claude_code_body("cc332_tool_read_turn2_tool_result")).messages[3].content[0]

    assert isinstance(part, ToolResultPart)
    assert part.is_error is None
    assert part.cache_control == EPHEMERAL
    assert part.content == (TextPart(text="1\tfirst line\n2\tthe secret word is pineapple\n3\t"),)


def test_tool_result_is_error_true() -> None:
    part = parse_request(claude_code_body("cc332_tool_read_missing_is_error")).messages[3].content[0]

    assert isinstance(part, ToolResultPart)
    assert part.is_error is True


def test_tool_result_is_error_false_is_kept() -> None:
    block = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok", "is_error": False}

    part = _first_part(_body(_user(block)))

    assert part.is_error is False
    assert render_request(parse_request(_body(_user(block))))["messages"][0]["content"] == [block]


def test_tool_result_with_tool_reference_and_text_after_it() -> None:
    body = claude_code_body("cc332_toolsearch_tool_reference")

    content = parse_request(body).messages[3].content

    assert content == (
        ToolResultPart(
            tool_call_id="toolu_bfd8a3a45c0b46edb5b58755", content=(ToolReferencePart(tool_name="WebFetch"),)
        ),
        TextPart(text="Tool loaded.", cache_control=EPHEMERAL),
    )


def test_tool_result_with_list_content_of_text_image_and_document() -> None:
    block = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [
            {"type": "text", "text": "see image"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "d"}},
        ],
    }

    part = _first_part(_body(_user(block)))

    assert [item.type for item in part.content] == ["text", "image", "document"]


def test_tool_result_without_content_has_no_parts() -> None:
    assert _first_part(_body(_user({"type": "tool_result", "tool_use_id": "toolu_1"}))).content == ()


def test_thinking_with_signature() -> None:
    body = load_json("anthropic/anthropic_messages_thinking_followup.request.json")
    block = body["messages"][1]["content"][0]

    part = parse_request(body).messages[1].content[0]

    assert part == ReasoningPart(text=block["thinking"], signature=block["signature"], provider="anthropic")


def test_thinking_with_empty_signature_has_no_token() -> None:
    part = _first_part(
        _body({"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": ""}]})
    )

    assert part == ReasoningPart(text="t")


# --- tools and choices --------------------------------------------------------------------------


def test_custom_tools_keep_defer_loading() -> None:
    tools = parse_request(claude_code_body("cc332_p_text_main")).tools

    deferred = [tool for tool in tools if tool.defer_loading]
    assert [tool.name for tool in deferred] == ["DeferredToolPlaceholder"]
    assert deferred[0].input_schema == {"type": "object", "properties": {}}


def test_custom_tool_strict_and_cache_control() -> None:
    tool = {
        "name": "w",
        "input_schema": {"type": "object"},
        "strict": True,
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }

    parsed = parse_request(_body(_user({"type": "text", "text": "x"}), tools=[tool])).tools[0]

    assert parsed == Tool(
        name="w", input_schema={"type": "object"}, strict=True, cache_control=CacheControl(ttl="1h")
    )


def test_server_tool_keeps_its_type_and_options() -> None:
    tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5, "allowed_domains": ["a.test"]}

    request = parse_request(_body(_user({"type": "text", "text": "x"}), tools=[tool]))

    assert request.tools[0].type == "web_search_20250305"
    assert request.tools[0].options == {"max_uses": 5, "allowed_domains": ["a.test"]}
    assert render_request(request)["tools"] == [tool]


@pytest.mark.parametrize(
    ("wire", "choice", "parallel"),
    [
        ({"type": "auto"}, ToolChoice(type="auto"), None),
        ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice(type="any"), False),
        ({"type": "tool", "name": "weather"}, ToolChoice(type="tool", name="weather"), None),
        ({"type": "none"}, ToolChoice(type="none"), None),
        ({"type": "auto", "disable_parallel_tool_use": False}, ToolChoice(type="auto"), True),
    ],
)
def test_tool_choice(wire: dict[str, Any], choice: ToolChoice, parallel: bool | None) -> None:
    request = parse_request(_body(_user({"type": "text", "text": "x"}), tool_choice=wire))

    assert (request.tool_choice, request.parallel_tool_calls) == (choice, parallel)
    assert render_request(request).get("tool_choice") == wire


def test_parallel_switch_without_tool_choice_renders_an_auto_choice() -> None:
    request = Request(
        model="m",
        messages=(Message(role="user", content=(TextPart(text="x"),)),),
        tools=(Tool(name="w"),),
        parallel_tool_calls=False,
    )

    assert render_request(request)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


# --- thinking, effort, output format ------------------------------------------------------------


@pytest.mark.parametrize(
    ("capture", "thinking"),
    [
        ("cc332_p_text_main", Thinking(type="adaptive", display="omitted")),
        ("cc332_interactive_main", Thinking(type="adaptive", display="updates")),
        ("cc332_haiku_budget_thinking", Thinking(type="enabled", budget_tokens=31999, display="omitted")),
        ("cc_subagent_explore_haiku", Thinking(type="disabled")),
    ],
)
def test_thinking_modes(capture: str, thinking: Thinking) -> None:
    assert parse_request(claude_code_body(capture)).thinking == thinking


def test_output_config_effort() -> None:
    assert parse_request(claude_code_body("cc332_p_text_main")).effort == "medium"


def test_output_config_json_schema_format() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    body = _body(
        _user({"type": "text", "text": "x"}),
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )

    request = parse_request(body)

    assert request.output_format == OutputFormat(type="json_schema", json_schema=schema)
    assert render_request(request)["output_config"] == body["output_config"]


# --- the other top-level fields ------------------------------------------------------------------


def test_metadata_user_id_is_kept_as_the_json_string_it_is() -> None:
    body = claude_code_body("cc332_p_text_main")

    user_id = parse_request(body).user_id

    assert user_id == body["metadata"]["user_id"]
    assert user_id is not None
    assert user_id.startswith('{"device_id":')


def test_context_management_and_safeguards_are_kept_opaque() -> None:
    body = claude_code_body("cc332_interactive_main")

    request = parse_request(body)

    assert request.context_management == body["context_management"]
    assert request.safeguards == tuple(body["safeguards"])


def test_sampling_stop_sequences_and_cache_control() -> None:
    body = _body(
        _user({"type": "text", "text": "x"}),
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        cache_control={"type": "ephemeral", "ttl": "5m"},
        stream=True,
    )

    request = parse_request(body)

    assert (request.temperature, request.top_p, request.top_k) == (0.5, 0.9, 40)
    assert request.stop_sequences == ("END",)
    assert request.cache_control == CacheControl(ttl="5m")
    assert request.stream is True
    assert normalise(render_request(request)) == normalise(body)


def test_stream_defaults_to_false() -> None:
    assert parse_request(claude_code_body("cc_nonstream_fallback")).stream is False


def test_ignored_fields_are_accepted() -> None:
    body = _body(
        _user({"type": "text", "text": "x"}),
        service_tier="auto",
        container="c",
        mcp_servers=[{"type": "url", "url": "https://m.test", "name": "m"}],
        inference_geo="us",
        unknown_future_field={"a": 1},
    )

    assert parse_request(body) == parse_request(_body(_user({"type": "text", "text": "x"})))


def test_max_tokens_is_required() -> None:
    body = _body(_user({"type": "text", "text": "x"}))
    del body["max_tokens"]

    with pytest.raises(InvalidRequestError, match=r"^max_tokens: field required$") as caught:
        parse_request(body)
    assert caught.value.param == "max_tokens"


def test_count_tokens_body_needs_no_max_tokens() -> None:
    request = parse_count_tokens_request(claude_code_body("cc332_count_tokens_tools"))

    assert request.max_tokens is None
    assert request.messages == (Message(role="user", content=(TextPart(text="foo"),)),)
    assert len(request.tools) == 12


def test_legacy_top_level_output_format_is_accepted() -> None:
    schema = {"type": "object"}
    body = _body(
        _user({"type": "text", "text": "x"}), output_format={"type": "json_schema", "schema": schema}
    )

    assert parse_request(body).output_format == OutputFormat(type="json_schema", json_schema=schema)


def test_custom_tool_with_explicit_type_is_a_plain_tool() -> None:
    tool = {"type": "custom", "name": "w", "input_schema": {"type": "object"}}

    parsed = parse_request(_body(_user({"type": "text", "text": "x"}), tools=[tool])).tools[0]

    assert parsed == Tool(name="w", input_schema={"type": "object"})


# --- rendering for an Anthropic upstream ----------------------------------------------------------

ANTHROPIC_THINKING = ReasoningPart(text="a", signature="EsAnthropic", provider="anthropic")
CODEX_REASONING = ReasoningPart(text="b", signature="gAAAAcodex", provider="codex")
UNSIGNED = ReasoningPart(text="c")


def _history(*parts: Any) -> Request:
    return Request(
        model="m",
        max_tokens=10,
        messages=(
            Message(role="user", content=(TextPart(text="hi"),)),
            Message(role="assistant", content=(*parts, TextPart(text="done"))),
        ),
    )


def test_upstream_rendering_keeps_only_the_upstream_own_reasoning() -> None:
    body = render_request(_history(ANTHROPIC_THINKING, CODEX_REASONING, UNSIGNED), provider="anthropic")

    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "a", "signature": "EsAnthropic"},
        {"type": "text", "text": "done"},
    ]


def test_upstream_rendering_sends_its_own_tokens_verbatim() -> None:
    body = render_request(_history(CODEX_REASONING), provider="codex")

    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "b",
        "signature": "gAAAAcodex",
    }


def test_upstream_rendering_drops_a_turn_left_empty() -> None:
    request = Request(
        model="m",
        max_tokens=10,
        messages=(
            Message(role="user", content=(TextPart(text="hi"),)),
            Message(role="assistant", content=(CODEX_REASONING,)),
        ),
    )

    assert [message["role"] for message in render_request(request, provider="anthropic")["messages"]] == [
        "user"
    ]


def test_client_rendering_keeps_every_reasoning_part() -> None:
    body = render_request(_history(ANTHROPIC_THINKING, CODEX_REASONING, UNSIGNED))

    signatures = [
        block["signature"] for block in body["messages"][1]["content"] if block["type"] == "thinking"
    ]
    assert signatures[0] == "EsAnthropic"
    assert signatures[1].startswith("rg1.")
    assert signatures[2] == ""
