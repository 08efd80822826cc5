"""``/settings/haiku-model``, ``/settings/haiku-models`` and ``/settings/model-map``: where the lanes go.

Changes are validated, persisted in the state store and applied to the gateway before the answer, so
the next request routes by them; a refused change (400 naming the field) leaves everything as it was.
The bodies come from :mod:`gateway_server.lanes_api`.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post

from gateway_core.lane_settings import HAIKU_KILO_MODEL_FIELD, PersistedLanes
from gateway_server import lanes_api
from gateway_server.admin_requests import read_body, required_string
from gateway_server.errors import admin_errors


def lanes_of(request: Request[Any, Any, Any]) -> PersistedLanes:
    lanes: PersistedLanes = request.app.state.lanes
    return lanes


class LaneSettingsController(Controller):
    """The Haiku lane's model and the model map."""

    path = "/settings"
    exception_handlers = {Exception: admin_errors}

    @get("/haiku-model")
    async def get_haiku_model(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return lanes_api.get_haiku_model(lanes_of(request))

    @post("/haiku-model", status_code=200)
    async def set_haiku_model(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        value = required_string(await read_body(request), HAIKU_KILO_MODEL_FIELD)
        return await lanes_api.set_haiku_model(lanes_of(request), value)

    @get("/haiku-models")
    async def haiku_models(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await lanes_api.haiku_models(lanes_of(request))

    @get("/model-map")
    async def get_model_map(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return lanes_api.get_model_map(lanes_of(request))

    @post("/model-map", status_code=200)
    async def set_model_map(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return await lanes_api.set_model_map(lanes_of(request), await read_body(request))
