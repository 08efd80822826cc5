"""``relaygate settings haiku-model|haiku-models|model-map``: where the lanes go, from the shell.

Through the running gateway's ``/settings/*`` routes when one answers, so the next request uses the
change; else in-process on the gateway the server would build, persisting into the state store for
the next start. Examples::

    relaygate settings haiku-model minimax-2.5
    relaygate settings model-map opus codex/gpt-5.5 --effort xhigh
    relaygate settings model-map haiku default
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Protocol

from gateway_core.lane_settings import EFFORTS, PersistedLanes
from gateway_core.routing import LANES
from gateway_core.settings import Settings
from gateway_server import lanes_api
from gateway_server.cli_admin import AdminClient, emit, json_flag, run_command, running_gateway
from gateway_server.cli_output import table
from gateway_server.config import ServerConfig

RESET = "default"
"""The target word that puts a lane back to its default."""


class LaneSettingsApi(Protocol):
    """The ``/settings`` lane routes; each returns the route's JSON body."""

    async def haiku_model(self) -> dict[str, Any]: ...
    async def set_haiku_model(self, value: str) -> dict[str, Any]: ...
    async def haiku_models(self) -> dict[str, Any]: ...
    async def model_map(self) -> dict[str, Any]: ...
    async def set_model_map(self, body: dict[str, Any]) -> dict[str, Any]: ...


class RemoteLaneSettings:
    def __init__(self, admin: AdminClient) -> None:
        self._admin = admin

    async def haiku_model(self) -> dict[str, Any]:
        return await self._admin.call("GET", "/settings/haiku-model")

    async def set_haiku_model(self, value: str) -> dict[str, Any]:
        return await self._admin.call("POST", "/settings/haiku-model", {"haikuKiloModel": value})

    async def haiku_models(self) -> dict[str, Any]:
        return await self._admin.call("GET", "/settings/haiku-models")

    async def model_map(self) -> dict[str, Any]:
        return await self._admin.call("GET", "/settings/model-map")

    async def set_model_map(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._admin.call("POST", "/settings/model-map", body)


class LocalLaneSettings:
    def __init__(self, lanes: PersistedLanes) -> None:
        self._lanes = lanes

    async def haiku_model(self) -> dict[str, Any]:
        return lanes_api.get_haiku_model(self._lanes)

    async def set_haiku_model(self, value: str) -> dict[str, Any]:
        return await lanes_api.set_haiku_model(self._lanes, value)

    async def haiku_models(self) -> dict[str, Any]:
        return await lanes_api.haiku_models(self._lanes)

    async def model_map(self) -> dict[str, Any]:
        return lanes_api.get_model_map(self._lanes)

    async def set_model_map(self, body: dict[str, Any]) -> dict[str, Any]:
        return await lanes_api.set_model_map(self._lanes, body)


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[LaneSettingsApi]:
    """The running gateway's lane settings, or those of an in-process gateway on the same store."""
    async with running_gateway(settings) as admin:
        if admin is not None:
            yield RemoteLaneSettings(admin)
            return
    from gateway_server.app import build_gateway

    async with AsyncExitStack() as stack:
        gateway, store = await build_gateway(settings, ServerConfig.from_settings(settings).home, stack)
        lanes = PersistedLanes(gateway, store)
        await lanes.load()
        yield LocalLaneSettings(lanes)


# --- text ---------------------------------------------------------------------------------------------


def format_haiku_model(body: Mapping[str, Any]) -> str:
    return str(body.get("message") or f"Haiku lane model: {body.get('haikuKiloModel')}")


def format_haiku_models(body: Mapping[str, Any]) -> str:
    current = body.get("currentModel")
    rows = [
        [
            "*" if model.get("id") == current else " ",
            str(model.get("id")),
            str(model.get("name") or ""),
            str(model.get("contextWindow") or ""),
        ]
        for model in body.get("models") or []
    ]
    aliases = ", ".join(f"{alias} = {model}" for alias, model in (body.get("aliases") or {}).items())
    listing = table((" ", "MODEL", "NAME", "CONTEXT"), rows)
    return f"{listing}\n\n* = current ({body.get('current')}); aliases: {aliases}"


def format_model_map(body: Mapping[str, Any]) -> str:
    model_map = body.get("modelMap") or {}
    rows = []
    for lane in LANES:
        target = model_map.get(lane) or {}
        fallback = target.get("fallback")
        rows.append(
            [
                lane,
                f"{target.get('provider')}/{target.get('model')}",
                str(target.get("effort") or "-"),
                f"{fallback['provider']}/{fallback['model']}" if fallback else "-",
            ]
        )
    lines = [table(("LANE", "TARGET", "EFFORT", "FALLBACK"), rows)]
    if body.get("message"):
        lines.insert(0, str(body["message"]))
    if not body.get("haikuLane", True):
        lines.append("(the Haiku lane is off: haiku does not go to Kilo)")
    return "\n\n".join(lines)


# --- wiring -------------------------------------------------------------------------------------------


def _map_entry(target: str, effort: str | None) -> dict[str, Any] | None:
    if target == RESET:
        return None
    provider, _, model = target.partition("/")
    return {"provider": provider, "model": model, "effort": effort}


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with connect(settings) as lanes:
        if args.settings_command == "haiku-model":
            body = await (lanes.haiku_model() if args.value is None else lanes.set_haiku_model(args.value))
            emit(args, body, format_haiku_model)
        elif args.settings_command == "haiku-models":
            emit(args, await lanes.haiku_models(), format_haiku_models)
        elif args.lane is None:
            emit(args, await lanes.model_map(), format_model_map)
        else:
            entry = _map_entry(args.target, args.effort)
            emit(args, await lanes.set_model_map({args.lane: entry}), format_model_map)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one ``relaygate settings`` command; the exit status."""
    if getattr(args, "lane", None) is not None and args.target is None:
        print(
            "relaygate: model-map needs a target after the lane (provider/model or default)", file=sys.stderr
        )
        return 2
    return run_command(_run, args)


def add_parser(commands: Any) -> None:
    """Add ``settings`` and its subcommands to the top-level ``commands`` (``add_subparsers()``)."""
    common = json_flag()
    settings = commands.add_parser(
        "settings", help="show or change where the model lanes go", description=__doc__.split("\n\n")[0]
    )
    sub = settings.add_subparsers(dest="settings_command", required=True, metavar="COMMAND")
    haiku = sub.add_parser("haiku-model", parents=[common], help="show or set the Haiku lane's Kilo model")
    haiku.add_argument("value", nargs="?", default=None, help="kimi-k2.5, minimax-2.5 or a vendor/model id")
    sub.add_parser("haiku-models", parents=[common], help="list the models the Haiku lane can use")
    model_map = sub.add_parser("model-map", parents=[common], help="show the lanes, or set one")
    model_map.add_argument("lane", nargs="?", default=None, choices=LANES)
    model_map.add_argument("target", nargs="?", default=None, help=f"provider/model, or {RESET!r}")
    model_map.add_argument("--effort", default=None, choices=EFFORTS, help="the lane's reasoning effort")
    settings.set_defaults(handler=run)
