"""The free models of the gateway: ``GET {base}/models``, filtered, cached, with a built-in fallback.

Kilo's free list changes often (protocols §9 "Kilo"), so it is discovered: the gateway answers
OpenRouter's model list ``{"data": [{"id", "name", "context_length", "pricing": {"prompt",
"completion", ...}, "top_provider": {"max_completion_tokens"}, "created"}]}``, and a model is free when
its id ends in ``:free`` or both its prompt and completion prices are zero. The list is kept for
``RELAYGATE_KILO_MODELS_TTL`` seconds; when the gateway cannot be reached, :data:`FALLBACK_MODELS`
stands in (and the gateway is asked again after :data:`FAILURE_TTL`). Listing never raises for a
network failure; only :meth:`FreeModelCatalog.fetch` says what went wrong.

Only free models are listed: OpenRouter's full catalog has hundreds of paid models, which would swamp
``/v1/models``. Any model id can still be asked for as ``kilo/<vendor>/<model>`` with a key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import orjson

from gateway_core.errors import GatewayError
from gateway_core.formats.openai_chat import parse_error
from gateway_core.models import ModelInfo
from gateway_core.upstream import TRANSPORT_ERRORS, transport_error
from gateway_providers.openrouter.config import OpenRouterSettings
from gateway_providers.openrouter.transport import base_headers

FREE_SUFFIX = ":free"
FAILURE_TTL = 60.0
"""After a failed fetch the fallback is served for this long before the gateway is asked again, so an
outage does not add a failing round trip to every listing."""
FETCH_TIMEOUT = 10.0
MAX_MODELS_BODY = 16 * 1024 * 1024
"""OpenRouter's full list is a few MB; anything far larger is not a model list."""


@dataclass(frozen=True, slots=True)
class FreeModel:
    """One free model of the gateway."""

    id: str
    """The upstream id, e.g. ``moonshotai/kimi-k2.5:free`` (no ``kilo/`` prefix: the Gateway adds it)."""
    name: str | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    created_at: str | None = None

    def info(self, provider: str) -> ModelInfo:
        return ModelInfo(
            id=self.id,
            provider=provider,
            display_name=self.name,
            context_window=self.context_window,
            max_output_tokens=self.max_output_tokens,
            created_at=self.created_at,
        )


FALLBACK_MODELS: tuple[FreeModel, ...] = (
    FreeModel("moonshotai/kimi-k2.5:free", "MoonshotAI: Kimi K2.5 (free)", 262_144),
    FreeModel("minimax/minimax-m2.5:free", "MiniMax: MiniMax M2.5 (free)", 196_608),
    FreeModel("z-ai/glm-4.5-air:free", "Z.AI: GLM 4.5 Air (free)", 131_072),
    FreeModel("qwen/qwen3-coder:free", "Qwen: Qwen3 Coder (free)", 262_144),
    FreeModel("openai/gpt-oss-120b:free", "OpenAI: gpt-oss-120b (free)", 131_072),
)
"""Served only when the gateway's list cannot be read (offline, an outage): the two Haiku-lane aliases
(DESIGN §4) first, then a snapshot of long-lived free models. Never used to refuse or rewrite a model
name: a request for any other id is sent as asked."""


# --- the wire shape -------------------------------------------------------------------------------


def parse_models(payload: object) -> list[FreeModel]:
    """The free models of a ``GET /models`` answer, in the gateway's order; malformed entries are
    skipped, unknown fields ignored, duplicates dropped."""
    raw = payload.get("data") if isinstance(payload, dict) else payload
    if not isinstance(raw, list):
        return []
    seen: set[str] = set()
    models: list[FreeModel] = []
    for entry in raw:
        model = _free_entry(entry) if isinstance(entry, dict) else None
        if model is not None and model.id not in seen:
            seen.add(model.id)
            models.append(model)
    return models


def is_free_entry(entry: Mapping[str, Any]) -> bool:
    """A ``:free`` id, or a zero prompt *and* completion price (Kilo lists some free models without the
    suffix). OpenRouter marks its routers' variable price with ``"-1"``: not free."""
    model_id = entry.get("id")
    if isinstance(model_id, str) and model_id.endswith(FREE_SUFFIX):
        return True
    pricing = entry.get("pricing")
    if not isinstance(pricing, dict):
        return False
    return _zero_price(pricing.get("prompt")) and _zero_price(pricing.get("completion"))


def _free_entry(entry: Mapping[str, Any]) -> FreeModel | None:
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id.strip() or not is_free_entry(entry):
        return None
    top = entry.get("top_provider")
    top = top if isinstance(top, dict) else {}
    return FreeModel(
        id=model_id,
        name=_text(entry.get("name")),
        context_window=_positive_int(entry.get("context_length")) or _positive_int(top.get("context_length")),
        max_output_tokens=_positive_int(top.get("max_completion_tokens")),
        created_at=_created(entry.get("created")),
    )


def _zero_price(value: object) -> bool:
    # Prices are decimal strings per token ("0", "0.0000025"); some gateways send numbers.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    try:
        return float(value) == 0.0
    except ValueError:
        return False


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _created(value: object) -> str | None:
    """OpenRouter's ``created`` (unix seconds) as ISO-8601, the shape ``ModelInfo`` keeps."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


# --- the cache ------------------------------------------------------------------------------------


class FreeModelCatalog:
    """The gateway's free models, cached; concurrent listings with a cold cache cause one fetch."""

    def __init__(
        self,
        settings: OpenRouterSettings,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self._models: tuple[FreeModel, ...] = ()
        self._ids: frozenset[str] = frozenset()
        self._fallback = True
        self._expires_at = float("-inf")
        self._lock = anyio.Lock()

    async def fetch(self) -> list[FreeModel]:
        """Ask the gateway now (no cache). Raises :class:`GatewayError` on any failure."""
        headers = base_headers(self._settings)
        headers["accept"] = "application/json"
        try:
            with anyio.fail_after(FETCH_TIMEOUT):
                response = await self._http.get(self._settings.models_url, headers=headers)
        except TRANSPORT_ERRORS as exc:  # TimeoutError (fail_after) is an OSError
            raise transport_error(exc, "GET /models", self._settings.host) from exc
        content = response.content[:MAX_MODELS_BODY]
        if response.status_code != 200:
            raise parse_error(response.status_code, content, response.headers)
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError:
            payload = None
        return parse_models(payload)

    async def models(self) -> tuple[FreeModel, ...]:
        """The free models: cached, fetched when stale, the fallback when that fails or finds none."""
        if self._expires_at > self._clock():
            return self._models
        async with self._lock:
            if self._expires_at > self._clock():
                return self._models
            try:
                found = await self.fetch()
            except GatewayError:
                found = []
            if found:
                self._store(found, fallback=False, ttl=self._settings.models_ttl)
            else:
                self._store(FALLBACK_MODELS, fallback=True, ttl=min(FAILURE_TTL, self._settings.models_ttl))
            return self._models

    async def is_free(self, model_id: str) -> bool:
        """Whether the gateway serves ``model_id`` without a key: a ``:free`` id, or one its list
        prices at zero (read through the cache)."""
        if model_id.endswith(FREE_SUFFIX):
            return True
        await self.models()
        return model_id in self._ids

    @property
    def fallback(self) -> bool:
        """True while :data:`FALLBACK_MODELS` stands in for the gateway's list."""
        return self._fallback

    def forget(self) -> None:
        """Drop the cached list: the next listing asks the gateway."""
        self._expires_at = float("-inf")

    def _store(self, models: Iterable[FreeModel], *, fallback: bool, ttl: float) -> None:
        self._models = tuple(models)
        self._ids = frozenset(model.id for model in self._models)
        self._fallback = fallback
        self._expires_at = self._clock() + ttl
