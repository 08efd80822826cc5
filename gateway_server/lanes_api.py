"""What the lane settings routes answer, without the web framework (DESIGN §4, §6, §6.1).

``/settings/haiku-model``, ``/settings/haiku-models`` and ``/settings/model-map`` all work on the
gateway's :class:`~gateway_core.lane_settings.PersistedLanes`; ``relaygate settings`` calls the same
functions when no gateway is running, so both print the same bodies. How the haiku entry of the model
map and ``haikuKiloModel`` relate is documented in :mod:`gateway_core.lane_settings`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from gateway_core.lane_settings import MODEL_MAP_FIELD, PersistedLanes, effective_model_map, target_json
from gateway_core.models import ModelInfo
from gateway_core.routing import HAIKU_MODEL_ALIASES, LaneSettings, resolve_haiku_model

logger = logging.getLogger(__name__)

HAIKU_MODELS_TIMEOUT = 10.0
"""Seconds ``GET /settings/haiku-models`` waits for the Haiku lane provider's model list."""


def get_haiku_model(lanes: PersistedLanes) -> dict[str, Any]:
    """``GET /settings/haiku-model``: the value as it was set (default ``kimi-k2.5``)."""
    return {"success": True, "haikuKiloModel": lanes.haiku_kilo_model}


def _haiku_note(lanes: PersistedLanes) -> str:
    """Why ``haikuKiloModel`` does not serve haiku requests right now (``RELAYGATE_HAIKU_LANE=off``)."""
    settings = lanes.lanes
    if settings.haiku_lane or lanes.choices.haiku is not None:
        return ""
    target = settings.target("haiku")
    return f"; the Haiku lane is off, so haiku requests go to {target.provider}/{target.model}"


async def set_haiku_model(lanes: PersistedLanes, value: object) -> dict[str, Any]:
    """``POST /settings/haiku-model``: a short alias or a full ``vendor/model`` id; the next haiku
    request uses it."""
    settings = await lanes.set_haiku_kilo_model(value)
    model = settings.haiku_kilo_model_id
    return {
        "success": True,
        "message": f"Haiku lane model set to {lanes.haiku_kilo_model} ({model}){_haiku_note(lanes)}",
        "haikuKiloModel": lanes.haiku_kilo_model,
        "model": model,
    }


def _render_model(info: ModelInfo) -> dict[str, Any]:
    model: dict[str, Any] = {"id": info.id}
    if info.display_name is not None:
        model["name"] = info.display_name
    if info.context_window is not None:
        model["contextWindow"] = info.context_window
    return model


def builtin_haiku_models() -> list[dict[str, Any]]:
    """The models the short aliases stand for: the list when the provider cannot give one."""
    return [{"id": model, "name": alias} for alias, model in HAIKU_MODEL_ALIASES.items()]


async def _provider_models(lanes: PersistedLanes) -> Sequence[ModelInfo] | None:
    provider = lanes.gateway.providers.get(lanes.base.haiku_provider)
    if provider is None:
        return None
    with anyio.move_on_after(HAIKU_MODELS_TIMEOUT):
        try:
            return await provider.models()
        except Exception:
            logger.warning('provider "%s" could not list its models', provider.name, exc_info=True)
            return None
    logger.warning('provider "%s" took too long to list its models', provider.name)
    return None


async def haiku_models(lanes: PersistedLanes) -> dict[str, Any]:
    """``GET /settings/haiku-models``: the models the Haiku lane can use — the Haiku lane provider's
    list (it caches it and has its own offline fallback), or the aliases' models when that provider is
    not installed or fails."""
    listed = await _provider_models(lanes)
    models = [_render_model(info) for info in listed] if listed else builtin_haiku_models()
    return {
        "success": True,
        "models": models,
        "source": "provider" if listed else "builtin",
        "provider": lanes.base.haiku_provider,
        "current": lanes.haiku_kilo_model,
        "currentModel": resolve_haiku_model(lanes.haiku_kilo_model),
        "aliases": dict(HAIKU_MODEL_ALIASES),
    }


def get_model_map(lanes: PersistedLanes) -> dict[str, Any]:
    """``GET /settings/model-map``: where each lane goes now (the effective map, defaults included)."""
    settings = lanes.lanes
    return {
        "success": True,
        MODEL_MAP_FIELD: effective_model_map(settings),
        "haikuLane": settings.haiku_lane,
        "haikuKiloModel": lanes.haiku_kilo_model,
        "providers": sorted(lanes.gateway.providers),
    }


async def set_model_map(lanes: PersistedLanes, body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /settings/model-map``: ``{"opus": {"provider", "model", "effort"?}, …}`` or the same under
    ``"modelMap"``; lanes left out keep their target, ``null`` resets one to its default."""
    if MODEL_MAP_FIELD in body:
        settings = await lanes.update_model_map(body[MODEL_MAP_FIELD], path=MODEL_MAP_FIELD)
    else:
        settings = await lanes.update_model_map(dict(body))
    summary = ", ".join(
        f"{lane} -> {target['provider']}/{target['model']}" for lane, target in _targets(settings).items()
    )
    return {**get_model_map(lanes), "message": f"Model map updated: {summary}{_haiku_note(lanes)}"}


def _targets(settings: LaneSettings) -> dict[str, dict[str, Any]]:
    return {lane: target_json(settings.target(lane)) for lane in ("opus", "sonnet", "haiku")}
