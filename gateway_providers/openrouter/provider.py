"""The ``kilo`` provider: canonical requests answered by an OpenRouter-compatible Chat Completions gateway.

:meth:`OpenRouterProvider.stream` renders the request once (protocols §7.3), posts it, and *holds* the
answer until it is committed: the gateway said 200 and sent its first content event. Until then every
failure (429, 5xx, a refused connection, a stall) raises :class:`~gateway_core.errors.GatewayError`, so
the Gateway can still send a Haiku-lane request to its Codex fallback and answer the client with a proper
status. After the commit, failures are in-band :class:`~gateway_core.streaming.ErrorEvent`\\ s. Sending,
holding and following the answer, with their deadlines, is :mod:`gateway_core.upstream`'s, shared with
every provider.

The request is streamed (``stream:true``) when the caller follows the answer as it comes. When it reads
only the whole answer (``RequestContext.streaming`` false: ``Gateway.complete``, a non-streaming client)
it is posted with ``stream:false`` and the one JSON body is replayed as the events a stream would have
carried: parsing one body costs a small fraction of decoding some hundreds of chunks, and both reduce to
the same response. That exchange is bounded as a whole by ``first_event_timeout + idle_timeout``
(:attr:`~gateway_providers.openrouter.config.OpenRouterSettings.whole_answer_timeout`), since such a
gateway answers only when it is done.

Upstream quirks handled here, at the boundary:
- Kilo serves ``:free`` models without a key and answers 401 for paid ones; without
  ``RELAYGATE_HAIKU_API_KEY`` a model the gateway's list does not price at zero is refused before it is
  sent, and an upstream 401 says which setting to fix.
- A gateway that ignores ``stream:true`` and answers one JSON body is read as that body; one that ignores
  ``stream:false`` and streams anyway is read as that stream.
- OpenRouter pads a non-streamed body with leading whitespace while it works (keep-alive); the body
  parser skips it.
- Reasoning (``reasoning_details``) is stamped with this provider's name, so it is only ever replayed
  here (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import orjson

from gateway_core.errors import (
    AuthenticationError,
    GatewayError,
    NotFoundError,
)
from gateway_core.formats._names import ToolNameMap
from gateway_core.formats.openai_chat import (
    StreamDecoder,
    parse_error,
    parse_response_bytes,
    render_request,
    tool_name_map,
)
from gateway_core.models import ModelInfo, ReasoningPart, Request, Response, TextPart, ToolCallPart
from gateway_core.provider import RequestContext
from gateway_core.streaming import (
    EMPTY_REASONING,
    EMPTY_TEXT,
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
)
from gateway_core.upstream import (
    CommittedAnswer,
    EventReader,
    close_response,
    json_body,
    read_body,
    read_until_committed,
    send_streaming,
)
from gateway_providers.openrouter.config import API_KEY, OpenRouterSettings
from gateway_providers.openrouter.models import FreeModelCatalog
from gateway_providers.openrouter.tokens import estimate_body_tokens
from gateway_providers.openrouter.transport import chat_headers, read_whole_body

PROVIDER = "kilo"
"""The Haiku lane's provider name in routing (``gateway_core.routing.HAIKU_PROVIDER``)."""
MAX_JSON_BODY = 16 * 1024 * 1024
"""The largest non-streamed answer we read."""


class OpenRouterProvider:
    """An OpenRouter-dialect Chat Completions gateway (``POST {base}/chat/completions``).

    Registered as ``kilo`` (Kilo's gateway by default, OpenRouter when the base URL points there);
    ``name`` lets one more instance serve another gateway under another provider name.
    """

    def __init__(
        self,
        settings: OpenRouterSettings,
        http: httpx.AsyncClient,
        *,
        name: str = PROVIDER,
        catalog: FreeModelCatalog | None = None,
    ) -> None:
        self._settings = settings
        self._http = http
        self._name = name
        self._catalog = catalog if catalog is not None else FreeModelCatalog(settings, http)
        self._headers = {stream: chat_headers(settings, stream=stream) for stream in (True, False)}

    @property
    def name(self) -> str:
        return self._name

    @property
    def settings(self) -> OpenRouterSettings:
        return self._settings

    @property
    def catalog(self) -> FreeModelCatalog:
        return self._catalog

    # --- Provider -------------------------------------------------------------------------------------

    async def models(self) -> list[ModelInfo]:
        """The gateway's free models (cached), or the built-in fallback list; never raises for a
        network failure. Ids are the upstream ids (``moonshotai/kimi-k2.5:free``)."""
        return [model.info(self._name) for model in await self._catalog.models()]

    async def count_tokens(self, request: Request, ctx: RequestContext) -> int:
        """An estimate of the request's input tokens (no upstream endpoint exists; see :mod:`.tokens`)."""
        return await estimate_body_tokens(self._render(request, ctx, tool_name_map(request)))

    async def stream(self, request: Request, ctx: RequestContext) -> AsyncIterator[StreamEvent]:
        """Answer ``request``: nothing is yielded before the gateway's answer is committed. Asked for one
        JSON body when ``ctx.streaming`` is false (see the module docstring)."""
        names = tool_name_map(request)
        body = self._render(request, ctx, names)
        if not ctx.streaming:
            body["stream"] = False  # said, not left to the gateway's default
        payload = json_body(body)
        del body
        await self._require_key(ctx.upstream_model)
        answer = await self._open(payload, ctx, names)
        # The answer may stream for minutes: what built the request need not live as long.
        del request, payload
        idle_timeout, host = self._settings.idle_timeout, self._settings.host
        try:
            while batch := await answer.next_batch(idle_timeout=idle_timeout, upstream=host):
                for event in batch:
                    yield event
        finally:
            answer.close()
            await close_response(answer.response)

    async def aclose(self) -> None:
        """Close the shared HTTP client."""
        await self._http.aclose()

    # --- one request ----------------------------------------------------------------------------------

    def _render(self, request: Request, ctx: RequestContext, names: ToolNameMap) -> dict[str, Any]:
        return render_request(
            request,
            upstream_model=ctx.upstream_model,
            provider=self._name,
            effort=ctx.effort,
            names=names,
            stream=ctx.streaming,
        )

    async def _require_key(self, model: str) -> None:
        """Refuse, before sending, a model that needs a key when none is set. Only a real model list
        can say a model is paid: while the fallback list stands in, the gateway decides."""
        if self._settings.api_key or await self._catalog.is_free(model) or self._catalog.fallback:
            return
        raise AuthenticationError(
            f'model "{model}" is not a free model of {self._settings.host} and needs a key: set {API_KEY}, '
            'or choose a free model (ids ending in ":free")',
            param="model",
        )

    async def _open(self, payload: bytes, ctx: RequestContext, names: ToolNameMap) -> CommittedAnswer:
        """Post the request and read until the answer is committed; raise what failed before that.

        A streamed request's first event must come within ``first_event_timeout``; a non-streamed one's
        whole body within ``whole_answer_timeout``."""
        settings = self._settings
        wait = settings.first_event_timeout if ctx.streaming else settings.whole_answer_timeout
        deadline = anyio.current_time() + wait
        response = await send_streaming(
            self._http,
            self._settings.chat_url,
            headers=self._headers[ctx.streaming],
            body=payload,
            deadline=deadline,
            upstream=self._settings.host,
            what="POST /chat/completions",
        )
        committed = False
        try:
            if response.status_code != 200:
                raw = await read_body(response, deadline)
                raise self._explain(parse_error(response.status_code, raw, response.headers), ctx)
            if _is_whole_body(response.headers.get("content-type", ""), streaming=ctx.streaming):
                answer = await self._whole_body(response, deadline, ctx, names)
            else:
                reader = EventReader(response, self._settings.host)
                decoder = StreamDecoder(provider=self._name, model=ctx.requested_model, names=names)
                held = await read_until_committed(
                    reader,
                    decoder,
                    deadline=deadline,
                    idle_timeout=self._settings.idle_timeout,
                    upstream=self._settings.host,
                )
                answer = CommittedAnswer(response, reader, decoder, held)
            committed = True
            return answer
        finally:
            if not committed:
                await close_response(response)

    async def _whole_body(
        self, response: httpx.Response, deadline: float, ctx: RequestContext, names: ToolNameMap
    ) -> CommittedAnswer:
        """A JSON answer (or a 200 that carries an error), as events; it must be whole by ``deadline``."""
        raw = await read_whole_body(response, deadline, limit=MAX_JSON_BODY, host=self._settings.host)
        whole = parse_response_bytes(raw, provider=self._name, names=names, model=ctx.requested_model)
        return CommittedAnswer(
            response, None, None, list(response_events(whole)), completed=True, finished=True
        )

    def _explain(self, error: GatewayError, ctx: RequestContext) -> GatewayError:
        """Name the setting or the model an upstream refusal is about (protocols §3: Kilo answers 401
        for a paid model without a key, and a flat 404 ``Model not found``)."""
        host, model = self._settings.host, ctx.upstream_model
        if isinstance(error, AuthenticationError):
            if self._settings.api_key:
                message = f"{host} refused the key in {API_KEY}: {error.message}"
            else:
                message = (
                    f'{host} refused model "{model}" without a key ({error.message}); '
                    f"it is not a free model: set {API_KEY}"
                )
            return AuthenticationError(message, code=error.code)
        if isinstance(error, NotFoundError):
            return NotFoundError(
                f'model "{model}" is not served by {host}: {error.message}', param="model", code=error.code
            )
        return error


def _is_whole_body(content_type: str, *, streaming: bool) -> bool:
    """Whether a 200 answer is one JSON body rather than an SSE stream. A streamed request is answered
    as SSE unless the gateway ignored ``stream:true`` and says JSON; a non-streamed one is one body
    unless the gateway ignored ``stream:false`` and says ``text/event-stream``."""
    if "event-stream" in content_type:
        return False
    return "json" in content_type or not streaming


def response_events(response: Response) -> Iterator[StreamEvent]:
    """The canonical events of a complete response, as a stream would have carried them."""
    yield MessageStart(id=response.id, model=response.model)
    for index, part in enumerate(response.content):
        if isinstance(part, ReasoningPart):
            yield PartStart(index, EMPTY_REASONING)
            if part.text:
                yield ReasoningDelta(index, part.text)
            if part.signature:
                yield SignatureDelta(index, part.signature, part.provider)
        elif isinstance(part, TextPart):
            yield PartStart(index, EMPTY_TEXT)
            if part.text:
                yield TextDelta(index, part.text)
        elif isinstance(part, ToolCallPart):
            yield PartStart(index, part.model_copy(update={"arguments": {}}))
            yield ToolArgumentsDelta(index, orjson.dumps(part.arguments).decode())
        else:
            yield PartStart(index, part)
        yield PartStop(index)
    yield MessageDelta(stop_reason=response.stop_reason, usage=response.usage)
    yield MessageStop()
