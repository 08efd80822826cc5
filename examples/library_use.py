"""Use relaygate as a library: a Gateway over a provider of your own, no server, no network.

Run it with ``.venv/bin/python examples/library_use.py``. It defines a tiny provider, asks the gateway
for a complete answer and for a stream, and translates a Claude-Code-style Anthropic request body into
the canonical form and back out as an OpenAI Chat request — the same pure functions the server uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import orjson

from gateway_core import (
    Gateway,
    MessageDelta,
    MessageStart,
    MessageStop,
    ModelInfo,
    PartStart,
    PartStop,
    Request,
    RequestContext,
    StreamEvent,
    TextDelta,
    TextPart,
    Usage,
)
from gateway_core.formats import anthropic, openai_chat


class ShoutProvider:
    """Answers with the last user text in capitals: the whole provider contract in a few lines."""

    name = "shout"

    async def models(self) -> Sequence[ModelInfo]:
        return [ModelInfo(id="loud-1", provider=self.name)]

    async def stream(self, request: Request, ctx: RequestContext) -> AsyncIterator[StreamEvent]:
        last = request.messages[-1]
        text = " ".join(part.text for part in last.content if isinstance(part, TextPart)).upper()
        yield MessageStart(id="msg_shout", model=ctx.requested_model)
        yield PartStart(0, TextPart(text=""))
        for word in text.split(" "):
            yield TextDelta(0, word + " ")
        yield PartStop(0)
        yield MessageDelta(
            "end_turn", usage=Usage(input_tokens=len(text.split()), output_tokens=len(text.split()))
        )
        yield MessageStop()

    async def count_tokens(self, request: Request, ctx: RequestContext) -> int:
        return sum(
            len(p.text.split()) for m in request.messages for p in m.content if isinstance(p, TextPart)
        )


async def main() -> None:
    gateway = Gateway([ShoutProvider()])
    body = {
        "model": "shout/loud-1",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hello gateway"}],
    }
    request = anthropic.parse_request(body)

    response = await gateway.complete(request)
    print("complete:", orjson.dumps(anthropic.render_response(response)).decode())

    async with await gateway.stream(request) as stream:
        pieces = [event.text async for event in stream if isinstance(event, TextDelta)]
    print("stream:", "".join(pieces).strip(), f"(served by {stream.provider}/{stream.upstream_model})")

    print("as an OpenAI Chat request:", orjson.dumps(openai_chat.render_request(request)).decode())
    await gateway.aclose()


if __name__ == "__main__":
    asyncio.run(main())
