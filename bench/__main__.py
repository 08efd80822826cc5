"""``python -m bench``: run the benchmark and write ``docs/benchmarks.md`` (``make bench``).

``--quick`` finishes in under two minutes (one round, short cells, no soak); the full run takes about
half an hour, ten minutes of it a memory soak (``--soak 0`` skips it). Peers are optional: without LiteLLM
installed (``make bench-peers``) the report says so and measures the others.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from bench import report, verdicts, workloads
from bench.driver import BenchError
from bench.run import Plan, run

TARGET_KEYS = ("bare", "relaygate-codex", "relaygate-haiku", "litellm")


def _concurrencies(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not values or any(v < 1 or v > 1024 for v in values):
        raise argparse.ArgumentTypeError("each concurrency must be between 1 and 1024")
    return values


def _targets(text: str) -> frozenset[str]:
    keys = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = keys - set(TARGET_KEYS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown target(s) {', '.join(sorted(unknown))}; known: {', '.join(TARGET_KEYS)}"
        )
    return keys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round, no soak: under two minutes")
    parser.add_argument("--rounds", type=int, help="closed-loop rounds (full: 3, quick: 1)")
    parser.add_argument("--seconds", type=float, help="time bound of each closed-loop cell")
    parser.add_argument("--requests", type=int, help="request bound of each closed-loop cell")
    parser.add_argument(
        "--concurrency", type=_concurrencies, help="closed-loop concurrencies (default 1,16,64)"
    )
    parser.add_argument("--rate", type=float, help="open-loop W1 requests per second (default 200)")
    parser.add_argument("--open-seconds", type=float, help="open-loop duration")
    parser.add_argument("--streams", type=int, help="streams held open for the memory figure (default 256)")
    parser.add_argument("--soak", type=float, help="memory soak seconds (full: 600, quick: 0 = none)")
    parser.add_argument(
        "--targets", type=_targets, help=f"only these of {', '.join(TARGET_KEYS)} (direct always runs)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--litellm-venv", type=Path, help="where `make bench-peers` installed LiteLLM")
    parser.add_argument("--output", type=Path, default=workloads.REPO_ROOT / "docs" / "benchmarks.md")
    return parser


def plan_of(args: argparse.Namespace) -> Plan:
    changes = {
        "rounds": args.rounds,
        "cell_seconds": args.seconds,
        "cell_requests": args.requests,
        "concurrencies": args.concurrency,
        "rate": args.rate,
        "open_seconds": args.open_seconds,
        "streams": args.streams,
        "soak_seconds": args.soak,
        "litellm_venv": args.litellm_venv,
        "only": args.targets,
    }
    chosen = {k: v for k, v in changes.items() if v is not None}
    chosen["pin"] = not args.no_pin
    for name in ("rounds", "cell_requests", "streams"):
        if name in chosen and chosen[name] < 1:
            raise SystemExit(f"bench: --{name.replace('_', '-')} must be at least 1")
    for name in ("cell_seconds", "rate", "open_seconds"):
        if name in chosen and not 0 < chosen[name] <= 3600:
            raise SystemExit(f"bench: {name.replace('_', ' ')} must be between 0 and 3600")
    if "soak_seconds" in chosen and not 0 <= chosen["soak_seconds"] <= 3600:
        raise SystemExit("bench: --soak must be between 0 and 3600 seconds")
    return Plan.quick_plan(**chosen) if args.quick else Plan(**chosen)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    plan = plan_of(args)
    # A terminated bench still stops the processes it started (the run's `finally`).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = os.environ.get("BENCH_COMMAND") or shlex.join(
        ["python", "-m", "bench", *(argv or sys.argv[1:])]
    )
    started, clock = report.now(), time.monotonic()
    try:
        results = run(plan)
    except BenchError as exc:
        print(f"bench: cannot run: {exc}", file=sys.stderr)
        return 1
    text = report.render(results, command, started, time.monotonic() - clock)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"\nwrote {args.output}")
    for check in verdicts.Evaluation(results).checks():
        print(f"  {check.verdict:4}  {check.lane}: {check.name}: {check.measured} (bound {check.bound})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
