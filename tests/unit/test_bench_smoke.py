"""The benchmark's own pieces (``bench/``, ``make bench``) do what its report says they do.

The bare relay maps what Claude Code really sends, and the mock upstream's answers are streams the
gateway's own decoders read to the end, with the text and usage the report counts on. No sockets, no
timing: the benchmark measures, these tests only check its parts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from bench import bare_relay, mock_bodies
from gateway_core.formats import openai_chat, openai_responses
from gateway_core.models import TextPart
from gateway_core.sse import ServerSentEvent, SSEDecoder
from gateway_core.streaming import StreamEvent, accumulate
from tests.fixtures import claude_code_body


def _events(frames: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for frame in frames for event in decoder.feed(frame)]
    return events + decoder.flush()


def _text_of(events: list[StreamEvent]) -> str:
    response = accumulate(events)
    return "".join(part.text for part in response.content if isinstance(part, TextPart))


def test_bare_relay_maps_a_claude_code_request_to_a_chat_request() -> None:
    body = claude_code_body("cc332_p_text_main")

    chat = bare_relay.chat_body(body)

    assert chat["model"] == body["model"]
    assert chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in chat["messages"]] == ["system", *(m["role"] for m in body["messages"])]
    assert body["system"][-1]["text"] in chat["messages"][0]["content"]
    assert [t["function"]["name"] for t in chat["tools"]] == [t["name"] for t in body["tools"]]


@pytest.mark.anyio
async def test_bare_relay_turns_the_mock_chat_stream_into_an_anthropic_stream() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for frame in mock_bodies.CHAT_FRAMES:
            yield frame[:7]  # frames split mid-line, as reads from a socket are
            yield frame[7:]

    frames = [frame async for frame in bare_relay.anthropic_events(chunks(), "claude-opus-5-5")]
    events = _events(frames)

    names = [e.event for e in events]
    assert names[:2] == ["message_start", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [orjson.loads(e.data)["delta"]["text"] for e in events if e.event == "content_block_delta"]
    assert "".join(deltas) == "".join(mock_bodies.TEXT)
    assert orjson.loads(events[-2].data)["usage"]["output_tokens"] > 0


def test_mock_codex_answer_decodes_to_its_text_and_usage() -> None:
    request = {"instructions": "be brief", "tools": [{"type": "function", "name": "Read"}]}
    frames = mock_bodies.responses_answer(request)

    decoder = openai_responses.StreamDecoder(model="claude-opus-5-5")
    events = [c for e in _events(frames) for c in decoder.feed(e)] + decoder.close()

    assert len(_events(frames)) == mock_bodies.RESPONSES_EVENTS
    assert _text_of(events) == "".join(mock_bodies.TEXT)
    assert accumulate(events).usage.output_tokens > 0
    assert b'"instructions":"be brief"' in frames[0]


def test_mock_chat_stream_decodes_to_its_text_and_usage() -> None:
    decoder = openai_chat.StreamDecoder(provider="kilo", model="claude-haiku-4-5")
    sse = _events(list(mock_bodies.CHAT_FRAMES))
    events = [c for e in sse for c in decoder.feed(e)] + decoder.close()

    assert len([e for e in sse if e.data]) == mock_bodies.CHAT_EVENTS
    assert _text_of(events) == "".join(mock_bodies.TEXT)
    assert accumulate(events).usage.output_tokens > 0
