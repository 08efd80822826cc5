"""The Store contract: every implementation (memory, SQLite) behaves exactly alike.

Each test runs once per implementation; a shared store (Redis) must pass the same suite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest

from gateway_core.store import (
    AccountNotFoundError,
    AccountRecord,
    Mark,
    MarkKind,
    MemoryStore,
    SQLiteStore,
    Store,
    StoreError,
    Tokens,
    UsageCounters,
    UsageIncrement,
)

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock, anyio_backend: str
) -> AsyncIterator[Store]:
    if request.param == "memory":
        opened: Store = MemoryStore(clock=clock)
    else:
        opened = await SQLiteStore.open(tmp_path / "home", clock=clock)
    async with opened:
        yield opened


ADA = "ada@example.com"


def account(email: str = ADA, **changes: Any) -> AccountRecord:
    fields: dict[str, Any] = {
        "email": email,
        "tokens": Tokens(access_token=f"at-{email}", refresh_token=f"rt-{email}", id_token=f"id-{email}"),
        "account_id": f"acct-{email}",
        "plan_type": "plus",
        "added_at": T0,
    }
    fields.update(changes)
    return AccountRecord(**fields)


def cooling(until: datetime, reason: str = "usage_limit_reached", email: str = ADA) -> Mark:
    return Mark(email=email, kind=MarkKind.COOLING, reason=reason, until=until)


def invalid(reason: str = "refresh token revoked", email: str = ADA) -> Mark:
    return Mark(email=email, kind=MarkKind.INVALID, reason=reason)


# --- accounts ------------------------------------------------------------------------------------


async def test_unknown_account_reads_as_none(store: Store) -> None:
    assert await store.get_account("nobody@example.com") is None


async def test_upserted_account_reads_back_field_for_field(store: Store) -> None:
    record = account(
        last_used=T0 + timedelta(minutes=1),
        access_expires_at=T0 + timedelta(hours=1),
        last_refresh=T0,
        quota={"primary": {"usedPercent": 12.5}, "secondary": None},
        quota_updated_at=T0,
        upstream_usage={"plan_type": "plus", "rate_limit": [1, 2]},
        upstream_usage_updated_at=T0,
    )
    stored = await store.upsert_account(record)

    assert stored == record
    assert await store.get_account(record.email) == record


async def test_times_come_back_in_utc_whatever_zone_they_were_given_in(store: Store) -> None:
    paris = timezone(timedelta(hours=2))
    await store.upsert_account(account(added_at=T0.astimezone(paris)))

    got = await store.get_account("ada@example.com")

    assert got is not None
    assert got.added_at == T0
    assert got.added_at.tzinfo == UTC


async def test_accounts_are_listed_oldest_first(store: Store) -> None:
    await store.upsert_account(account("new@example.com", added_at=T0 + timedelta(days=1)))
    await store.upsert_account(account("old@example.com", added_at=T0))

    assert [a.email for a in await store.list_accounts()] == ["old@example.com", "new@example.com"]


async def test_upsert_replaces_every_field_but_keeps_added_at(store: Store) -> None:
    await store.upsert_account(account(plan_type="plus", quota={"a": 1}))
    replacement = account(
        added_at=T0 + timedelta(days=3),
        plan_type="pro",
        account_id="acct-2",
        tokens=Tokens(access_token="at-2", refresh_token="rt-2"),
    )

    stored = await store.upsert_account(replacement)

    assert stored.added_at == T0
    assert stored.plan_type == "pro"
    assert stored.account_id == "acct-2"
    assert stored.tokens == Tokens(access_token="at-2", refresh_token="rt-2")
    assert stored.quota is None
    assert await store.get_account("ada@example.com") == stored


async def test_delete_account_removes_it_and_its_marks(store: Store) -> None:
    await store.upsert_account(account())
    await store.set_mark(invalid())

    assert await store.delete_account("ada@example.com") is True
    assert await store.get_account("ada@example.com") is None
    assert await store.list_marks() == []


async def test_delete_unknown_account_reports_false(store: Store) -> None:
    assert await store.delete_account("nobody@example.com") is False


async def test_update_tokens_replaces_tokens_expiry_and_last_refresh(store: Store, clock: FakeClock) -> None:
    await store.upsert_account(account(quota={"kept": True}))
    clock.advance(minutes=5)
    new_tokens = Tokens(access_token="at-new", refresh_token="rt-new", id_token="id-new")

    updated = await store.update_tokens(
        "ada@example.com", new_tokens, access_expires_at=T0 + timedelta(hours=2)
    )

    assert updated.tokens == new_tokens
    assert updated.access_expires_at == T0 + timedelta(hours=2)
    assert updated.last_refresh == clock.now
    assert updated.quota == {"kept": True}
    assert await store.get_account("ada@example.com") == updated


async def test_update_tokens_takes_an_explicit_refresh_time(store: Store) -> None:
    await store.upsert_account(account())
    at = T0 + timedelta(seconds=42)

    updated = await store.update_tokens(
        "ada@example.com",
        Tokens(access_token="a", refresh_token="r"),
        access_expires_at=None,
        refreshed_at=at,
    )

    assert updated.last_refresh == at
    assert updated.access_expires_at is None
    assert updated.tokens.id_token is None


async def test_touch_last_used_stamps_the_clock_time(store: Store, clock: FakeClock) -> None:
    await store.upsert_account(account())
    clock.advance(seconds=30)

    await store.touch_last_used("ada@example.com")

    got = await store.get_account("ada@example.com")
    assert got is not None
    assert got.last_used == clock.now


async def test_set_quota_stores_the_snapshot_and_its_time(store: Store) -> None:
    await store.upsert_account(account())
    quota = {"primary": {"usedPercent": 40, "windowMinutes": 300}, "credits": None}

    await store.set_quota("ada@example.com", quota, at=T0 + timedelta(minutes=3))

    got = await store.get_account("ada@example.com")
    assert got is not None
    assert got.quota == quota
    assert got.quota_updated_at == T0 + timedelta(minutes=3)


async def test_set_quota_none_forgets_the_snapshot(store: Store) -> None:
    await store.upsert_account(account(quota={"a": 1}, quota_updated_at=T0))

    await store.set_quota("ada@example.com", None)

    got = await store.get_account("ada@example.com")
    assert got is not None
    assert (got.quota, got.quota_updated_at) == (None, None)


async def test_set_upstream_usage_stores_the_snapshot_and_its_time(store: Store, clock: FakeClock) -> None:
    await store.upsert_account(account())
    snapshot = {"plan_type": "pro", "rate_limit": {"primary_window": {"used_percent": 3}}}

    await store.set_upstream_usage("ada@example.com", snapshot)

    got = await store.get_account("ada@example.com")
    assert got is not None
    assert got.upstream_usage == snapshot
    assert got.upstream_usage_updated_at == clock.now


async def test_returned_snapshots_are_copies(store: Store) -> None:
    quota: dict[str, Any] = {"primary": {"usedPercent": 1}}
    await store.upsert_account(account(quota=quota))
    quota["primary"]["usedPercent"] = 99
    got = await store.get_account("ada@example.com")
    assert got is not None
    assert got.quota is not None
    got.quota["primary"]["usedPercent"] = 77

    again = await store.get_account("ada@example.com")

    assert again is not None
    assert again.quota == {"primary": {"usedPercent": 1}}


PER_ACCOUNT_WRITES: dict[str, Callable[[Store], Awaitable[object]]] = {
    "update_tokens": lambda s: s.update_tokens(
        "nobody@example.com", Tokens(access_token="a", refresh_token="r"), access_expires_at=None
    ),
    "touch_last_used": lambda s: s.touch_last_used("nobody@example.com"),
    "set_quota": lambda s: s.set_quota("nobody@example.com", {"a": 1}),
    "set_upstream_usage": lambda s: s.set_upstream_usage("nobody@example.com", {"a": 1}),
    "set_mark": lambda s: s.set_mark(Mark(email="nobody@example.com", kind=MarkKind.INVALID, reason="x")),
}


@pytest.mark.parametrize("operation", PER_ACCOUNT_WRITES)
async def test_per_account_write_on_unknown_account_raises_not_found(store: Store, operation: str) -> None:
    with pytest.raises(AccountNotFoundError, match=r"nobody@example\.com") as caught:
        await PER_ACCOUNT_WRITES[operation](store)

    assert caught.value.status == 404
    assert await store.list_accounts() == []


async def test_naive_datetime_is_refused(store: Store) -> None:
    await store.upsert_account(account())

    with pytest.raises(ValueError, match="timezone-aware"):
        await store.touch_last_used("ada@example.com", at=datetime(2026, 1, 1))


# --- marks ---------------------------------------------------------------------------------------


async def test_cooling_mark_is_active_until_its_end(store: Store, clock: FakeClock) -> None:
    await store.upsert_account(account())
    mark = cooling(until=T0 + timedelta(hours=1))
    await store.set_mark(mark)

    assert await store.list_marks() == [mark]
    clock.advance(hours=1)
    assert await store.list_marks() == []


async def test_cooling_mark_already_over_is_not_reported(store: Store) -> None:
    await store.upsert_account(account())

    await store.set_mark(cooling(until=T0 - timedelta(seconds=1)))

    assert await store.list_marks(ADA) == []


async def test_invalid_mark_stays_until_cleared(store: Store, clock: FakeClock) -> None:
    await store.upsert_account(account())
    mark = invalid()
    await store.set_mark(mark)
    clock.advance(days=365)

    assert await store.list_marks() == [mark]
    assert await store.clear_mark(ADA, MarkKind.INVALID) is True
    assert await store.list_marks() == []


async def test_an_account_can_be_cooling_and_invalid_at_once(store: Store) -> None:
    await store.upsert_account(account())
    cool, bad = cooling(until=T0 + timedelta(hours=1)), invalid()
    await store.set_mark(bad)
    await store.set_mark(cool)

    assert await store.list_marks() == [cool, bad]
    assert await store.clear_mark(ADA, MarkKind.COOLING) is True
    assert await store.list_marks() == [bad]


async def test_setting_a_mark_replaces_the_one_of_the_same_kind(store: Store) -> None:
    await store.upsert_account(account())
    await store.set_mark(cooling(until=T0 + timedelta(days=1), reason="a"))
    later = cooling(until=T0 + timedelta(days=2), reason="b")

    await store.set_mark(later)

    assert await store.list_marks() == [later]


async def test_clear_mark_without_kind_clears_both(store: Store) -> None:
    await store.upsert_account(account())
    await store.set_mark(cooling(until=T0 + timedelta(days=1)))
    await store.set_mark(invalid())

    assert await store.clear_mark(ADA) is True
    assert await store.list_marks() == []
    assert await store.clear_mark(ADA) is False


async def test_list_marks_of_one_account_leaves_the_others_out(store: Store) -> None:
    for email in (ADA, "bob@example.com"):
        await store.upsert_account(account(email))
        await store.set_mark(invalid(email=email))

    assert [m.email for m in await store.list_marks("bob@example.com")] == ["bob@example.com"]
    assert [m.email for m in await store.list_marks()] == [ADA, "bob@example.com"]


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "ada@example.com",
        "round-robin",
        42,
        1.5,
        True,
        ["a", 1, None],
        {"opus": {"model": "gpt-5.5", "effort": "high"}, "haiku": {"model": "kimi-k2.5"}},
    ],
)
async def test_setting_round_trips_as_json(store: Store, value: object) -> None:
    await store.set_setting("k", value)

    assert await store.get_setting("k") == value


async def test_unset_setting_reads_as_none(store: Store) -> None:
    assert await store.get_setting("activeAccount") is None


async def test_setting_overwrite_and_delete(store: Store) -> None:
    await store.set_setting("strategy", "sticky")
    await store.set_setting("strategy", "quota-aware")
    assert await store.get_setting("strategy") == "quota-aware"

    assert await store.delete_setting("strategy") is True
    assert await store.get_setting("strategy") is None
    assert await store.delete_setting("strategy") is False


async def test_setting_that_json_cannot_carry_is_refused(store: Store) -> None:
    with pytest.raises(TypeError, match="setting k is not JSON-serialisable"):
        await store.set_setting("k", object())

    assert await store.get_setting("k") is None


# --- usage ---------------------------------------------------------------------------------------

D1 = date(2026, 5, 1)
D2 = date(2026, 5, 2)


async def test_usage_batch_adds_up_per_model_and_per_day(store: Store) -> None:
    await store.add_usage(
        [
            UsageIncrement(email="ada@example.com", model="gpt-5.5", day=D1, requests=1, input_tokens=100),
            UsageIncrement(email="ada@example.com", model="gpt-5.5", day=D1, requests=1, input_tokens=50),
            UsageIncrement(
                email="ada@example.com", model="gpt-5.4-mini", day=D2, requests=1, output_tokens=7
            ),
        ]
    )
    await store.add_usage(
        [UsageIncrement(email="ada@example.com", model="gpt-5.5", day=D2, requests=1, errors=1, cost=0.25)]
    )

    report = await store.usage_report("ada@example.com")

    assert report.totals == UsageCounters(requests=4, input_tokens=150, output_tokens=7, errors=1, cost=0.25)
    assert report.by_model == {
        "gpt-5.4-mini": UsageCounters(requests=1, output_tokens=7),
        "gpt-5.5": UsageCounters(requests=3, input_tokens=150, errors=1, cost=0.25),
    }
    assert report.by_day == {
        D1: UsageCounters(requests=2, input_tokens=150),
        D2: UsageCounters(requests=2, output_tokens=7, errors=1, cost=0.25),
    }
    assert list(report.by_day) == [D1, D2]


async def test_usage_keeps_every_counter(store: Store) -> None:
    inc = UsageIncrement(
        email="ada@example.com",
        model="m",
        day=D1,
        requests=1,
        input_tokens=2,
        cached_tokens=3,
        output_tokens=4,
        reasoning_tokens=5,
        errors=6,
        latency_ms_total=7,
        cost=0.5,
    )

    await store.add_usage([inc, inc])

    assert (await store.usage_report("ada@example.com")).totals == inc.counters + inc.counters


async def test_usage_of_all_accounts_sums_them_and_one_account_only_its_own(store: Store) -> None:
    await store.add_usage(
        [
            UsageIncrement(email="ada@example.com", model="m", day=D1, requests=1),
            UsageIncrement(email="bob@example.com", model="m", day=D1, requests=2),
        ]
    )

    assert (await store.usage_report()).totals.requests == 3
    assert (await store.usage_report("bob@example.com")).totals.requests == 2


async def test_usage_without_records_is_all_zero(store: Store) -> None:
    report = await store.usage_report("ada@example.com")

    assert report.totals == UsageCounters()
    assert report.by_model == {}
    assert report.by_day == {}


async def test_usage_survives_account_deletion(store: Store) -> None:
    await store.upsert_account(account())
    await store.add_usage([UsageIncrement(email="ada@example.com", model="m", day=D1, requests=1)])

    await store.delete_account("ada@example.com")

    assert (await store.usage_report("ada@example.com")).totals.requests == 1


async def test_empty_usage_batch_is_a_no_op(store: Store) -> None:
    await store.add_usage([])

    assert (await store.usage_report()).totals == UsageCounters()


# --- refresh lock --------------------------------------------------------------------------------


async def test_refresh_lock_serialises_holders_of_the_same_account(store: Store) -> None:
    entered = anyio.Event()

    async def contender() -> None:
        async with store.refresh_lock("ada@example.com"):
            entered.set()

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            async with store.refresh_lock("ada@example.com"):
                tg.start_soon(contender)
                await anyio.wait_all_tasks_blocked()
                assert not entered.is_set()
            await entered.wait()


async def test_refresh_lock_of_another_account_does_not_wait(store: Store) -> None:
    entered = anyio.Event()

    async def other() -> None:
        async with store.refresh_lock("bob@example.com"):
            entered.set()

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg, store.refresh_lock("ada@example.com"):
            tg.start_soon(other)
            await entered.wait()


async def test_refresh_lock_is_released_when_the_holder_fails(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.refresh_lock("ada@example.com"):
            raise RuntimeError("refresh failed")

    with anyio.fail_after(1):
        async with store.refresh_lock("ada@example.com"):
            pass


# --- lifecycle -----------------------------------------------------------------------------------


async def test_schema_version_is_at_least_one(store: Store) -> None:
    assert await store.schema_version() >= 1


async def test_closed_store_refuses_work_with_a_store_error(store: Store) -> None:
    await store.aclose()
    await store.aclose()

    with pytest.raises(StoreError, match="could not list accounts: the store is closed") as caught:
        await store.list_accounts()
    assert caught.value.status == 500
