"""The SQLite plumbing that runs in the worker thread: private files, connection, transactions,
migrations, and the translation of SQLite failures into :class:`~gateway_core.store.base.StoreError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gateway_core.store import _sqlite_schema
from gateway_core.store._sqlite_schema import Migration
from gateway_core.store.base import StoreError

T = TypeVar("T")

DB_FILENAME = "relaygate.db"
"""The database file inside the state folder (RELAYGATE_HOME)."""
DIR_MODE = 0o700
"""The state folder: owner only."""
FILE_MODE = 0o600
"""The database and its WAL companions: owner read/write only."""
_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T], *, durable: bool) -> T:
    """Run ``body`` in one write transaction: all of it is committed, or none of it."""
    if durable:
        conn.execute("PRAGMA synchronous=FULL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return result
    finally:
        if durable:
            # Failing to relax it only costs speed; it must not hide the transaction's own error.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA synchronous=NORMAL")


def store_error(what: str, where: Path, exc: sqlite3.Error | OSError) -> StoreError:
    """A StoreError naming the operation and the file; retryable when another writer holds the lock."""
    if isinstance(exc, OSError):
        code = errno.errorcode.get(exc.errno or 0)
        reason = exc.strerror or type(exc).__name__
    else:
        code = getattr(exc, "sqlite_errorname", None)
        reason = str(exc) or type(exc).__name__
    busy = code in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in reason
    return StoreError(
        f"could not {what} ({where}): {reason}",
        code=code or None,
        retry_after=1.0 if busy else None,
    )


def _tighten(path: Path, mode: int) -> None:
    """Give an existing path exactly ``mode`` (an older install may have left it wider)."""
    if path.exists():
        os.chmod(path, mode)


def connect(home: Path, busy_timeout: float) -> sqlite3.Connection:
    """Create the private folder and file, connect, switch to WAL and migrate forward."""
    home.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(home, DIR_MODE)
    path = home / DB_FILENAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in _COMPANION_SUFFIXES:
        _tighten(path.with_name(DB_FILENAME + suffix), FILE_MODE)
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        migrate(conn, _sqlite_schema.MIGRATIONS)
    except BaseException:
        conn.close()
        raise
    return conn


def user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...]) -> None:
    """Apply the missing steps, one transaction each; the version is re-read under the write lock,
    so two processes opening the same file at once never run a step twice."""
    target = len(migrations)
    if user_version(conn) > target:
        raise StoreError(
            f"the database schema version {user_version(conn)} is newer than this relaygate "
            f"supports ({target}); upgrade relaygate"
        )

    def step(c: sqlite3.Connection) -> bool:
        version = user_version(c)
        if version >= target:
            return False
        migrations[version](c)
        c.execute(f"PRAGMA user_version = {version + 1}")
        return True

    while transaction(conn, step, durable=True):
        pass
