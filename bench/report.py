"""The Markdown report of a run (``docs/benchmarks.md``): machine, setup, targets, tables, failures."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from bench import mock_bodies, workloads
from bench.results import Results, percentile
from bench.verdicts import Evaluation, mb, ms, rate

# --- the document -------------------------------------------------------------------------------------


def _lane_label(results: Results, lane: str) -> str:
    known = {t.key: t.label for t in results.targets}
    return known.get(lane, lane)


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _workload_table(results: Results, evaluation: Evaluation, workload: str) -> list[str]:
    streamed = workload == "W2"
    header = ["target", "conc.", "req/s", "p50 ms", "p99 ms", "added p50", "added p99"]
    if streamed:
        header += ["TTFB p50", "TTFB p99"]
    header += ["gateway CPU ms/req"]
    if streamed:
        header += ["µs/upstream event"]
    header += ["errors", "load core busy"]
    rows = []
    for target in results.measured():
        if (target.key, workload) in results.skipped:
            continue
        for concurrency in results.settings["concurrencies"]:
            summary = results.summary(target.key, workload, concurrency)
            if summary is None:
                continue
            row = [
                target.label,
                str(concurrency),
                rate(summary.throughput),
                ms(summary.p(50)),
                ms(summary.p(99)),
            ]
            row += [ms(evaluation.added(target.key, workload, concurrency, q)) for q in (50, 99)]
            if streamed:
                row += [ms(summary.ttfb_p(50)), ms(summary.ttfb_p(99))]
            row.append(ms(summary.cpu_ms_per_request))
            if streamed:
                per_event = evaluation.event_cpu_us(target.key, concurrency)
                row.append("—" if math.isnan(per_event) else f"{per_event:.1f}")
            errors = str(summary.errors) + (f" (+{summary.cut} cut off)" if summary.cut else "")
            row += [errors, f"{summary.load_core_busy:.0%}"]
            rows.append(row)
    return _table(header, rows)


def _open_table(results: Results, evaluation: Evaluation) -> list[str]:
    rows = []
    for point in results.open_points:
        label = results.target(point.target).label
        cpu = "—"
        if point.gateway_cpu is not None and point.ok:
            cpu = ms(point.gateway_cpu * 1000 / point.ok)
        rows.append(
            [
                label,
                f"{point.rate:g}",
                f"{point.achieved_rate:.0f}",
                ms(percentile(point.latency, 50)),
                ms(percentile(point.latency, 99)),
                ms(evaluation.open_added(point.target, 50)),
                ms(evaluation.open_added(point.target, 99)),
                cpu,
                str(point.dropped),
                str(point.errors) + (f" (+{point.cut} cut off)" if point.cut else ""),
            ]
        )
    header = ["target", "planned/s", "answered/s", "p50 ms", "p99 ms", "added p50", "added p99"]
    return _table([*header, "gateway CPU ms/req", "dropped", "errors"], rows)


def _memory_table(results: Results) -> list[str]:
    rows = [
        [
            results.target(h.target).label,
            f"{h.opened}/{h.streams}",
            f"{mb(h.rss_kib):.1f}",
            f"{mb(h.hwm_kib):.1f}" if h.peak_restarted else "—",
            f"{mb(h.life_hwm_kib):.1f}",
            f"{h.ok}/{h.streams}" + (f" ({h.errors} failed)" if h.errors else ""),
        ]
        for h in results.holds
    ]
    drain = f"{results.settings['drain_seconds']:g}"
    header = [
        "server",
        "streams open at once",
        "RSS then (MB)",
        "peak while opening and holding them (MB)",
        "peak over the server's life (MB)",
        f"finished within {drain} s after release",
    ]
    return _table(header, rows)


def _problems(results: Results, evaluation: Evaluation) -> list[str]:
    lines = []
    for key, reason in results.unavailable.items():
        lines.append(f"- {results.target(key).label}: {reason}")
    for (key, workload), reason in results.skipped.items():
        lines.append(f"- {results.target(key).label}, {workload}: {reason}")
    highest = max(results.settings["concurrencies"])
    for (key, workload), concurrency in results.capped.items():
        if concurrency < highest:
            lines.append(
                f"- {results.target(key).label}, {workload}: concurrencies above {concurrency} not measured: "
                "its requests would not finish within this run's bounds there (judged from its "
                f"throughput at concurrency {concurrency}, or because requests were cut off)"
            )
    seen: set[tuple[str, str]] = set()
    for cell in results.cells:
        if cell.errors and (cell.target, cell.workload) not in seen:
            seen.add((cell.target, cell.workload))
            label = results.target(cell.target).label
            lines.append(
                f"- {label}, {cell.workload}: {cell.errors} failed request(s), first: {cell.first_error}"
            )
    for cell in results.cells:
        if cell.cut:
            label = results.target(cell.target).label
            lines.append(
                f"- {label}, {cell.workload} at concurrency {cell.concurrency}: {cell.cut} request(s) still "
                f"running {results.settings['drain_seconds']:g} s after the cell's time bound were cut off"
            )
    for point in results.open_points:
        if point.errors or point.dropped:
            label = results.target(point.target).label
            first = f"; first error: {point.first_error}" if point.first_error else ""
            lines.append(
                f"- {label}, open loop: {point.errors} failed, {point.dropped} not sent "
                f"({results.settings['max_in_flight']} earlier ones were still unanswered){first}"
            )
    for hold in results.holds:
        label = results.target(hold.target).label
        if hold.opened < hold.streams:
            lines.append(
                f"- {label}: only {hold.opened} of {hold.streams} streams had started after "
                f"{results.settings['hold_seconds']:g} s when memory was sampled"
            )
        if hold.errors:
            lines.append(f"- {label}, open streams: {hold.errors} failed: {hold.first_error}")
    return lines or ["- none"]


def _setup(settings: dict[str, Any]) -> list[str]:
    """How the run was made, in the report's words."""
    m = mock_bodies
    concurrencies = ", ".join(map(str, settings["concurrencies"]))
    return [
        "- Mock upstream (`bench/mock_upstream.py`): raw ASGI on uvicorn + uvloop + httptools, 127.0.0.1, "
        "no artificial delay, one write per SSE event. A Codex answer is "
        f"{m.RESPONSES_EVENTS} Responses events ({m.REASONING_DELTAS} reasoning summary deltas, "
        f"{m.TEXT_DELTAS} text deltas, usage); `created`, `in_progress` and `completed` echo the "
        "request's instructions and tools as the backend does. A chat answer is "
        f"{m.CHAT_EVENTS} events ({m.REASONING_DELTAS} reasoning chunks, {m.TEXT_DELTAS} content "
        "chunks, a finish and a usage chunk, `[DONE]`), or one JSON body when not streamed.",
        "- **direct**: the load generator straight to the mock, the floor of client plus mock. The "
        "Codex lane is compared with the Codex endpoint, everything else with the chat endpoint.",
        "- **bare relay** (`bench/bare_relay.py`): raw ASGI, orjson, a minimal Anthropic -> chat "
        "mapping, one shared httpx client on the aiohttp transport: the cost of Python itself.",
        "- **relaygate**: `relaygate serve` (uvicorn, uvloop, httptools). Codex lane: an account "
        "imported from an `auth.json` the bench writes. Haiku lane: `RELAYGATE_KILO_BASE_URL` at the mock.",
        "- **LiteLLM**: its proxy (`litellm --num_workers 1`, no database, installed by `make bench-peers`), "
        "`/v1/messages` to an `openai/` model at the mock's chat endpoint "
        "(`use_chat_completions_url_for_anthropic_messages`; without it LiteLLM calls the Responses API).",
        *[f"- {w}: {workloads.DESCRIPTIONS[w]}." for w in workloads.WORKLOADS],
        f"- Closed loop at concurrency {concurrencies}: {settings['rounds']} round(s), targets "
        f"interleaved within each round; each cell is bounded by {settings['cell_requests']} "
        f"requests and {settings['cell_seconds']:g} s, plus {settings['drain_seconds']:g} s for the requests "
        "in flight to finish (those still running then are cut off and counted apart). "
        "Latency is to the last byte of the answer; "
        "*added* = this target's percentile minus direct's at the same workload and concurrency.",
        f"- Open loop: W1 started at {settings['rate']:g} requests/s for "
        f"{settings['open_seconds']:g} s whatever the answers do; latency counts from the planned start.",
        "- Gateway CPU = utime + stime of the server's process tree (/proc/<pid>/stat) over a cell, "
        "per answered request; per upstream event = per request / the events of one streamed answer. "
        "*Load core busy* = CPU of the mock plus the load generator per second: near 100 % the load "
        "side, not the target, is the limit.",
        f"- Memory: {settings['streams']} W2 streams held open at once (the mock pauses each after "
        "its first frames), RSS of the server's tree sampled then. Its peak (VmHWM) is restarted from "
        "the current RSS just before the streams open (/proc/<pid>/clear_refs), so it is the peak of "
        "opening and holding them in a server that has served every phase before (what those left "
        "behind stays in its RSS); the peak over the server's whole life, load phases and earlier "
        "holds included, stands beside it.",
    ]


def render(results: Results, command: str, started: datetime, seconds: float) -> str:
    """The whole report."""
    evaluation = Evaluation(results)
    settings = results.settings
    out = [
        "# Benchmarks",
        "",
        "Written by the benchmark itself (`bench/`, `make bench`): run it again rather than edit this file.",
        "",
        f"- command: `{command}`",
        f"- mode: {settings['mode']}; run on {started.strftime('%Y-%m-%d %H:%M UTC')}, took {seconds:.0f} s",
        "",
        "## Machine",
        "",
        *_table(["", ""], [[k, v] for k, v in results.machine.items()]),
        "",
        "## Setup",
        "",
        *[f"- {note}" for note in results.notes],
        *_setup(settings),
        "",
        "## Targets",
        "",
        *_table(
            ["lane", "target", "bound", "measured", "result"],
            [
                [_lane_label(results, c.lane), c.name, c.bound, c.measured, f"**{c.verdict}**"]
                for c in evaluation.checks()
            ],
        ),
        "",
    ]
    for workload in workloads.WORKLOADS:
        out += [
            f"## {workload}: {workloads.DESCRIPTIONS[workload]}",
            "",
            *_workload_table(results, evaluation, workload),
            "",
        ]
    out += [f"## Open loop: W1 at {settings['rate']:g} requests/s", "", *_open_table(results, evaluation), ""]
    out += ["## Memory with open streams", "", *_memory_table(results), ""]
    if results.soak is not None:
        soak = results.soak
        samples = ", ".join(f"{t:.0f}s {mb(r):.1f}" for t, r in soak.samples)
        out += [
            "## Soak",
            "",
            f"relaygate Codex lane, W2 at concurrency {soak.concurrency} for {soak.seconds:g} s: "
            f"{soak.ok} answers, {soak.errors} errors. RSS (MB) over time: {samples}.",
            "",
        ]
    out += ["## Not measured, failures", "", *_problems(results, evaluation), ""]
    return "\n".join(out)


def now() -> datetime:
    return datetime.now(UTC)
