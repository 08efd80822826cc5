"""The load generator: its own process (``python -m bench.loadgen``), an aiohttp client on uvloop.

It reads one JSON command per line on stdin and answers each with one JSON line on stdout, so the
orchestrator can pin it to a core once and drive every measurement through it. Commands:

- ``closed``: ``concurrency`` workers send requests back to back until ``count`` requests were sent or
  ``seconds`` passed; requests in flight then have ``drain`` more seconds, after which they are cut off;
- ``open``: requests start at a fixed ``rate`` for ``seconds``, whatever the answers do; latency is
  counted from the planned start, so a slow server cannot hide its queue (no coordinated omission);
  at most ``max_in_flight`` requests are outstanding, the others are counted as ``dropped``; the last
  ones have ``drain`` seconds to finish;
- ``hold``: open ``streams`` streams at once, wait (at most ``seconds``) until each has sent its first
  body bytes, sample the memory of ``pids`` while they are open, release the mock upstream
  (``release_url``), read them to the end (at most ``drain`` seconds);
- ``probe``: one request; its status, the ``x-relaygate-*`` headers and the start of its body.

A request is a ``url``, a list of ``bodies`` (files, sent in turn) and ``headers``. An answer counts as an
error unless its status is 200 and its body contains ``expect``; one cut off at a time bound is neither
an error nor a latency sample (``cut``). Every loop is bounded in count and time; the client talks to
whatever URL it is given, which the bench only ever sets to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import procstat

TAIL = 256
"""Bytes of a streamed answer kept for the error message."""


@dataclass(slots=True)
class Spec:
    """What one request of a measurement looks like."""

    url: str
    bodies: list[bytes]
    headers: dict[str, str]
    stream: bool
    expect: bytes
    timeout: float

    @classmethod
    def of(cls, command: Mapping[str, Any], cache: dict[str, bytes]) -> Spec:
        bodies = []
        for path in command["bodies"]:
            if path not in cache:
                cache[path] = Path(path).read_bytes()
            bodies.append(cache[path])
        return cls(
            url=command["url"],
            bodies=bodies,
            headers=dict(command.get("headers", {})),
            stream=bool(command.get("stream", False)),
            expect=str(command.get("expect", "")).encode(),
            timeout=float(command.get("timeout", 60.0)),
        )


@dataclass(slots=True)
class Tally:
    """Latencies (ms) of the successful requests, and the failures."""

    latency: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    sent: int = 0

    def fail(self, reason: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = reason[:300]

    def result(self, elapsed: float, **extra: Any) -> dict[str, Any]:
        return {
            "ok": len(self.latency),
            "errors": self.errors,
            "first_error": self.first_error,
            "sent": self.sent,
            "cut": self.sent - len(self.latency) - self.errors,
            "elapsed": elapsed,
            "latency": [round(x, 4) for x in self.latency],
            "ttfb": [round(x, 4) for x in self.ttfb],
            **extra,
        }


async def one_request(
    session: aiohttp.ClientSession,
    spec: Spec,
    index: int,
    tally: Tally,
    started: float | None = None,
    first_byte: asyncio.Event | None = None,
    wait_before_reading: asyncio.Event | None = None,
) -> None:
    """Send one request and read its answer to the end; record its latency or its failure."""
    begin = time.perf_counter() if started is None else started
    tally.sent += 1
    body = spec.bodies[index % len(spec.bodies)]
    try:
        async with asyncio.timeout(spec.timeout):
            async with session.post(spec.url, data=body, headers=spec.headers) as response:
                tail = b""
                ttfb: float | None = None
                if spec.stream:
                    seen = False
                    async for chunk in response.content.iter_any():
                        if ttfb is None:
                            ttfb = time.perf_counter()
                            if first_byte is not None:
                                first_byte.set()
                            if wait_before_reading is not None:
                                await wait_before_reading.wait()
                        # The marker may straddle two chunks: look in the previous tail plus this chunk.
                        seen = seen or spec.expect in tail + chunk
                        tail = (tail + chunk)[-TAIL:]
                else:
                    tail = await response.read()
                    seen = spec.expect in tail
                end = time.perf_counter()
                if response.status != 200:
                    tally.fail(f"HTTP {response.status}: {tail[:200]!r}")
                elif not seen:
                    tally.fail(f"answer does not end as expected ({spec.expect!r}): ...{tail[-120:]!r}")
                else:
                    tally.latency.append((end - begin) * 1000)
                    if ttfb is not None:
                        tally.ttfb.append((ttfb - begin) * 1000)
    except TimeoutError:
        tally.fail(f"no complete answer within {spec.timeout:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        tally.fail(f"{type(exc).__name__}: {exc}")
    finally:
        if first_byte is not None:
            first_byte.set()


def _connector(limit: int) -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=30)


async def _finish(tasks: Collection[asyncio.Task[None]], seconds: float) -> None:
    """Wait for ``tasks`` at most ``seconds``, then cancel the rest (their requests count as cut off)."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=max(seconds, 0.001))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def closed_loop(
    spec: Spec, concurrency: int, count: int, seconds: float, drain: float
) -> dict[str, Any]:
    tally = Tally()
    issued = 0
    async with aiohttp.ClientSession(connector=_connector(concurrency)) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal issued
            while issued < count and time.perf_counter() < deadline:
                index = issued
                issued += 1
                await one_request(session, spec, index, tally)

        await _finish([asyncio.create_task(worker()) for _ in range(concurrency)], seconds + drain)
        elapsed = time.perf_counter() - start
    return tally.result(elapsed)


async def open_loop(
    spec: Spec, rate: float, seconds: float, max_in_flight: int, drain: float
) -> dict[str, Any]:
    tally = Tally()
    dropped = 0
    total = int(rate * seconds)
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(connector=_connector(max_in_flight)) as session:
        start = time.perf_counter()
        for index in range(total):
            planned = start + index / rate
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= max_in_flight:
                dropped += 1
                continue
            task = asyncio.create_task(one_request(session, spec, index, tally, started=planned))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await _finish(set(tasks), drain)
        elapsed = time.perf_counter() - start
    achieved = len(tally.latency) / elapsed if elapsed else 0.0
    return tally.result(elapsed, dropped=dropped, planned=total, achieved_rate=achieved)


async def hold_streams(
    spec: Spec, streams: int, pids: Sequence[int], release_url: str, seconds: float, drain: float
) -> dict[str, Any]:
    """Open ``streams`` streams the mock pauses after their first frames, read the server's memory with
    all of them open, then release them and let them finish.

    The peak is restarted first, so it is the peak of opening and holding these streams in a server
    that already served everything before (that history stays in its RSS); the peak over the server's
    whole life is returned beside it.
    """
    tally = Tally()
    firsts = [asyncio.Event() for _ in range(streams)]
    reading = asyncio.Event()
    _, life_peak = procstat.memory_kib(pids)
    peak_restarted = procstat.reset_peak(pids)
    async with aiohttp.ClientSession(connector=_connector(streams)) as session:
        start = time.perf_counter()
        tasks = [
            asyncio.create_task(
                one_request(session, spec, i, tally, first_byte=firsts[i], wait_before_reading=reading)
            )
            for i in range(streams)
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await asyncio.gather(*(event.wait() for event in firsts))
        opened = sum(event.is_set() for event in firsts) - tally.errors
        await asyncio.sleep(0.5)  # let the server settle with every stream open
        memory = procstat.memory_kib(pids)
        reading.set()
        # Its own session: every connection of `session` is busy with a held stream.
        async with aiohttp.ClientSession() as control, control.post(release_url) as response:
            await response.read()
        await _finish(tasks, drain)
        elapsed = time.perf_counter() - start
    return tally.result(
        elapsed,
        opened=opened,
        rss_kib=memory[0],
        hwm_kib=memory[1],
        life_hwm_kib=max(life_peak, memory[1]),
        peak_restarted=peak_restarted,
    )


async def probe(spec: Spec) -> dict[str, Any]:
    try:
        async with aiohttp.ClientSession(connector=_connector(1)) as session:
            async with asyncio.timeout(spec.timeout):
                async with session.post(spec.url, data=spec.bodies[0], headers=spec.headers) as response:
                    body = await response.read()
                    headers = {
                        k.lower(): v
                        for k, v in response.headers.items()
                        if k.lower().startswith("x-relaygate")
                    }
                    return {
                        "status": response.status,
                        "headers": headers,
                        "body": body[:600].decode(errors="replace"),
                    }
    except TimeoutError:
        return {"status": 0, "headers": {}, "body": f"no answer within {spec.timeout:g} s"}
    except (aiohttp.ClientError, OSError) as exc:
        return {"status": 0, "headers": {}, "body": f"{type(exc).__name__}: {exc}"}


async def run_command(command: Mapping[str, Any], cache: dict[str, bytes]) -> dict[str, Any]:
    op = command["op"]
    spec = Spec.of(command, cache)
    seconds, drain = float(command.get("seconds", 0)), float(command.get("drain", 0))
    if op == "closed":
        return await closed_loop(spec, int(command["concurrency"]), int(command["count"]), seconds, drain)
    if op == "open":
        return await open_loop(spec, float(command["rate"]), seconds, int(command["max_in_flight"]), drain)
    if op == "hold":
        pids = [int(p) for p in command["pids"]]
        return await hold_streams(spec, int(command["streams"]), pids, command["release_url"], seconds, drain)
    if op == "probe":
        return await probe(spec)
    raise ValueError(f"unknown command {op!r}")


async def serve() -> None:
    """Answer commands from stdin until it closes or says ``quit``."""
    loop = asyncio.get_running_loop()
    cache: dict[str, bytes] = {}
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            return
        command = orjson.loads(line)
        if command.get("op") == "quit":
            return
        try:
            result = await run_command(command, cache)
        except Exception as exc:
            result = {"fatal": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        sys.stdout.flush()


def main() -> None:
    import uvloop

    uvloop.run(serve())


if __name__ == "__main__":
    main()
