"""The ``echo`` provider: streams the last user text back as canonical events.

It needs no upstream, so it shows the whole provider contract in a few lines: ``name``, ``models()``,
``stream()`` yielding canonical events, ``count_tokens()``, and a :class:`GatewayError` raised before the
first event when the request cannot be served.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Sequence

from gateway_core import (
    MessageDelta,
    MessageStart,
    MessageStop,
    ModelInfo,
    NotFoundError,
    PartStart,
    PartStop,
    Request,
    RequestContext,
    StreamEvent,
    TextDelta,
    TextPart,
    Usage,
)

MODEL = "echo-1"

# A word with the whitespace after it, or leading whitespace alone: the pieces join back to the text exactly.
_PIECE = re.compile(r"\S+\s*|\s+")


def _last_user_text(request: Request) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return "\n".join(part.text for part in message.content if isinstance(part, TextPart))
    return ""


def _all_text(request: Request) -> list[str]:
    texts = [part.text for part in request.system]
    for message in request.messages:
        texts.extend(part.text for part in message.content if isinstance(part, TextPart))
    return texts


def count_words(request: Request) -> int:
    """The echo provider's token unit: whitespace-separated words of the system and message text.

    Exact for this provider, and meaningless for any real model's tokenizer.
    """
    return sum(len(text.split()) for text in _all_text(request))


class EchoProvider:
    """Answers every request with the last user message's text, word by word."""

    name = "echo"

    def __init__(self, *, prefix: str = "") -> None:
        self._prefix = prefix

    async def models(self) -> Sequence[ModelInfo]:
        return [ModelInfo(id=MODEL, provider=self.name, display_name="Echo")]

    async def stream(self, request: Request, ctx: RequestContext) -> AsyncIterator[StreamEvent]:
        if ctx.upstream_model != MODEL:
            raise NotFoundError(
                f'model: the echo provider has no model "{ctx.upstream_model}"; it serves {MODEL}'
            )
        reply = self._prefix + _last_user_text(request)
        input_tokens = count_words(request)
        yield MessageStart(
            id=f"msg_echo_{uuid.uuid4().hex}",
            model=ctx.requested_model,
            usage=Usage(input_tokens=input_tokens),
        )
        yield PartStart(index=0, part=TextPart(text=""))
        for piece in _PIECE.findall(reply):
            yield TextDelta(index=0, text=piece)
        yield PartStop(index=0)
        usage = Usage(input_tokens=input_tokens, output_tokens=len(reply.split()))
        yield MessageDelta(stop_reason="end_turn", usage=usage)
        yield MessageStop()

    async def count_tokens(self, request: Request, ctx: RequestContext) -> int:
        return count_words(request)
