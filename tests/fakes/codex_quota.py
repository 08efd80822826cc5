"""Per-account rate-limit state of the fake Codex backend, rendered as upstream renders it.

The same numbers feed the ``x-codex-*`` headers that ride on every ``/codex/responses`` answer
(protocols §4.9, header set of ``fixtures/codex/codex_429_usage_limit_reached.http``) and the
``/wham/usage`` body (``fixtures/codex/codex_wham_usage.http``), so a test can check that the gateway
reads either source into the same quota. Reset times are absolute once a quota is set: reset-after
counts down between requests as it does upstream.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson

from tests.fakes.identities import Identity
from tests.fixtures import load_http


@dataclass(frozen=True)
class Window:
    """One rate-limit window: primary is 5 h (300 min), secondary weekly (10080 min)."""

    used_percent: float
    window_minutes: int
    resets_in_seconds: int


@dataclass(frozen=True)
class Quota:
    """What the backend reports for an account; ``plan_type`` ``None`` means the identity's plan."""

    primary: Window = field(default_factory=lambda: Window(12, 300, 9000))
    secondary: Window = field(default_factory=lambda: Window(3, 10080, 500_000))
    has_credits: bool = False
    unlimited: bool = False
    balance: float | None = 0
    plan_type: str | None = None
    active_limit: str = "premium"
    over_secondary_limit_percent: float = 0


def _number(value: float) -> str:
    return f"{value:g}"


def _flag(value: bool) -> str:
    # The recorded headers spell booleans the Python way ("False").
    return "True" if value else "False"


@dataclass(frozen=True)
class StampedQuota:
    """A quota and the moment it was set, which turns relative resets into absolute ones."""

    quota: Quota
    set_at: float

    def _reset_at(self, window: Window) -> int:
        return int(self.set_at + window.resets_in_seconds)

    def _reset_after(self, window: Window, now: float) -> int:
        return max(0, int(self._reset_at(window) - now))

    def headers(self, identity: Identity, now: float) -> dict[str, str]:
        """The ``x-codex-*`` set, in the recorded order."""
        q, p, s = self.quota, self.quota.primary, self.quota.secondary
        headers = {
            "x-codex-active-limit": q.active_limit,
            "x-codex-plan-type": q.plan_type or identity.plan_type,
            "x-codex-primary-used-percent": _number(p.used_percent),
            "x-codex-secondary-used-percent": _number(s.used_percent),
            "x-codex-primary-window-minutes": str(p.window_minutes),
            "x-codex-primary-over-secondary-limit-percent": _number(q.over_secondary_limit_percent),
            "x-codex-secondary-window-minutes": str(s.window_minutes),
            "x-codex-primary-reset-after-seconds": str(self._reset_after(p, now)),
            "x-codex-secondary-reset-after-seconds": str(self._reset_after(s, now)),
            "x-codex-primary-reset-at": str(self._reset_at(p)),
            "x-codex-secondary-reset-at": str(self._reset_at(s)),
            "x-codex-credits-has-credits": _flag(q.has_credits),
            "x-codex-credits-unlimited": _flag(q.unlimited),
        }
        if q.balance is not None:
            headers["x-codex-credits-balance"] = _number(q.balance)
        return headers

    def _window(self, window: Window, now: float) -> dict[str, Any]:
        return {
            "used_percent": window.used_percent,
            "limit_window_seconds": window.window_minutes * 60,
            "reset_after_seconds": self._reset_after(window, now),
            "reset_at": self._reset_at(window),
        }

    def wham_usage(self, identity: Identity, now: float, *, limit_reached: bool) -> dict[str, Any]:
        """The ``/wham/usage`` body for this account (recorded body, per-account values)."""
        body = copy.deepcopy(_wham_template())
        q = self.quota
        body["user_id"] = identity.user_id
        body["account_id"] = identity.account_id
        body["email"] = identity.email
        body["plan_type"] = q.plan_type or identity.plan_type
        body["rate_limit"] = {
            "allowed": not limit_reached,
            "limit_reached": limit_reached,
            "primary_window": self._window(q.primary, now),
            "secondary_window": self._window(q.secondary, now),
        }
        body["credits"].update(has_credits=q.has_credits, unlimited=q.unlimited, balance=q.balance)
        return body


@cache
def _wham_template() -> dict[str, Any]:
    _, _, raw = load_http("codex/codex_wham_usage.http")
    body: dict[str, Any] = orjson.loads(raw)
    return body


def usage_limit_headers(now: float) -> dict[str, str]:
    """The recorded 429 header set with ``-reset-at`` moved to now + the recorded reset-after."""
    _, headers, _ = load_http("codex/codex_429_usage_limit_reached.http")
    result = {k: v for k, v in headers.items() if k.startswith("x-codex-")}
    for window in ("primary", "secondary"):
        after = int(result[f"x-codex-{window}-reset-after-seconds"])
        result[f"x-codex-{window}-reset-at"] = str(int(now) + after)
    return result


def usage_limit_body(
    now: float, *, resets_in_seconds: int, plan_type: str, error_type: str
) -> dict[str, Any]:
    """The recorded 429 body with ``resets_at`` / ``resets_in_seconds`` relative to now."""
    _, _, raw = load_http("codex/codex_429_usage_limit_reached.http")
    body: dict[str, Any] = orjson.loads(raw)
    body["error"].update(
        type=error_type,
        plan_type=plan_type,
        resets_at=int(now) + resets_in_seconds,
        resets_in_seconds=resets_in_seconds,
    )
    return body
