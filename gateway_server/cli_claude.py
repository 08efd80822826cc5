"""``relaygate claude proxy|direct|show``: point Claude Code at the gateway, or back at Anthropic.

Through the running gateway's ``/claude/config`` routes when one answers (it knows its bound address
and the settings file it was configured with), else in-process: the file named by
``RELAYGATE_CLAUDE_SETTINGS``, the address ``relaygate serve`` would bind, and the proxy-mode snapshot
in the state store, so ``direct`` restores the file whichever of the two ran ``proxy``.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

from gateway_core.settings import Settings
from gateway_server.claude_api import ClaudeConfig, gateway_base_url
from gateway_server.claude_config import BASE_URL, settings_path
from gateway_server.cli_admin import AdminClient, emit, json_flag, run_command, running_gateway
from gateway_server.config import ServerConfig


class Claude(Protocol):
    """The ``/claude/config`` operations; each returns the route's JSON body."""

    async def show(self) -> dict[str, Any]: ...
    async def proxy(self) -> dict[str, Any]: ...
    async def direct(self, api_key: str | None) -> dict[str, Any]: ...


class RemoteClaude:
    def __init__(self, admin: AdminClient) -> None:
        self._admin = admin

    async def show(self) -> dict[str, Any]:
        return await self._admin.call("GET", "/claude/config")

    async def proxy(self) -> dict[str, Any]:
        return await self._admin.call("POST", "/claude/config/proxy", {})

    async def direct(self, api_key: str | None) -> dict[str, Any]:
        return await self._admin.call(
            "POST", "/claude/config/direct", {} if api_key is None else {"apiKey": api_key}
        )


class LocalClaude:
    def __init__(self, claude: ClaudeConfig, base_url: str) -> None:
        self._claude = claude
        self._base_url = base_url

    async def show(self) -> dict[str, Any]:
        return await self._claude.show(self._base_url)

    async def proxy(self) -> dict[str, Any]:
        return await self._claude.proxy(self._base_url)

    async def direct(self, api_key: str | None) -> dict[str, Any]:
        return await self._claude.direct(self._base_url, api_key)


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[Claude]:
    """The running gateway's ``/claude/config``, or the same operations in this process."""
    async with running_gateway(settings) as admin:
        if admin is not None:
            yield RemoteClaude(admin)
            return
    from gateway_server.app import open_state_store

    config = ServerConfig.from_settings(settings)
    store = await open_state_store(config.home)
    try:
        claude = ClaudeConfig(settings_path(settings), store, api_key=config.api_key)
        yield LocalClaude(claude, gateway_base_url(config))
    finally:
        await store.aclose()


# --- text ---------------------------------------------------------------------------------------------


def format_show(body: Mapping[str, Any]) -> str:
    """``GET /claude/config`` for people: the file, its mode and its ``env``."""
    path = body.get("path")
    if not body.get("exists"):
        return f"{path}: no such file (Claude Code talks to Anthropic directly)\nMode: direct"
    if not body.get("valid", True):
        return f"{path}: {body.get('invalidReason')}\nrelaygate will not edit it until it is valid JSON."
    config = body.get("config") or {}
    env = config.get("env") or {}
    lines = [f"{path}", f"Mode: {body.get('mode')}"]
    if body.get("mode") != "proxy" and env.get(BASE_URL):
        lines.append(f"(ANTHROPIC_BASE_URL points elsewhere; this gateway is {body.get('baseUrl')})")
    if env:
        lines.append("env:")
        lines.extend(f"  {name}={value}" for name, value in env.items())
    return "\n".join(lines)


def format_change(body: Mapping[str, Any]) -> str:
    """``POST /claude/config/proxy|direct``: what happened and where the old file went."""
    lines = [str(body.get("message", "done")), f"Settings file: {body.get('path')}"]
    if body.get("backup"):
        lines.append(f"Previous file backed up to {body['backup']}")
    return "\n".join(lines)


# --- wiring -------------------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with connect(settings) as claude:
        if args.claude_command == "show":
            emit(args, await claude.show(), format_show)
        elif args.claude_command == "proxy":
            emit(args, await claude.proxy(), format_change)
        else:
            emit(args, await claude.direct(args.api_key), format_change)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one ``relaygate claude`` command; the exit status."""
    return run_command(_run, args)


def add_parser(commands: Any) -> None:
    """Add ``claude`` and its subcommands to the top-level ``commands`` (``add_subparsers()``)."""
    common = json_flag()
    claude = commands.add_parser(
        "claude",
        help="point Claude Code at relaygate, or back at Anthropic",
        description="Edit Claude Code's settings file "
        "(RELAYGATE_CLAUDE_SETTINGS, default ~/.claude/settings.json).",
    )
    sub = claude.add_subparsers(dest="claude_command", required=True, metavar="COMMAND")
    sub.add_parser("show", parents=[common], help="show the settings file and whether it uses relaygate")
    sub.add_parser("proxy", parents=[common], help="send Claude Code's requests to relaygate")
    direct = sub.add_parser(
        "direct", parents=[common], help="undo proxy: Claude Code talks to Anthropic again"
    )
    direct.add_argument("--api-key", default=None, help="also write this ANTHROPIC_API_KEY")
    claude.set_defaults(handler=run)
