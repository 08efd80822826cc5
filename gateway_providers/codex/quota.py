"""An account's rate limits, from the two places the Codex backend tells them (protocols §4.9, §4.10).

Every ``/codex/responses`` answer — a 429 included — carries ``x-codex-primary-*`` (the 5-hour window),
``x-codex-secondary-*`` (the weekly one), credit and plan headers: read for free into a
:class:`~gateway_core.accounts.Quota` with ``source="headers"``. ``GET {base}/wham/usage`` answers the
same numbers as JSON on demand (``source="usage"``). Both parsers are pure and tolerant: a missing or
malformed value is left out, never an exception. The store keeps a quota as the JSON of
:func:`quota_to_json`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import httpx
import orjson

from gateway_core.accounts import Credits, Quota, QuotaWindow
from gateway_core.errors import (
    AuthenticationError,
    GatewayError,
    UpstreamError,
    UpstreamTimeoutError,
    error_class_for_status,
)
from gateway_providers.codex.oauth import ORIGINATOR, unix_time

USAGE_TIMEOUT: Final = 20.0
"""Seconds a usage fetch may take."""

_Window = Literal["primary", "secondary"]

_KEPT_STATUSES: Final = frozenset({429, 503, 504, 529})

# `x-codex-credits-*` spell booleans the Python way ("False") in recorded traffic; Codex also accepts
# the lower-case words and 1/0 (`codex-rs/codex-api/src/rate_limits.rs` parse_header_bool).
_BOOLEANS: Final[dict[str, bool]] = {"true": True, "1": True, "false": False, "0": False}


# --- headers -------------------------------------------------------------------------------------


def _float(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _int(raw: str | None) -> int | None:
    value = _float(raw)
    return None if value is None else int(value)


def _bool(raw: str | None) -> bool | None:
    return None if raw is None else _BOOLEANS.get(raw.strip().lower())


def _window_from_headers(h: Mapping[str, str], window: _Window, now: datetime) -> QuotaWindow | None:
    """Codex `parse_rate_limit_window`: the percent must be there, and the window counts only if the
    percent is not 0 or it has a window length or a reset time (an all-zero set means "no window")."""
    prefix = f"x-codex-{window}-"
    used = _float(h.get(prefix + "used-percent"))
    if used is None:
        return None
    minutes = _int(h.get(prefix + "window-minutes"))
    reset_at = unix_time(_float(h.get(prefix + "reset-at")))
    reset_after = _int(h.get(prefix + "reset-after-seconds"))
    if used == 0 and not minutes and reset_at is None and reset_after is None:
        return None
    if reset_at is None and reset_after is not None:
        reset_at = now + timedelta(seconds=reset_after)
    return _countdown(QuotaWindow(used, minutes or None, reset_at, reset_after), now)


def _credits_from_headers(h: Mapping[str, str]) -> Credits | None:
    has_credits = _bool(h.get("x-codex-credits-has-credits"))
    unlimited = _bool(h.get("x-codex-credits-unlimited"))
    balance = _float(h.get("x-codex-credits-balance"))
    if has_credits is None and unlimited is None and balance is None:
        return None
    return Credits(has_credits=has_credits, unlimited=unlimited, balance=balance)


def quota_from_headers(headers: Mapping[str, str], *, now: datetime) -> Quota | None:
    """The quota an upstream answer's ``x-codex-*`` headers describe, or ``None`` when they say nothing."""
    h = {name.lower(): value for name, value in headers.items() if name[:8].lower() == "x-codex-"}
    if not h:
        return None
    primary = _window_from_headers(h, "primary", now)
    secondary = _window_from_headers(h, "secondary", now)
    credits = _credits_from_headers(h)
    plan = (h.get("x-codex-plan-type") or "").strip() or None
    if primary is None and secondary is None and credits is None and plan is None:
        return None
    return Quota(
        updated_at=now,
        source="headers",
        primary=primary,
        secondary=secondary,
        credits=credits,
        plan_type=plan,
    )


# --- /wham/usage ---------------------------------------------------------------------------------


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _window_from_usage(raw: object, now: datetime) -> QuotaWindow | None:
    if not isinstance(raw, Mapping):
        return None
    used = _num(raw.get("used_percent"))
    if used is None:
        return None
    seconds = _num(raw.get("limit_window_seconds"))
    after = _num(raw.get("reset_after_seconds"))
    reset_at = unix_time(_num(raw.get("reset_at")))
    if reset_at is None and after is not None:
        reset_at = now + timedelta(seconds=after)
    window = QuotaWindow(
        used_percent=used,
        window_minutes=int(seconds // 60) if seconds else None,
        resets_at=reset_at,
        resets_in_seconds=None if after is None else int(after),
    )
    return _countdown(window, now)


def _credits_from_usage(raw: object) -> Credits | None:
    if not isinstance(raw, Mapping):
        return None
    has_credits, unlimited = raw.get("has_credits"), raw.get("unlimited")
    return Credits(
        has_credits=has_credits if isinstance(has_credits, bool) else None,
        unlimited=unlimited if isinstance(unlimited, bool) else None,
        balance=_num(raw.get("balance")),
    )


def quota_from_usage(payload: Mapping[str, Any], *, now: datetime) -> Quota:
    """The quota in a ``/wham/usage`` answer (``rate_limit.primary_window`` / ``secondary_window``)."""
    limits = payload.get("rate_limit")
    limits = limits if isinstance(limits, Mapping) else {}
    plan = payload.get("plan_type")
    return Quota(
        updated_at=now,
        source="usage",
        primary=_window_from_usage(limits.get("primary_window"), now),
        secondary=_window_from_usage(limits.get("secondary_window"), now),
        credits=_credits_from_usage(payload.get("credits")),
        plan_type=plan if isinstance(plan, str) and plan else None,
    )


def usage_url(base_url: str) -> str:
    """``{base}/wham/usage`` on the ChatGPT backend; bases without ``/backend-api`` use
    ``{base}/api/codex/usage`` (protocols §4.10)."""
    base = base_url.rstrip("/")
    return f"{base}/wham/usage" if "/backend-api" in base else f"{base}/api/codex/usage"


async def fetch_usage(
    http: httpx.AsyncClient,
    base_url: str,
    *,
    access_token: str,
    account_id: str,
    timeout_s: float = USAGE_TIMEOUT,
) -> dict[str, Any]:
    """``GET`` the usage endpoint as the account; failures become :class:`GatewayError` (a 401 is an
    :class:`AuthenticationError` with ``code="unauthorized"``, so the caller can refresh and retry)."""
    url = usage_url(base_url)
    headers = {
        "authorization": f"Bearer {access_token}",
        "accept": "application/json",
        "originator": ORIGINATOR,
    }
    if account_id:
        headers["chatgpt-account-id"] = account_id
    try:
        response = await http.get(url, headers=headers, timeout=timeout_s)
    except httpx.TimeoutException:
        raise UpstreamTimeoutError(f"the usage endpoint {url} timed out after {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"could not reach the usage endpoint {url}: {type(exc).__name__}") from None
    if response.status_code == 401:
        raise AuthenticationError("the Codex backend refused the account's access token", code="unauthorized")
    if response.status_code != 200:
        # Only limits, overloads and timeouts keep their meaning for the admin caller; any other refusal
        # (a 4xx about our request, a 500) is the upstream failing us: 502.
        status = response.status_code
        cls: type[GatewayError] = (
            error_class_for_status(status) if status in _KEPT_STATUSES else UpstreamError
        )
        raise cls(f"the usage endpoint answered HTTP {status}")
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise UpstreamError("the usage endpoint answered something that is not JSON") from None
    if not isinstance(payload, dict):
        raise UpstreamError("the usage endpoint answered JSON that is not an object")
    return payload


# --- derived views and storage -------------------------------------------------------------------


def _countdown(window: QuotaWindow, now: datetime) -> QuotaWindow:
    if window.resets_at is None:
        return window
    left = max(0, int((window.resets_at - now).total_seconds()))
    return dataclasses.replace(window, resets_in_seconds=left)


def as_of(quota: Quota, now: datetime) -> Quota:
    """The quota with each window's ``resets_in_seconds`` counted down to ``now``; a window whose reset
    has passed reads 0 % used (upstream starts a fresh window then)."""

    def view(window: QuotaWindow | None) -> QuotaWindow | None:
        if window is None:
            return None
        if window.resets_at is not None and window.resets_at <= now:
            return dataclasses.replace(window, used_percent=0.0, resets_in_seconds=0)
        return _countdown(window, now)

    return dataclasses.replace(quota, primary=view(quota.primary), secondary=view(quota.secondary))


def binding_percent(quota: Quota | None) -> float | None:
    """The used percent of the window that binds first: the higher of primary and secondary."""
    if quota is None:
        return None
    percents = [w.used_percent for w in (quota.primary, quota.secondary) if w is not None]
    return max(percents) if percents else None


def limit_reset(quota: Quota | None) -> datetime | None:
    """When an exhausted account can serve again: the latest reset of the windows at 100 %."""
    if quota is None:
        return None
    resets = [
        w.resets_at
        for w in (quota.primary, quota.secondary)
        if w is not None and w.used_percent >= 100 and w.resets_at is not None
    ]
    return max(resets) if resets else None


def _window_json(window: QuotaWindow | None) -> dict[str, Any] | None:
    if window is None:
        return None
    return {
        "usedPercent": window.used_percent,
        "windowMinutes": window.window_minutes,
        "resetsAt": window.resets_at.isoformat() if window.resets_at else None,
        "resetsInSeconds": window.resets_in_seconds,
    }


def quota_to_json(quota: Quota) -> dict[str, Any]:
    """The quota as JSON, in the admin API's camelCase Quota shape (DESIGN §6.1)."""
    credits = quota.credits
    return {
        "primary": _window_json(quota.primary),
        "secondary": _window_json(quota.secondary),
        "credits": None
        if credits is None
        else {"hasCredits": credits.has_credits, "unlimited": credits.unlimited, "balance": credits.balance},
        "planType": quota.plan_type,
        "updatedAt": quota.updated_at.isoformat(),
        "source": quota.source,
    }


def _time(raw: object) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _window_from_json(raw: object) -> QuotaWindow | None:
    if not isinstance(raw, Mapping) or _num(raw.get("usedPercent")) is None:
        return None
    minutes, left = _num(raw.get("windowMinutes")), _num(raw.get("resetsInSeconds"))
    return QuotaWindow(
        used_percent=float(raw["usedPercent"]),
        window_minutes=None if minutes is None else int(minutes),
        resets_at=_time(raw.get("resetsAt")),
        resets_in_seconds=None if left is None else int(left),
    )


def quota_from_json(raw: object) -> Quota | None:
    """A quota written by :func:`quota_to_json`; anything unreadable is ``None`` (a fresh one comes
    with the next upstream answer)."""
    if not isinstance(raw, Mapping):
        return None
    updated = _time(raw.get("updatedAt"))
    source = raw.get("source")
    if updated is None or source not in ("headers", "usage"):
        return None
    credits_raw = raw.get("credits")
    credits = None
    if isinstance(credits_raw, Mapping):
        has, unlimited = credits_raw.get("hasCredits"), credits_raw.get("unlimited")
        credits = Credits(
            has_credits=has if isinstance(has, bool) else None,
            unlimited=unlimited if isinstance(unlimited, bool) else None,
            balance=_num(credits_raw.get("balance")),
        )
    plan = raw.get("planType")
    return Quota(
        updated_at=updated,
        source="headers" if source == "headers" else "usage",
        primary=_window_from_json(raw.get("primary")),
        secondary=_window_from_json(raw.get("secondary")),
        credits=credits,
        plan_type=plan if isinstance(plan, str) else None,
    )
