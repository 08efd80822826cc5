"""Non-streaming Chat completions: upstream answers -> canonical, canonical -> client answers (§2.2, §7.7)."""

from __future__ import annotations

import orjson
import pytest

from gateway_core.errors import BillingError, UpstreamError
from gateway_core.formats._names import ToolNameMap, shorten_name
from gateway_core.formats.openai_chat import parse_response, parse_response_bytes, render_response
from gateway_core.models import ReasoningPart, Response, TextPart, ToolCallPart, Usage
from tests.fixtures import fixture_path, load_json
from tests.unit._openai_chat_support import sdk_client

OPENROUTER_SIMPLE = fixture_path("openrouter/openrouter_completion_simple_kimi_k2.5.response.json")


def raw_body(path: object) -> bytes:
    return fixture_path(str(path)).read_bytes().split(b"\n", 1)[1]


# --- upstream answers ----------------------------------------------------------------------------


def test_openrouter_body_padded_with_whitespace_parses() -> None:
    raw = raw_body("openrouter/openrouter_completion_simple_kimi_k2.5.response.json")
    assert raw.startswith(b"\n")
    assert raw.lstrip()[:1] == b"{"

    response = parse_response_bytes(raw, provider="kilo", model="claude-haiku-4-5")

    reasoning, text = response.content
    assert isinstance(reasoning, ReasoningPart)
    assert reasoning.provider == "kilo"
    assert reasoning.text.startswith(' The user wants me to say "hi"')
    assert orjson.loads(reasoning.signature or "")[0]["type"] == "reasoning.text"
    assert isinstance(text, TextPart)
    assert text.text.startswith(" Oi!")
    assert response.model == "claude-haiku-4-5"
    assert response.id == "gen-1777319885-pLuUvaQdB3l6lRlhlKuv"
    assert response.stop_reason == "end_turn"
    assert response.usage == Usage(input_tokens=21, output_tokens=202, reasoning_tokens=166, cost=0.00045364)


def test_openai_tool_call_answer_parses() -> None:
    response = parse_response(load_json("openai_chat/openai_chat_completion_tool_calls.response.json"))

    assert response.content == (
        ToolCallPart(
            id="call_IUonKM9GCNis5eMRHuusMqoy", name="weather", arguments={"location": "Florence, Italy"}
        ),
    )
    assert response.stop_reason == "tool_use"
    assert response.model == "gpt-4o-2024-08-06"


def test_openrouter_tool_call_keeps_its_upstream_id_and_restores_names() -> None:
    body = load_json("openrouter/openrouter_completion_tool_calls_kimi_k2.5.response.json")
    long_name = "mcp__weather_server_with_a_long_name__get_current_weather_for_a_city"
    body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] = shorten_name(long_name)

    response = parse_response(body, names=ToolNameMap([long_name]))

    assert response.content[-1] == ToolCallPart(
        id="functions.weather:0", name=long_name, arguments={"location": "Florence"}
    )


def test_an_error_body_with_status_200_raises_the_error_it_means() -> None:
    body = {"error": {"code": 402, "message": "Insufficient credits"}}

    with pytest.raises(BillingError, match="Insufficient credits"):
        parse_response(body)


@pytest.mark.parametrize(
    "raw", [b"", b"   \n  ", b"<html>oops</html>", b"[1, 2]", b'{"id": "x", "choices": []}']
)
def test_garbage_answers_are_upstream_errors(raw: bytes) -> None:
    with pytest.raises(UpstreamError):
        parse_response_bytes(raw)


# --- client answers ------------------------------------------------------------------------------


def response(*parts: object, stop: str = "end_turn", usage: Usage | None = None) -> Response:
    return Response.model_validate(
        {
            "id": "chatcmpl-1",
            "model": "claude-sonnet-4-5",
            "content": [p.model_dump() for p in parts],  # type: ignore[attr-defined]
            "stop_reason": stop,
            "usage": (usage or Usage()).model_dump(),
        }
    )


def test_render_response_is_a_chat_completion_echoing_the_model() -> None:
    rendered = render_response(response(TextPart(text="hi")), created=123)

    assert rendered == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 123,
        "model": "claude-sonnet-4-5",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }


def test_tool_only_answers_have_null_content_and_json_string_arguments() -> None:
    message = render_response(
        response(ToolCallPart(id="toolu_1", name="Read", arguments={"path": "a.py"}), stop="tool_use")
    )["choices"][0]

    assert message["finish_reason"] == "tool_calls"
    assert message["message"]["content"] is None
    assert message["message"]["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "Read", "arguments": '{"path":"a.py"}'}}
    ]


def test_an_empty_answer_has_empty_string_content() -> None:
    assert render_response(response(stop="max_tokens"))["choices"][0]["message"]["content"] == ""


def test_usage_counts_cached_and_cache_write_tokens_into_prompt_tokens() -> None:
    usage = Usage(
        input_tokens=10, cached_input_tokens=100, cache_write_tokens=5, output_tokens=20, reasoning_tokens=8
    )

    assert render_response(response(TextPart(text="x"), usage=usage))["usage"] == {
        "prompt_tokens": 115,
        "completion_tokens": 20,
        "total_tokens": 135,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
        "completion_tokens_details": {"reasoning_tokens": 8},
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop: str, finish: str) -> None:
    assert render_response(response(TextPart(text="x"), stop=stop))["choices"][0]["finish_reason"] == finish


def test_reasoning_is_left_out_unless_asked_for() -> None:
    answer = response(ReasoningPart(text="thinking", signature="s", provider="p"), TextPart(text="hi"))

    assert "reasoning_content" not in render_response(answer)["choices"][0]["message"]
    assert (
        render_response(answer, include_reasoning=True)["choices"][0]["message"]["reasoning_content"]
        == "thinking"
    )


def test_the_sdk_parses_the_rendered_answer() -> None:
    answer = response(
        TextPart(text="Reading."),
        ToolCallPart(id="functions.read:0", name="Read", arguments={"path": "a.py"}),
        stop="tool_use",
        usage=Usage(input_tokens=3, cached_input_tokens=4, output_tokens=5, reasoning_tokens=2),
    )
    client = sdk_client(orjson.dumps(render_response(answer)), stream=False)

    completion = client.chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}]
    )

    message = completion.choices[0].message
    assert message.content == "Reading."
    assert message.tool_calls is not None
    assert message.tool_calls[0].id == "functions.read:0"
    assert orjson.loads(message.tool_calls[0].function.arguments) == {"path": "a.py"}  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.model == "claude-sonnet-4-5"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 5)
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 4


def test_an_upstream_answer_rendered_for_a_client_parses_back_to_the_same_answer() -> None:
    upstream = parse_response_bytes(OPENROUTER_SIMPLE.read_bytes().split(b"\n", 1)[1], model="m")

    again = parse_response(render_response(upstream))

    assert again.content == tuple(p for p in upstream.content if not isinstance(p, ReasoningPart))
    assert (again.stop_reason, again.usage.model_copy(update={"cost": None})) == (
        upstream.stop_reason,
        upstream.usage.model_copy(update={"cost": None}),
    )
