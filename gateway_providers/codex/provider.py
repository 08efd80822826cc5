"""The Codex provider: canonical requests answered by the ChatGPT Codex backend over pooled accounts.

:meth:`CodexProvider.stream` renders the request once (protocols §7.1), then runs the failover loop:
an account is leased, the request is shaped for that account's model catalog (reasoning effort
clamped to what the model accepts, a request over the model's context window refused with 413 before
it is sent), posted, and the answer is *held* until it is committed — the backend said 200 and sent
its first content event. Until then any failure can still be answered by another account, and the
Gateway, which primes streams, can still answer the client with a proper status. After the commit,
failures are in-band :class:`~gateway_core.streaming.ErrorEvent`\\ s. Sending, holding and following
the answer, with their deadlines, is :mod:`gateway_core.upstream`'s, shared with every provider. When
the caller reads only the whole answer (``RequestContext.streaming`` false) the backend still streams,
but its deltas are dropped undecoded: the events that repeat them build the same answer.

The pool is reached only through the lease API (:class:`LeasePool`), so the account logic lives in one
place and tests can drive the provider with a small fake pool.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import anyio
import httpx

from gateway_core.errors import (
    AuthenticationError,
    GatewayError,
    RequestTooLargeError,
    UpstreamError,
)
from gateway_core.formats._names import ToolNameMap
from gateway_core.formats.openai_responses import (
    WHOLE_ANSWER_SKIPPABLE,
    StreamDecoder,
    parse_error,
    render_request,
    tool_name_map,
)
from gateway_core.models import ModelInfo, Request, Usage
from gateway_core.provider import RequestContext
from gateway_core.streaming import StreamEvent
from gateway_core.upstream import (
    TRANSPORT_ERRORS,
    CommittedAnswer,
    EventReader,
    close_response,
    json_body,
    read_body,
    read_until_committed,
    send_streaming,
)
from gateway_providers.codex import failover
from gateway_providers.codex.config import CodexSettings
from gateway_providers.codex.models import (
    FALLBACK_CATALOG,
    CodexModel,
    ModelCatalog,
    nearest_effort,
    supported_efforts,
)
from gateway_providers.codex.tokens import count_body_tokens, token_upper_bound
from gateway_providers.codex.transport import UPSTREAM, responses_headers

PROVIDER = "codex"
MAX_ATTEMPTS = 32
"""A backstop on attempts per request; the loop ends long before, when the pool runs out."""
MODELS_FALLBACK_ERRORS: tuple[type[Exception], ...] = (GatewayError, *TRANSPORT_ERRORS)


class LeaseLike(Protocol):
    """What the provider reads of a lease (``accounts.Lease``)."""

    @property
    def email(self) -> str: ...

    @property
    def account_id(self) -> str: ...

    @property
    def access_token(self) -> str: ...


LeaseT = TypeVar("LeaseT", bound=LeaseLike)


class LeasePool(Protocol[LeaseT]):
    """The lease API of the account pool (``accounts.CodexAccountPool``)."""

    async def acquire(self, *, exclude: frozenset[str] = ...) -> LeaseT: ...

    def observe_headers(
        self, lease: LeaseT, headers: Mapping[str, str], *, status: int | None = None
    ) -> None: ...

    async def mark_rate_limited(self, lease: LeaseT, *, resets_at: datetime | None, reason: str) -> None: ...

    async def refresh_after_unauthorized(self, lease: LeaseT) -> LeaseT | None: ...

    async def mark_invalid(self, lease: LeaseT, reason: str) -> None: ...

    def record_usage(
        self, lease: LeaseT, *, model: str, usage: Usage | None, latency_ms: float, error: bool
    ) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Body:
    """The rendered request, and what is derived from it once per request."""

    body: dict[str, Any]
    payloads: dict[str | None, bytes] = field(default_factory=dict)
    """Serialised bodies by reasoning effort (accounts with different catalogs may differ)."""
    tokens: int | None = None

    def shaped(self, model: CodexModel | None) -> tuple[dict[str, Any], bytes]:
        """The body with its effort clamped to what ``model`` accepts (protocols §8: which models take
        ``none`` or ``xhigh`` is not documented, so the catalog decides, as in the Codex CLI)."""
        body = self.body
        reasoning = body.get("reasoning")
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
        if isinstance(reasoning, dict) and isinstance(effort, str):
            clamped = nearest_effort(effort, supported_efforts(model))
            if clamped != effort:
                body = {**body, "reasoning": {**reasoning, "effort": clamped}}
            effort = clamped
        payload = self.payloads.get(effort)
        if payload is None:
            payload = self.payloads[effort] = json_body(body)
        return body, payload


@dataclass(slots=True)
class _Answer(Generic[LeaseT]):
    """A committed answer, and the account and time it was asked with (for the usage record)."""

    lease: LeaseT
    committed: CommittedAnswer
    started: float


class CodexProvider(Generic[LeaseT]):
    """``codex``: the ChatGPT Codex backend (``POST {base}/codex/responses``) over pooled accounts."""

    def __init__(
        self,
        settings: CodexSettings,
        pool: LeasePool[LeaseT],
        http: httpx.AsyncClient,
        *,
        catalog: ModelCatalog | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._http = http
        self._catalog = catalog if catalog is not None else ModelCatalog(settings, http)

    @property
    def name(self) -> str:
        return PROVIDER

    @property
    def settings(self) -> CodexSettings:
        return self._settings

    @property
    def catalog(self) -> ModelCatalog:
        return self._catalog

    # --- Provider -------------------------------------------------------------------------------------

    async def models(self) -> list[ModelInfo]:
        """The models of an account (cached), or the fallback list; never raises for a network failure
        or a pool without usable accounts."""
        catalog = self._catalog.cached()
        if catalog is None:
            try:
                lease = await self._pool.acquire()
            except MODELS_FALLBACK_ERRORS:
                return FALLBACK_CATALOG.listed()
            catalog = await self._catalog.catalog(lease)
        return catalog.listed()

    async def count_tokens(self, request: Request, ctx: RequestContext) -> int:
        """The input tokens of the request as the backend would receive it (see :mod:`.tokens`)."""
        return await count_body_tokens(self._render(request, ctx, tool_name_map(request)))

    async def stream(self, request: Request, ctx: RequestContext) -> AsyncIterator[StreamEvent]:
        """Answer ``request``: nothing is yielded before an account's answer is committed."""
        names = tool_name_map(request)
        answer = await self._open(_Body(self._render(request, ctx, names)), ctx, names)
        del request  # the answer may stream for minutes: the request need not live as long
        committed = answer.committed
        idle_timeout = self._settings.idle_timeout
        try:
            while batch := await committed.next_batch(idle_timeout=idle_timeout, upstream=UPSTREAM):
                for event in batch:
                    yield event
        finally:
            committed.close()
            await close_response(committed.response)
            self._pool.record_usage(
                answer.lease,
                model=ctx.upstream_model,
                usage=committed.usage,
                latency_ms=(time.monotonic() - answer.started) * 1000,
                error=not committed.completed,
            )

    async def aclose(self) -> None:
        """Stop the pool (flushing usage) and close the shared HTTP client."""
        try:
            await self._pool.aclose()
        finally:
            await self._http.aclose()

    # --- the failover loop ---------------------------------------------------------------------------

    def _render(self, request: Request, ctx: RequestContext, names: ToolNameMap) -> dict[str, Any]:
        return render_request(
            request,
            upstream_model=ctx.upstream_model,
            provider=PROVIDER,
            effort_default=ctx.effort,
            prompt_cache_key=ctx.session_id,
            tool_names=names,
        )

    async def _open(self, body: _Body, ctx: RequestContext, names: ToolNameMap) -> _Answer[LeaseT]:
        tried: set[str] = set()
        refreshed: set[str] = set()
        failures: list[GatewayError] = []
        retried = False
        renewed: LeaseT | None = None
        for _ in range(MAX_ATTEMPTS):
            if renewed is not None:
                lease, renewed = renewed, None
            else:
                try:
                    lease = await self._pool.acquire(exclude=frozenset(tried))
                except GatewayError as exc:
                    raise failover.exhausted(exc, failures) from None
                if lease.email in tried:  # a pool that ignores `exclude` must not loop us forever
                    raise failover.exhausted(AuthenticationError("no other Codex account to try"), failures)
            started = time.monotonic()
            outcome = await self._attempt(lease, body, ctx, names)
            if isinstance(outcome, _Answer):
                return outcome
            error = outcome
            latency = (time.monotonic() - started) * 1000
            self._pool.record_usage(
                lease, model=ctx.upstream_model, usage=None, latency_ms=latency, error=True
            )
            action = failover.classify(error)
            if action is failover.Action.FAIL:
                raise error
            failures.append(error)
            if action is failover.Action.REAUTHENTICATE:
                if lease.email not in refreshed:
                    refreshed.add(lease.email)
                    renewed = await self._pool.refresh_after_unauthorized(lease)
                    if renewed is not None:
                        continue
                else:
                    await self._pool.mark_invalid(lease, f"refused after a token refresh: {error.message}")
            elif action is failover.Action.COOL_DOWN:
                await self._pool.mark_rate_limited(
                    lease, resets_at=failover.resets_at(error), reason=error.message
                )
            elif action is failover.Action.RETRY_ONCE:
                if retried:
                    raise error
                retried = True
            tried.add(lease.email)
        raise failures[-1] if failures else UpstreamError(f"{UPSTREAM} could not be reached")

    async def _attempt(
        self, lease: LeaseT, body: _Body, ctx: RequestContext, names: ToolNameMap
    ) -> _Answer[LeaseT] | GatewayError:
        """One account's try: the committed answer, or the error that ended it (raised only for a
        request too large for the model, which no account would take)."""
        model = (await self._catalog.catalog(lease)).get(ctx.upstream_model)
        shaped, payload = body.shaped(model)
        await self._check_window(body, shaped, payload, model, ctx.upstream_model)
        started = time.monotonic()
        deadline = anyio.current_time() + self._settings.first_event_timeout
        headers = responses_headers(self._settings, lease, ctx.session_id)
        response: httpx.Response | None = None
        committed = False
        try:
            response = await send_streaming(
                self._http,
                self._settings.responses_url,
                headers=headers,
                body=payload,
                deadline=deadline,
                upstream=UPSTREAM,
                what="POST /codex/responses",
            )
            self._pool.observe_headers(lease, response.headers, status=response.status_code)
            if response.status_code != 200:
                raw = await read_body(response, deadline)
                return parse_error(response.status_code, raw, response.headers)
            # A caller reading only the whole answer is spared the deltas: the backend always streams
            # (protocols §4.2), but the decoder rebuilds the same answer from the events repeating them.
            skip: frozenset[str] = frozenset() if ctx.streaming else WHOLE_ANSWER_SKIPPABLE
            reader = EventReader(response, UPSTREAM, skip_events=skip)
            decoder = StreamDecoder(model=ctx.requested_model, provider=PROVIDER, tool_names=names)
            held = await read_until_committed(
                reader,
                decoder,
                deadline=deadline,
                idle_timeout=self._settings.idle_timeout,
                upstream=UPSTREAM,
            )
            committed = True
            return _Answer(lease, CommittedAnswer(response, reader, decoder, held), started)
        except GatewayError as exc:
            return exc
        finally:
            if not committed and response is not None:
                await close_response(response)

    async def _check_window(
        self, body: _Body, shaped: dict[str, Any], payload: bytes, model: CodexModel | None, slug: str
    ) -> None:
        """Refuse a request the model cannot take, before sending it: 413 ``request_too_large`` makes
        Claude Code compact its conversation (protocols §9 "Overflow"). Small requests are not counted:
        their size bounds their token count."""
        window = model.context_window if model is not None else None
        if window is None or token_upper_bound(shaped, len(payload)) <= window:
            return
        if body.tokens is None:
            body.tokens = await count_body_tokens(shaped)
        if body.tokens > window:
            raise RequestTooLargeError(
                f"the request is {body.tokens:,} tokens; {slug} has a context window of {window:,} tokens",
                code="context_length_exceeded",
            )
