"""The SQLite schema: forward migrations and the mapping between rows and store records.

Times are stored as UTC ISO-8601 text with microseconds (so they round-trip exactly and sort as text),
JSON snapshots and settings as JSON text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from gateway_core.store.base import (
    AccountRecord,
    JSONValue,
    Mark,
    MarkKind,
    Tokens,
    dump_json,
    load_json,
)

Migration = Callable[[sqlite3.Connection], None]
"""One forward schema step; it runs inside a transaction that also bumps ``user_version``."""


def _v1_initial(conn: sqlite3.Connection) -> None:
    """Accounts, marks, settings and usage buckets. Times are UTC ISO-8601 text, JSON is text."""
    conn.execute(
        """CREATE TABLE accounts (
            email TEXT PRIMARY KEY NOT NULL,
            account_id TEXT,
            plan_type TEXT,
            added_at TEXT NOT NULL,
            last_used TEXT,
            access_token TEXT NOT NULL,
            refresh_token TEXT NOT NULL,
            id_token TEXT,
            access_expires_at TEXT,
            last_refresh TEXT,
            quota TEXT,
            quota_updated_at TEXT,
            upstream_usage TEXT,
            upstream_usage_updated_at TEXT
        )"""
    )
    conn.execute(
        """CREATE TABLE marks (
            email TEXT NOT NULL,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            until TEXT,
            set_at TEXT NOT NULL,
            PRIMARY KEY (email, kind)
        )"""
    )
    conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)")
    conn.execute(
        """CREATE TABLE usage (
            email TEXT NOT NULL,
            model TEXT NOT NULL,
            day TEXT NOT NULL,
            requests INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            latency_ms_total INTEGER NOT NULL DEFAULT 0,
            cost REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (email, model, day)
        )"""
    )


MIGRATIONS: tuple[Migration, ...] = (_v1_initial,)
"""Schema steps in order; step ``i`` takes the database from version ``i`` to ``i + 1``. Append only."""


# --- conversions ---------------------------------------------------------------------------------

ACCOUNT_COLUMNS = (
    "email",
    "account_id",
    "plan_type",
    "added_at",
    "last_used",
    "access_token",
    "refresh_token",
    "id_token",
    "access_expires_at",
    "last_refresh",
    "quota",
    "quota_updated_at",
    "upstream_usage",
    "upstream_usage_updated_at",
)
ACCOUNT_SELECT = f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM accounts"
ACCOUNT_RETURNING = f"RETURNING {', '.join(ACCOUNT_COLUMNS)}"


def ts(value: datetime | None) -> str | None:
    """Records hold UTC datetimes already; microseconds always, so the text round-trips exactly."""
    return None if value is None else value.isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def json_text(value: Mapping[str, JSONValue] | None, what: str) -> str | None:
    return None if value is None else dump_json(value, what).decode()


def account_params(record: AccountRecord) -> tuple[Any, ...]:
    return (
        record.email,
        record.account_id,
        record.plan_type,
        ts(record.added_at),
        ts(record.last_used),
        record.tokens.access_token,
        record.tokens.refresh_token,
        record.tokens.id_token,
        ts(record.access_expires_at),
        ts(record.last_refresh),
        json_text(record.quota, "quota"),
        ts(record.quota_updated_at),
        json_text(record.upstream_usage, "upstream usage"),
        ts(record.upstream_usage_updated_at),
    )


def account_from_row(row: sqlite3.Row) -> AccountRecord:
    added_at = dt(row["added_at"])
    assert added_at is not None  # NOT NULL column
    return AccountRecord(
        email=row["email"],
        account_id=row["account_id"],
        plan_type=row["plan_type"],
        added_at=added_at,
        last_used=dt(row["last_used"]),
        tokens=Tokens(
            access_token=row["access_token"],
            refresh_token=row["refresh_token"],
            id_token=row["id_token"],
        ),
        access_expires_at=dt(row["access_expires_at"]),
        last_refresh=dt(row["last_refresh"]),
        quota=load_json(row["quota"]),
        quota_updated_at=dt(row["quota_updated_at"]),
        upstream_usage=load_json(row["upstream_usage"]),
        upstream_usage_updated_at=dt(row["upstream_usage_updated_at"]),
    )


def mark_from_row(row: sqlite3.Row) -> Mark:
    set_at = dt(row["set_at"])
    assert set_at is not None  # NOT NULL column
    return Mark(
        email=row["email"],
        kind=MarkKind(row["kind"]),
        reason=row["reason"],
        until=dt(row["until"]),
        set_at=set_at,
    )
