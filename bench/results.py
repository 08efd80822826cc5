"""What a run measured: raw samples per cell, and the summaries the report and the targets read."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.targets import Target


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(slots=True)
class Cell:
    """One closed-loop measurement: a target, a workload, a concurrency, one round."""

    target: str
    workload: str
    concurrency: int
    round: int
    ok: int
    errors: int
    cut: int
    """Requests still in flight at the cell's time bound, cancelled: neither errors nor samples."""
    first_error: str | None
    elapsed: float
    latency: list[float]
    ttfb: list[float]
    gateway_cpu: float | None
    """CPU seconds the target's server used during the cell; ``None`` for direct targets."""
    load_cpu: float
    """CPU seconds the mock and the load generator used (the load core's work)."""


@dataclass(slots=True)
class Summary:
    """Cells of the same target, workload and concurrency, pooled over the rounds."""

    ok: int
    errors: int
    cut: int
    first_error: str | None
    elapsed: float
    latency: list[float]
    ttfb: list[float]
    gateway_cpu: float | None
    load_cpu: float

    @classmethod
    def of(cls, cells: Sequence[Cell]) -> Summary:
        cpu = [c.gateway_cpu for c in cells if c.gateway_cpu is not None]
        return cls(
            ok=sum(c.ok for c in cells),
            errors=sum(c.errors for c in cells),
            cut=sum(c.cut for c in cells),
            first_error=next((c.first_error for c in cells if c.first_error), None),
            elapsed=sum(c.elapsed for c in cells),
            latency=[x for c in cells for x in c.latency],
            ttfb=[x for c in cells for x in c.ttfb],
            gateway_cpu=sum(cpu) if cpu else None,
            load_cpu=sum(c.load_cpu for c in cells),
        )

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else math.nan

    def p(self, q: float) -> float:
        return percentile(self.latency, q)

    def ttfb_p(self, q: float) -> float:
        return percentile(self.ttfb, q)

    @property
    def cpu_ms_per_request(self) -> float:
        if self.gateway_cpu is None or not self.ok:
            return math.nan
        return self.gateway_cpu * 1000 / self.ok

    @property
    def load_core_busy(self) -> float:
        """Share of one core the mock and the load generator kept busy (1.0: the load side saturated)."""
        return self.load_cpu / self.elapsed if self.elapsed > 0 else math.nan


@dataclass(slots=True)
class OpenPoint:
    """The open-loop measurement of one target."""

    target: str
    rate: float
    planned: int
    ok: int
    errors: int
    cut: int
    dropped: int
    achieved_rate: float
    latency: list[float]
    first_error: str | None
    gateway_cpu: float | None


@dataclass(slots=True)
class Hold:
    """Memory of a server while it carries many open streams."""

    target: str
    streams: int
    opened: int
    ok: int
    errors: int
    cut: int
    """Streams that had not finished ``drain`` seconds after the release (cancelled)."""
    rss_kib: int
    hwm_kib: int
    """The peak while the streams opened and were held (over the whole life if not ``peak_restarted``)."""
    life_hwm_kib: int
    """The peak over the server's whole life so far, the load phases and earlier holds included."""
    peak_restarted: bool
    """The kernel let the peak be restarted before the streams opened."""
    first_error: str | None


@dataclass(slots=True)
class Soak:
    """Memory of a server over a long steady load: ``(seconds since start, VmRSS KiB)`` samples."""

    target: str
    seconds: float
    concurrency: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    first_error: str | None = None


@dataclass(slots=True)
class Results:
    """Everything a run produced, and what it could not measure and why."""

    targets: list[Target]
    machine: dict[str, str]
    settings: dict[str, Any]
    unavailable: dict[str, str] = field(default_factory=dict)
    """Target key -> why it was not measured."""
    skipped: dict[tuple[str, str], str] = field(default_factory=dict)
    """(target, workload) -> why that workload was not measured on it."""
    capped: dict[tuple[str, str], int] = field(default_factory=dict)
    """(target, workload) -> the concurrency at which requests were cut off; higher ones were skipped."""
    cells: list[Cell] = field(default_factory=list)
    open_points: list[OpenPoint] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    soak: Soak | None = None
    notes: list[str] = field(default_factory=list)

    def target(self, key: str) -> Target:
        return next(t for t in self.targets if t.key == key)

    def measured(self) -> list[Target]:
        return [t for t in self.targets if t.key not in self.unavailable]

    def summary(self, target: str, workload: str, concurrency: int) -> Summary | None:
        cells = [
            c
            for c in self.cells
            if c.target == target and c.workload == workload and c.concurrency == concurrency
        ]
        return Summary.of(cells) if cells else None

    def open_point(self, target: str) -> OpenPoint | None:
        return next((p for p in self.open_points if p.target == target), None)

    def hold(self, target: str) -> Hold | None:
        return next((h for h in self.holds if h.target == target), None)
