"""The shared runner of the fake upstreams: real HTTP servers on 127.0.0.1, an ephemeral port.

Every fake is an ``aiohttp.web`` application wrapped in a :class:`FakeServer`, which can run

- in the test's event loop: ``async with fake:`` (or ``async with run_fake_codex() as codex:``);
- in a background thread with its own loop, for sync tests: ``with fake.in_thread():``;
- as a standalone process for tests that start the gateway elsewhere:
  ``python -m tests.fakes.codex --port 0`` prints the base URL on its first line, then serves until
  SIGINT/SIGTERM (:func:`main`).

Each fake records every request it receives (:class:`RecordedRequest`) for assertions, and serves a
small control API under ``/_fake/`` (not recorded) so a test in another process can read the
recording and script answers: ``GET /_fake/requests``, ``POST /_fake/reset``, plus each fake's own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

HOST = "127.0.0.1"
CONTROL_PREFIX = "/_fake/"
# Streams that stall on purpose must not hold a test's teardown for aiohttp's default 60 s.
_SHUTDOWN_TIMEOUT = 0.2

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it. ``body`` is parsed JSON, a form dict, or ``None``."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw: bytes = field(repr=False)
    received_at: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["raw"] = self.raw.decode("utf-8", errors="replace")
        return data


def parse_body(content_type: str, raw: bytes) -> Any:
    """JSON or form bodies parsed; anything else (or unparsable) is ``None``."""
    if not raw:
        return None
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


class Recorder:
    """The requests a fake received, in order; safe to read from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []

    def add(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def all(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()


def json_response(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json",
    )


class FakeServer:
    """Base of every fake: builds the app, records requests, starts and stops the listener.

    Subclasses set ``prefix`` (the path ``base_url`` ends with) and add their routes in
    :meth:`add_routes`; control routes go in :meth:`add_control_routes`.
    """

    prefix = ""
    name = "fake"

    def __init__(self) -> None:
        self.recorder = Recorder()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # --- app -----------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def add_control_routes(self, app: web.Application) -> None:
        """Fake-specific ``/_fake/...`` routes; the base adds ``requests`` and ``reset``."""

    def reset(self) -> None:
        """Forget recorded requests and scripted state."""
        self.recorder.clear()

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record_middleware], client_max_size=64 * 1024 * 1024)
        self.add_routes(app)
        app.router.add_get(CONTROL_PREFIX + "requests", self._control_requests)
        app.router.add_post(CONTROL_PREFIX + "reset", self._control_reset)
        self.add_control_routes(app)
        return app

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(CONTROL_PREFIX):
            raw = await request.read()
            self.recorder.add(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=parse_body(request.content_type, raw),
                    raw=raw,
                    received_at=time.time(),
                )
            )
        return await handler(request)

    async def _control_requests(self, request: web.Request) -> web.Response:
        return json_response([r.to_json() for r in self.recorder.all()])

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return json_response({"ok": True})

    # --- recording -----------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (control calls excluded)."""
        return self.recorder.all()

    def requests_to(self, path_suffix: str, method: str | None = None) -> list[RecordedRequest]:
        """The requests whose path ends with ``path_suffix`` (and, if given, used ``method``)."""
        return [
            r
            for r in self.recorder.all()
            if r.path.endswith(path_suffix) and (method is None or r.method == method.upper())
        ]

    # --- addresses -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the server root."""
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """The root plus the fake's prefix: what the gateway's ``RELAYGATE_*`` variable should hold."""
        return self.url + self.prefix

    # --- lifecycle in the current loop ---------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError(f"{self.name} is already running")
        runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- lifecycle in a background thread ------------------------------------------------------------

    @contextlib.contextmanager
    def in_thread(self, port: int = 0) -> Iterator[Self]:
        """Serve from a daemon thread with its own event loop (for sync tests); stops on exit."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start(port))
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=run, name=f"{self.name}-server", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        self._thread, self._thread_loop = thread, loop
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = self._thread_loop = None

    # --- standalone ----------------------------------------------------------------------------------

    async def serve_forever(self, port: int = 0, *, announce: Callable[[str], None] | None = None) -> None:
        """Serve until SIGINT/SIGTERM; ``announce`` gets the base URL once the socket listens."""
        await self.start(port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            if announce is not None:
                announce(self.base_url)
            await stop.wait()
        finally:
            await self.stop()


def main(factory: Callable[[], FakeServer], argv: list[str] | None = None) -> None:
    """Entry point of ``python -m tests.fakes.<name> --port N``: prints the base URL, then serves."""
    fake = factory()
    parser = argparse.ArgumentParser(description=f"Run the {fake.name} on {HOST}.")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args(argv)

    def announce(url: str) -> None:
        sys.stdout.write(url + "\n")
        sys.stdout.flush()

    asyncio.run(fake.serve_forever(args.port, announce=announce))
