"""What a provider is: the interface every built-in and third-party provider implements (DESIGN §3).

A provider turns a canonical :class:`~gateway_core.models.Request` into a stream of canonical events
from its upstream. It owns its transport and translates every transport failure into a
:class:`~gateway_core.errors.GatewayError` at its boundary, so callers never see an ``httpx`` error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from gateway_core.models import Effort, ModelInfo, Request
from gateway_core.streaming import StreamEvent


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Everything about a call that is not the request body itself."""

    requested_model: str
    """The model name the client asked for; answers echo it."""
    upstream_model: str
    """The model the provider must call (after routing)."""
    effort: Effort | None = None
    """The lane's default reasoning effort, used when the request names none."""
    session_id: str | None = None
    """A stable conversation key (Claude Code's session id) for upstream prompt caching."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Selected client headers a provider may need (lower-case names); never credentials."""
    streaming: bool = True
    """``False`` when the caller reads only the whole answer (:meth:`Gateway.complete`). A provider may
    then ask its upstream for one body, or skip incremental deltas that its final events repeat, as
    long as the events it yields accumulate to the same answer."""


@runtime_checkable
class Provider(Protocol):
    """A source of model answers."""

    @property
    def name(self) -> str:
        """Unique provider name, used in ``provider/model`` routing (e.g. ``codex``, ``kilo``)."""
        ...

    async def models(self) -> Sequence[ModelInfo]:
        """The models this provider serves now (cached by the provider as it sees fit)."""
        ...

    def stream(self, request: Request, ctx: RequestContext) -> AsyncIterator[StreamEvent]:
        """Answer ``request`` as canonical events.

        Failures before the first event raise :class:`~gateway_core.errors.GatewayError`; failures
        after it end the stream with an :class:`~gateway_core.streaming.ErrorEvent`.
        """
        ...

    async def count_tokens(self, request: Request, ctx: RequestContext) -> int:
        """The input tokens ``request`` would cost on this provider."""
        ...
