"""Quota from the ``x-codex-*`` headers (protocols §4.9) and from ``/wham/usage`` (§4.10)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from gateway_core.accounts import Credits, Quota, QuotaWindow
from gateway_core.errors import AuthenticationError, OverloadedError, RateLimitError, UpstreamError
from gateway_providers.codex.quota import (
    as_of,
    binding_percent,
    fetch_usage,
    limit_reset,
    quota_from_headers,
    quota_from_json,
    quota_from_usage,
    quota_to_json,
    usage_url,
)
from tests.fixtures import load_http

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def _at(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def recorded_429_headers() -> dict[str, str]:
    _, headers, _ = load_http("codex/codex_429_usage_limit_reached.http")
    return headers


def wham_usage_body() -> dict[str, object]:
    _, _, body = load_http("codex/codex_wham_usage.http")
    payload: dict[str, object] = orjson.loads(body)
    return payload


# --- headers -------------------------------------------------------------------------------------


def test_recorded_headers_give_both_windows() -> None:
    quota = quota_from_headers(recorded_429_headers(), now=NOW)

    assert quota is not None
    assert quota.source == "headers"
    assert quota.updated_at == NOW
    assert quota.primary is not None
    assert quota.primary.used_percent == 100
    assert quota.primary.window_minutes == 300
    assert quota.primary.resets_at == _at(1777936568)
    assert quota.secondary is not None
    assert quota.secondary.used_percent == 80
    assert quota.secondary.window_minutes == 10080
    assert quota.secondary.resets_at == _at(1778239400)


def test_recorded_headers_give_credits_and_plan() -> None:
    quota = quota_from_headers(recorded_429_headers(), now=NOW)

    assert quota is not None
    assert quota.credits == Credits(has_credits=False, unlimited=False, balance=0)
    assert quota.plan_type == "plus"


@pytest.mark.parametrize(
    ("spelling", "value"),
    [("True", True), ("False", False), ("true", True), ("false", False), ("1", True), ("0", False)],
)
def test_every_boolean_spelling_is_read(spelling: str, value: bool) -> None:
    quota = quota_from_headers(
        {"x-codex-credits-has-credits": spelling, "x-codex-credits-unlimited": spelling}, now=NOW
    )

    assert quota is not None
    assert quota.credits == Credits(has_credits=value, unlimited=value, balance=None)


def test_header_names_are_case_insensitive() -> None:
    quota = quota_from_headers(httpx.Headers({"X-Codex-Primary-Used-Percent": "42.5"}), now=NOW)

    assert quota is not None
    assert quota.primary is not None
    assert quota.primary.used_percent == 42.5


def test_an_all_zero_window_does_not_count() -> None:
    headers = {"x-codex-primary-used-percent": "0", "x-codex-primary-window-minutes": "0"}

    assert quota_from_headers(headers, now=NOW) is None


def test_a_zero_percent_window_counts_when_it_has_a_length_or_a_reset() -> None:
    by_length = quota_from_headers(
        {"x-codex-primary-used-percent": "0", "x-codex-primary-window-minutes": "300"}, now=NOW
    )
    by_reset = quota_from_headers(
        {"x-codex-secondary-used-percent": "0", "x-codex-secondary-reset-after-seconds": "60"}, now=NOW
    )

    assert by_length is not None
    assert by_length.primary == QuotaWindow(0, 300, None, None)
    assert by_reset is not None
    assert by_reset.secondary == QuotaWindow(0, None, NOW + timedelta(seconds=60), 60)


def test_a_window_needs_its_used_percent() -> None:
    quota = quota_from_headers({"x-codex-primary-window-minutes": "300", "x-codex-plan-type": "pro"}, now=NOW)

    assert quota is not None
    assert quota.primary is None
    assert quota.plan_type == "pro"


def test_reset_after_counts_down_from_reset_at() -> None:
    headers = {
        "x-codex-primary-used-percent": "5",
        "x-codex-primary-reset-at": str(int(NOW.timestamp()) + 90),
    }

    quota = quota_from_headers(headers, now=NOW)

    assert quota is not None
    assert quota.primary is not None
    assert quota.primary.resets_in_seconds == 90


def test_answers_without_codex_headers_say_nothing() -> None:
    assert quota_from_headers({"content-type": "text/event-stream", "x-request-id": "r"}, now=NOW) is None


def test_malformed_values_are_left_out() -> None:
    quota = quota_from_headers(
        {
            "x-codex-primary-used-percent": "lots",
            "x-codex-secondary-used-percent": "3",
            "x-codex-secondary-window-minutes": "a week",
            "x-codex-credits-unlimited": "maybe",
        },
        now=NOW,
    )

    assert quota is not None
    assert quota.primary is None
    assert quota.secondary == QuotaWindow(3, None, None, None)
    assert quota.credits is None


# --- /wham/usage ---------------------------------------------------------------------------------


def test_recorded_usage_payload_gives_both_windows() -> None:
    quota = quota_from_usage(wham_usage_body(), now=NOW)

    assert quota.source == "usage"
    assert quota.plan_type == "team"
    assert quota.primary is not None
    assert quota.primary.used_percent == 7
    assert quota.primary.window_minutes == 300
    assert quota.primary.resets_at == _at(1771422975)
    assert quota.secondary is not None
    assert quota.secondary.used_percent == 2
    assert quota.secondary.window_minutes == 10080
    assert quota.credits == Credits(has_credits=False, unlimited=False, balance=None)


def test_a_usage_payload_without_rate_limits_has_no_windows() -> None:
    quota = quota_from_usage({"plan_type": "free", "rate_limit": None, "credits": None}, now=NOW)

    assert quota == Quota(updated_at=NOW, source="usage", plan_type="free")


def test_usage_url_on_the_chatgpt_backend_and_elsewhere() -> None:
    assert usage_url("https://chatgpt.com/backend-api/") == "https://chatgpt.com/backend-api/wham/usage"
    assert usage_url("https://proxy.example") == "https://proxy.example/api/codex/usage"


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_fetch_usage_sends_the_bearer_and_the_account_id() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=orjson.dumps(wham_usage_body()))

    async with _client(handler) as http:
        payload = await fetch_usage(
            http, "https://c.example/backend-api", access_token="at", account_id="acc"
        )

    assert str(seen[0].url) == "https://c.example/backend-api/wham/usage"
    assert seen[0].headers["authorization"] == "Bearer at"
    assert seen[0].headers["chatgpt-account-id"] == "acc"
    assert payload == wham_usage_body()


async def test_fetch_usage_without_account_id_sends_no_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"{}")

    async with _client(handler) as http:
        await fetch_usage(http, "https://c.example/backend-api", access_token="at", account_id="")

    assert "chatgpt-account-id" not in seen[0].headers


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationError),
        (403, UpstreamError),
        (429, RateLimitError),
        (500, UpstreamError),
        (503, OverloadedError),
    ],
)
async def test_fetch_usage_failures_are_gateway_errors(status: int, error: type[Exception]) -> None:
    async with _client(lambda request: httpx.Response(status, content=b"{}")) as http:
        with pytest.raises(error):
            await fetch_usage(http, "https://c.example/backend-api", access_token="at", account_id="a")


async def test_fetch_usage_refuses_an_answer_that_is_not_json() -> None:
    async with _client(lambda request: httpx.Response(200, content=b"<html>")) as http:
        with pytest.raises(UpstreamError):
            await fetch_usage(http, "https://c.example/backend-api", access_token="at", account_id="a")


# --- views and storage ---------------------------------------------------------------------------


def _quota(primary: float, secondary: float, *, resets_in: int = 600) -> Quota:
    reset = NOW + timedelta(seconds=resets_in)
    return Quota(
        updated_at=NOW,
        source="headers",
        primary=QuotaWindow(primary, 300, reset, resets_in),
        secondary=QuotaWindow(secondary, 10080, reset + timedelta(days=1), None),
    )


def test_the_binding_window_is_the_fuller_one() -> None:
    assert binding_percent(_quota(30, 70)) == 70
    assert binding_percent(_quota(90, 10)) == 90
    assert binding_percent(Quota(updated_at=NOW, source="headers")) is None
    assert binding_percent(None) is None


def test_as_of_counts_the_reset_down() -> None:
    later = as_of(_quota(30, 70), NOW + timedelta(seconds=100))

    assert later.primary is not None
    assert later.primary.resets_in_seconds == 500


def test_a_window_whose_reset_passed_reads_unused() -> None:
    later = as_of(_quota(100, 70), NOW + timedelta(seconds=601))

    assert later.primary is not None
    assert later.primary.used_percent == 0
    assert later.secondary is not None
    assert later.secondary.used_percent == 70


def test_limit_reset_is_the_reset_of_the_exhausted_window() -> None:
    assert limit_reset(_quota(100, 50)) == NOW + timedelta(seconds=600)
    assert limit_reset(_quota(99, 50)) is None


def test_quota_json_round_trips_in_the_admin_shape() -> None:
    quota = quota_from_headers(recorded_429_headers(), now=NOW)
    assert quota is not None

    data = quota_to_json(quota)

    assert set(data) == {"primary", "secondary", "credits", "planType", "updatedAt", "source"}
    assert set(data["primary"]) == {"usedPercent", "windowMinutes", "resetsAt", "resetsInSeconds"}
    assert quota_from_json(orjson.loads(orjson.dumps(data))) == quota


@pytest.mark.parametrize(
    "raw", [None, [], {"source": "headers"}, {"updatedAt": "yesterday", "source": "usage"}]
)
def test_unreadable_stored_quota_is_none(raw: object) -> None:
    assert quota_from_json(raw) is None
