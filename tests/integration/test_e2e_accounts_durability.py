"""What survives: a restart of the server, fifty concurrent requests while accounts fail under them, and
a process killed with SIGKILL in the middle of a token refresh (DESIGN §7, §8, §10).

Refresh tokens rotate: the issuer kills the old one the moment it answers. Two windows of a kill -9
during a refresh are exercised here:

- after the new tokens are committed to the database: nothing may be lost — the next process finds
  the account and refreshes with the stored (rotated) refresh token, which the issuer accepts;
- after the issuer rotated but before the answer reached us: nobody can recover the new token (it
  died with the process). The account must still be there, and the next refresh must say plainly that
  the login is spent (``refresh_token_reused``, the account marked invalid) so the user logs in again.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from gateway_core.store import DB_FILENAME, SQLiteStore, Store
from tests.e2e_accounts_support import (
    EMAILS,
    Rig,
    account_id,
    accounts_gateway,
    eventually,
    read_until,
    start_child,
)
from tests.fakes import UsageLimitReached, text

pytestmark = pytest.mark.anyio

ADA, BOB, CYD = EMAILS


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with accounts_gateway(tmp_path) as running:
        yield running


def without_countdowns(accounts: dict[str, dict[str, object]]) -> dict[str, object]:
    """The accounts with every ``resetsInSeconds`` dropped (it counts down between two reads)."""

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "resetsInSeconds"}
        return value

    return {email: strip(account) for email, account in accounts.items()}


async def stored_refresh_token(home: Path, email: str) -> str:
    store = await SQLiteStore.open(home)
    try:
        record = await store.get_account(email)
    finally:
        await store.aclose()
    assert record is not None
    return record.tokens.refresh_token


# --- restart -----------------------------------------------------------------------------------------


async def test_accounts_marks_active_account_strategy_usage_and_tokens_survive_a_restart(rig: Rig) -> None:
    rig.up.codex.exhaust(account_id(ADA), resets_in_seconds=3600)
    await rig.ask()  # ada cools, bob answers and becomes the active account
    rig.up.oauth.fail_refresh("invalidated", account=account_id(CYD))
    spent = await rig.admin.post(f"/accounts/{CYD}/refresh")  # cyd's login is refused: invalid
    rotated = await rig.admin.post(f"/accounts/{BOB}/refresh")  # bob's refresh token rotates
    await rig.set_strategy("round-robin")
    assert spent.status_code == 401, spent.text
    assert rotated.status_code == 200, rotated.text
    before = await rig.accounts()
    assert [before[e]["status"] for e in EMAILS] == ["cooling", "ok", "invalid"]

    await rig.restart()

    after = await rig.accounts()
    assert without_countdowns(after) == without_countdowns(before)
    assert await rig.active() == BOB
    assert (await rig.admin.get("/settings/account-strategy")).json()["strategy"] == "round-robin"
    usage = (await rig.admin.get("/accounts/usage")).json()
    assert (usage["totals"]["requests"], usage["totals"]["errors"]) == (2, 1)
    again = await rig.admin.post(f"/accounts/{BOB}/refresh")
    assert again.status_code == 200, again.text
    assert rig.refresh_outcomes(BOB) == ["ok", "ok"], "the stored refresh token is the live one"
    await rig.ask(stream=True)
    assert rig.served_by()[-1] == BOB


# --- fifty at once -----------------------------------------------------------------------------------


async def test_fifty_concurrent_requests_survive_a_limit_and_an_expired_token(rig: Rig) -> None:
    await rig.set_strategy("round-robin")
    answer = text("fine", delay_first_event=0.05)
    rig.up.codex.set_default(answer)
    rig.up.codex.script(answer, account=account_id(ADA), times=4)
    rig.up.codex.set_default(UsageLimitReached(resets_in_seconds=3600), account=account_id(ADA))
    expired = rig.up.registry.access_tokens(account_id(BOB))
    rig.up.registry.expire_account(account_id(BOB))
    rig.up.oauth.refresh_delay = 0.1  # many requests meet bob's 401 while its refresh is under way
    logins = rig.up.oauth.exchanges
    answers: list[str] = []

    async def one(number: int) -> None:
        answers.append(await rig.ask(stream=number % 2 == 0, text=f"request {number}"))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            for number in range(50):
                group.start_soon(one, number)

    assert answers == ["fine"] * 50
    bob_calls = rig.up.codex.responses_calls(account_id(BOB))
    met_401 = [call for call in bob_calls if str(call.header("authorization"))[7:] in expired]
    assert len(met_401) > 1, "several requests met bob's expired token"
    assert rig.refresh_outcomes(BOB) == ["ok"], "one refresh, however many requests met the 401"
    assert rig.refresh_outcomes(ADA) == rig.refresh_outcomes(CYD) == []
    served = rig.served_by()
    assert served.count(ADA) > 4, "ada was limited in the middle of the burst"
    listing = (await rig.admin.get("/accounts")).json()
    assert listing["total"] == 3
    statuses = {account["email"]: account["status"] for account in listing["accounts"]}
    assert statuses == {ADA: "cooling", BOB: "ok", CYD: "ok"}
    assert rig.up.oauth.exchanges == logins, "no account was added twice"
    refreshed = (await rig.admin.post("/accounts/refresh/all")).json()
    assert refreshed["results"] == {email: {"success": True} for email in EMAILS}, "no token was lost"
    assert "reused" not in {attempt.outcome for attempt in rig.up.oauth.refresh_attempts}


# --- kill -9 -----------------------------------------------------------------------------------------


async def test_a_kill_after_the_rotated_tokens_are_written_loses_nothing(tmp_path: Path) -> None:
    async with accounts_gateway(tmp_path) as rig:
        await rig.stop()
        seeded = await stored_refresh_token(rig.home, BOB)
        child = await start_child(rig.home, rig.up, BOB, pause=True)
        try:
            await read_until(child, "written")
        finally:
            child.kill()
            await child.wait()
        assert child.returncode == -signal.SIGKILL
        assert rig.refresh_outcomes(BOB) == ["ok"]
        assert await stored_refresh_token(rig.home, BOB) != seeded

        await rig.start()

        listing = (await rig.admin.get("/accounts")).json()
        assert (listing["total"], listing["activeAccount"]) == (3, ADA)
        refreshed = await rig.admin.post(f"/accounts/{BOB}/refresh")
        assert refreshed.status_code == 200, refreshed.text
        assert rig.refresh_outcomes(BOB) == ["ok", "ok"]
        await rig.admin.post("/accounts/switch", json={"email": BOB})
        await rig.ask()
        assert rig.served_by() == [BOB]


async def test_a_kill_after_the_issuer_rotated_keeps_the_account_and_says_to_log_in_again(
    tmp_path: Path,
) -> None:
    async with accounts_gateway(tmp_path) as rig:
        await rig.stop()
        rig.up.oauth.refresh_delay = 1.0  # the issuer has rotated; its answer is still on the way
        seeded = await stored_refresh_token(rig.home, BOB)
        child = await start_child(rig.home, rig.up, BOB, pause=False)
        try:
            await read_until(child, "refreshing")

            async def rotated() -> bool:
                return rig.refresh_outcomes(BOB) == ["ok"]

            await eventually(rotated)
        finally:
            child.kill()
            await child.wait()
        assert child.returncode == -signal.SIGKILL
        assert await stored_refresh_token(rig.home, BOB) == seeded, "killed before anything was written"
        rig.up.oauth.refresh_delay = 0.0

        await rig.start()

        assert (await rig.admin.get("/accounts")).json()["total"] == 3
        refused = await rig.admin.post(f"/accounts/{BOB}/refresh")
        assert refused.status_code == 401, refused.text
        assert refused.json()["success"] is False
        bob = await rig.account(BOB)
        assert bob["status"] == "invalid"
        assert "refresh_token_reused" in bob["invalidReason"]
        await rig.login(BOB)  # the way out: log in again
        assert (await rig.account(BOB))["status"] == "ok"
        assert (await rig.admin.get("/accounts")).json()["total"] == 3


# --- a refresh whose tokens cannot be saved ----------------------------------------------------------


async def impatient_store(home: Path) -> Store:
    """The real SQLite store, giving up on a locked database after 0.2 s instead of 5 s."""
    return await SQLiteStore.open(home, busy_timeout=0.2)


async def refresh_while_locked(rig: Rig, email: str) -> None:
    """``POST /accounts/{email}/refresh`` while another process holds the database's write lock: the
    issuer rotates the refresh token, the gateway cannot save the new one."""
    holder = sqlite3.connect(rig.home / DB_FILENAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        failed = await rig.admin.post(f"/accounts/{email}/refresh")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert failed.status_code == 500, failed.text
    assert "locked" in failed.json()["error"]
    assert rig.refresh_outcomes(email) == ["ok"], "the issuer rotated the refresh token"


async def test_tokens_rotated_while_the_database_was_locked_are_used_by_the_next_refresh(
    tmp_path: Path,
) -> None:
    async with accounts_gateway(tmp_path, store_factory=impatient_store) as rig:
        await refresh_while_locked(rig, BOB)

        for _ in range(2):
            again = await rig.admin.post(f"/accounts/{BOB}/refresh")
            assert again.status_code == 200, again.text

        assert rig.refresh_outcomes(BOB) == ["ok", "ok", "ok"], "each refresh presented the live token"
        assert (await rig.account(BOB))["status"] == "ok"
        await rig.admin.post("/accounts/switch", json={"email": BOB})
        await rig.ask()
        assert rig.served_by() == [BOB]


async def test_tokens_rotated_while_the_database_was_locked_are_saved_when_the_server_stops(
    tmp_path: Path,
) -> None:
    async with accounts_gateway(tmp_path, store_factory=impatient_store) as rig:
        await refresh_while_locked(rig, BOB)

        await rig.restart()

        again = await rig.admin.post(f"/accounts/{BOB}/refresh")
        assert again.status_code == 200, again.text
        assert rig.refresh_outcomes(BOB) == ["ok", "ok"]
