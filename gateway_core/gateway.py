"""The Gateway: what servers and library users call (DESIGN §1, §3, §4).

It routes a request to an installed provider and hands back that provider's canonical answer. The
non-streaming answer is reduced from the same stream (:func:`~gateway_core.streaming.accumulate_async`),
so a streamed and a non-streamed answer can never disagree, and every answer reports the model the
client asked for, whatever served it.

A stream is *primed*: :meth:`Gateway.stream` waits for the provider's first event before returning, so
a failure before the answer starts (no account, rate limit, bad request upstream) raises
:class:`~gateway_core.errors.GatewayError` while the server can still answer with a proper status, and
the server learns which provider and model really serve the request before it commits any header.

No global state: a Gateway owns its providers and its lane settings, nothing else.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Self, TypeVar

import anyio
import pluggy

from gateway_core.accounts import AccountPool
from gateway_core.errors import ApiError, ErrorKind, GatewayError, UpstreamError
from gateway_core.models import ModelInfo, Request, Response
from gateway_core.plugins import Plugins, ProviderRegistry, create_plugin_manager
from gateway_core.provider import Provider, RequestContext
from gateway_core.routing import DEFAULT_PROVIDER, LANE_ALIASES, LaneSettings, Route, route_model
from gateway_core.settings import Settings
from gateway_core.store import Store
from gateway_core.streaming import (
    CitationDelta,
    ErrorEvent,
    MessageDelta,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    ReasoningDelta,
    SignatureDelta,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
    accumulate_async,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Failures that send a request to its route's fallback (the Haiku lane's codex model): the provider is
# unavailable right now. A bad request is not among them: it would fail on the fallback as well.
_FALLBACK_KINDS = frozenset(
    {ErrorKind.RATE_LIMIT, ErrorKind.UPSTREAM, ErrorKind.TIMEOUT, ErrorKind.OVERLOADED, ErrorKind.BILLING}
)

# Client headers a provider never sees: they are the client's credentials for the gateway itself.
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"})

# How long a provider may take to finish after its answer, or to clean up once told to stop.
_CLOSE_TIMEOUT = 5.0

# Events a Stream hands on untouched (only MessageStart, MessageStop and ErrorEvent need a look).
_PASSED_AS_IS: frozenset[type[StreamEvent]] = frozenset(
    {
        PartStart,
        TextDelta,
        ReasoningDelta,
        ToolArgumentsDelta,
        SignatureDelta,
        CitationDelta,
        PartStop,
        MessageDelta,
    }
)


async def _close_events(events: AsyncIterator[StreamEvent]) -> None:
    """Close a provider's event iterator, even inside a cancelled scope (a client that went away)."""
    close = getattr(events, "aclose", None)
    if close is None:
        return
    with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
        try:
            await close()
        except Exception:
            logger.warning("a provider stream failed while closing", exc_info=True)


class Stream(AsyncIterator[StreamEvent]):
    """A primed provider answer: async-iterate it for canonical events, close it when done.

    The events always end with :class:`MessageStop` or an :class:`ErrorEvent`: a provider that stops
    short, or raises after the first event, ends its stream with an in-band error. ``MessageStart``
    reports the model the client asked for. Use ``async with`` (or call :meth:`aclose`) so that a
    client going away closes the provider's iterator, and with it the upstream call.
    """

    __slots__ = ("_closed", "_events", "_exhausted", "_finished", "_pending", "requested_model", "route")

    def __init__(
        self, route: Route, requested_model: str, events: AsyncIterator[StreamEvent], first: StreamEvent
    ) -> None:
        self.route = route
        """How the request was routed; after a fallback, the fallback route."""
        self.requested_model = requested_model
        self._events = events
        self._pending: StreamEvent | None = first
        self._finished = False
        self._closed = False
        self._exhausted = False
        """The provider's iterator ran to its end: there is nothing left to close."""

    @property
    def provider(self) -> str:
        """The provider that really serves the answer (``x-relaygate-provider``)."""
        return self.route.provider

    @property
    def upstream_model(self) -> str:
        """The model that really serves the answer (``x-relaygate-model``)."""
        return self.route.upstream_model

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._pending is not None:
            event, self._pending = self._pending, None
            return self._deliver(event)
        if self._finished or self._closed:
            await self._drain()
            raise StopAsyncIteration
        try:
            event = await self._events.__anext__()
        except Exception as exc:  # StopAsyncIteration included
            event = self._failure(exc)
        if type(event) in _PASSED_AS_IS:  # the deltas: nearly every event
            return event
        return self._deliver(event)

    async def forward(self, deliver: Callable[[StreamEvent], Awaitable[None] | None]) -> None:
        """Hand every event to ``deliver``, in order, until the stream ends; then let the provider finish.

        The same events as ``async for event in stream``, without a coroutine per event: a server
        forwarding hundreds of events per answer spends a large share of its time on each layer
        between the upstream and the client. ``deliver`` returns an awaitable when the caller needs
        to wait (a slow client), ``None`` otherwise.
        """
        if self._pending is not None:
            first, self._pending = self._pending, None
            if (waiting := deliver(self._deliver(first))) is not None:
                await waiting
        if self._finished or self._closed:
            await self._drain()
            return
        events = self._events
        while True:
            try:
                event = await events.__anext__()
            except Exception as exc:  # StopAsyncIteration included
                event = self._failure(exc)
            if type(event) not in _PASSED_AS_IS:
                event = self._deliver(event)
            if (waiting := deliver(event)) is not None:
                await waiting
            if isinstance(event, (MessageStop, ErrorEvent)):  # the last event (_deliver marked it)
                break
        await self._drain()

    def _failure(self, exc: Exception) -> ErrorEvent:
        """The in-band error for what the provider's iterator raised instead of an event."""
        if isinstance(exc, StopAsyncIteration):
            self._exhausted = True
            message = f'provider "{self.provider}" ended its answer before completing it'
            return ErrorEvent(UpstreamError(message))
        if isinstance(exc, GatewayError):
            return ErrorEvent(exc)
        logger.error('provider "%s" failed during a stream', self.provider, exc_info=exc)
        return ErrorEvent(ApiError(f'provider "{self.provider}" failed: {type(exc).__name__}: {exc}'))

    def _deliver(self, event: StreamEvent) -> StreamEvent:
        if isinstance(event, MessageStart) and event.model != self.requested_model:
            return dataclasses.replace(event, model=self.requested_model)
        if isinstance(event, (MessageStop, ErrorEvent)):
            self._finished = True
        return event

    async def _drain(self) -> None:
        """Let the provider run to its end after the answer (it may finish reading the upstream body,
        keeping the connection reusable, or record usage), within a bound; extra events are dropped."""
        if self._closed:
            return
        with anyio.move_on_after(_CLOSE_TIMEOUT):
            try:
                async for _ in self._events:
                    pass
                self._exhausted = True
            except Exception:
                logger.warning('provider "%s" failed after its answer', self.provider, exc_info=True)
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the answer and close the provider's iterator; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._pending = None
        if not self._exhausted:  # closing costs a shielded cancel scope: only when something is left
            await _close_events(self._events)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class Gateway:
    """Routes canonical requests to providers; the one object a server or an application needs.

    Build it from providers directly (``Gateway([MyProvider()])``), from a plugin manager
    (:meth:`from_plugin_manager`), or in one call from the installed plugins (:meth:`from_plugins`).
    """

    def __init__(
        self,
        providers: Iterable[Provider] | ProviderRegistry = (),
        *,
        lanes: LaneSettings | None = None,
        default_provider: str = DEFAULT_PROVIDER,
        models_timeout: float = 10.0,
    ) -> None:
        if not isinstance(providers, ProviderRegistry):
            registry = ProviderRegistry()
            for provider in providers:
                registry.register(provider)
            providers = registry
        self._providers: dict[str, Provider] = dict(providers.providers)
        self._account_pools: dict[str, AccountPool] = dict(providers.account_pools)
        self._lanes = LaneSettings() if lanes is None else lanes
        self._default_provider = default_provider
        self._models_timeout = models_timeout

    @classmethod
    def from_plugin_manager(
        cls,
        manager: pluggy.PluginManager,
        *,
        settings: Settings | None = None,
        lanes: LaneSettings | None = None,
        store: Store | None = None,
    ) -> Gateway:
        """A gateway with the providers the manager's plugins register, configured by ``settings``
        (none by default) and keeping their state in ``store`` (in memory by default). ``lanes``
        defaults to the lane defaults with ``RELAYGATE_HAIKU_LANE`` applied."""
        settings = Settings() if settings is None else settings
        registry = Plugins(manager).register_providers(settings, store=store)
        return cls(registry, lanes=LaneSettings.from_settings(settings) if lanes is None else lanes)

    @classmethod
    def from_plugins(
        cls,
        *plugins: object,
        settings: Mapping[str, str] | None = None,
        load_entrypoints: bool = True,
        lanes: LaneSettings | None = None,
        store: Store | None = None,
    ) -> Gateway:
        """The library user's one-liner: the installed plugins plus ``plugins``, configured by
        ``settings`` — by default the ``RELAYGATE_*`` environment variables, as the server does."""
        manager = create_plugin_manager(load_entrypoints=load_entrypoints, plugins=plugins)
        resolved = Settings.from_environ() if settings is None else Settings(settings)
        return cls.from_plugin_manager(manager, settings=resolved, lanes=lanes, store=store)

    @property
    def providers(self) -> Mapping[str, Provider]:
        """The installed providers by name (read-only)."""
        return MappingProxyType(self._providers)

    @property
    def account_pools(self) -> Mapping[str, AccountPool]:
        """Account pools by provider name (read-only); the admin routes manage accounts through them."""
        return MappingProxyType(self._account_pools)

    @property
    def lanes(self) -> LaneSettings:
        """The lane table in force; assign a new value to change it (the next request uses it)."""
        return self._lanes

    @lanes.setter
    def lanes(self, lanes: LaneSettings) -> None:
        self._lanes = lanes

    def route(self, model: str) -> Route:
        """Where a request for ``model`` goes (see :mod:`gateway_core.routing`)."""
        return route_model(
            model, lanes=self._lanes, providers=self._providers, default_provider=self._default_provider
        )

    async def stream(
        self,
        request: Request,
        *,
        session_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        streaming: bool = True,
    ) -> Stream:
        """Open the answer to ``request`` as a primed :class:`Stream`.

        Raises :class:`GatewayError` when routing fails or the provider fails before its first event;
        a Haiku-lane request whose provider is unavailable is sent to the lane's fallback instead.
        ``headers`` are client headers a provider may use (credentials are removed). ``streaming=False``
        says the caller only reduces the stream to the whole answer (as :meth:`complete` does); the
        provider may then spare itself the incremental deltas (``RequestContext.streaming``).
        """
        context_headers = _context_headers(headers)
        return await self._with_fallback(
            request.model,
            lambda route: self._open(route, request, session_id, context_headers, streaming=streaming),
        )

    open_stream = stream
    """The same as :meth:`stream`, named for what a server does with it."""

    async def complete(
        self, request: Request, *, session_id: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        """The whole answer to ``request``, reduced from its stream; raises the stream's error.

        The provider is told that only the whole answer is read (``RequestContext.streaming``), so it
        may spare itself the incremental deltas; the reduction is the same either way."""
        opened = await self.stream(request, session_id=session_id, headers=headers, streaming=False)
        async with opened as stream:
            response = await accumulate_async(stream)
        if response.model != request.model:
            response = response.model_copy(update={"model": request.model})
        return response

    async def count_tokens(
        self, request: Request, *, session_id: str | None = None, headers: Mapping[str, str] | None = None
    ) -> int:
        """The input tokens ``request`` would cost on the provider it routes to."""
        context_headers = _context_headers(headers)
        return await self._with_fallback(
            request.model, lambda route: self._count(route, request, session_id, context_headers)
        )

    async def models(self) -> list[ModelInfo]:
        """Every model a client can ask for: the lane aliases first, then each provider's models.

        Ids are the names that route to the model (``gpt-5.5``, ``kilo/minimax/minimax-m2.5:free``),
        deduplicated. A provider that fails or takes longer than ``models_timeout`` is left out (and
        logged) rather than breaking the list.
        """
        listed: dict[str, Sequence[ModelInfo]] = {}

        async def collect(name: str, provider: Provider) -> None:
            with anyio.move_on_after(self._models_timeout) as scope:
                try:
                    listed[name] = await provider.models()
                except Exception:
                    logger.warning('provider "%s" could not list its models', name, exc_info=True)
            if scope.cancelled_caught:
                logger.warning('provider "%s" took too long to list its models', name)

        async with anyio.create_task_group() as group:
            for name, provider in self._providers.items():
                group.start_soon(collect, name, provider)

        result: dict[str, ModelInfo] = {}
        for info in self._lane_models():
            result.setdefault(info.id, info)
        for name in self._providers:
            for info in listed.get(name, ()):
                model_id = self._routable_id(name, info.id)
                if model_id not in result:
                    result[model_id] = info.model_copy(update={"id": model_id, "provider": name})
        return list(result.values())

    async def aclose(self) -> None:
        """Release the providers' resources (those that have an ``aclose()``, e.g. an HTTP client)."""
        for name, provider in self._providers.items():
            close = getattr(provider, "aclose", None)
            if callable(close):
                try:
                    await close()
                except Exception:
                    logger.warning('provider "%s" failed to close', name, exc_info=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- internals -------------------------------------------------------------------------------

    async def _with_fallback(self, model: str, attempt: Callable[[Route], Awaitable[T]]) -> T:
        """Run ``attempt`` on the model's route; when the provider is unavailable before answering,
        run it once more on the route's fallback (the Haiku lane's codex model)."""
        route = self.route(model)
        try:
            return await attempt(route)
        except GatewayError as exc:
            fallback = self._fallback(route, exc)
            if fallback is None:
                raise
            return await attempt(fallback)

    def _context(
        self,
        route: Route,
        request: Request,
        session_id: str | None,
        headers: Mapping[str, str],
        *,
        streaming: bool = True,
    ) -> RequestContext:
        return RequestContext(
            requested_model=request.model,
            upstream_model=route.upstream_model,
            effort=route.effort,
            session_id=session_id,
            headers=headers,
            streaming=streaming,
        )

    async def _open(
        self,
        route: Route,
        request: Request,
        session_id: str | None,
        headers: Mapping[str, str],
        *,
        streaming: bool,
    ) -> Stream:
        provider = self._providers[route.provider]
        events: AsyncIterator[StreamEvent] | None = None
        opened = False
        context = self._context(route, request, session_id, headers, streaming=streaming)
        try:
            events = provider.stream(request, context)
            first = await events.__anext__()
            if isinstance(first, ErrorEvent):
                raise first.error
            opened = True
            return Stream(route, request.model, events, first)
        except StopAsyncIteration:
            raise UpstreamError(f'provider "{route.provider}" ended its stream without answering') from None
        except GatewayError:
            raise
        except Exception as exc:
            logger.exception('provider "%s" failed to start a stream', route.provider)
            raise ApiError(f'provider "{route.provider}" failed: {type(exc).__name__}: {exc}') from exc
        finally:
            if not opened and events is not None:
                await _close_events(events)

    async def _count(
        self, route: Route, request: Request, session_id: str | None, headers: Mapping[str, str]
    ) -> int:
        provider = self._providers[route.provider]
        try:
            return await provider.count_tokens(request, self._context(route, request, session_id, headers))
        except GatewayError:
            raise
        except Exception as exc:
            logger.exception('provider "%s" failed to count tokens', route.provider)
            raise ApiError(f'provider "{route.provider}" failed: {type(exc).__name__}: {exc}') from exc

    def _fallback(self, route: Route, error: GatewayError) -> Route | None:
        fallback = route.fallback
        if fallback is None or error.kind not in _FALLBACK_KINDS or fallback.provider not in self._providers:
            return None
        logger.warning(
            'provider "%s" is unavailable (%s); %s lane falls back to %s/%s',
            route.provider,
            error.message,
            route.lane,
            fallback.provider,
            fallback.upstream_model,
        )
        return fallback

    def _lane_models(self) -> list[ModelInfo]:
        models = []
        for lane, alias in LANE_ALIASES.items():
            try:
                route = self.route(alias)
            except GatewayError:
                continue  # the lane's provider is not installed: nothing to offer
            display = f"{lane.capitalize()} lane: {route.provider}/{route.upstream_model}"
            models.append(ModelInfo(id=alias, provider=route.provider, display_name=display))
        return models

    def _routable_id(self, provider: str, model_id: str) -> str:
        """``model_id`` when asking for it reaches this provider's model, else ``provider/model_id``."""
        try:
            route = self.route(model_id)
        except GatewayError:
            return f"{provider}/{model_id}"
        if route.provider == provider and route.upstream_model == model_id and route.lane is None:
            return model_id
        return f"{provider}/{model_id}"


def _context_headers(headers: Mapping[str, str] | None) -> Mapping[str, str]:
    if not headers:
        return {}
    return {name.lower(): value for name, value in headers.items() if name.lower() not in _CREDENTIAL_HEADERS}
