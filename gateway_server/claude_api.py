"""What the ``/claude/config`` routes answer, without the web framework (DESIGN §6, §6.1, §8).

:class:`ClaudeConfig` runs the file logic of :mod:`gateway_server.claude_config` off the event loop
and keeps the proxy-mode :class:`~gateway_server.claude_config.Snapshot` in the state store (one per
settings path), so ``direct`` restores the file even after a restart, and the command line, running
in-process when no gateway answers, finds what the gateway wrote. The routes and ``relaygate claude``
both call it, so they print the same bodies.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from gateway_core.store import Clock, MemoryStore, Store, utcnow
from gateway_server import claude_config
from gateway_server.claude_config import ConfigFile, Plan, Snapshot, Written
from gateway_server.config import ServerConfig

SNAPSHOTS_SETTING = "claude.settings_snapshots"
"""The store setting holding ``{settings path: Snapshot}``."""

# Addresses a server binds to that a client on this machine reaches on loopback.
_LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "localhost": "127.0.0.1", "::": "::1"}


def gateway_base_url(config: ServerConfig, bound: tuple[str, int] | None = None) -> str:
    """The URL Claude Code should use: the bound address (``bound``, the server socket a request came
    in on, when known; else the configured one), on loopback when the server listens everywhere."""
    port = bound[1] if bound is not None else config.port
    host = _LOOPBACK_FOR.get(config.host, config.host)
    return ServerConfig(host=host, port=port).base_url


class ClaudeConfig:
    """Claude Code's settings file at ``path``, switched between proxy and direct mode."""

    def __init__(
        self, path: Path, store: Store | None = None, *, api_key: str | None = None, clock: Clock = utcnow
    ) -> None:
        self.path = path
        self._store: Store = MemoryStore() if store is None else store
        self._api_key = api_key
        self._clock = clock
        self._lock = anyio.Lock()

    async def show(self, base_url: str) -> dict[str, Any]:
        """``GET /claude/config``: the path, whether it exists, its settings (secrets masked) and mode."""
        current = await anyio.to_thread.run_sync(claude_config.read_config, self.path)
        return {
            "success": True,
            "path": str(self.path),
            "exists": current.exists,
            "valid": current.problem is None,
            "invalidReason": current.problem,
            "config": None if current.config is None else claude_config.masked(current.config),
            "mode": claude_config.mode_of(current.config, base_url),
            "baseUrl": base_url,
        }

    async def proxy(self, base_url: str) -> dict[str, Any]:
        """``POST /claude/config/proxy``: send Claude Code to the gateway at ``base_url``."""
        env = claude_config.proxy_env(base_url, self._api_key)
        async with self._lock:
            snapshots = await self._snapshots()
            stored = Snapshot.from_json(snapshots.get(str(self.path)))
            current = await anyio.to_thread.run_sync(claude_config.read_config, self.path)
            plan, snapshot = claude_config.plan_proxy(current, env, stored)
            if snapshot != stored:
                snapshots[str(self.path)] = snapshot.to_json()
                await self._store.set_setting(SNAPSHOTS_SETTING, snapshots)
            written = await self._commit(plan)
        message = f"Claude Code now uses relaygate at {base_url}"
        if not written.changed:
            message += " (it already did)"
        return self._answer(message, "proxy", plan, written)

    async def direct(self, base_url: str, api_key: str | None = None) -> dict[str, Any]:
        """``POST /claude/config/direct``: undo proxy mode; write ``api_key`` only when given."""
        proxy = claude_config.proxy_env(base_url, self._api_key)
        async with self._lock:
            snapshots = await self._snapshots()
            stored = Snapshot.from_json(snapshots.get(str(self.path)))
            current = await anyio.to_thread.run_sync(claude_config.read_config, self.path)
            plan = claude_config.plan_direct(current, stored, proxy=proxy, api_key=api_key)
            written = await self._commit(plan)
            if str(self.path) in snapshots:
                del snapshots[str(self.path)]
                await self._store.set_setting(SNAPSHOTS_SETTING, snapshots)
        if stored is not None and stored.original is not None and plan.content == stored.original.encode():
            message = "Claude Code settings restored as they were before proxy mode"
        elif written.changed:
            message = "Claude Code now talks to Anthropic directly"
        else:
            message = "Claude Code already talks to Anthropic directly; nothing to change"
        return self._answer(message, "direct", plan, written)

    async def _snapshots(self) -> dict[str, Any]:
        stored = await self._store.get_setting(SNAPSHOTS_SETTING)
        return dict(stored) if isinstance(stored, dict) else {}

    async def _commit(self, plan: Plan) -> Written:
        now: datetime = self._clock()
        return await anyio.to_thread.run_sync(claude_config.commit, plan, now)

    def _answer(self, message: str, mode: str, plan: Plan, written: Written) -> dict[str, Any]:
        current: ConfigFile = plan.current
        return {
            "success": True,
            "message": message,
            "path": str(self.path),
            "mode": mode,
            "changed": written.changed,
            "backup": None if written.backup is None else str(written.backup),
            "exists": current.exists or written.changed,
            "config": claude_config.masked(plan.config),
        }
