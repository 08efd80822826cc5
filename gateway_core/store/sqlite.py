"""The embedded default :class:`~gateway_core.store.base.Store`: one SQLite file, ``relaygate.db``.

Why it looks the way it does:

- **Private files.** The state folder is created 0700 and the database file 0600 *before* SQLite
  writes a byte (``os.open`` with the mode, then connect); existing ones are tightened. SQLite gives
  its ``-wal`` / ``-shm`` companions the database file's mode.
- **Off the event loop.** Every call runs in a worker thread (:func:`anyio.to_thread.run_sync`) on one
  dedicated connection, guarded by an :class:`anyio.Lock`, so the hot path never blocks on disk and
  the connection is never used by two threads at once. A cancelled caller still waits for its
  statement to finish, so the lock is never released mid-transaction.
- **Atomic writes.** Each write is one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction, rolled back on
  any failure, so nothing is ever half-written.
- **Durability.** WAL journal with ``synchronous=NORMAL``: a commit is in the WAL (the OS holds it)
  when the call returns, so a killed process loses nothing; only an OS crash or power cut could lose
  the last commits. That is acceptable for quota snapshots, usage counters and settings, but not for
  rotated refresh tokens (the upstream has already spent the old one), so account and token writes
  run with ``synchronous=FULL``, which fsyncs the WAL before the commit returns.
- **Versioned schema.** ``PRAGMA user_version`` counts the :data:`MIGRATIONS` applied; each step runs
  in its own transaction, together with the version bump, so a failed step leaves the previous
  version intact. A database from a newer relaygate is refused rather than misread.
- **Clear failures.** Any :class:`sqlite3.Error` or :class:`OSError` becomes a
  :class:`~gateway_core.store.base.StoreError` saying what failed and where; SQLite's messages name
  tables and columns, never bound values, so no token ever reaches one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from gateway_core.store._locks import KeyedLocks
from gateway_core.store._sqlite_conn import DB_FILENAME, connect, store_error, transaction, user_version
from gateway_core.store._sqlite_schema import (
    ACCOUNT_COLUMNS,
    ACCOUNT_RETURNING,
    ACCOUNT_SELECT,
    account_from_row,
    account_params,
    json_text,
    mark_from_row,
    ts,
)
from gateway_core.store.base import (
    COUNTER_FIELDS,
    AccountNotFoundError,
    AccountRecord,
    Clock,
    JSONValue,
    Mark,
    MarkKind,
    Store,
    StoreError,
    Tokens,
    UsageCounters,
    UsageIncrement,
    UsageReport,
    as_utc,
    dump_json,
    load_json,
    utcnow,
)

T = TypeVar("T")

__all__ = ["DB_FILENAME", "SQLiteStore"]


class SQLiteStore(Store):
    """State in ``<home>/relaygate.db``. Create it with ``await SQLiteStore.open(home)``."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, clock: Clock = utcnow) -> None:
        """Wrap an open, migrated connection; use :meth:`open` rather than calling this."""
        self._conn: sqlite3.Connection | None = conn
        self._path = path
        self._clock = clock
        self._lock = anyio.Lock()
        self._locks = KeyedLocks()

    @classmethod
    async def open(cls, home: Path, *, clock: Clock = utcnow, busy_timeout: float = 5.0) -> SQLiteStore:
        """Open (creating if needed) the store in the state folder ``home``.

        ``busy_timeout`` is how long a write waits for another process holding the database lock
        before failing with a retryable :class:`StoreError`.
        """
        try:
            conn = await anyio.to_thread.run_sync(partial(connect, home, busy_timeout))
        except (sqlite3.Error, OSError) as exc:
            raise store_error("open the state database", home / DB_FILENAME, exc) from exc
        return cls(conn, home / DB_FILENAME, clock=clock)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    async def _run(
        self,
        what: str,
        body: Callable[[sqlite3.Connection], T],
        *,
        write: bool = False,
        durable: bool = False,
    ) -> T:
        """Run ``body`` on the connection in a worker thread; writes in one transaction."""
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise StoreError(f"could not {what}: the store is closed")
            call = partial(transaction, conn, body, durable=durable) if write else partial(body, conn)
            try:
                return await anyio.to_thread.run_sync(call)
            except sqlite3.Error as exc:
                raise store_error(what, self._path, exc) from exc

    def _now(self, at: datetime | None) -> datetime:
        return self._clock() if at is None else at

    @staticmethod
    def _stamp(value: datetime | None, name: str) -> str | None:
        """A caller's datetime as stored text; naive ones are refused like in the records."""
        return ts(as_utc(value, name))

    # --- lifecycle ---

    async def schema_version(self) -> int:
        return await self._run("read the schema version", user_version)

    async def aclose(self) -> None:
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await anyio.to_thread.run_sync(conn.close)

    # --- accounts ---

    async def list_accounts(self) -> list[AccountRecord]:
        def body(conn: sqlite3.Connection) -> list[AccountRecord]:
            rows = conn.execute(f"{ACCOUNT_SELECT} ORDER BY added_at, email").fetchall()
            return [account_from_row(r) for r in rows]

        return await self._run("list accounts", body)

    async def get_account(self, email: str) -> AccountRecord | None:
        def body(conn: sqlite3.Connection) -> AccountRecord | None:
            row = conn.execute(f"{ACCOUNT_SELECT} WHERE email = ?", (email,)).fetchone()
            return None if row is None else account_from_row(row)

        return await self._run(f"read account {email}", body)

    async def upsert_account(self, record: AccountRecord) -> AccountRecord:
        params = account_params(record)
        updates = ", ".join(f"{c} = excluded.{c}" for c in ACCOUNT_COLUMNS if c not in ("email", "added_at"))
        sql = (
            f"INSERT INTO accounts ({', '.join(ACCOUNT_COLUMNS)}) VALUES ({', '.join('?' * len(params))}) "
            f"ON CONFLICT (email) DO UPDATE SET {updates} {ACCOUNT_RETURNING}"
        )

        def body(conn: sqlite3.Connection) -> AccountRecord:
            return account_from_row(conn.execute(sql, params).fetchall()[0])

        return await self._run(f"save account {record.email}", body, write=True, durable=True)

    async def delete_account(self, email: str) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM marks WHERE email = ?", (email,))
            return conn.execute("DELETE FROM accounts WHERE email = ?", (email,)).rowcount > 0

        return await self._run(f"delete account {email}", body, write=True, durable=True)

    async def _update_account(
        self, what: str, email: str, assignments: Mapping[str, Any], *, durable: bool = False
    ) -> AccountRecord:
        """Set some columns of one account in one statement; unknown email -> AccountNotFoundError."""
        sql = (
            f"UPDATE accounts SET {', '.join(f'{c} = ?' for c in assignments)} "
            f"WHERE email = ? {ACCOUNT_RETURNING}"
        )
        params = (*assignments.values(), email)

        def body(conn: sqlite3.Connection) -> AccountRecord:
            rows = conn.execute(sql, params).fetchall()
            if not rows:
                raise AccountNotFoundError(email)
            return account_from_row(rows[0])

        return await self._run(what, body, write=True, durable=durable)

    async def update_tokens(
        self,
        email: str,
        tokens: Tokens,
        *,
        access_expires_at: datetime | None,
        refreshed_at: datetime | None = None,
    ) -> AccountRecord:
        return await self._update_account(
            f"save tokens of account {email}",
            email,
            {
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "id_token": tokens.id_token,
                "access_expires_at": self._stamp(access_expires_at, "access_expires_at"),
                "last_refresh": self._stamp(self._now(refreshed_at), "refreshed_at"),
            },
            durable=True,
        )

    async def touch_last_used(self, email: str, at: datetime | None = None) -> None:
        await self._update_account(
            f"update last use of account {email}", email, {"last_used": self._stamp(self._now(at), "at")}
        )

    async def set_quota(
        self, email: str, quota: Mapping[str, JSONValue] | None, *, at: datetime | None = None
    ) -> None:
        await self._update_account(
            f"save quota of account {email}",
            email,
            {
                "quota": json_text(quota, "quota"),
                "quota_updated_at": None if quota is None else self._stamp(self._now(at), "at"),
            },
        )

    async def set_upstream_usage(
        self, email: str, snapshot: Mapping[str, JSONValue] | None, *, at: datetime | None = None
    ) -> None:
        await self._update_account(
            f"save upstream usage of account {email}",
            email,
            {
                "upstream_usage": json_text(snapshot, "upstream usage"),
                "upstream_usage_updated_at": None if snapshot is None else self._stamp(self._now(at), "at"),
            },
        )

    # --- marks ---

    async def set_mark(self, mark: Mark) -> None:
        def body(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM accounts WHERE email = ?", (mark.email,)).fetchone() is None:
                raise AccountNotFoundError(mark.email)
            conn.execute(
                "INSERT OR REPLACE INTO marks (email, kind, reason, until, set_at) VALUES (?, ?, ?, ?, ?)",
                (mark.email, mark.kind.value, mark.reason, ts(mark.until), ts(mark.set_at)),
            )

        await self._run(f"mark account {mark.email} {mark.kind}", body, write=True)

    async def clear_mark(self, email: str, kind: MarkKind | None = None) -> bool:
        kinds = [k.value for k in MarkKind] if kind is None else [MarkKind(kind).value]

        def body(conn: sqlite3.Connection) -> bool:
            sql = f"DELETE FROM marks WHERE email = ? AND kind IN ({', '.join('?' * len(kinds))})"
            return conn.execute(sql, (email, *kinds)).rowcount > 0

        return await self._run(f"clear marks of account {email}", body, write=True)

    async def list_marks(self, email: str | None = None) -> list[Mark]:
        def body(conn: sqlite3.Connection) -> list[Mark]:
            rows = conn.execute(
                "SELECT email, kind, reason, until, set_at FROM marks "
                "WHERE ?1 IS NULL OR email = ?1 ORDER BY email, kind",
                (email,),
            ).fetchall()
            return [mark_from_row(r) for r in rows]

        now = self._clock()
        return [m for m in await self._run("list account marks", body) if m.is_active(now)]

    # --- settings ---

    async def get_setting(self, key: str) -> JSONValue | None:
        def body(conn: sqlite3.Connection) -> JSONValue | None:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            return None if row is None else load_json(row["value"])

        return await self._run(f"read setting {key}", body)

    async def set_setting(self, key: str, value: JSONValue) -> None:
        text = dump_json(value, f"setting {key}").decode()

        def body(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, text),
            )

        await self._run(f"save setting {key}", body, write=True)

    async def delete_setting(self, key: str) -> bool:
        def body(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM settings WHERE key = ?", (key,)).rowcount > 0

        return await self._run(f"delete setting {key}", body, write=True)

    # --- usage ---

    async def add_usage(self, increments: Iterable[UsageIncrement]) -> None:
        rows = [
            (inc.email, inc.model, inc.day.isoformat(), *(getattr(inc, f) for f in COUNTER_FIELDS))
            for inc in increments
        ]
        if not rows:
            return
        columns = ("email", "model", "day", *COUNTER_FIELDS)
        sql = (
            f"INSERT INTO usage ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT (email, model, day) DO UPDATE SET "
            + ", ".join(f"{f} = {f} + excluded.{f}" for f in COUNTER_FIELDS)
        )

        def body(conn: sqlite3.Connection) -> None:
            conn.executemany(sql, rows)

        await self._run("record usage", body, write=True)

    async def usage_report(self, email: str | None = None) -> UsageReport:
        sums = ", ".join(f"SUM({f}) AS {f}" for f in COUNTER_FIELDS)

        def body(conn: sqlite3.Connection) -> list[tuple[str, date, UsageCounters]]:
            rows = conn.execute(
                f"SELECT model, day, {sums} FROM usage WHERE ?1 IS NULL OR email = ?1 GROUP BY model, day",
                (email,),
            ).fetchall()
            return [
                (r["model"], date.fromisoformat(r["day"]), UsageCounters(**{f: r[f] for f in COUNTER_FIELDS}))
                for r in rows
            ]

        return UsageReport.from_buckets(await self._run("read usage", body))

    # --- coordination ---

    def refresh_lock(self, email: str) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(email)
