"""count_tokens: an exact o200k_base count of the translated request, by a fixed rule, offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway_core.formats import anthropic
from gateway_core.formats.openai_responses import render_request
from gateway_core.models import Request
from gateway_providers._tokenizer import ATTACHMENT_TOKENS, load_tokenizer
from gateway_providers.codex.tokens import count_body_tokens, countable, token_upper_bound
from tests.fixtures import REPO_ROOT, fixture_files, load_json
from tests.unit._tokenizer_support import reference_count

pytestmark = pytest.mark.anyio

CAPTURES = [path for path in fixture_files("claude_code", "cc*_request.json") if "_request" in path.name]


def rendered(path: Path) -> dict[str, Any]:
    recorded = load_json(path)
    parse = (
        anthropic.parse_count_tokens_request
        if recorded["path"].endswith("/count_tokens")
        else anthropic.parse_request
    )
    request: Request = parse(recorded["body"])
    return render_request(request, upstream_model="gpt-5.5", prompt_cache_key="session-1")


async def test_the_rule_counts_instructions_input_json_and_tools_json() -> None:
    body = {
        "instructions": "You are terse.",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [{"type": "function", "name": "Read", "parameters": {"type": "object"}, "strict": False}],
        "reasoning": {"effort": "high"},
        "model": "gpt-5.5",
    }

    expected = sum(
        reference_count(text)
        for text in (
            "You are terse.",
            orjson.dumps(body["input"]).decode(),
            orjson.dumps(body["tools"]).decode(),
        )
    )
    assert await count_body_tokens(body) == expected


async def test_settings_around_the_conversation_do_not_count() -> None:
    body: dict[str, Any] = {"instructions": "x", "input": []}

    assert await count_body_tokens(body) == await count_body_tokens(
        {**body, "model": "gpt-5.5", "reasoning": {"effort": "xhigh"}, "prompt_cache_key": "k" * 40}
    )


def image_message(size: int) -> dict[str, Any]:
    image = {"type": "input_image", "image_url": "data:image/png;base64," + "A" * size}
    return {"type": "message", "role": "user", "content": [image]}


async def test_an_image_costs_the_same_whatever_its_size() -> None:
    assert await count_body_tokens({"input": [image_message(200_000)]}) == await count_body_tokens(
        {"input": [image_message(16)]}
    )


async def test_an_image_counts_as_the_attachment_cost_plus_its_part_without_data() -> None:
    stripped = [{"type": "message", "role": "user", "content": [{"type": "input_image"}]}]

    expected = reference_count(orjson.dumps(stripped).decode()) + ATTACHMENT_TOKENS
    assert await count_body_tokens({"input": [image_message(50_000)]}) == expected


async def test_an_image_in_a_tool_result_counts_the_same_way() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64," + "A" * 50_000}
    output = {"type": "function_call_output", "call_id": "call_1", "output": [image]}
    stripped = [{"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_image"}]}]

    expected = reference_count(orjson.dumps(stripped).decode()) + ATTACHMENT_TOKENS
    assert await count_body_tokens({"input": [output]}) == expected


async def test_encrypted_reasoning_counts_by_the_codex_estimate() -> None:
    blob = "g" * 8_000  # decoded: 6,000 bytes, less the 650-byte envelope, at 4 bytes a token
    item: dict[str, Any] = {"type": "reasoning", "summary": [], "content": None, "encrypted_content": blob}
    bare: dict[str, Any] = {"type": "reasoning", "summary": [], "content": None}

    assert await count_body_tokens({"input": [item]}) == await count_body_tokens({"input": [bare]}) + 1_338


@pytest.mark.parametrize("path", CAPTURES, ids=lambda path: path.name.removesuffix("_request.json"))
async def test_the_upper_bound_is_never_below_the_count(path: Path) -> None:
    body = rendered(path)

    assert token_upper_bound(body, len(orjson.dumps(body))) >= await count_body_tokens(body)


async def test_a_claude_code_request_counts_its_whole_translated_body() -> None:
    body = rendered(fixture_files("claude_code", "cc332_tool_read_turn1_request.json")[0])
    texts, estimated = countable(body)

    count = await count_body_tokens(body)

    assert count == sum(reference_count(text) for text in texts) + estimated
    assert count > 5_000, "Claude Code's system prompt and tools are large"


async def test_large_texts_are_counted_exactly_too() -> None:
    text = "lorem ipsum dolor sit amet, " * 60_000  # 1.7 M characters: past the wrapper's limits
    body = {"instructions": text, "input": []}

    assert await count_body_tokens(body) == load_tokenizer().count(text) + load_tokenizer().count("[]")


OFFLINE_CHILD = textwrap.dedent(
    """
    import socket, sys

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    import anyio, orjson
    from gateway_providers.codex.tokens import count_body_tokens

    body = orjson.loads(sys.stdin.buffer.read())
    print(anyio.run(count_body_tokens, body))
    """
)


def test_counting_works_without_any_network() -> None:
    body = rendered(fixture_files("claude_code", "cc332_p_text_main_request.json")[0])
    command = [sys.executable, "-c", OFFLINE_CHILD]
    if os.geteuid() == 0 and shutil.which("unshare"):
        command = ["unshare", "--net", *command]  # a network namespace with no interface at all
    env = {
        **os.environ,
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }

    result = subprocess.run(
        command,
        input=orjson.dumps(body),
        capture_output=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr.decode()
    assert (
        int(result.stdout) == sum(reference_count(text) for text in countable(body)[0]) + countable(body)[1]
    )
