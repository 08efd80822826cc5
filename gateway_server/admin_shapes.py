"""The admin API's JSON values, in camelCase as the seed API has them (DESIGN §6.1).

Pure functions from core account values to plain dicts: the ``/accounts*`` routes and the CLI's local
mode render through them, so both print the same thing. Datetimes are ISO-8601 in UTC with a ``Z``
(millisecond precision, like a browser's ``toISOString()``). Nothing here can hold a token: the core
values these render never carry one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from gateway_core.accounts import AccountInfo, Credits, Quota, QuotaWindow, UsageCounters, UsageSummary
from gateway_core.models import ModelInfo


def iso(value: datetime | None) -> str | None:
    """``2025-01-31T12:00:00.000Z``; a naive datetime is taken to be UTC already."""
    if value is None:
        return None
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now


def render_window(window: QuotaWindow, *, now: datetime | None = None) -> dict[str, Any]:
    """Window = ``{usedPercent, windowMinutes, resetsAt, resetsInSeconds}``.

    ``resetsInSeconds`` is counted from ``now`` when the reset time is known, so a snapshot read an
    hour ago still says how long is left; otherwise it is the upstream's own count.
    """
    resets_in = window.resets_in_seconds
    if window.resets_at is not None:
        resets_in = max(0, math.ceil((window.resets_at - _now(now)).total_seconds()))
    return {
        "usedPercent": window.used_percent,
        "windowMinutes": window.window_minutes,
        "resetsAt": iso(window.resets_at),
        "resetsInSeconds": resets_in,
    }


def render_credits(credits: Credits) -> dict[str, Any]:
    """``{hasCredits, unlimited, balance}``."""
    return {"hasCredits": credits.has_credits, "unlimited": credits.unlimited, "balance": credits.balance}


def render_quota(quota: Quota | None, *, now: datetime | None = None) -> dict[str, Any] | None:
    """Quota = ``{primary, secondary, credits, planType, updatedAt, source}``; primary is the 5-hour
    window, secondary the weekly one."""
    if quota is None:
        return None
    return {
        "primary": None if quota.primary is None else render_window(quota.primary, now=now),
        "secondary": None if quota.secondary is None else render_window(quota.secondary, now=now),
        "credits": None if quota.credits is None else render_credits(quota.credits),
        "planType": quota.plan_type,
        "updatedAt": iso(quota.updated_at),
        "source": quota.source,
    }


def render_account(account: AccountInfo, *, now: datetime | None = None) -> dict[str, Any]:
    """Account = ``{email, accountId, planType, addedAt, lastUsed, isActive, tokenExpired, status,
    coolingUntil, invalidReason, quota}``."""
    return {
        "email": account.email,
        "accountId": account.account_id,
        "planType": account.plan_type,
        "addedAt": iso(account.added_at),
        "lastUsed": iso(account.last_used),
        "isActive": account.is_active,
        "tokenExpired": account.token_expired,
        "status": account.status,
        "coolingUntil": iso(account.cooling_until),
        "invalidReason": account.invalid_reason,
        "quota": render_quota(account.quota, now=now),
    }


def active_email(accounts: Sequence[AccountInfo]) -> str | None:
    """The email of the active account, or ``None`` when no account is active."""
    return next((account.email for account in accounts if account.is_active), None)


def render_account_list(accounts: Sequence[AccountInfo], *, now: datetime | None = None) -> dict[str, Any]:
    """``GET /accounts``: ``{accounts, activeAccount, total}``."""
    return {
        "accounts": [render_account(account, now=now) for account in accounts],
        "activeAccount": active_email(accounts),
        "total": len(accounts),
    }


def render_status(accounts: Sequence[AccountInfo], *, now: datetime | None = None) -> dict[str, Any]:
    """``GET /accounts/status``: ``{total, active, available, cooling, invalid, accounts}``.

    ``active`` is the active account's email (or ``None``), as the seed's status has it; the other
    three count accounts by status (``available``: status ``ok``).
    """
    return {
        "total": len(accounts),
        "active": active_email(accounts),
        "available": sum(1 for account in accounts if account.status == "ok"),
        "cooling": sum(1 for account in accounts if account.status == "cooling"),
        "invalid": sum(1 for account in accounts if account.status == "invalid"),
        "accounts": [render_account(account, now=now) for account in accounts],
    }


def render_counters(counters: UsageCounters) -> dict[str, Any]:
    """Counters = ``{requests, inputTokens, cachedTokens, outputTokens, reasoningTokens, errors}``,
    plus the summed latency and cost."""
    return {
        "requests": counters.requests,
        "inputTokens": counters.input_tokens,
        "cachedTokens": counters.cached_tokens,
        "outputTokens": counters.output_tokens,
        "reasoningTokens": counters.reasoning_tokens,
        "errors": counters.errors,
        "latencyMsTotal": counters.latency_ms_total,
        "cost": counters.cost,
    }


def render_usage(summary: UsageSummary, *, email: str | None) -> dict[str, Any]:
    """``GET /accounts/usage``: ``{success, email, totals, byModel, byDay, upstream}``; ``email`` is
    ``None`` for the usage of all accounts together."""
    return {
        "success": True,
        "email": email,
        "totals": render_counters(summary.totals),
        "byModel": {model: render_counters(counters) for model, counters in summary.by_model.items()},
        "byDay": [{"date": day, **render_counters(counters)} for day, counters in summary.by_day],
        "upstream": summary.upstream,
    }


def render_model(model: ModelInfo) -> dict[str, Any]:
    """``{id, contextWindow?, displayName?, maxOutputTokens?}``: optional keys only when known."""
    entry: dict[str, Any] = {"id": model.id}
    if model.context_window is not None:
        entry["contextWindow"] = model.context_window
    if model.display_name is not None:
        entry["displayName"] = model.display_name
    if model.max_output_tokens is not None:
        entry["maxOutputTokens"] = model.max_output_tokens
    return entry
