"""What one failed upstream attempt means for the next one (codex_internal contract, protocols §4.8, §7.9).

Every failure before an answer starts — an HTTP error, a transport failure, a stall, or an in-band
``response.failed`` / ``error`` event that arrives before any content — is sorted into an
:class:`Action`. The choice of account happens before any byte reaches the client, so an account
that is limited, logged out or failing is replaced silently; a failure that would fail on every
account (a bad request) is reported at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum

from gateway_core.errors import AuthenticationError, ErrorKind, GatewayError, RateLimitError

USAGE_LIMIT_CODE = "usage_limit_reached"


class Action(Enum):
    """What the provider does after a failed attempt."""

    REAUTHENTICATE = "reauthenticate"
    """401: refresh the account's token once and retry with it; a second 401 marks it invalid."""
    COOL_DOWN = "cool_down"
    """429 ``usage_limit_reached``: the account is limited until its reset; try the next one."""
    NEXT_ACCOUNT = "next_account"
    """The account's plan cannot serve (``usage_not_included``, ``insufficient_quota``): try the next
    one without marking this one, whose plan may change."""
    RETRY_ONCE = "retry_once"
    """A transient failure (5xx, overload, short-term 429, connection failure, stall, stream cut
    before any content): once on another account, then the error."""
    FAIL = "fail"
    """The request itself is at fault (400, 413, 403 from a proxy in front of the backend): no
    account would answer differently."""


# Short-term `rate_limit_exceeded` 429s are per account on the ChatGPT backend, so another account
# may well answer: they are retried once like other transient failures (documented choice).
_BY_KIND: dict[ErrorKind, Action] = {
    ErrorKind.AUTHENTICATION: Action.REAUTHENTICATE,
    ErrorKind.BILLING: Action.NEXT_ACCOUNT,
    ErrorKind.RATE_LIMIT: Action.RETRY_ONCE,
    ErrorKind.UPSTREAM: Action.RETRY_ONCE,
    ErrorKind.TIMEOUT: Action.RETRY_ONCE,
    ErrorKind.OVERLOADED: Action.RETRY_ONCE,
}


def classify(error: GatewayError) -> Action:
    """The action for a failed attempt."""
    if error.kind is ErrorKind.RATE_LIMIT and error.code == USAGE_LIMIT_CODE:
        return Action.COOL_DOWN
    return _BY_KIND.get(error.kind, Action.FAIL)


def resets_at(error: GatewayError, now: datetime | None = None) -> datetime | None:
    """When a usage limit resets: ``retry_after`` (parse_error derives it from the body's
    ``resets_in_seconds`` / ``resets_at``) from now, or ``None`` when the backend did not say."""
    if error.retry_after is None:
        return None
    return (now or datetime.now(UTC)) + timedelta(seconds=error.retry_after)


def exhausted(pool_error: GatewayError, failures: Sequence[GatewayError]) -> GatewayError:
    """The error to report when the pool has no account left to try.

    - nothing was tried: the pool's own verdict (no account: 401; every account cooling: 429 with
      the earliest reset);
    - some account was rate limited: one 429 whose ``retry-after`` is the earliest reset seen, the
      pool's included (protocols §9 "Pool exhausted"), never the last upstream error;
    - an account refused by the backend last: a 401 that says it was the accounts, not the client's
      key, that were refused;
    - otherwise the last upstream failure (the pool only says that nobody else is left).
    """
    if not failures:
        return pool_error
    limits = [error for error in (*failures, pool_error) if error.kind is ErrorKind.RATE_LIMIT]
    if limits:
        delays = [error.retry_after for error in limits if error.retry_after is not None]
        source = pool_error if pool_error.kind is ErrorKind.RATE_LIMIT else limits[-1]
        return RateLimitError(
            source.message, retry_after=min(delays) if delays else None, code=source.code or limits[-1].code
        )
    last = failures[-1]
    if last.kind is ErrorKind.AUTHENTICATION:
        return AuthenticationError(
            f"the Codex backend refused every account ({last.message}); "
            "refresh or re-add them under /accounts",
            code=last.code,
        )
    return last
