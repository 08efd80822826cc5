"""Canonical stream events and the one reducer that turns a stream into a response.

Events are block-indexed, like Anthropic's SSE grammar: a message starts, each part is opened, filled
by deltas and stopped in turn (parts never interleave), then a message delta carries the stop reason
and the *final* usage, and the message stops. An :class:`ErrorEvent` may end a stream instead.

Non-streaming answers are produced by :func:`accumulate` from the same events, so a streamed and a
non-streamed answer can never disagree (DESIGN §2).

Events are slotted frozen dataclasses rather than pydantic models: a long answer has thousands of them
and they are built on the hot path, from data a wire decoder has already checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json

from gateway_core.errors import GatewayError, UpstreamError
from gateway_core.models import (
    NO_USAGE,
    Part,
    ReasoningPart,
    Response,
    StopReason,
    TextPart,
    ToolCallPart,
    Usage,
)


@dataclass(frozen=True, slots=True)
class MessageStart:
    """The answer begins. ``usage`` holds what is known up front (usually the input side)."""

    id: str
    model: str
    usage: Usage = NO_USAGE


@dataclass(frozen=True, slots=True)
class PartStart:
    """Part ``index`` opens. ``part`` is its skeleton: empty text, a tool call with ``arguments={}``,
    empty reasoning — or a complete part that gets no deltas (redacted reasoning)."""

    index: int
    part: Part


@dataclass(frozen=True, slots=True)
class TextDelta:
    """More text for a text part."""

    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ToolArgumentsDelta:
    """A fragment of a tool call's JSON arguments; fragments concatenate to the whole object."""

    index: int
    partial_json: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """More visible reasoning text."""

    index: int
    text: str


@dataclass(frozen=True, slots=True)
class SignatureDelta:
    """The reasoning part's continuation token and the provider that minted it."""

    index: int
    signature: str
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class CitationDelta:
    """A citation attached to a text part (Anthropic ``citations_delta``)."""

    index: int
    citation: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PartStop:
    """Part ``index`` is complete."""

    index: int


@dataclass(frozen=True, slots=True)
class MessageDelta:
    """The answer's outcome: stop reason and the final, cumulative usage."""

    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class MessageStop:
    """The answer is complete."""


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """The stream failed; nothing follows."""

    error: GatewayError


StreamEvent = (
    MessageStart
    | PartStart
    | TextDelta
    | ToolArgumentsDelta
    | ReasoningDelta
    | SignatureDelta
    | CitationDelta
    | PartStop
    | MessageDelta
    | MessageStop
    | ErrorEvent
)

PartDelta = TextDelta | ToolArgumentsDelta | ReasoningDelta | SignatureDelta | CitationDelta

EMPTY_TEXT = TextPart(text="")
"""The skeleton a text part starts from; parts are immutable, so one instance serves every stream."""
EMPTY_REASONING = ReasoningPart()
"""The skeleton a reasoning part starts from."""


def parse_tool_arguments(raw: str) -> dict[str, Any]:
    """Parse concatenated tool-argument fragments; an empty string is ``{}``.

    A stream cut by ``max_tokens`` can leave the JSON unfinished: keep what parsed (as the Anthropic
    SDK does) rather than failing the whole answer.
    """
    if not raw.strip():
        return {}
    try:
        value = from_json(raw, allow_partial=True)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _OpenPart:
    """A part being filled; text pieces are joined once, at the end."""

    __slots__ = ("chunks", "citations", "signature", "signature_provider", "skeleton")

    def __init__(self, skeleton: Part) -> None:
        self.skeleton = skeleton
        self.chunks: list[str] = []
        self.citations: list[dict[str, Any]] = []
        self.signature: list[str] = []
        self.signature_provider: str | None = None

    def finish(self) -> Part:
        part = self.skeleton
        joined = "".join(self.chunks)
        if isinstance(part, TextPart):
            if not self.chunks and not self.citations:
                return part
            citations = (*(part.citations or ()), *self.citations) if self.citations else part.citations
            return part.model_copy(update={"text": part.text + joined, "citations": citations})
        if isinstance(part, ToolCallPart):
            if not self.chunks:
                return part
            return part.model_copy(update={"arguments": parse_tool_arguments(joined)})
        if isinstance(part, ReasoningPart):
            update: dict[str, Any] = {}
            if self.chunks:
                update["text"] = part.text + joined
            if self.signature:
                update["signature"] = (part.signature or "") + "".join(self.signature)
                update["provider"] = self.signature_provider or part.provider
            return part.model_copy(update=update) if update else part
        return part


class Accumulator:
    """Feed canonical events one by one; :meth:`response` gives the complete answer.

    Tolerates what real streams do: a part that never gets its stop event (a tool call cut by
    ``max_tokens``) and deltas for a part index that was never opened (ignored).
    """

    def __init__(self) -> None:
        self._id = ""
        self._model = ""
        self._start_usage = NO_USAGE
        self._final_usage: Usage | None = None
        self._stop_reason: StopReason | None = None
        self._stop_sequence: str | None = None
        self._open: dict[int, _OpenPart] = {}
        self._done: dict[int, Part] = {}
        self.started = False
        self.stopped = False

    def feed(self, event: StreamEvent) -> None:
        """Apply one event; an :class:`ErrorEvent` raises its error."""
        match event:
            case TextDelta(index=i, text=text) | ReasoningDelta(index=i, text=text):
                if (open_part := self._open.get(i)) is not None:
                    open_part.chunks.append(text)
            case ToolArgumentsDelta(index=i, partial_json=fragment):
                if (open_part := self._open.get(i)) is not None:
                    open_part.chunks.append(fragment)
            case SignatureDelta(index=i, signature=signature, provider=provider):
                if (open_part := self._open.get(i)) is not None:
                    open_part.signature.append(signature)
                    open_part.signature_provider = provider
            case CitationDelta(index=i, citation=citation):
                if (open_part := self._open.get(i)) is not None:
                    open_part.citations.append(citation)
            case PartStart(index=i, part=part):
                self._open[i] = _OpenPart(part)
            case PartStop(index=i):
                if (open_part := self._open.pop(i, None)) is not None:
                    self._done[i] = open_part.finish()
            case MessageStart(id=message_id, model=model, usage=usage):
                self.started = True
                self._id, self._model, self._start_usage = message_id, model, usage
            case MessageDelta(stop_reason=stop_reason, stop_sequence=stop_sequence, usage=usage):
                self._stop_reason = stop_reason
                self._stop_sequence = stop_sequence
                if usage is not None:
                    self._final_usage = usage
            case MessageStop():
                self.stopped = True
            case ErrorEvent(error=error):
                raise error

    def response(self) -> Response:
        """The answer so far; parts still open are closed as they are."""
        parts = dict(self._done)
        for index, open_part in self._open.items():
            parts[index] = open_part.finish()
        return Response(
            id=self._id,
            model=self._model,
            content=tuple(parts[i] for i in sorted(parts)),
            stop_reason=self._stop_reason,
            stop_sequence=self._stop_sequence,
            usage=self._final_usage if self._final_usage is not None else self._start_usage,
        )


def accumulate(events: Iterable[StreamEvent]) -> Response:
    """Reduce a complete stream to its response; raises the stream's error if it failed."""
    accumulator = Accumulator()
    for event in events:
        accumulator.feed(event)
    return accumulator.response()


async def accumulate_async(events: AsyncIterable[StreamEvent], *, require_stop: bool = True) -> Response:
    """:func:`accumulate` over an async stream. With ``require_stop``, a stream that ends without
    ``MessageStop`` is an upstream failure, never a silently truncated answer."""
    accumulator = Accumulator()
    async for event in events:
        accumulator.feed(event)
    if require_stop and not accumulator.stopped:
        raise UpstreamError("the upstream stream ended before the answer was complete")
    return accumulator.response()
