"""The store's records and errors: secrets stay out of reprs, times are aware UTC, counters add up."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import anyio
import pytest

from gateway_core.errors import ApiError, NotFoundError
from gateway_core.store import (
    AccountNotFoundError,
    AccountRecord,
    Mark,
    MarkKind,
    StoreError,
    Tokens,
    UsageCounters,
    UsageIncrement,
    UsageReport,
)
from gateway_core.store._locks import KeyedLocks

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TOKENS = Tokens(access_token="ACCESS-SECRET", refresh_token="REFRESH-SECRET", id_token="ID-SECRET")


def test_tokens_repr_masks_every_token() -> None:
    assert repr(TOKENS) == "Tokens(access_token='***', refresh_token='***', id_token='***')"
    assert str(Tokens(access_token="a", refresh_token="r")).endswith("id_token=None)")


def test_account_record_repr_and_str_show_no_token() -> None:
    record = AccountRecord(email="ada@example.com", tokens=TOKENS, added_at=T0)

    for text in (repr(record), str(record), f"{record}"):
        assert "ada@example.com" in text
        assert "SECRET" not in text


def test_naive_datetime_in_a_record_is_refused() -> None:
    with pytest.raises(ValueError, match="added_at must be a timezone-aware datetime"):
        AccountRecord(email="a@example.com", tokens=TOKENS, added_at=datetime(2026, 5, 1))


def test_record_times_are_normalised_to_utc() -> None:
    tokyo = timezone(timedelta(hours=9))

    record = AccountRecord(email="a@example.com", tokens=TOKENS, added_at=T0.astimezone(tokyo))

    assert record.added_at.tzinfo == UTC
    assert record.added_at == T0


def test_empty_email_is_refused() -> None:
    with pytest.raises(ValueError, match="email"):
        AccountRecord(email="", tokens=TOKENS)


def test_cooling_mark_needs_an_end() -> None:
    with pytest.raises(ValueError, match="cooling mark needs an end time"):
        Mark(email="a@example.com", kind=MarkKind.COOLING, reason="429")


def test_invalid_mark_has_no_end() -> None:
    with pytest.raises(ValueError, match="until cleared"):
        Mark(email="a@example.com", kind=MarkKind.INVALID, reason="401", until=T0)


def test_mark_kind_accepts_its_string_value() -> None:
    mark = Mark(email="a@example.com", kind="invalid", reason="401")  # type: ignore[arg-type]

    assert mark.kind is MarkKind.INVALID


def test_cooling_mark_lapses_at_its_end() -> None:
    mark = Mark(email="a@example.com", kind=MarkKind.COOLING, reason="429", until=T0)

    assert mark.is_active(T0 - timedelta(microseconds=1))
    assert not mark.is_active(T0)


def test_counters_add_field_by_field() -> None:
    a = UsageCounters(requests=1, input_tokens=10, cost=0.5)
    b = UsageCounters(requests=2, output_tokens=3, latency_ms_total=40, cost=0.25)

    assert a + b == UsageCounters(
        requests=3, input_tokens=10, output_tokens=3, latency_ms_total=40, cost=0.75
    )


def test_negative_increment_is_refused() -> None:
    with pytest.raises(ValueError, match="output_tokens must not be negative"):
        UsageIncrement(email="a@example.com", model="m", output_tokens=-1)


def test_increment_day_defaults_to_the_utc_date() -> None:
    before = datetime.now(UTC).date()
    inc = UsageIncrement(email="a@example.com", model="m")
    after = datetime.now(UTC).date()

    assert before <= inc.day <= after


def test_report_sorts_models_by_name_and_days_oldest_first() -> None:
    d1, d2 = date(2026, 1, 1), date(2026, 1, 2)

    report = UsageReport.from_buckets(
        [("z", d2, UsageCounters(requests=1)), ("a", d1, UsageCounters(requests=2))]
    )

    assert list(report.by_model) == ["a", "z"]
    assert list(report.by_day) == [d1, d2]
    assert report.totals == UsageCounters(requests=3)


def test_store_error_is_an_internal_api_error() -> None:
    error = StoreError("could not save setting x: disk full", code="SQLITE_FULL")

    assert isinstance(error, ApiError)
    assert (error.status, error.kind.value, error.code) == (500, "api_error", "SQLITE_FULL")


def test_unknown_account_error_is_a_not_found_naming_the_account() -> None:
    error = AccountNotFoundError("ada@example.com")

    assert isinstance(error, NotFoundError)
    assert (error.status, error.message, error.param) == (404, "account ada@example.com not found", "email")


@pytest.mark.anyio
async def test_keyed_locks_forget_keys_nobody_holds() -> None:
    locks = KeyedLocks()

    async with locks.hold("a"), locks.hold("b"):
        assert len(locks) == 2
    assert len(locks) == 0


@pytest.mark.anyio
async def test_keyed_locks_keep_a_key_while_someone_waits() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def waiter() -> None:
        async with locks.hold("a"):
            order.append("waiter")

    async with anyio.create_task_group() as tg:
        async with locks.hold("a"):
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            order.append("holder")
        assert len(locks) == 1  # the waiter still needs the same lock
    assert order == ["holder", "waiter"]
    assert len(locks) == 0
