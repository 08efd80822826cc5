"""Three ChatGPT accounts behind the real server: which account answers, and what happens when one
cannot (DESIGN §7; the issue "several accounts so a long Claude Code session survives a limit").

Everything goes through HTTP: the Anthropic SDK for inference (streaming and not), httpx for the
admin routes, the fake Codex backend and OAuth issuer behind the gateway. Accounts ``ada`` (active),
``bob`` and ``cyd`` are added by browser login and import (see :mod:`tests.e2e_accounts_support`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anthropic
import anyio
import pytest

from tests.e2e_accounts_support import EMAILS, Rig, account_id, accounts_gateway, iso_time
from tests.fakes import Quota, Window, failed, server_error, text, unauthorized

pytestmark = pytest.mark.anyio

ADA, BOB, CYD = EMAILS


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with accounts_gateway(tmp_path) as running:
        yield running


def close_to(value: datetime, expected: datetime, *, seconds: float = 3.0) -> bool:
    return abs((value - expected).total_seconds()) <= seconds


# --- strategies --------------------------------------------------------------------------------------


async def test_sticky_serves_every_request_from_the_active_account(rig: Rig) -> None:
    for stream in (False, True, False, True):
        assert await rig.ask(stream=stream)

    assert rig.served_by() == [ADA] * 4
    assert await rig.active() == ADA


async def test_sticky_follows_a_switch(rig: Rig) -> None:
    await rig.ask()
    switched = await rig.admin.post("/accounts/switch", json={"email": CYD})
    await rig.ask()
    await rig.ask(stream=True)

    assert switched.status_code == 200
    assert switched.json()["success"] is True
    assert rig.served_by() == [ADA, CYD, CYD]
    assert await rig.active() == CYD


async def test_round_robin_takes_turns_and_leaves_the_active_account_alone(rig: Rig) -> None:
    await rig.set_strategy("round-robin")
    for number in range(6):
        await rig.ask(stream=number % 2 == 1)

    assert rig.served_by() == [ADA, BOB, CYD, ADA, BOB, CYD]
    assert await rig.active() == ADA


async def test_quota_aware_picks_the_lowest_used_percent_of_the_binding_window(rig: Rig) -> None:
    # Each account answers once (round-robin) and its quota headers tell the gateway where it stands.
    rig.up.codex.set_quota(
        account_id(ADA), Quota(primary=Window(70, 300, 9000), secondary=Window(10, 10080, 900_000))
    )
    rig.up.codex.set_quota(
        account_id(BOB), Quota(primary=Window(5, 300, 9000), secondary=Window(90, 10080, 900_000))
    )
    rig.up.codex.set_quota(
        account_id(CYD), Quota(primary=Window(30, 300, 9000), secondary=Window(20, 10080, 900_000))
    )
    await rig.set_strategy("round-robin")
    for _ in EMAILS:
        await rig.ask()
    await rig.set_strategy("quota-aware")

    await rig.ask()
    await rig.ask(stream=True)

    assert rig.served_by()[3:] == [CYD, CYD], "cyd binds at 30 %, ada at 70 %, bob at 90 % (weekly)"
    rig.up.codex.set_quota(account_id(CYD), Quota(primary=Window(95, 300, 9000)))
    await rig.ask()  # cyd reports 95 % on this answer...
    await rig.ask()  # ...so ada (70 %) is the lowest now
    assert rig.served_by()[5:] == [CYD, ADA]


# --- usage limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
async def test_a_usage_limit_moves_the_same_request_to_the_next_account(rig: Rig, stream: bool) -> None:
    rig.up.codex.set_default(text("from whoever could"))
    limited_at = datetime.now(UTC)
    rig.up.codex.exhaust(account_id(ADA), resets_in_seconds=3600)

    answer = await rig.ask(stream=stream)

    assert answer == "from whoever could"
    assert rig.served_by() == [ADA, BOB]
    ada = await rig.account(ADA)
    assert ada["status"] == "cooling"
    assert close_to(iso_time(ada["coolingUntil"]), limited_at + timedelta(seconds=3600))
    assert await rig.active() == BOB, "sticky moves on from a limited account and stays there"


async def test_a_cooling_account_is_not_asked_again_until_its_reset(rig: Rig) -> None:
    rig.up.codex.exhaust(account_id(ADA), resets_in_seconds=3600)
    await rig.ask()
    await rig.admin.post("/accounts/switch", json={"email": ADA})  # even when made active again

    await rig.ask()
    await rig.ask(stream=True)

    assert rig.served_by() == [ADA, BOB, BOB, BOB]
    status = (await rig.admin.get("/accounts/status")).json()
    assert (status["total"], status["available"], status["cooling"], status["invalid"]) == (3, 2, 1, 0)


@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
async def test_every_account_limited_is_an_immediate_429_with_the_earliest_reset(
    rig: Rig, stream: bool
) -> None:
    for email, seconds in zip(EMAILS, (7200, 900, 3600), strict=True):
        rig.up.codex.exhaust(account_id(email), resets_in_seconds=seconds)

    started = time.monotonic()
    with pytest.raises(anthropic.RateLimitError) as caught:
        await rig.ask(stream=stream)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0
    assert caught.value.status_code == 429
    assert 897 <= int(caught.value.response.headers["retry-after"]) <= 901
    assert caught.value.response.json()["error"]["type"] == "rate_limit_error"
    assert rig.served_by() == list(EMAILS)
    statuses = {email: account["status"] for email, account in (await rig.accounts()).items()}
    assert statuses == dict.fromkeys(EMAILS, "cooling")


async def test_a_cooled_account_serves_again_once_its_reset_has_passed(rig: Rig) -> None:
    rig.up.codex.exhaust(account_id(ADA), resets_in_seconds=1)
    await rig.ask()
    until = iso_time((await rig.account(ADA))["coolingUntil"])

    await anyio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.1)

    ada = await rig.account(ADA)
    assert (ada["status"], ada["coolingUntil"]) == ("ok", None)
    await rig.admin.post("/accounts/switch", json={"email": ADA})
    await rig.ask()
    assert rig.served_by() == [ADA, BOB, ADA]


async def test_when_all_are_cooling_the_next_request_asks_nobody(rig: Rig) -> None:
    for email, seconds in zip(EMAILS, (7200, 900, 3600), strict=True):
        rig.up.codex.exhaust(account_id(email), resets_in_seconds=seconds)
    with pytest.raises(anthropic.RateLimitError):
        await rig.ask()

    with pytest.raises(anthropic.RateLimitError) as again:
        await rig.ask(stream=True)

    assert len(rig.served_by()) == 3
    assert 890 <= int(again.value.response.headers["retry-after"]) <= 901


# --- refused tokens ----------------------------------------------------------------------------------


async def test_a_401_refreshes_the_token_once_and_the_same_account_answers(rig: Rig) -> None:
    rig.up.registry.revoke_account(account_id(ADA))

    await rig.ask(stream=True)

    assert rig.served_by() == [ADA, ADA]
    first, second = rig.up.codex.responses_calls()
    assert first.header("authorization") != second.header("authorization")
    assert rig.refresh_outcomes(ADA) == ["ok"]
    assert (await rig.account(ADA))["status"] == "ok"


async def test_a_401_after_a_refresh_marks_the_account_invalid_and_another_answers(rig: Rig) -> None:
    rig.up.codex.script(unauthorized(), account=account_id(ADA), times=2)

    await rig.ask()

    assert rig.served_by() == [ADA, ADA, BOB]
    assert rig.refresh_outcomes(ADA) == ["ok"]
    ada = await rig.account(ADA)
    assert ada["status"] == "invalid"
    assert ada["invalidReason"]
    assert await rig.active() == BOB


async def test_a_revoked_login_is_marked_invalid_with_its_reason_and_another_answers(rig: Rig) -> None:
    rig.up.registry.revoke_account(account_id(ADA))
    rig.up.oauth.fail_refresh("invalidated", account=account_id(ADA))

    answer = await rig.ask(stream=True)

    assert answer
    assert rig.served_by() == [ADA, BOB]
    ada = await rig.account(ADA)
    assert ada["status"] == "invalid"
    assert "refresh_token_invalidated" in ada["invalidReason"]
    await rig.ask()
    assert rig.served_by()[-1] == BOB, "an invalid account is not asked again"


async def test_refreshing_an_invalid_account_clears_the_mark_once_the_issuer_accepts_again(rig: Rig) -> None:
    rig.up.registry.revoke_account(account_id(ADA))
    rig.up.oauth.fail_refresh("invalidated", account=account_id(ADA))
    await rig.ask()
    assert (await rig.account(ADA))["status"] == "invalid"

    refreshed = await rig.admin.post(f"/accounts/{ADA}/refresh")

    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["success"] is True
    ada = await rig.account(ADA)
    assert (ada["status"], ada["invalidReason"]) == ("ok", None)
    await rig.admin.post("/accounts/switch", json={"email": ADA})
    await rig.ask()
    assert rig.served_by()[-1] == ADA


async def test_every_account_refused_is_an_immediate_401(rig: Rig) -> None:
    for email in EMAILS:
        rig.up.registry.revoke_account(account_id(email))
        rig.up.oauth.fail_refresh("reused", account=account_id(email))

    started = time.monotonic()
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await rig.ask()
    with pytest.raises(anthropic.AuthenticationError) as again:
        await rig.ask(stream=True)

    assert time.monotonic() - started < 2.0
    assert caught.value.response.json()["error"]["type"] == "authentication_error"
    assert "log in again" in again.value.response.json()["error"]["message"]
    assert len(rig.served_by()) == 3, "invalid accounts are not asked again"
    status = (await rig.admin.get("/accounts/status")).json()
    assert (status["available"], status["invalid"]) == (0, 3)


# --- transient failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
async def test_a_5xx_is_retried_once_on_another_account(rig: Rig, stream: bool) -> None:
    rig.up.codex.script(server_error(), account=account_id(ADA))

    assert await rig.ask(stream=stream)

    assert rig.served_by() == [ADA, BOB]
    ada = await rig.account(ADA)
    assert ada["status"] == "ok", "a transient failure leaves no mark"


@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
async def test_a_failure_inside_the_stream_before_any_content_is_retried_on_another_account(
    rig: Rig, stream: bool
) -> None:
    rig.up.codex.script(failed("server_error"), account=account_id(ADA))
    rig.up.codex.set_default(text("from bob"), account=account_id(BOB))

    assert await rig.ask(stream=stream) == "from bob"

    assert rig.served_by() == [ADA, BOB]


async def test_a_second_5xx_is_the_answer_and_no_third_account_is_tried(rig: Rig) -> None:
    rig.up.codex.script(server_error(), account=account_id(ADA))
    rig.up.codex.script(server_error(), account=account_id(BOB))

    with pytest.raises(anthropic.APIStatusError) as caught:
        await rig.ask()

    assert caught.value.status_code >= 500
    assert caught.value.response.json()["type"] == "error"
    assert rig.served_by() == [ADA, BOB]
