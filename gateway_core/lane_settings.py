"""The lane table a user changed at runtime, validated, persisted and applied (DESIGN §4).

Two settings change where the lanes go: ``haikuKiloModel`` (the Haiku lane's Kilo model) and the model
map (``opus``, ``sonnet``, ``haiku`` -> provider, model, effort). What the user chose is a
:class:`LaneChoices`: only the values they set, so a default that changes in a later release still
reaches everyone who never touched it. It is stored as one JSON setting (:data:`LANES_SETTING`) and
applied on top of the gateway's *base* lanes — the defaults with ``RELAYGATE_HAIKU_LANE`` applied —
to give the :class:`~gateway_core.routing.LaneSettings` in force.

How the haiku entry of the model map relates to ``haikuKiloModel``:

- the haiku lane is the Haiku lane (Kilo) by default: its model *is* ``haikuKiloModel``, so a haiku
  entry naming the Haiku lane's provider (``kilo``) sets ``haikuKiloModel`` (aliases accepted) and
  nothing else; it has no effort of its own;
- a haiku entry naming any other provider replaces the Haiku lane outright: haiku goes there, with no
  Kilo and no fallback, whatever ``RELAYGATE_HAIKU_LANE`` says (the user named the target);
- setting ``haikuKiloModel`` (``POST /settings/haiku-model``) brings the Haiku lane back: it clears
  such a replacement, so the next haiku request goes to Kilo with that model;
- with the Haiku lane off (``RELAYGATE_HAIKU_LANE=off``) and no replacement, haiku goes to codex
  ``gpt-5.4-mini``; ``haikuKiloModel`` is kept and shown, and applies again once the lane is on.

A ``null`` entry resets a lane to its default (for haiku: the Haiku lane). :class:`PersistedLanes`
ties this to a gateway and a store: every change is validated, stored, then applied, so the next
request uses it and a refused change leaves both the store and the gateway as they were.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, get_args

import anyio

from gateway_core.errors import GatewayError, InvalidRequestError
from gateway_core.formats._validate import expect_object, fail, join
from gateway_core.gateway import Gateway
from gateway_core.models import Effort
from gateway_core.routing import (
    HAIKU_MODEL_ALIASES,
    LANES,
    Lane,
    LaneSettings,
    LaneTarget,
    resolve_haiku_model,
)
from gateway_core.store import Store

logger = logging.getLogger(__name__)

LANES_SETTING = "routing.lanes"
"""The store setting holding :meth:`LaneChoices.to_json`."""

HAIKU_KILO_MODEL_FIELD = "haikuKiloModel"
MODEL_MAP_FIELD = "modelMap"

EFFORTS: tuple[str, ...] = get_args(Effort)
"""The reasoning efforts a lane may carry (``null`` leaves it to the request)."""

_EFFORT_BY_NAME: dict[str, Effort] = {effort: effort for effort in get_args(Effort)}

_MAX_MODEL = 200


@dataclass(frozen=True, slots=True)
class LaneChoices:
    """What the user set; ``None`` everywhere means "the gateway's default"."""

    haiku_kilo_model: str | None = None
    """``haikuKiloModel`` exactly as set (an alias or a full id)."""
    opus: LaneTarget | None = None
    sonnet: LaneTarget | None = None
    haiku: LaneTarget | None = None
    """A haiku target on a provider other than the Haiku lane's: replaces the Haiku lane."""

    def apply(self, base: LaneSettings) -> LaneSettings:
        """The lanes in force: ``base`` with these choices on top."""
        lanes = dataclasses.replace(
            base,
            opus=self.opus or base.opus,
            sonnet=self.sonnet or base.sonnet,
            haiku_kilo_model=self.haiku_kilo_model or base.haiku_kilo_model,
        )
        if self.haiku is not None:
            lanes = dataclasses.replace(lanes, haiku_lane=False, haiku_off=self.haiku)
        return lanes

    def to_json(self) -> dict[str, Any]:
        """The stored form: ``{"haikuKiloModel"?: str, "modelMap"?: {lane: {provider, model, effort}}}``."""
        stored: dict[str, Any] = {}
        if self.haiku_kilo_model is not None:
            stored[HAIKU_KILO_MODEL_FIELD] = self.haiku_kilo_model
        model_map = {lane: target_json(target) for lane in LANES if (target := self.target(lane)) is not None}
        if model_map:
            stored[MODEL_MAP_FIELD] = model_map
        return stored

    @classmethod
    def from_json(cls, value: object, *, haiku_provider: str) -> LaneChoices:
        """Read the stored form back; raises :class:`InvalidRequestError` when it is not one."""
        stored = expect_object(value, LANES_SETTING)
        choices = cls()
        if stored.get(HAIKU_KILO_MODEL_FIELD) is not None:
            choices = choices.with_haiku_kilo_model(stored[HAIKU_KILO_MODEL_FIELD])
        if stored.get(MODEL_MAP_FIELD) is not None:
            choices = choices.with_model_map(
                stored[MODEL_MAP_FIELD], providers=None, haiku_provider=haiku_provider, path=MODEL_MAP_FIELD
            )
        return choices

    def target(self, lane: Lane) -> LaneTarget | None:
        """The target the user set for ``lane`` (haiku: only a replacement of the Haiku lane)."""
        return self.opus if lane == "opus" else self.sonnet if lane == "sonnet" else self.haiku

    def with_haiku_kilo_model(self, value: object) -> LaneChoices:
        """``haikuKiloModel`` set to ``value`` (validated), the Haiku lane back in charge of haiku."""
        resolve_haiku_model(value)  # refuses anything but an alias or a vendor/model id string
        return dataclasses.replace(self, haiku_kilo_model=str(value), haiku=None)

    def with_model_map(
        self, value: object, *, providers: Collection[str] | None, haiku_provider: str, path: str = ""
    ) -> LaneChoices:
        """These choices with the lanes named in ``value`` replaced; lanes it leaves out are kept.

        ``value`` maps a lane to ``{"provider", "model", "effort"?}``, to ``"provider/model"``, or to
        ``null`` (back to the default). ``providers`` are the installed names a provider must be one of
        (``None``: not checked). Every mistake is an :class:`InvalidRequestError` naming the field,
        e.g. ``modelMap.opus.effort``.
        """
        entries = expect_object(value, path)
        for name in entries:
            if name not in LANES:
                fail(join(path, name), f"unknown lane; the lanes are {', '.join(LANES)}")
        choices = self
        for lane in LANES:
            if lane not in entries:
                continue
            lane_path = join(path, lane)
            target = parse_target(entries[lane], lane_path, providers)
            if lane == "haiku" and target is not None and target.provider == haiku_provider:
                if target.effort is not None:
                    fail(
                        join(lane_path, "effort"),
                        f'the Haiku lane ("{haiku_provider}") has no effort setting; send null',
                    )
                choices = dataclasses.replace(
                    choices, haiku_kilo_model=_haiku_model(target.model, join(lane_path, "model")), haiku=None
                )
            elif lane == "opus":
                choices = dataclasses.replace(choices, opus=target)
            elif lane == "sonnet":
                choices = dataclasses.replace(choices, sonnet=target)
            else:
                choices = dataclasses.replace(choices, haiku=target)
        return choices


def target_json(target: LaneTarget) -> dict[str, Any]:
    """A lane target as the admin API and the store write it."""
    return {"provider": target.provider, "model": target.model, "effort": target.effort}


def parse_target(value: object, path: str, providers: Collection[str] | None) -> LaneTarget | None:
    """One model map entry: ``{"provider", "model", "effort"?}``, ``"provider/model"`` or ``null``.

    Fields other than those three are ignored (a ``GET /settings/model-map`` body posted back works).
    """
    if value is None:
        return None
    if isinstance(value, str):
        provider, slash, model = value.partition("/")
        if not slash or not provider or not model:
            fail(path, f'expected "provider/model" or an object {{provider, model, effort}}, got {value!r}')
        entry: Mapping[str, Any] = {"provider": provider, "model": model}
    elif isinstance(value, dict):
        entry = value
    else:
        fail(path, 'expected an object {provider, model, effort}, a "provider/model" string or null')
    provider = _required_name(entry, "provider", path)
    if providers is not None and provider not in providers:
        installed = ", ".join(sorted(providers)) or "none"
        fail(join(path, "provider"), f'unknown provider "{provider}" (installed providers: {installed})')
    model = _required_name(entry, "model", path)
    if len(model) > _MAX_MODEL or any(char.isspace() or not char.isprintable() for char in model):
        fail(join(path, "model"), f"{model!r} is not a model id")
    return LaneTarget(provider, model, _effort(entry.get("effort"), join(path, "effort")))


def _required_name(entry: Mapping[str, Any], name: str, path: str) -> str:
    field_path = join(path, name)
    value = entry.get(name)
    if value is None:
        fail(field_path, "required field is missing")
    if not isinstance(value, str):
        fail(field_path, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        fail(field_path, "must not be empty")
    return value.strip()


def _effort(value: object, path: str) -> Effort | None:
    if value is None:
        return None
    effort = _EFFORT_BY_NAME.get(value) if isinstance(value, str) else None
    if effort is None:
        fail(path, f"expected one of {', '.join(EFFORTS)} or null, got {value!r}")
    return effort


def _haiku_model(value: str, path: str) -> str:
    try:
        resolve_haiku_model(value)
    except InvalidRequestError:
        known = ", ".join(HAIKU_MODEL_ALIASES)
        fail(path, f"{value!r} is not a model id; use one of {known} or a full vendor/model id")
    return value


def effective_model_map(lanes: LaneSettings) -> dict[str, dict[str, Any]]:
    """Where each lane goes now, e.g. ``{"haiku": {"provider": "kilo", "model":
    "moonshotai/kimi-k2.5:free", "effort": null, "fallback": {"provider": "codex", …}}}``."""
    model_map: dict[str, dict[str, Any]] = {lane: target_json(lanes.target(lane)) for lane in LANES}
    fallback = target_json(lanes.haiku_off) if lanes.haiku_lane else None
    model_map["haiku"]["fallback"] = fallback
    return model_map


class PersistedLanes:
    """A gateway's lane choices, kept in a store.

    ``load()`` applies what was stored (once, at start); each setter validates the change, stores it,
    then hands the gateway its new lanes. Changes are serialised, so two concurrent updates never lose
    one another. Without a store, changes last as long as the object.
    """

    def __init__(
        self, gateway: Gateway, store: Store | None = None, *, base: LaneSettings | None = None
    ) -> None:
        self.gateway = gateway
        self._store = store
        self.base = gateway.lanes if base is None else base
        """The lanes without any choice: the defaults with ``RELAYGATE_HAIKU_LANE`` applied."""
        self._choices = LaneChoices()
        self._lock = anyio.Lock()

    @property
    def choices(self) -> LaneChoices:
        return self._choices

    @property
    def lanes(self) -> LaneSettings:
        """The lanes in force (those the gateway routes with)."""
        return self.gateway.lanes

    @property
    def haiku_kilo_model(self) -> str:
        """``haikuKiloModel`` as set, or the base lanes' (``kimi-k2.5`` by default)."""
        return self._choices.haiku_kilo_model or self.base.haiku_kilo_model

    async def load(self) -> LaneSettings:
        """Apply the stored choices; a stored value that no longer reads is logged and ignored (the
        defaults apply), so the gateway still starts. A store that fails is the caller's error."""
        async with self._lock:
            stored = None if self._store is None else await self._store.get_setting(LANES_SETTING)
            if stored is not None:
                try:
                    self._choices = LaneChoices.from_json(stored, haiku_provider=self.base.haiku_provider)
                except GatewayError as exc:
                    logger.warning("ignoring the stored lane settings: %s", exc.message)
            self.gateway.lanes = self._choices.apply(self.base)
            return self.gateway.lanes

    async def set_haiku_kilo_model(self, value: object) -> LaneSettings:
        """Set ``haikuKiloModel`` (see :meth:`LaneChoices.with_haiku_kilo_model`)."""
        async with self._lock:
            return await self._commit(self._choices.with_haiku_kilo_model(value))

    async def update_model_map(self, value: object, *, path: str = "") -> LaneSettings:
        """Replace the lanes ``value`` names (see :meth:`LaneChoices.with_model_map`); the provider of
        each must be installed in the gateway."""
        async with self._lock:
            choices = self._choices.with_model_map(
                value, providers=self.gateway.providers, haiku_provider=self.base.haiku_provider, path=path
            )
            return await self._commit(choices)

    async def _commit(self, choices: LaneChoices) -> LaneSettings:
        lanes = choices.apply(self.base)
        if self._store is not None:
            await self._store.set_setting(LANES_SETTING, choices.to_json())
        self._choices = choices
        self.gateway.lanes = lanes
        return lanes
