"""Which account serves the next request: the rotation strategies of DESIGN §7, as pure functions.

Each takes the usable candidates (accounts neither cooling, invalid nor excluded) in the pool's order
(oldest first) and returns one of them; none does I/O or changes state, so the pool decides what a
choice means (a new active account, the round-robin cursor).

- ``sticky`` (default): the active account while it can serve; otherwise the next usable account
  after it in the pool's order, wrapping around.
- ``round-robin``: the next usable account after the one picked last.
- ``quota-aware``: the lowest used percent of the binding window (the higher of the 5-hour and the
  weekly window); an account whose quota was never seen counts as unused; ties go to the active
  account, then to pool order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway_core.accounts import STRATEGIES, Strategy
from gateway_core.errors import InvalidRequestError


def parse_strategy(value: object) -> Strategy:
    """``value`` as a strategy name; anything else is a 400 listing the allowed names."""
    for strategy in STRATEGIES:
        if value == strategy:
            return strategy
    allowed = ", ".join(STRATEGIES)
    raise InvalidRequestError(f"unknown account strategy {value!r}; use one of: {allowed}", param="strategy")


def next_after(candidates: Sequence[str], order: Sequence[str], after: str | None) -> str:
    """The first candidate following ``after`` in ``order`` (wrapping); from the start when ``after``
    is unknown. ``candidates`` must not be empty."""
    usable = set(candidates)
    start = order.index(after) + 1 if after in order else 0
    for offset in range(len(order)):
        email = order[(start + offset) % len(order)]
        if email in usable:
            return email
    return candidates[0]


def pick_sticky(candidates: Sequence[str], order: Sequence[str], active: str | None) -> str:
    if active is not None and active in candidates:
        return active
    return next_after(candidates, order, active)


def pick_round_robin(candidates: Sequence[str], order: Sequence[str], last: str | None) -> str:
    return next_after(candidates, order, last)


def pick_quota_aware(
    candidates: Sequence[str], percents: Mapping[str, float | None], active: str | None
) -> str:
    def key(item: tuple[int, str]) -> tuple[float, int, int]:
        index, email = item
        used = percents.get(email)
        return (0.0 if used is None else used, 0 if email == active else 1, index)

    return min(enumerate(candidates), key=key)[1]


def pick(
    strategy: Strategy,
    candidates: Sequence[str],
    *,
    order: Sequence[str],
    active: str | None,
    last: str | None,
    percents: Mapping[str, float | None],
) -> str:
    """The account ``strategy`` chooses among ``candidates`` (not empty)."""
    if not candidates:
        raise ValueError("no candidates to pick from")
    if strategy == "round-robin":
        return pick_round_robin(candidates, order, last)
    if strategy == "quota-aware":
        return pick_quota_aware(candidates, percents, active)
    return pick_sticky(candidates, order, active)
