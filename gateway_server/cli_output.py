"""Human-readable text for ``relaygate accounts``: admin API bodies as tables and short lines.

Pure functions of the JSON bodies (DESIGN §6.1), so the text is the same whether the answer came from
a running gateway or from an in-process one. ``--json`` bypasses all of this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_COUNTER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("REQUESTS", "requests"),
    ("INPUT", "inputTokens"),
    ("CACHED", "cachedTokens"),
    ("OUTPUT", "outputTokens"),
    ("REASONING", "reasoningTokens"),
    ("ERRORS", "errors"),
)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, headers first."""
    widths = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def duration(seconds: int | float | None) -> str:
    """``45s``, ``12m``, ``2h05m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def when(value: str | None) -> str:
    """An ISO-8601 UTC time as ``2025-01-31 12:00Z``; ``-`` when absent."""
    if not value:
        return "-"
    return f"{value[:16].replace('T', ' ')}Z" if len(value) >= 16 else value


def number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _used(window: Mapping[str, Any] | None) -> str:
    if window is None or window.get("usedPercent") is None:
        return "-"
    return f"{float(window['usedPercent']):g}%"


def _resets(window: Mapping[str, Any] | None) -> str:
    if window is None or window.get("resetsInSeconds") is None:
        return "-"
    return f"in {duration(window['resetsInSeconds'])}"


def _credits(credits: Mapping[str, Any] | None) -> str:
    if credits is None:
        return "-"
    if credits.get("unlimited"):
        return "unlimited"
    if credits.get("balance") is not None:
        return str(credits["balance"])
    return "yes" if credits.get("hasCredits") else "none"


def _quota_cells(quota: Mapping[str, Any] | None) -> list[str]:
    if quota is None:
        return ["-", "-", "-", "-", "-"]
    primary, secondary = quota.get("primary"), quota.get("secondary")
    return [
        _used(primary),
        _resets(primary),
        _used(secondary),
        _resets(secondary),
        _credits(quota.get("credits")),
    ]


_QUOTA_HEADERS = ("5H USED", "5H RESETS", "WEEK USED", "WEEK RESETS", "CREDITS")


def _status(account: Mapping[str, Any]) -> str:
    status = str(account.get("status", "-"))
    if status == "cooling" and account.get("coolingUntil"):
        return f"cooling until {when(account['coolingUntil'])}"
    if status == "invalid" and account.get("invalidReason"):
        return f"invalid: {account['invalidReason']}"
    if status == "ok" and account.get("tokenExpired"):
        return "ok (token expired; refreshed on use)"
    return status


def format_accounts(body: Mapping[str, Any]) -> str:
    """``GET /accounts`` as a table; ``*`` marks the active account."""
    accounts = body.get("accounts") or []
    if not accounts:
        return "No accounts. Add one with: relaygate accounts add"
    rows = [
        [
            "*" if account.get("isActive") else " ",
            str(account["email"]),
            str(account.get("planType") or "-"),
            _status(account),
            _used((account.get("quota") or {}).get("primary")),
            _used((account.get("quota") or {}).get("secondary")),
            when(account.get("lastUsed")),
        ]
        for account in accounts
    ]
    headers = (" ", "EMAIL", "PLAN", "STATUS", "5H USED", "WEEK USED", "LAST USED")
    return f"{table(headers, rows)}\n\n{len(accounts)} account(s); * = active"


def format_quota(body: Mapping[str, Any]) -> str:
    """``GET /accounts/quota`` as a one-row table with where it came from."""
    quota = body.get("quota")
    rows = [[str(body["email"]), *_quota_cells(quota)]]
    origin = "cached" if body.get("cached") else "fetched now"
    updated = when(quota.get("updatedAt")) if quota else "-"
    return f"{table(('EMAIL', *_QUOTA_HEADERS), rows)}\n\n({origin}; updated {updated})"


def format_quota_all(body: Mapping[str, Any]) -> str:
    """``GET /accounts/quota/all`` as a table; an account whose quota failed shows the error."""
    entries = body.get("accounts") or []
    if not entries:
        return "No accounts. Add one with: relaygate accounts add"
    rows = []
    for entry in entries:
        if entry.get("error"):
            rows.append([str(entry["email"]), "-", "-", "-", "-", "-", f"error: {entry['error']}"])
        else:
            rows.append([str(entry["email"]), *_quota_cells(entry.get("quota")), ""])
    return table(("EMAIL", *_QUOTA_HEADERS, ""), rows)


def _counter_row(label: str, counters: Mapping[str, Any]) -> list[str]:
    return [label, *(number(counters.get(key, 0)) for _, key in _COUNTER_COLUMNS)]


def format_usage(body: Mapping[str, Any]) -> str:
    """``GET /accounts/usage``: totals, then per model and per day."""
    who = body.get("email") or "all accounts"
    headers = [header for header, _ in _COUNTER_COLUMNS]
    parts = [f"Usage of {who}", table(["", *headers], [_counter_row("total", body.get("totals") or {})])]
    by_model = body.get("byModel") or {}
    if by_model:
        rows = [_counter_row(model, counters) for model, counters in by_model.items()]
        parts.append(table(["MODEL", *headers], rows))
    by_day = body.get("byDay") or []
    if by_day:
        rows = [_counter_row(str(day.get("date")), day) for day in by_day]
        parts.append(table(["DATE", *headers], rows))
    return "\n\n".join(parts)


def format_refresh_all(body: Mapping[str, Any]) -> str:
    """``POST /accounts/refresh/all``: one line per account."""
    results = body.get("results") or {}
    if not results:
        return "No accounts to refresh."
    rows = [
        [email, "refreshed" if result.get("success") else f"failed: {result.get('error', 'unknown error')}"]
        for email, result in results.items()
    ]
    return table(("EMAIL", "RESULT"), rows)


def format_strategy(body: Mapping[str, Any]) -> str:
    """``GET|POST /settings/account-strategy``."""
    choices = ", ".join(body.get("strategies") or [])
    line = body.get("message") or f"Account strategy: {body.get('strategy')}"
    return f"{line} (strategies: {choices})" if choices else str(line)
