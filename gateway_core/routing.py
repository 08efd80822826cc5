"""Which provider answers a model name, and with which upstream model (DESIGN §4).

The rules, in order:

1. ``provider/model`` (``codex/gpt-5.5``, ``kilo/minimax/minimax-m2.5:free``): the first segment names
   an installed provider, the rest is its model, verbatim (it may contain further slashes). Checked
   first, so an explicit ``kilo/anthropic/claude-haiku-4.5`` is never diverted to a lane.
2. A name containing ``opus``, ``sonnet`` or ``haiku`` (any Claude name, old or future, any case) goes
   to that lane, whose target :class:`LaneSettings` holds.
3. Any other name goes to the default provider (codex), verbatim.

A model is never silently swapped for another: the only substitution is the one a lane stands for.
Routing is a pure function of the name, the lane settings and the installed provider names.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from gateway_core.errors import InvalidRequestError, NotFoundError
from gateway_core.models import Effort
from gateway_core.settings import Settings

Lane = Literal["opus", "sonnet", "haiku"]
LANES: tuple[Lane, ...] = ("opus", "sonnet", "haiku")

DEFAULT_PROVIDER = "codex"
"""Where a plain model name without a lane word goes."""

HAIKU_PROVIDER = "kilo"
"""The provider of the Haiku lane while it is on."""

DEFAULT_HAIKU_KILO_MODEL = "kimi-k2.5"

HAIKU_MODEL_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "kimi-k2.5": "moonshotai/kimi-k2.5:free",
        "minimax-2.5": "minimax/minimax-m2.5:free",
    }
)
"""Short names accepted for ``haikuKiloModel`` and the Kilo model ids they stand for."""

LANE_ALIASES: Mapping[Lane, str] = MappingProxyType(
    {
        "opus": "claude-opus-5-5",
        "sonnet": "claude-sonnet-4-5",
        "haiku": "claude-haiku-4-5",
    }
)
"""One Claude model name per lane, listed by ``/v1/models``: Claude Code's model discovery keeps only
ids starting with ``claude`` (protocols README, notes), and any name with the lane word routes there."""

_LANE_WORD = re.compile("|".join(LANES), re.IGNORECASE)
_LANE_BY_WORD: dict[str, Lane] = {lane: lane for lane in LANES}

# OpenRouter-style `vendor/model[:variant]` ids, e.g. `moonshotai/kimi-k2.5:free`.
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:/-]*")
_MAX_MODEL_ID = 200


@dataclass(frozen=True, slots=True)
class LaneTarget:
    """Where a lane sends its requests."""

    provider: str
    model: str
    effort: Effort | None = None
    """The reasoning effort used when the request names none."""


@dataclass(frozen=True, slots=True)
class Route:
    """The outcome of routing one model name."""

    provider: str
    """The installed provider that answers."""
    upstream_model: str
    """The model that provider is asked for."""
    effort: Effort | None = None
    """The lane's default reasoning effort."""
    lane: Lane | None = None
    """The lane the name fell into, if any."""
    fallback: Route | None = None
    """Where to go instead when the provider fails before answering (the Haiku lane's codex model)."""


def resolve_haiku_model(value: object) -> str:
    """The Kilo model id for a ``haikuKiloModel`` value: a short alias, or a full ``vendor/model`` id
    kept verbatim. Raises :class:`InvalidRequestError` (param ``haikuKiloModel``) for anything else, so
    the settings endpoint can refuse a typo before it is stored."""
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"haikuKiloModel: expected a string, got {type(value).__name__}", param="haikuKiloModel"
        )
    alias = HAIKU_MODEL_ALIASES.get(value.lower())
    if alias is not None:
        return alias
    if len(value) > _MAX_MODEL_ID or not _MODEL_ID.fullmatch(value):
        known = ", ".join(HAIKU_MODEL_ALIASES)
        raise InvalidRequestError(
            f"haikuKiloModel: {value!r} is not a model id; use one of {known} or a full vendor/model id",
            param="haikuKiloModel",
        )
    return value


@dataclass(frozen=True, slots=True)
class LaneSettings:
    """The lane table: an immutable value, replaced as a whole when a setting changes
    (``dataclasses.replace(lanes, haiku_kilo_model="minimax-2.5")`` validates the new value again).

    ``haiku_kilo_model`` keeps the value as it was set (what the settings endpoint shows);
    ``haiku_kilo_model_id`` is what it resolves to (what Kilo is asked for).
    """

    opus: LaneTarget = LaneTarget(DEFAULT_PROVIDER, "gpt-5.5", "high")
    sonnet: LaneTarget = LaneTarget(DEFAULT_PROVIDER, "gpt-5.5", "medium")
    haiku_kilo_model: str = DEFAULT_HAIKU_KILO_MODEL
    haiku_lane: bool = True
    """False (``RELAYGATE_HAIKU_LANE=off``) sends haiku to :attr:`haiku_off` instead of Kilo."""
    haiku_provider: str = HAIKU_PROVIDER
    haiku_off: LaneTarget = LaneTarget(DEFAULT_PROVIDER, "gpt-5.4-mini")
    """The haiku target while the Haiku lane is off, and its fallback while it is on."""
    haiku_kilo_model_id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "haiku_kilo_model_id", resolve_haiku_model(self.haiku_kilo_model))

    @classmethod
    def from_settings(cls, settings: Settings) -> LaneSettings:
        """The defaults, with the Haiku lane switched by ``RELAYGATE_HAIKU_LANE`` (default on)."""
        return cls(haiku_lane=settings.get_bool("RELAYGATE_HAIKU_LANE", True))

    def target(self, lane: Lane) -> LaneTarget:
        """Where ``lane`` sends requests now."""
        if lane == "opus":
            return self.opus
        if lane == "sonnet":
            return self.sonnet
        if self.haiku_lane:
            return LaneTarget(self.haiku_provider, self.haiku_kilo_model_id)
        return self.haiku_off


def lane_of(model: str) -> Lane | None:
    """The lane a model name falls into: the first lane word it contains, any case."""
    match = _LANE_WORD.search(model)
    return None if match is None else _LANE_BY_WORD[match.group().lower()]


def route_model(
    model: str,
    *,
    lanes: LaneSettings,
    providers: Collection[str],
    default_provider: str = DEFAULT_PROVIDER,
) -> Route:
    """Route ``model`` (the name the client asked for) among the installed ``providers``.

    Raises :class:`InvalidRequestError` for an empty name or a ``provider/`` without a model, and
    :class:`NotFoundError` naming the provider and the installed ones when the route leads to a
    provider that is not installed.
    """
    if not model.strip():
        raise InvalidRequestError("model: must name a model", param="model")
    prefix, slash, rest = model.partition("/")
    if slash:
        if not prefix or not rest:
            raise InvalidRequestError(f'model: "{model}" must be "provider/model"', param="model")
        return _installed(Route(prefix.lower(), rest), model, providers)
    lane = lane_of(model)
    if lane is None:
        return _installed(Route(default_provider, model), model, providers)
    target = lanes.target(lane)
    fallback = None
    if lane == "haiku" and lanes.haiku_lane:
        off = lanes.haiku_off
        fallback = Route(off.provider, off.model, off.effort, lane)
    return _installed(Route(target.provider, target.model, target.effort, lane, fallback), model, providers)


def _installed(route: Route, model: str, providers: Collection[str]) -> Route:
    if route.provider in providers:
        return route
    installed = ", ".join(sorted(providers)) or "none"
    raise NotFoundError(
        f'model: "{model}" routes to provider "{route.provider}", which is not installed '
        f"(installed providers: {installed})",
        param="model",
    )
