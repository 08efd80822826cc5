"""What only the SQLite store promises: private files, persistence, migrations, clear failures,
atomic transactions and refresh tokens that survive a killed process."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from gateway_core.store import (
    DB_FILENAME,
    AccountRecord,
    Mark,
    MarkKind,
    SQLiteStore,
    StoreError,
    Tokens,
    UsageIncrement,
    _sqlite_schema,
)
from gateway_core.store._sqlite_conn import transaction

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
ADA = "ada@example.com"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECRET_ACCESS = "eyJ-secret-access-token"
SECRET_REFRESH = "rt_secret-refresh-token"


def account(**changes: Any) -> AccountRecord:
    fields: dict[str, Any] = {
        "email": ADA,
        "tokens": Tokens(access_token=SECRET_ACCESS, refresh_token=SECRET_REFRESH, id_token="id"),
        "added_at": T0,
    }
    fields.update(changes)
    return AccountRecord(**fields)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A second, independent connection, as another process would have."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "state" / "relaygate"


# --- files ---------------------------------------------------------------------------------------


async def test_new_home_folder_is_0700_and_database_file_0600(home: Path) -> None:
    async with await SQLiteStore.open(home) as store:
        await store.upsert_account(account())

        assert mode(home) == 0o700
        assert mode(home / DB_FILENAME) == 0o600
        assert mode(home / f"{DB_FILENAME}-wal") == 0o600


@pytest.fixture
def loose_home(home: Path) -> Path:
    """A state folder left world-readable by an older install or a careless umask."""
    home.mkdir(parents=True, mode=0o755)
    os.chmod(home, 0o755)
    (home / DB_FILENAME).touch()
    os.chmod(home / DB_FILENAME, 0o644)
    return home


async def test_existing_loose_permissions_are_tightened(loose_home: Path) -> None:
    home = loose_home

    async with await SQLiteStore.open(home):
        assert mode(home) == 0o700
        assert mode(home / DB_FILENAME) == 0o600


async def test_database_uses_the_wal_journal(home: Path) -> None:
    async with await SQLiteStore.open(home) as store:
        assert store.path == home / DB_FILENAME

    with raw(home / DB_FILENAME) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --- persistence ---------------------------------------------------------------------------------


async def test_everything_survives_reopening(home: Path) -> None:
    mark = Mark(email=ADA, kind=MarkKind.INVALID, reason="revoked", set_at=T0)
    async with await SQLiteStore.open(home) as store:
        await store.upsert_account(account(quota={"primary": {"usedPercent": 5}}, quota_updated_at=T0))
        await store.set_mark(mark)
        await store.set_setting("activeAccount", ADA)
        await store.add_usage([UsageIncrement(email=ADA, model="gpt-5.5", day=date(2026, 5, 1), requests=3)])

    async with await SQLiteStore.open(home) as reopened:
        assert await reopened.get_account(ADA) == account(
            quota={"primary": {"usedPercent": 5}}, quota_updated_at=T0
        )
        assert await reopened.list_marks() == [mark]
        assert await reopened.get_setting("activeAccount") == ADA
        assert (await reopened.usage_report(ADA)).totals.requests == 3


async def test_rotated_refresh_token_survives_a_killed_process(home: Path) -> None:
    async with await SQLiteStore.open(home) as store:
        await store.upsert_account(account())
    child = textwrap.dedent(
        f"""
        import os, signal, sys
        from datetime import UTC, datetime
        from pathlib import Path

        import anyio

        from gateway_core.store import SQLiteStore, Tokens

        async def main() -> None:
            store = await SQLiteStore.open(Path(sys.argv[1]))
            await store.update_tokens(
                {ADA!r},
                Tokens(access_token="at-rotated", refresh_token="rt-rotated"),
                access_expires_at=datetime(2030, 1, 1, tzinfo=UTC),
            )
            os.kill(os.getpid(), signal.SIGKILL)

        anyio.run(main)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    result = await anyio.run_process([sys.executable, "-c", child, str(home)], check=False, env=env)

    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    async with await SQLiteStore.open(home) as reopened:
        got = await reopened.get_account(ADA)
    assert got is not None
    assert got.tokens == Tokens(access_token="at-rotated", refresh_token="rt-rotated")
    assert got.access_expires_at == datetime(2030, 1, 1, tzinfo=UTC)


# --- migrations ----------------------------------------------------------------------------------


async def test_new_database_is_at_the_latest_schema_version(home: Path) -> None:
    async with await SQLiteStore.open(home) as store:
        assert await store.schema_version() == len(_sqlite_schema.MIGRATIONS)

    with raw(home / DB_FILENAME) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(_sqlite_schema.MIGRATIONS)


@pytest.fixture
def extra_migration(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Append a step that inserts a row (so running it twice would fail) and counts its runs."""
    runs: list[int] = []

    def v2(conn: sqlite3.Connection) -> None:
        runs.append(1)
        conn.execute("INSERT INTO settings (key, value) VALUES ('migrated', 'true')")

    monkeypatch.setattr(_sqlite_schema, "MIGRATIONS", (*_sqlite_schema.MIGRATIONS, v2))
    return runs


async def test_a_migration_runs_once_and_bumps_the_version(home: Path, extra_migration: list[int]) -> None:
    for _ in range(2):
        async with await SQLiteStore.open(home) as store:
            assert await store.schema_version() == 2
            assert await store.get_setting("migrated") is True

    assert extra_migration == [1]


async def test_an_older_database_is_migrated_forward_keeping_its_data(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await SQLiteStore.open(home) as store:
        await store.upsert_account(account())

    def v2(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE extra (x INTEGER)")

    monkeypatch.setattr(_sqlite_schema, "MIGRATIONS", (*_sqlite_schema.MIGRATIONS, v2))
    async with await SQLiteStore.open(home) as store:
        assert await store.schema_version() == 2
        assert await store.get_account(ADA) == account()


async def test_a_failing_migration_leaves_the_previous_version_intact(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await SQLiteStore.open(home) as store:
        await store.set_setting("kept", 1)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM settings")
        conn.execute("CREATE TABLE settings (x)")  # already exists: fails after the delete

    monkeypatch.setattr(_sqlite_schema, "MIGRATIONS", (*_sqlite_schema.MIGRATIONS, broken))
    with pytest.raises(StoreError, match=r"could not open the state database .*already exists"):
        await SQLiteStore.open(home)

    monkeypatch.undo()
    async with await SQLiteStore.open(home) as store:
        assert await store.schema_version() == 1
        assert await store.get_setting("kept") == 1


async def test_a_database_from_a_newer_version_is_refused(home: Path) -> None:
    async with await SQLiteStore.open(home):
        pass
    with raw(home / DB_FILENAME) as conn:
        conn.execute("PRAGMA user_version = 99")

    with pytest.raises(StoreError, match="schema version 99 is newer than this relaygate supports"):
        await SQLiteStore.open(home)


# --- failures ------------------------------------------------------------------------------------


@pytest.fixture
def garbage_home(home: Path) -> Path:
    home.mkdir(parents=True)
    (home / DB_FILENAME).write_bytes(b"this is not sqlite" * 100)
    return home


async def test_a_file_that_is_not_a_database_gives_a_store_error(garbage_home: Path) -> None:
    with pytest.raises(
        StoreError, match=r"could not open the state database \(.+relaygate\.db\): file is not"
    ):
        await SQLiteStore.open(garbage_home)


@pytest.fixture
def file_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.write_text("")
    return home


async def test_a_home_that_is_a_file_gives_a_store_error(file_home: Path) -> None:
    with pytest.raises(StoreError, match="could not open the state database") as caught:
        await SQLiteStore.open(file_home)
    assert caught.value.code == "EEXIST"


async def test_a_write_refused_by_the_database_gives_a_store_error_without_secrets(home: Path) -> None:
    async with await SQLiteStore.open(home) as store:
        await store.upsert_account(account())
        assert store._conn is not None
        store._conn.execute("PRAGMA query_only = ON")  # every write now fails as on a read-only file

        with pytest.raises(StoreError) as caught:
            await store.update_tokens(
                ADA,
                Tokens(access_token=SECRET_ACCESS + "2", refresh_token=SECRET_REFRESH + "2"),
                access_expires_at=None,
            )

    error = caught.value
    assert error.status == 500
    assert error.message.startswith(f"could not save tokens of account {ADA} (")
    assert "readonly" in error.message
    assert error.code == "SQLITE_READONLY"
    assert error.retry_after is None
    for text in (str(error), repr(error)):
        assert "secret" not in text


async def test_a_database_locked_by_another_process_gives_a_retryable_store_error(home: Path) -> None:
    async with await SQLiteStore.open(home, busy_timeout=0.05) as store:
        with raw(home / DB_FILENAME) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError) as caught:
                await store.set_setting("strategy", "sticky")
            other.execute("ROLLBACK")

        await store.set_setting("strategy", "sticky")
        assert await store.get_setting("strategy") == "sticky"

    assert (
        caught.value.message == f"could not save setting strategy ({home / DB_FILENAME}): database is locked"
    )
    assert caught.value.code == "SQLITE_BUSY"
    assert caught.value.retry_after == 1.0


async def test_a_failed_transaction_writes_nothing(home: Path) -> None:
    async with await SQLiteStore.open(home) as store:
        await store.set_setting("a", 1)

    def half_then_fail(c: sqlite3.Connection) -> None:
        c.execute("UPDATE settings SET value = '2' WHERE key = 'a'")
        c.execute("INSERT INTO settings (key, value) VALUES ('b', '3')")
        raise RuntimeError("boom")

    with raw(home / DB_FILENAME) as conn:
        with pytest.raises(RuntimeError, match="boom"):
            transaction(conn, half_then_fail, durable=True)
        assert not conn.in_transaction

    async with await SQLiteStore.open(home) as store:
        assert await store.get_setting("a") == 1
        assert await store.get_setting("b") is None


async def test_token_writes_leave_the_connection_at_normal_sync(home: Path) -> None:
    async with await SQLiteStore.open(home) as store:
        await store.upsert_account(account())
        await store.update_tokens(ADA, Tokens(access_token="a", refresh_token="r"), access_expires_at=None)
        assert store._conn is not None
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


async def test_times_are_stored_as_sortable_utc_text(home: Path) -> None:
    async with await SQLiteStore.open(home) as store:
        await store.upsert_account(account(added_at=T0 + timedelta(hours=1)))

    with raw(home / DB_FILENAME) as conn:
        stored = conn.execute("SELECT added_at FROM accounts").fetchone()[0]
    assert stored == "2026-05-01T13:00:00.000000+00:00"
