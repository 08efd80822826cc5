"""What ``relaygate claude`` and ``relaygate settings`` share: reaching the running gateway's admin API,
and reporting every failure as one line.

As for ``relaygate accounts`` (:mod:`gateway_server.cli_backends`): when a gateway answers at
``RELAYGATE_HOST:RELAYGATE_PORT`` the command goes through its admin API, so the gateway that routes
requests is the one that changes; otherwise it runs in-process on the same state store, and a gateway
started later picks the change up.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import orjson

from gateway_core.errors import GatewayError
from gateway_core.plugins import PluginError
from gateway_core.settings import Settings
from gateway_server.cli_backends import (
    CALL_TIMEOUT,
    CommandError,
    _gateway_answers,
    admin_request,
    gateway_url,
)


class AdminClient:
    """The admin API of a running gateway; every call returns the route's JSON body."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self.where = f"the gateway at {http.base_url}"

    async def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The body of a successful answer; the admin error message as :class:`CommandError` otherwise."""
        return await admin_request(
            self._http, self.where, method, path, body=None if body is None else dict(body)
        )


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[AdminClient | None]:
    """The running gateway's admin API, or ``None`` when no gateway answers."""
    api_key = settings.get("RELAYGATE_API_KEY")
    headers = {"x-api-key": api_key} if api_key else {}
    async with httpx.AsyncClient(
        base_url=gateway_url(settings), headers=headers, timeout=CALL_TIMEOUT, trust_env=False
    ) as http:
        if await _gateway_answers(http):
            yield AdminClient(http)
            return
    yield None


def emit(args: argparse.Namespace, body: Mapping[str, Any], text: Callable[[Mapping[str, Any]], str]) -> None:
    """The body as JSON with ``--json``, else as text for people."""
    if getattr(args, "json", False):
        print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    else:
        print(text(body))


def run_command(
    command: Callable[[argparse.Namespace, Settings], Awaitable[int]], args: argparse.Namespace
) -> int:
    """Run ``command`` in its own event loop; its exit status, or 1 with one line on stderr."""
    try:
        return anyio.run(command, args, Settings.from_environ())
    except (CommandError, GatewayError) as exc:
        print(f"relaygate: {exc.message}", file=sys.stderr)
    except (PluginError, ValueError) as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("relaygate: cancelled", file=sys.stderr)
    except Exception as exc:  # a bug or an unforeseen failure: still one line, not a traceback
        print(f"relaygate: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1


def json_flag() -> argparse.ArgumentParser:
    """A parent parser adding ``--json``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the admin API's JSON instead of text")
    return common
