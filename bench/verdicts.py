"""The benchmark's targets, checked against a run's results.

The targets are the project's performance bars. They live here, in the benchmark, and never as timed
assertions in the test suite: timing on a shared machine is no test verdict.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from bench import workloads
from bench.results import Results, Summary, percentile

LANES = ("relaygate-codex", "relaygate-haiku")
RSS_LIMIT_MB = 150.0
EVENT_LIMIT_US = 10.0


@dataclass(frozen=True, slots=True)
class Check:
    """One target for one lane: the bound, the figure measured, and the verdict."""

    lane: str
    name: str
    bound: str
    measured: str
    verdict: str
    """``PASS``, ``FAIL``, or ``n/a`` (with the reason in ``measured``)."""


def ms(value: float) -> str:
    """Milliseconds with the digits that matter (``—`` when not measured)."""
    if math.isnan(value):
        return "—"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def rate(value: float) -> str:
    """Requests per second."""
    return "—" if math.isnan(value) else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def mb(kib: int) -> float:
    """KiB (as /proc reports memory) in MB (10^6 bytes, as the targets are written)."""
    return kib * 1024 / 1e6


class Evaluation:
    """Reads the pooled figures the targets compare."""

    def __init__(self, results: Results) -> None:
        self.results = results

    def summary(self, target: str, workload: str, concurrency: int) -> Summary | None:
        summary = self.results.summary(target, workload, concurrency)
        return summary if summary is not None and summary.ok > 0 else None

    def added(self, target: str, workload: str, concurrency: int, q: float) -> float:
        baseline = self.results.target(target).baseline
        if baseline is None:
            return math.nan
        mine, floor = (
            self.summary(target, workload, concurrency),
            self.summary(baseline, workload, concurrency),
        )
        if mine is None or floor is None:
            return math.nan
        return mine.p(q) - floor.p(q)

    def open_added(self, target: str, q: float) -> float:
        baseline = self.results.target(target).baseline
        mine = self.results.open_point(target)
        floor = self.results.open_point(baseline) if baseline is not None else None
        if mine is None or floor is None or not mine.latency or not floor.latency:
            return math.nan
        return percentile(mine.latency, q) - percentile(floor.latency, q)

    def event_cpu_us(self, target: str, concurrency: int = 16) -> float:
        summary = self.summary(target, "W2", concurrency)
        if summary is None:
            return math.nan
        return summary.cpu_ms_per_request * 1000 / self.results.target(target).upstream_events

    def checks(self) -> list[Check]:
        measured = {t.key for t in self.results.measured()}
        checks: list[Check] = []
        for lane in LANES:
            if lane not in measured:
                reason = self.results.unavailable.get(lane, "not measured")
                reason = reason if len(reason) <= 120 else reason[:120] + "… (see the end)"
                checks.append(Check(lane, "all targets", "—", f"not measured: {reason}", "n/a"))
                continue
            checks += self._lane_checks(lane, bare="bare" in measured)
        checks += self._cross_checks(measured)
        return checks

    def _lane_checks(self, lane: str, bare: bool) -> list[Check]:
        checks = []
        added, bare_added = self.added(lane, "W1", 1, 50), self.added("bare", "W1", 1, 50)
        if bare and not math.isnan(added) and not math.isnan(bare_added):
            bound = 2 * bare_added + 0.3
            checks.append(
                Check(
                    lane,
                    "W1 c=1 added p50",
                    f"≤ 2 × bare ({ms(bare_added)}) + 0.3 = {ms(bound)} ms",
                    f"{ms(added)} ms",
                    _verdict(added <= bound),
                )
            )
        else:
            checks.append(
                Check(lane, "W1 c=1 added p50", "≤ 2 × bare + 0.3 ms", "bare relay or cell missing", "n/a")
            )
        for workload in workloads.WORKLOADS:
            mine, theirs = self.summary(lane, workload, 16), self.summary("bare", workload, 16)
            if mine is None or theirs is None:
                checks.append(
                    Check(lane, f"{workload} c=16 throughput", "≥ 0.6 × bare", "cell missing", "n/a")
                )
                continue
            bound = 0.6 * theirs.throughput
            checks.append(
                Check(
                    lane,
                    f"{workload} c=16 throughput",
                    f"≥ 0.6 × bare ({rate(theirs.throughput)}) = {rate(bound)}/s",
                    f"{rate(mine.throughput)}/s" + self._ceiling(lane, workload, bound),
                    _verdict(mine.throughput >= bound),
                )
            )
        for workload in workloads.WORKLOADS:
            at16, at64 = self.summary(lane, workload, 16), self.summary(lane, workload, 64)
            if at16 is None or at64 is None:
                checks.append(Check(lane, f"{workload} c=64 no collapse", "—", "cell missing", "n/a"))
                continue
            ratio, tail = at64.throughput / at16.throughput, at64.p(99) / at64.p(50)
            checks.append(
                Check(
                    lane,
                    f"{workload} c=64 throughput",
                    "≥ 0.9 × c=16",
                    f"{ratio:.2f} × ({rate(at64.throughput)}/s)",
                    _verdict(ratio >= 0.9),
                )
            )
            checks.append(
                Check(
                    lane,
                    f"{workload} c=64 p99/p50",
                    "≤ 3",
                    f"{tail:.2f} ({ms(at64.p(99))} / {ms(at64.p(50))} ms)",
                    _verdict(tail <= 3),
                )
            )
        point, open_added = self.results.open_point(lane), self.open_added(lane, 50)
        if point is None or math.isnan(open_added):
            checks.append(Check(lane, "open loop W1 added p50", "≤ 2 ms", "not measured", "n/a"))
        else:
            pace = f"{point.rate:g}/s planned, {point.achieved_rate:.0f}/s answered"
            ok = open_added <= 2.0 and point.dropped == 0 and point.errors == 0
            checks.append(
                Check(
                    lane, "open loop W1 added p50", f"≤ 2 ms at {pace}", f"{ms(open_added)} ms", _verdict(ok)
                )
            )
        per_event = self.event_cpu_us(lane)
        checks.append(
            Check(
                lane,
                "W2 gateway CPU per upstream event (c=16)",
                f"≤ {EVENT_LIMIT_US:g} µs",
                f"{per_event:.1f} µs",
                "n/a" if math.isnan(per_event) else _verdict(per_event <= EVENT_LIMIT_US),
            )
        )
        return checks

    def _ceiling(self, lane: str, workload: str, bound: float) -> str:
        """When the lane's own direct target (the load generator straight to the mock endpoint the lane
        uses) answers fewer requests at 16 than ``bound``, a note saying so: no gateway could meet that
        bound on this machine, since the load side alone does not go faster. The verdict stays as
        measured."""
        baseline = self.results.target(lane).baseline
        direct = self.summary(baseline, workload, 16) if baseline is not None else None
        if direct is None or direct.throughput >= bound:
            return ""
        return f" (direct to the same upstream: {rate(direct.throughput)}/s, below the bound)"

    def _cross_checks(self, measured: set[str]) -> list[Check]:
        checks = []
        codex, haiku = self.summary("relaygate-codex", "W2", 16), self.summary("relaygate-haiku", "W2", 16)
        if codex is not None and haiku is not None:
            ratio = codex.cpu_ms_per_request / haiku.cpu_ms_per_request
            checks.append(
                Check(
                    "relaygate",
                    "Codex lane CPU / Haiku lane CPU (W2 c=16, per request)",
                    "≤ 1.2",
                    f"{ratio:.2f} ({ms(codex.cpu_ms_per_request)} / {ms(haiku.cpu_ms_per_request)} ms)",
                    _verdict(ratio <= 1.2),
                )
            )
        else:
            checks.append(
                Check("relaygate", "Codex lane CPU / Haiku lane CPU", "≤ 1.2", "needs both lanes", "n/a")
            )
        holds = [h for h in self.results.holds if h.target in LANES]
        for index, hold in enumerate(holds):
            lane = "Codex" if hold.target == "relaygate-codex" else "Haiku"
            when = "after the load phases" if index == 0 else "after the previous lane's streams too"
            if not hold.peak_restarted:
                when += "; peak over the whole run"
            peak = mb(hold.hwm_kib)
            ok = peak <= RSS_LIMIT_MB and hold.opened >= hold.streams
            checks.append(
                Check(
                    "relaygate",
                    f"peak RSS with {hold.streams} open {lane}-lane streams ({when})",
                    f"≤ {RSS_LIMIT_MB:g} MB",
                    f"{peak:.1f} MB ({hold.opened} streams open at once)",
                    _verdict(ok),
                )
            )
        if not holds:
            checks.append(
                Check(
                    "relaygate", "peak RSS with open streams", f"≤ {RSS_LIMIT_MB:g} MB", "not measured", "n/a"
                )
            )
        soak = self.results.soak
        if soak is None or len(soak.samples) < 4:
            checks.append(
                Check(
                    "relaygate",
                    "memory flat over a soak",
                    "growth ≤ 5 % + 4 MB",
                    "not run (`--soak 600`)" if soak is None else f"too short ({len(soak.samples)} samples)",
                    "n/a",
                )
            )
        else:
            quarter = max(1, len(soak.samples) // 4)
            first = statistics.median(r for _, r in soak.samples[:quarter])
            last = statistics.median(r for _, r in soak.samples[-quarter:])
            growth = mb(int(last - first))
            ok = last <= first * 1.05 + 4e6 / 1024
            checks.append(
                Check(
                    "relaygate",
                    f"memory flat over a {soak.seconds:g} s soak",
                    "growth ≤ 5 % + 4 MB",
                    f"{mb(int(first)):.1f} -> {mb(int(last)):.1f} MB ({growth:+.1f} MB)",
                    _verdict(ok),
                )
            )
        return checks
