"""The models an account may use: ``GET {base}/codex/models?client_version=…``, cached, with a fallback.

The backend answers the Codex CLI's ``ModelsResponse`` (``openai/codex``
``codex-rs/protocol/src/openai_models.rs``): ``{"models": [ModelInfo]}`` where each entry has a
``slug``, ``display_name``, ``context_window`` (optional), ``supported_reasoning_levels``
(``[{"effort", "description"}]``), ``default_reasoning_level``, ``visibility`` (``list`` / ``hide`` /
``none``) and ``priority`` (lower comes first in the Codex picker). The list differs by plan and changes
over time, so it is fetched per account and kept for ``RELAYGATE_CODEX_MODELS_TTL`` seconds; when no
account or no network is available, :data:`FALLBACK_MODELS` stands in. Nothing here raises for a
network failure except :meth:`ModelCatalog.fetch`, which says what went wrong.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import orjson

from gateway_core.errors import GatewayError
from gateway_core.formats.openai_responses import parse_error
from gateway_core.models import ModelInfo
from gateway_core.upstream import TRANSPORT_ERRORS, transport_error
from gateway_providers.codex.config import CodexSettings
from gateway_providers.codex.transport import UPSTREAM, Credentials, auth_headers

PROVIDER = "codex"
FAILURE_TTL = 60.0
"""After a failed fetch the fallback is used for this long before the account is asked again, so a
backend outage does not add a failing round trip to every request."""
FETCH_TIMEOUT = 10.0
"""The first request of an account waits for its list: bounded, then the fallback stands in."""

# Efforts in increasing depth, as the Codex CLI ranks them to map one effort onto a model's nearest
# supported one (openai_models.rs `effort_rank`). Newer catalogs add deeper levels; they rank above.
EFFORT_RANK: dict[str, int] = {
    "none": 0,
    "minimal": 1,
    "low": 2,
    "medium": 3,
    "high": 4,
    "xhigh": 5,
    "max": 6,
}

ASSUMED_EFFORTS: tuple[str, ...] = ("low", "medium", "high", "xhigh")
"""What a model accepts when its catalog entry does not say: every GPT-5.x entry of the Codex CLI's
bundled catalog lists exactly these (none of them lists ``none`` or ``minimal``)."""


@dataclass(frozen=True, slots=True)
class CodexModel:
    """One catalog entry, with what the provider needs to shape requests for it."""

    slug: str
    display_name: str | None = None
    context_window: int | None = None
    efforts: tuple[str, ...] = ()
    """Supported ``reasoning.effort`` values; empty when the backend did not say."""
    default_effort: str | None = None
    listed: bool = True
    """``visibility`` is ``list``: shown to users. Hidden entries still serve requests."""
    priority: int = 0

    def info(self) -> ModelInfo:
        return ModelInfo(
            id=self.slug,
            provider=PROVIDER,
            display_name=self.display_name,
            context_window=self.context_window,
        )


FALLBACK_MODELS: tuple[CodexModel, ...] = tuple(
    CodexModel(slug, display_name=name, context_window=272_000, efforts=ASSUMED_EFFORTS, priority=rank)
    for rank, (slug, name) in enumerate(
        (
            ("gpt-5.5", "GPT-5.5"),
            ("gpt-5.4", "GPT-5.4"),
            ("gpt-5.4-mini", "GPT-5.4-Mini"),
            ("gpt-5.3-codex", "GPT-5.3-Codex"),
            ("gpt-5.2-codex", "GPT-5.2-Codex"),
            ("gpt-5.2", "GPT-5.2"),
        )
    )
)
"""Served only when no account can list its models (offline, no account yet). A snapshot of the
late-2026 catalogs (protocols §9): gpt-5.5 / gpt-5.4 / gpt-5.4-mini, the previous codex models, all
with the 272,000-token window and the efforts of the Codex CLI's bundled catalog. Never used to
refuse or rewrite a model name: requests for any other name are sent as asked."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """An account's models by slug, in the backend's order."""

    models: tuple[CodexModel, ...]
    fallback: bool = False
    """True when this is :data:`FALLBACK_MODELS` standing in for the real list."""
    _by_slug: Mapping[str, CodexModel] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, models: Iterable[CodexModel], *, fallback: bool = False) -> Catalog:
        ordered = tuple(models)
        return cls(ordered, fallback, {model.slug: model for model in ordered})

    def get(self, slug: str) -> CodexModel | None:
        return self._by_slug.get(slug)

    def listed(self) -> list[ModelInfo]:
        """The models to show, best first (the Codex picker's order)."""
        shown = sorted((m for m in self.models if m.listed), key=lambda m: m.priority)
        return [model.info() for model in shown]


FALLBACK_CATALOG = Catalog.of(FALLBACK_MODELS, fallback=True)


def nearest_effort(effort: str, supported: Sequence[str]) -> str:
    """The supported effort closest to ``effort`` (the Codex CLI's own mapping), the shallower one on
    a tie; ``effort`` itself when supported or when nothing known is supported.

    So ``none`` becomes the lowest effort a model accepts, and ``xhigh`` becomes ``high`` on a model
    without ``xhigh``.
    """
    if effort in supported or effort not in EFFORT_RANK:
        return effort
    ranked = [(EFFORT_RANK[level], level) for level in supported if level in EFFORT_RANK]
    if not ranked:
        return effort
    target = EFFORT_RANK[effort]
    return min(ranked, key=lambda pair: (abs(pair[0] - target), pair[0]))[1]


def supported_efforts(model: CodexModel | None) -> tuple[str, ...]:
    """What ``model`` accepts: its catalog entry, else :data:`ASSUMED_EFFORTS`."""
    if model is not None and model.efforts:
        return model.efforts
    return ASSUMED_EFFORTS


# --- parsing the wire shape -------------------------------------------------------------------------


def parse_models(payload: object) -> list[CodexModel]:
    """``{"models": [...]}`` -> entries; malformed entries are skipped, unknown fields ignored."""
    raw = payload.get("models") if isinstance(payload, dict) else None
    if not isinstance(raw, list):
        return []
    models = [_parse_entry(entry) for entry in raw if isinstance(entry, dict)]
    return [model for model in models if model is not None]


def _parse_entry(entry: Mapping[str, Any]) -> CodexModel | None:
    slug = entry.get("slug", entry.get("id"))
    if not isinstance(slug, str) or not slug:
        return None
    levels = entry.get("supported_reasoning_levels")
    efforts = tuple(_effort_name(level) for level in levels) if isinstance(levels, list) else ()
    default = entry.get("default_reasoning_level")
    return CodexModel(
        slug=slug,
        display_name=_text(entry.get("display_name")),
        context_window=_positive_int(entry.get("context_window")),
        efforts=tuple(effort for effort in efforts if effort),
        default_effort=default if isinstance(default, str) else None,
        listed=entry.get("visibility", "list") == "list",
        priority=_int(entry.get("priority")),
    )


def _effort_name(level: object) -> str:
    # `{"effort": "low", "description": ...}`; some catalogs list bare strings.
    if isinstance(level, dict):
        level = level.get("effort")
    return level if isinstance(level, str) else ""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- the cache ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    catalog: Catalog
    expires_at: float


class ModelCatalog:
    """Model lists per account (by email), cached; shared by the provider and the account pool.

    Concurrent requests of one account with a cold cache cause one fetch (single flight).
    """

    def __init__(
        self, settings: CodexSettings, http: httpx.AsyncClient, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def fetch(self, credentials: Credentials) -> list[CodexModel]:
        """Ask the backend now (no cache). Raises :class:`GatewayError` on any failure."""
        url = self._settings.models_url
        params = {"client_version": self._settings.client_version}
        headers = auth_headers(self._settings, credentials)
        headers["accept"] = "application/json"
        try:
            with anyio.fail_after(FETCH_TIMEOUT):
                response = await self._http.get(url, params=params, headers=headers)
        except TRANSPORT_ERRORS as exc:  # TimeoutError (fail_after) is an OSError
            raise transport_error(exc, "GET /codex/models", UPSTREAM) from exc
        if response.status_code != 200:
            raise parse_error(response.status_code, response.content, response.headers)
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            payload = None
        return parse_models(payload)

    async def catalog(self, credentials: Credentials) -> Catalog:
        """The account's catalog: cached, fetched when stale, the fallback when that fails. Never raises
        for an upstream failure."""
        key = credentials.email
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > self._clock():
            return entry.catalog
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at > self._clock():
                return entry.catalog
            try:
                models = await self.fetch(credentials)
            except GatewayError:
                models = []
            if models:
                catalog = Catalog.of(models)
                ttl = self._settings.models_ttl
            else:
                catalog, ttl = FALLBACK_CATALOG, min(FAILURE_TTL, self._settings.models_ttl)
            self._entries[key] = _Entry(catalog, self._clock() + ttl)
            return catalog

    def cached(self) -> Catalog | None:
        """Any fresh real catalog already in memory (for listing models without a request)."""
        now = self._clock()
        for entry in self._entries.values():
            if entry.expires_at > now and not entry.catalog.fallback:
                return entry.catalog
        return None

    async def model_infos(self, credentials: Credentials) -> list[ModelInfo]:
        """The models the account may use, freshly fetched (for ``/accounts/models``); raises
        :class:`GatewayError` when the backend refuses or cannot be reached."""
        models = await self.fetch(credentials)
        catalog = Catalog.of(models)
        self._entries[credentials.email] = _Entry(catalog, self._clock() + self._settings.models_ttl)
        return [model.info() for model in models]

    def forget(self, email: str) -> None:
        """Drop one account's cached list (after it was removed, or to ask again now)."""
        self._entries.pop(email, None)
