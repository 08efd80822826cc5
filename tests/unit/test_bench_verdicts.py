"""The benchmark's verdicts say what the figures mean, computed from the run itself."""

from __future__ import annotations

from bench.results import Cell, Results
from bench.targets import all_targets
from bench.verdicts import Check, Evaluation


def _cell(target: str, answered: int, seconds: float = 1.0) -> Cell:
    return Cell(
        target=target,
        workload="W1",
        concurrency=16,
        round=1,
        ok=answered,
        errors=0,
        cut=0,
        first_error=None,
        elapsed=seconds,
        latency=[1.0] * answered,
        ttfb=[],
        gateway_cpu=None if target.startswith("direct") else 0.9,
        load_cpu=0.5,
    )


def _throughput_check(results: Results, lane: str) -> Check:
    return next(
        check
        for check in Evaluation(results).checks()
        if check.lane == lane and check.name == "W1 c=16 throughput"
    )


def _results(direct_codex: int) -> Results:
    results = Results(targets=all_targets(554, 543), machine={}, settings={})
    results.cells += [
        _cell("direct-chat", 3600),
        _cell("direct-codex", direct_codex),
        _cell("bare", 1500),
        _cell("relaygate-codex", 320),
        _cell("relaygate-haiku", 1000),
    ]
    return results


def test_a_bound_above_what_the_lane_upstream_answers_directly_is_said_and_still_fails() -> None:
    check = _throughput_check(_results(direct_codex=388), "relaygate-codex")

    assert check.verdict == "FAIL"
    assert check.bound == "≥ 0.6 × bare (1500) = 900/s"
    assert check.measured == "320/s (direct to the same upstream: 388/s, below the bound)"


def test_a_bound_the_direct_call_reaches_gets_no_such_note() -> None:
    results = _results(direct_codex=2000)

    assert _throughput_check(results, "relaygate-codex").measured == "320/s"
    haiku = _throughput_check(results, "relaygate-haiku")
    assert (haiku.measured, haiku.verdict) == ("1000/s", "PASS")
