"""One benchmark run: start the processes, measure every target in interleaved rounds, stop everything.

Cores: with two or more, the servers under test run on core 1 and the mock upstream, the load generator
and this orchestrator on core 0 (``taskset -c``), so a gateway's CPU is its own and the load side cannot
steal it. Every measurement is bounded in requests and in seconds. A target that cannot start, or cannot
answer a workload, is reported with the reason and the run goes on with the others; only a mock upstream
or a load generator that cannot start ends the run.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import mock_bodies, procstat, servers, targets, workloads
from bench.driver import BenchError, LoadGenerator
from bench.machine import describe
from bench.results import Cell, Hold, OpenPoint, Results, Soak
from bench.servers import Server
from bench.targets import Target

LOAD_CORE, GATEWAY_CORE = 0, 1
START_TIMEOUT = 30.0
LITELLM_START_TIMEOUT = 120.0
REQUEST_TIMEOUT = 60.0
MAX_IN_FLIGHT = 128
"""Open loop: beyond this many unanswered requests the next ones are not sent (counted as dropped), which
bounds the backlog a saturated target has to work off."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How much to measure. ``quick`` trades precision for a run under two minutes."""

    quick: bool = False
    rounds: int = 3
    cell_seconds: float = 3.0
    cell_requests: int = 20_000
    concurrencies: tuple[int, ...] = (1, 16, 64)
    rate: float = 200.0
    open_seconds: float = 10.0
    streams: int = 256
    soak_seconds: float = 600.0
    warmup_requests: int = 64
    drain_seconds: float = 30.0
    """How long requests still in flight at a time bound may take to finish before they are cut off."""
    hold_seconds: float = 30.0
    """How long the memory measurement waits for every stream to be open, and then for them to end."""
    settle_seconds: float = 60.0
    """How long to wait, before each measurement, for the servers under test to become idle."""
    pin: bool = True
    only: frozenset[str] | None = None
    """Target keys to measure (direct ones are always measured); ``None`` for all."""
    litellm_venv: Path = targets.LITELLM_VENV
    log: Callable[[str], None] = print

    @classmethod
    def quick_plan(cls, **changes: Any) -> Plan:
        values: dict[str, Any] = {
            "quick": True,
            "rounds": 1,
            "cell_seconds": 0.5,
            "cell_requests": 2_000,
            "open_seconds": 2.0,
            "soak_seconds": 0.0,
            "warmup_requests": 8,
            "drain_seconds": 4.0,
            "hold_seconds": 8.0,
            "settle_seconds": 15.0,
        }
        values.update(changes)
        return cls(**values)

    def settings(self) -> dict[str, Any]:
        return {
            "mode": "quick" if self.quick else "full",
            "rounds": self.rounds,
            "cell_seconds": self.cell_seconds,
            "cell_requests": self.cell_requests,
            "concurrencies": list(self.concurrencies),
            "rate": self.rate,
            "open_seconds": self.open_seconds,
            "streams": self.streams,
            "soak_seconds": self.soak_seconds,
            "warmup_requests": self.warmup_requests,
            "drain_seconds": self.drain_seconds,
            "hold_seconds": self.hold_seconds,
            "settle_seconds": self.settle_seconds,
            "max_in_flight": MAX_IN_FLIGHT,
        }


class Run:
    """The state of one run; :meth:`execute` does everything and returns the results."""

    def __init__(self, plan: Plan, folder: Path) -> None:
        self.plan = plan
        self.folder = folder
        self.logs = folder / "logs"
        self.logs.mkdir()
        cores = len(os.sched_getaffinity(0))
        self.pinned = plan.pin and cores >= 2
        self.load_core = LOAD_CORE if self.pinned else None
        self.gateway_core = GATEWAY_CORE if self.pinned else None
        self.servers: dict[str, Server] = {}
        self.unsettled = 0
        """Measurements that began while the servers under test were still busy."""
        self.loadgen: LoadGenerator | None = None
        self.requests = workloads.build_requests(folder / "bodies")
        self.results = Results(
            targets=targets.all_targets(mock_bodies.RESPONSES_EVENTS, mock_bodies.CHAT_EVENTS),
            machine=describe(plan.litellm_venv),
            settings=plan.settings(),
        )
        if plan.quick:
            self.results.notes.append(
                "Quick mode: one round of short cells, so the figures are indicative only (CPU is read in "
                "10 ms clock ticks, a cell at concurrency 16 may hold just a few dozen answers)."
            )
        if self.pinned:
            os.sched_setaffinity(0, {LOAD_CORE})
            self.results.notes.append(
                "Servers under test run on core 1 (taskset -c 1); the mock upstream, the load generator "
                "and the orchestrator on core 0 (taskset -c 0)."
            )
        else:
            why = "--no-pin was given" if not plan.pin else f"only {cores} core(s) are available"
            self.results.notes.append(f"Processes are NOT pinned to cores: {why}; figures are noisier.")

    # --- processes ------------------------------------------------------------------------------------

    def _start(
        self, name: str, command: list[str], port: int, env: dict[str, str], core: int | None
    ) -> Server:
        server = servers.start(
            name, command, port=port, core=core, env=env, logs=self.logs, cwd=workloads.REPO_ROOT
        )
        self.servers[name] = server
        return server

    def start_processes(self) -> None:
        port = servers.free_port()
        env = targets.clean_environment()
        mock = self._start("mock", targets.mock_command(port), port, env, self.load_core)
        servers.wait_ready(mock, "/_bench/health", START_TIMEOUT)
        if mock.reason is not None:
            raise BenchError(f"the mock upstream could not start: {mock.reason}")
        self.loadgen = LoadGenerator(self.logs, self.load_core)
        self.loadgen.call({"op": "probe", **self.requests["chat-upstream", "W3"].command(mock.url)}, 30)

        wanted = self.plan.only
        started: list[tuple[Server, str, float]] = []
        if wanted is None or "bare" in wanted:
            port = servers.free_port()
            env = dict(targets.clean_environment(), BENCH_UPSTREAM=f"{mock.url}/v1")
            started.append(
                (
                    self._start("bare", targets.bare_command(port), port, env, self.gateway_core),
                    "/health",
                    START_TIMEOUT,
                )
            )
        if wanted is None or wanted & {"relaygate-codex", "relaygate-haiku"}:
            port = servers.free_port()
            auth = self.folder / "auth.json"
            targets.write_auth_file(auth)
            env = targets.relaygate_environment(self.folder, mock.url, auth)
            started.append(
                (
                    self._start("relaygate", targets.relaygate_command(port), port, env, self.gateway_core),
                    "/health",
                    START_TIMEOUT,
                )
            )
        if wanted is None or "litellm" in wanted:
            executable = targets.litellm_executable(self.plan.litellm_venv)
            if executable is None:
                self.servers["litellm"] = Server(
                    "litellm",
                    reason=f"not installed (no {self.plan.litellm_venv}/bin/litellm): run `make bench-peers`",
                )
            else:
                port = servers.free_port()
                config = self.folder / "litellm.yaml"
                targets.litellm_config(config, mock.url)
                command = targets.litellm_command(executable, config, port)
                env = targets.litellm_environment(self.folder)
                started.append(
                    (
                        self._start("litellm", command, port, env, self.gateway_core),
                        "/health/liveliness",
                        LITELLM_START_TIMEOUT,
                    )
                )
        for server, health, timeout in started:
            servers.wait_ready(server, health, timeout)
            self.plan.log(f"  {server.name}: {'ready' if server.reason is None else server.reason}")
        relaygate = self.servers.get("relaygate")
        if relaygate is not None and relaygate.reason is None:
            self._import_account(relaygate)

    def _import_account(self, relaygate: Server) -> None:
        status, body = servers.http(
            "POST", relaygate.url + "/accounts/import", {"path": str(self.folder / "auth.json")}, timeout=15
        )
        if status != 200:
            relaygate.info["codex"] = f"importing the bench account failed: HTTP {status}: {body[:300]!r}"

    def _availability(self) -> None:
        """Mark targets whose server is missing, and lanes that do not answer as they should."""
        for target in self.results.targets:
            if (
                self.plan.only is not None
                and target.baseline is not None
                and target.key not in self.plan.only
            ):
                self.results.unavailable[target.key] = "not selected (--targets)"
                continue
            server = self.servers.get(target.server)
            if server is None or server.reason is not None:
                reason = server.reason if server is not None else "not started"
                self.results.unavailable[target.key] = reason or "not started"
                continue
            if target.key == "relaygate-codex" and "codex" in server.info:
                self.results.unavailable[target.key] = server.info["codex"]
                continue
            if target.key.startswith("relaygate-"):
                lane_problem = self._probe_lane(target, server)
                if lane_problem is not None:
                    self.results.unavailable[target.key] = lane_problem

    def _probe_lane(self, target: Target, server: Server) -> str | None:
        expected = "codex" if target.key == "relaygate-codex" else "kilo"
        assert self.loadgen is not None
        answer = self.loadgen.call({"op": "probe", **self.request(target, "W1")}, 60)
        provider = answer["headers"].get("x-relaygate-provider")
        if answer["status"] != 200:
            return f"not available: HTTP {answer['status']}: {answer['body'][:300]}"
        if provider != expected:
            model = answer["headers"].get("x-relaygate-model")
            return (
                f"not available: a {expected} request was answered by {provider}/{model} "
                f"(the {expected} provider is not installed or failed, and the lane fell back)"
            )
        return None

    def stop_processes(self) -> None:
        if self.loadgen is not None:
            self.loadgen.close()
        mock = self.servers.get("mock")
        if mock is not None and mock.up:
            servers.http("POST", mock.url + "/_bench/release")
        for server in reversed(list(self.servers.values())):
            servers.stop(server)

    # --- measurements ---------------------------------------------------------------------------------

    def request(self, target: Target, workload: str) -> dict[str, Any]:
        server = self.servers[target.server]
        command = self.requests[target.flavor, workload].command(server.url)
        command["timeout"] = REQUEST_TIMEOUT
        return command

    def _gateway_pids(self, target: Target) -> list[int]:
        return [] if target.baseline is None else [self.servers[target.server].pid]

    def _load_pids(self) -> list[int]:
        assert self.loadgen is not None
        return [self.servers["mock"].pid, self.loadgen.pid]

    def settle(self) -> None:
        """Wait until the servers under test are idle, so that work a target left behind (answers to
        requests a time bound cut off) is not billed to the next measurement; at most ``settle_seconds``."""
        pids = [s.pid for s in self.servers.values() if s.name != "mock" and s.up]
        start = time.monotonic()
        while time.monotonic() - start < self.plan.settle_seconds:
            before = procstat.cpu_seconds(pids)
            time.sleep(0.1)
            if procstat.cpu_seconds(pids) - before <= 0.01:  # at most one clock tick in 100 ms
                return
        self.unsettled += 1

    def _call(
        self, command: dict[str, Any], target: Target, seconds: float
    ) -> tuple[dict[str, Any], float | None, float]:
        assert self.loadgen is not None
        self.settle()
        gateway, load = self._gateway_pids(target), self._load_pids()
        gateway_before, load_before = procstat.cpu_seconds(gateway), procstat.cpu_seconds(load)
        result = self.loadgen.call(command, seconds + REQUEST_TIMEOUT + 30)
        gateway_cpu = procstat.cpu_seconds(gateway) - gateway_before if gateway else None
        return result, gateway_cpu, procstat.cpu_seconds(load) - load_before

    def warm_up(self) -> None:
        for target in self.results.measured():
            for workload in workloads.WORKLOADS:
                command = dict(self.request(target, workload), op="closed", concurrency=4)
                command.update(count=self.plan.warmup_requests, seconds=10, drain=self.plan.drain_seconds)
                result, _, _ = self._call(command, target, 10 + self.plan.drain_seconds)
                if result["ok"] == 0:
                    reason = result["first_error"] or "no answer"
                    self.results.skipped[target.key, workload] = f"every warm-up request failed: {reason}"
                    self.plan.log(f"  {target.label} {workload}: skipped ({reason[:160]})")

    def closed_rounds(self) -> None:
        measured = self.results.measured()
        for round_number in range(self.plan.rounds):
            shift = round_number % len(measured)
            order = measured[shift:] + measured[:shift]
            for workload in workloads.WORKLOADS:
                for concurrency in self.plan.concurrencies:
                    for target in order:
                        key = (target.key, workload)
                        if not self._measurable(target, workload, concurrency):
                            continue
                        cell = self._cell(target, workload, concurrency, round_number)
                        self.results.cells.append(cell)
                        if cell.cut and key not in self.results.capped:
                            # Too slow for this run's bounds: a higher concurrency would only pile up work.
                            self.results.capped[key] = concurrency
            self.plan.log(f"  round {round_number + 1}/{self.plan.rounds} done")

    def _measurable(self, target: Target, workload: str, concurrency: int) -> bool:
        """Whether to measure this cell: the workload works on the target, and one wave of
        ``concurrency`` requests fits a cell's bounds at the throughput measured at the next lower
        concurrency (a cell beyond them would only cut requests off and leave the server a backlog that
        delays every later measurement)."""
        key = (target.key, workload)
        if key in self.results.skipped or self.results.capped.get(key, concurrency) < concurrency:
            return False
        lower = [c for c in self.plan.concurrencies if c < concurrency]
        summary = self.results.summary(target.key, workload, max(lower)) if lower else None
        if summary is None or summary.ok == 0:
            return True
        if concurrency / summary.throughput > self.plan.cell_seconds + self.plan.drain_seconds:
            self.results.capped[key] = max(lower)
            return False
        return True

    def _cell(self, target: Target, workload: str, concurrency: int, round_number: int) -> Cell:
        command = dict(self.request(target, workload), op="closed", concurrency=concurrency)
        command.update(
            count=self.plan.cell_requests, seconds=self.plan.cell_seconds, drain=self.plan.drain_seconds
        )
        result, gateway_cpu, load_cpu = self._call(
            command, target, self.plan.cell_seconds + self.plan.drain_seconds
        )
        return Cell(
            target=target.key,
            workload=workload,
            concurrency=concurrency,
            round=round_number,
            ok=result["ok"],
            errors=result["errors"],
            cut=result["cut"],
            first_error=result["first_error"],
            elapsed=result["elapsed"],
            latency=result["latency"],
            ttfb=result["ttfb"],
            gateway_cpu=gateway_cpu,
            load_cpu=load_cpu,
        )

    def open_loop(self) -> None:
        for target in self.results.measured():
            if (target.key, "W1") in self.results.skipped:
                continue
            command = dict(self.request(target, "W1"), op="open", rate=self.plan.rate)
            command.update(
                seconds=self.plan.open_seconds, max_in_flight=MAX_IN_FLIGHT, drain=self.plan.drain_seconds
            )
            result, gateway_cpu, _ = self._call(
                command, target, self.plan.open_seconds + self.plan.drain_seconds
            )
            self.results.open_points.append(
                OpenPoint(
                    target=target.key,
                    rate=self.plan.rate,
                    planned=result["planned"],
                    ok=result["ok"],
                    errors=result["errors"],
                    cut=result["cut"],
                    dropped=result["dropped"],
                    achieved_rate=result["achieved_rate"],
                    latency=result["latency"],
                    first_error=result["first_error"],
                    gateway_cpu=gateway_cpu,
                )
            )

    def hold_streams(self) -> None:
        mock = self.servers["mock"]
        for target in self.results.measured():
            if target.baseline is None or (target.key, "W2") in self.results.skipped:
                continue
            servers.http("POST", mock.url + "/_bench/hold")
            command = dict(self.request(target, "W2"), op="hold", streams=self.plan.streams)
            command.update(
                pids=self._gateway_pids(target),
                release_url=mock.url + "/_bench/release",
                seconds=self.plan.hold_seconds,
                drain=self.plan.drain_seconds,
            )
            try:
                result, _, _ = self._call(command, target, self.plan.hold_seconds + self.plan.drain_seconds)
            finally:
                servers.http("POST", mock.url + "/_bench/release")
            self.results.holds.append(
                Hold(
                    target=target.key,
                    streams=self.plan.streams,
                    opened=result["opened"],
                    ok=result["ok"],
                    errors=result["errors"],
                    cut=result["cut"],
                    rss_kib=result["rss_kib"],
                    hwm_kib=result["hwm_kib"],
                    life_hwm_kib=result["life_hwm_kib"],
                    peak_restarted=result["peak_restarted"],
                    first_error=result["first_error"],
                )
            )

    def soak(self) -> None:
        if self.plan.soak_seconds <= 0 or "relaygate-codex" in self.results.unavailable:
            return
        target = self.results.target("relaygate-codex")
        for server in self.servers.values():  # the soak has the gateway core to itself
            if server.name not in ("mock", target.server):
                servers.stop(server)
        concurrency, step = 16, min(10.0, self.plan.soak_seconds)
        soak = Soak(target=target.key, seconds=self.plan.soak_seconds, concurrency=concurrency)
        pids = self._gateway_pids(target)
        start = time.monotonic()
        while time.monotonic() - start < self.plan.soak_seconds:
            command = dict(self.request(target, "W2"), op="closed", concurrency=concurrency)
            command.update(count=1_000_000, seconds=step, drain=self.plan.drain_seconds)
            result, _, _ = self._call(command, target, step + self.plan.drain_seconds)
            soak.ok += result["ok"]
            soak.errors += result["errors"]
            soak.first_error = soak.first_error or result["first_error"]
            soak.samples.append((time.monotonic() - start, procstat.memory_kib(pids)[0]))
        self.results.soak = soak

    def execute(self) -> Results:
        began = time.monotonic()

        def log(message: str) -> None:
            self.plan.log(f"[{time.monotonic() - began:5.0f} s] {message}")

        try:
            log("starting the mock upstream, the load generator and the servers under test")
            self.start_processes()
            self._availability()
            for key, reason in self.results.unavailable.items():
                log(f"  {key}: not measured: {reason[:300]}")
            log("warming up")
            self.warm_up()
            log(f"closed loop: {self.plan.rounds} round(s) x {len(self.plan.concurrencies)} concurrencies")
            self.closed_rounds()
            log(f"open loop: W1 at {self.plan.rate:g} requests/s")
            self.open_loop()
            # Last: a server that cannot keep up with this many streams is left with a long backlog.
            log(f"memory: {self.plan.streams} open streams per server")
            self.hold_streams()
            if self.plan.soak_seconds > 0:
                log(f"soak: {self.plan.soak_seconds:g} s of W2 at concurrency 16 on relaygate")
                self.soak()
            log("done")
        finally:
            self.stop_processes()
        if self.unsettled:
            self.results.notes.append(
                f"{self.unsettled} measurement(s) began while a server under test was still busy after "
                f"{self.plan.settle_seconds:g} s of waiting (work left by requests cut off earlier): their "
                "figures are pessimistic."
            )
        self.results.notes.append(
            "Before each measurement the bench waits until the servers under test are idle (at most "
            f"{self.plan.settle_seconds:g} s)."
        )
        return self.results


def run(plan: Plan) -> Results:
    with tempfile.TemporaryDirectory(prefix="relaygate-bench-") as folder:
        return Run(plan, Path(folder)).execute()
