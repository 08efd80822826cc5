"""A scripted in-memory provider for the plugin and gateway tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import anyio

from gateway_core.models import Message, ModelInfo, Request, TextPart, Usage
from gateway_core.provider import RequestContext
from gateway_core.streaming import (
    MessageDelta,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    StreamEvent,
    TextDelta,
)


def text_events(*pieces: str, model: str = "upstream-model") -> list[StreamEvent]:
    """A complete canonical answer made of one text part."""
    return [
        MessageStart(id="msg_1", model=model, usage=Usage(input_tokens=3)),
        PartStart(index=0, part=TextPart(text="")),
        *(TextDelta(index=0, text=piece) for piece in pieces),
        PartStop(index=0),
        MessageDelta(stop_reason="end_turn", usage=Usage(input_tokens=3, output_tokens=len(pieces))),
        MessageStop(),
    ]


def user_request(model: str, text: str = "hello") -> Request:
    return Request(model=model, messages=(Message(role="user", content=(TextPart(text=text),)),))


class FakeProvider:
    """Streams ``events``; optionally raises ``fail`` after ``fail_at`` of them or hangs after ``hang_after``.

    Records every context it is called with, whether its stream ran past the answer, and whether the
    stream's iterator was finalised (closed or cancelled).
    """

    def __init__(
        self,
        name: str = "codex",
        *,
        events: Sequence[StreamEvent] | None = None,
        fail: Exception | None = None,
        fail_at: int = 0,
        hang_after: int | None = None,
        models: Sequence[str] = (),
        models_error: Exception | None = None,
        models_hang: bool = False,
        tokens: int = 7,
    ) -> None:
        self.name = name
        self.events = list(text_events("Hello", " world") if events is None else events)
        self.fail = fail
        self.fail_at = fail_at
        self.hang_after = hang_after
        self.model_ids = list(models)
        self.models_error = models_error
        self.models_hang = models_hang
        self.tokens = tokens
        self.contexts: list[RequestContext] = []
        self.finalised = False
        self.ran_past_answer = False
        self.aclosed = False

    async def models(self) -> Sequence[ModelInfo]:
        if self.models_error is not None:
            raise self.models_error
        if self.models_hang:
            await anyio.sleep_forever()
        return [ModelInfo(id=model_id, provider=self.name) for model_id in self.model_ids]

    async def stream(self, request: Request, ctx: RequestContext) -> AsyncIterator[StreamEvent]:
        self.contexts.append(ctx)
        try:
            for position, event in enumerate(self.events):
                if position == self.hang_after:
                    await anyio.sleep_forever()
                if position == self.fail_at and self.fail is not None:
                    raise self.fail
                yield event
            self.ran_past_answer = True
        finally:
            self.finalised = True

    async def count_tokens(self, request: Request, ctx: RequestContext) -> int:
        self.contexts.append(ctx)
        if self.fail is not None:
            raise self.fail
        return self.tokens

    async def aclose(self) -> None:
        self.aclosed = True
