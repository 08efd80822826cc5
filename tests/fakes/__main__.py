"""``python -m tests.fakes``: the three linked fakes in one process, for a gateway started elsewhere.

Prints one JSON line with the environment to give the gateway (``RELAYGATE_CODEX_BASE_URL``,
``RELAYGATE_OAUTH_ISSUER``, ``RELAYGATE_KILO_BASE_URL``), then serves until SIGINT/SIGTERM. Each fake's
``/_fake/`` control API scripts it from the test.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import orjson

from tests.fakes import linked_fakes


async def _serve() -> None:
    up = linked_fakes()
    async with up.codex, up.oauth, up.kilo:
        sys.stdout.write(orjson.dumps(up.env()).decode() + "\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(_serve())
