"""The rotation strategies as pure choices over the usable accounts (DESIGN §7)."""

from __future__ import annotations

import pytest

from gateway_core.errors import InvalidRequestError
from gateway_providers.codex.strategies import next_after, parse_strategy, pick

ORDER = ["a", "b", "c", "d"]


def choose(strategy: str, candidates: list[str], **kwargs: object) -> str:
    options: dict[str, object] = {"order": ORDER, "active": None, "last": None, "percents": {}}
    options.update(kwargs)
    return pick(parse_strategy(strategy), candidates, **options)  # type: ignore[arg-type]


def test_sticky_keeps_the_active_account() -> None:
    assert choose("sticky", ["a", "b", "c"], active="b") == "b"


def test_sticky_takes_the_next_usable_account_after_the_active_one() -> None:
    assert choose("sticky", ["a", "d"], active="b") == "d"


def test_sticky_wraps_around() -> None:
    assert choose("sticky", ["a", "b"], active="c") == "a"


def test_round_robin_follows_the_last_pick() -> None:
    assert choose("round-robin", ["a", "b", "c", "d"], last="b") == "c"
    assert choose("round-robin", ["a", "b", "c", "d"], last="d") == "a"
    assert choose("round-robin", ["a", "b", "c", "d"], last=None) == "a"


def test_round_robin_skips_unusable_accounts() -> None:
    assert choose("round-robin", ["a", "d"], last="a") == "d"


def test_quota_aware_picks_the_lowest_used_percent() -> None:
    assert choose("quota-aware", ["a", "b", "c"], percents={"a": 50.0, "b": 20.0, "c": 70.0}) == "b"


def test_quota_aware_counts_an_unknown_quota_as_unused() -> None:
    assert choose("quota-aware", ["a", "b"], percents={"a": 5.0, "b": None}) == "b"


def test_quota_aware_prefers_the_active_account_on_a_tie() -> None:
    assert (
        choose("quota-aware", ["a", "b", "c"], percents={"a": 10.0, "b": 10.0, "c": 10.0}, active="c") == "c"
    )


def test_next_after_an_unknown_account_starts_at_the_beginning() -> None:
    assert next_after(["c", "b"], ORDER, "zzz") == "b"


def test_unknown_strategy_names_the_allowed_ones() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_strategy("least-used")

    assert caught.value.param == "strategy"
    assert "sticky, round-robin, quota-aware" in caught.value.message


def test_picking_from_nobody_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no candidates"):
        choose("sticky", [])
