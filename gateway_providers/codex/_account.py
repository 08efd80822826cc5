"""The pool's in-memory view of one account, and its translation into the core value types.

The stored :class:`~gateway_core.store.AccountRecord` holds the tokens and identity; everything the
request path reads or changes often (quota, marks, last use) sits beside it, so choosing an account
never touches the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio

from gateway_core.accounts import AccountInfo, AccountStatus, Quota, UsageSummary
from gateway_core.store import AccountRecord, Mark, MarkKind, UsageReport
from gateway_providers.codex.lease import Lease
from gateway_providers.codex.quota import as_of, quota_from_json


@dataclass(slots=True, eq=False)
class PoolAccount:
    """One account as the pool keeps it. Mutated only on the event loop."""

    record: AccountRecord
    quota: Quota | None = None
    upstream_usage: Mapping[str, Any] | None = None
    usage_fetched_at: datetime | None = None
    """When ``/wham/usage`` was last fetched for this account."""
    last_used: datetime | None = None
    cooling: Mark | None = None
    invalid: Mark | None = None
    refresh_retry_at: datetime | None = None
    """After a transient refresh failure: no new proactive attempt before this time while the
    current token is still valid (a down issuer must not make every request wait for it)."""
    quota_lock: anyio.Lock = field(default_factory=anyio.Lock)
    """One usage fetch per account at a time."""
    unsaved_tokens: bool = False
    """The tokens in :attr:`record` came from a refresh whose save failed: the store still holds the
    refresh token the issuer has already spent, so these must win over the store's until written."""

    @classmethod
    def from_record(cls, record: AccountRecord, marks: list[Mark] | None = None) -> PoolAccount:
        account = cls(
            record=record,
            quota=quota_from_json(record.quota),
            upstream_usage=record.upstream_usage,
            usage_fetched_at=record.upstream_usage_updated_at,
            last_used=record.last_used,
        )
        for mark in marks or ():
            account.set_mark(mark)
        return account

    @property
    def email(self) -> str:
        return self.record.email

    def set_mark(self, mark: Mark) -> None:
        if mark.kind is MarkKind.COOLING:
            self.cooling = mark
        else:
            self.invalid = mark

    def cooling_until(self, now: datetime) -> datetime | None:
        """The end of an active cooling mark, else ``None``."""
        mark = self.cooling
        return mark.until if mark is not None and mark.is_active(now) else None

    def status(self, now: datetime) -> AccountStatus:
        if self.invalid is not None:
            return "invalid"
        return "cooling" if self.cooling_until(now) is not None else "ok"

    def token_expired(self, now: datetime) -> bool:
        expires = self.record.access_expires_at
        return expires is not None and expires <= now

    def lease(self) -> Lease:
        record = self.record
        return Lease(record.email, record.account_id or "", record.tokens.access_token)

    def info(self, now: datetime, *, active: bool) -> AccountInfo:
        record = self.record
        plan = record.plan_type or (self.quota.plan_type if self.quota else None)
        return AccountInfo(
            email=record.email,
            account_id=record.account_id,
            plan_type=plan,
            added_at=record.added_at,
            last_used=self.last_used,
            is_active=active,
            token_expired=self.token_expired(now),
            status=self.status(now),
            cooling_until=self.cooling_until(now),
            invalid_reason=self.invalid.reason if self.invalid is not None else None,
            quota=as_of(self.quota, now) if self.quota is not None else None,
        )


def usage_summary(report: UsageReport, upstream: Any) -> UsageSummary:
    """The store's report in the core shape, with the upstream snapshot beside it."""
    return UsageSummary(
        totals=report.totals,
        by_model=dict(report.by_model),
        by_day=[(day.isoformat(), counters) for day, counters in report.by_day.items()],
        upstream=upstream,
    )
