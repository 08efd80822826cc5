"""The thinking-signature codec (protocols §7.8) and client-safe tool ids (§7.5) in the Anthropic format."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
import pytest

from gateway_core.formats._names import from_client_call_id, to_client_call_id
from gateway_core.formats.anthropic import (
    decode_signature,
    encode_signature,
    parse_request,
    parse_response,
    render_request,
    render_response,
)
from gateway_core.models import (
    Message,
    ReasoningPart,
    Request,
    Response,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from tests.fixtures import claude_code_body, load_json

ANTHROPIC_SIGNATURE = load_json("anthropic/anthropic_messages_thinking_tool_use.response.json")["content"][0][
    "signature"
]
OPENAI_TOKEN = "gAAAAABo-encrypted-content-from-openai=="


def _b64url(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def test_anthropic_signature_is_rendered_verbatim() -> None:
    assert encode_signature(ANTHROPIC_SIGNATURE, "anthropic") == ANTHROPIC_SIGNATURE


def test_signature_without_provider_is_rendered_verbatim() -> None:
    assert encode_signature(ANTHROPIC_SIGNATURE, None) == ANTHROPIC_SIGNATURE


def test_foreign_token_is_wrapped_in_the_rg1_envelope() -> None:
    wire = encode_signature(OPENAI_TOKEN, "codex")

    assert wire.startswith("rg1.")
    payload = orjson.loads(base64.urlsafe_b64decode(wire[4:] + "=" * (-len(wire[4:]) % 4)))
    assert payload == {"p": "codex", "t": OPENAI_TOKEN}


def test_envelope_never_looks_like_an_anthropic_signature() -> None:
    # Anthropic signatures are standard base64: no ".", so the prefix cannot occur in one.
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", ANTHROPIC_SIGNATURE)
    assert "." in encode_signature(OPENAI_TOKEN, "codex")


def test_envelope_round_trips_token_and_provider() -> None:
    assert decode_signature(encode_signature(OPENAI_TOKEN, "codex")) == (OPENAI_TOKEN, "codex")


def test_plain_signature_decodes_as_anthropic() -> None:
    assert decode_signature(ANTHROPIC_SIGNATURE) == (ANTHROPIC_SIGNATURE, "anthropic")


@pytest.mark.parametrize("empty", ["", None])
def test_empty_signature_is_no_token(empty: str | None) -> None:
    assert decode_signature(empty) == (None, None)


def test_no_token_renders_as_empty_signature() -> None:
    assert encode_signature(None, "codex") == ""


@pytest.mark.parametrize(
    "damaged",
    [
        "rg1.",
        "rg1.!!!not-base64!!!",
        "rg1." + _b64url(b"not json"),
        "rg1." + _b64url(b"[1, 2]"),
        "rg1." + _b64url(orjson.dumps({"p": "codex"})),
        "rg1." + _b64url(orjson.dumps({"p": "", "t": "x"})),
        "rg1." + _b64url(orjson.dumps({"p": "codex", "t": 5})),
    ],
)
def test_damaged_envelope_drops_the_token(damaged: str) -> None:
    """Ours but unreadable: its minter is unknown, so no upstream may ever receive it."""
    assert decode_signature(damaged) == (None, None)


def test_damaged_envelope_keeps_the_thinking_text() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "hmm", "signature": "rg1.%%%"}],
            },
        ],
    }

    assert parse_request(body).messages[1].content == (ReasoningPart(text="hmm"),)


def test_foreign_reasoning_survives_a_client_round_trip() -> None:
    part = ReasoningPart(text="**Planning**", signature=OPENAI_TOKEN, provider="codex")
    request = Request(model="m", max_tokens=5, messages=(Message(role="assistant", content=(part,)),))

    assert parse_request(render_request(request)).messages[0].content == (part,)


def test_redacted_thinking_is_anthropic_reasoning_with_data_as_token() -> None:
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "EmwKAhgBEgy3"}]}
        ],
    }

    part = parse_request(body).messages[0].content[0]

    assert part == ReasoningPart(redacted=True, signature="EmwKAhgBEgy3", provider="anthropic")
    assert render_request(parse_request(body))["messages"][0]["content"] == body["messages"][0]["content"]


def test_empty_thinking_with_signature_survives_the_echo() -> None:
    """Claude Code echoes `{thinking: "", signature}` byte-identical (cc332_thinking_empty_signature_echo)."""
    body = claude_code_body("cc332_thinking_empty_signature_echo")
    block = body["messages"][2]["content"][0]

    request = parse_request(body)

    assert request.messages[2].content[0] == ReasoningPart(
        text="", signature=block["signature"], provider="anthropic"
    )
    assert render_request(request)["messages"][2]["content"][0] == block


def test_response_stamps_plain_signatures_with_the_given_provider() -> None:
    body = load_json("anthropic/anthropic_messages_thinking_tool_use.response.json")

    part = parse_response(body, provider="anthropic-direct").content[0]

    assert isinstance(part, ReasoningPart)
    assert (part.signature, part.provider) == (ANTHROPIC_SIGNATURE, "anthropic-direct")


def test_openrouter_call_id_reaches_the_client_in_the_safe_alphabet() -> None:
    client_id = to_client_call_id("functions.weather:0")

    assert re.fullmatch(r"[a-zA-Z0-9_-]+", client_id)
    assert from_client_call_id(client_id) == "functions.weather:0"


def test_foreign_call_id_round_trips_through_response_and_next_request() -> None:
    response = Response(
        id="gen-1",
        model="m",
        content=(ToolCallPart(id="functions.weather:0", name="weather", arguments={"location": "Paris"}),),
        stop_reason="tool_use",
    )
    rendered = render_response(response)
    client_id = rendered["content"][0]["id"]
    next_turn = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "assistant", "content": rendered["content"]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": client_id, "content": "20 C"}],
            },
        ],
    }

    request = parse_request(next_turn)

    assert client_id != "functions.weather:0"
    assert request.messages[0].content[0] == response.content[0]
    assert request.messages[1].content[0] == ToolResultPart(
        tool_call_id="functions.weather:0", content=(TextPart(text="20 C"),)
    )
