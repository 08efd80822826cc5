"""``relaygate``: the command line.

- ``relaygate serve [--host --port]`` runs the bundled server;
- ``relaygate accounts add|list|import|switch|remove|refresh|quota|usage|strategy`` manages accounts
  (see :mod:`gateway_server.cli_accounts`);
- ``relaygate claude proxy|direct|show`` edits Claude Code's settings (:mod:`gateway_server.cli_claude`);
- ``relaygate settings haiku-model|haiku-models|model-map`` changes the lanes
  (:mod:`gateway_server.cli_settings`).
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack

import anyio

from gateway_core.errors import GatewayError
from gateway_core.plugins import PluginError
from gateway_core.settings import Settings
from gateway_server import cli_accounts, cli_claude, cli_settings
from gateway_server.config import ServerConfig


async def _check_startup(settings: Settings, config: ServerConfig) -> None:
    """Open the state store and build the gateway once before serving, so that a store that cannot be
    opened or a broken plugin stops ``serve`` with one clear line instead of a server traceback."""
    from gateway_server.app import build_gateway

    async with AsyncExitStack() as stack:
        await build_gateway(settings, config.home, stack)


# The youngest generation is collected after this many new container objects instead of 700.
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector cheap for a server whose requests are large JSON trees.

    Parsing one Claude Code body creates thousands of dicts and lists that die when the answer is
    sent. With Python's default threshold (700) nearly every request set off a young collection that
    walked every live request's tree and pushed it into older generations, to be walked again there:
    about a tenth of the server's CPU at 16 concurrent requests. Those trees are freed by reference
    counting, not by the collector, so it runs far less often here; what is alive at startup (modules,
    the app, the plugins) is frozen out of every later collection. Called by ``relaygate serve`` only:
    the collector is process-wide, and an application that embeds the library keeps its own settings.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway_server.app import create_app

    settings = Settings.from_environ()
    try:
        config = ServerConfig.from_settings(settings, host=args.host, port=args.port)
        config.check_exposure()
    except ValueError as exc:
        print(f"relaygate: {exc}", file=sys.stderr)
        return 2
    try:
        anyio.run(_check_startup, settings, config)
    except (GatewayError, PluginError) as exc:
        message = exc.message if isinstance(exc, GatewayError) else str(exc)
        print(f"relaygate: not starting: {message}", file=sys.stderr)
        return 1
    app = create_app(config=config, settings=settings)
    tune_garbage_collector()
    print(f"relaygate listening on {config.base_url}", file=sys.stderr)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http="httptools",
        ws="none",  # no WebSocket routes: the protocol's library is not even loaded (~0.6 MB RSS)
        log_level=args.log_level,
        access_log=False,
        server_header=False,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relaygate", description="A pluggable provider gateway.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway server")
    serve.add_argument("--host", default=None, help="bind address (default RELAYGATE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default RELAYGATE_PORT or 8081)")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(handler=_serve)
    cli_accounts.add_parser(commands)
    cli_claude.add_parser(commands)
    cli_settings.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
