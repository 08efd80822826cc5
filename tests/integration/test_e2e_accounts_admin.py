"""The account admin routes and ``relaygate accounts`` against the real server with three accounts on
the fake upstreams: quota (free from answer headers, on demand from ``/wham/usage``), usage counters,
token refreshes, models, bad input, and a database that refuses writes (DESIGN §6.1, §7, §8).
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest

from gateway_core.store import DB_FILENAME, SQLiteStore, Store
from tests.e2e_accounts_support import (
    EMAILS,
    MODEL,
    REPO,
    UPSTREAM_MODEL,
    Rig,
    account_id,
    accounts_gateway,
    eventually,
    iso_time,
)
from tests.fakes import HttpReply, Quota, Usage, Window, server_error, text
from tests.fakes.codex_quota import StampedQuota

pytestmark = pytest.mark.anyio

ADA, BOB, CYD = EMAILS


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with accounts_gateway(tmp_path) as running:
        yield running


def refusal(answer: httpx.Response, status: int) -> str:
    """The admin error message, after checking its status and shape."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"success", "error"}
    assert body["success"] is False
    message: str = body["error"]
    return message


def seconds_from_now(value: str) -> float:
    return (iso_time(value) - datetime.now(UTC)).total_seconds()


# --- quota -------------------------------------------------------------------------------------------


async def test_answers_bring_the_quota_for_free(rig: Rig) -> None:
    rig.up.codex.set_quota(
        account_id(ADA),
        Quota(
            primary=Window(42, 300, 9000),
            secondary=Window(17, 10080, 500_000),
            has_credits=True,
            balance=12.5,
        ),
    )

    await rig.ask()

    quota = (await rig.account(ADA))["quota"]
    assert quota["source"] == "headers"
    assert quota["planType"] == "plus"
    assert quota["credits"] == {"hasCredits": True, "unlimited": False, "balance": 12.5}
    primary, secondary = quota["primary"], quota["secondary"]
    assert (primary["usedPercent"], primary["windowMinutes"]) == (42, 300)
    assert (secondary["usedPercent"], secondary["windowMinutes"]) == (17, 10080)
    assert 8990 <= seconds_from_now(primary["resetsAt"]) <= 9001
    assert 499_990 <= seconds_from_now(secondary["resetsAt"]) <= 500_001
    assert (await rig.account(BOB))["quota"] is None
    assert rig.up.codex.requests_to("/wham/usage") == []


async def test_quota_refresh_reads_the_usage_endpoint_and_the_next_read_is_cached(rig: Rig) -> None:
    rig.up.codex.set_quota(
        account_id(BOB),
        Quota(
            primary=Window(64, 300, 7200),
            secondary=Window(33, 10080, 400_000),
            has_credits=True,
            unlimited=False,
            balance=3,
            plan_type="pro",
        ),
    )

    fresh = await rig.admin.get("/accounts/quota", params={"email": BOB, "refresh": "true"})
    cached = await rig.admin.get("/accounts/quota", params={"email": BOB})

    assert fresh.status_code == 200, fresh.text
    body = fresh.json()
    assert (body["success"], body["email"], body["cached"]) == (True, BOB, False)
    quota = body["quota"]
    assert (quota["source"], quota["planType"]) == ("usage", "pro")
    assert quota["credits"] == {"hasCredits": True, "unlimited": False, "balance": 3}
    assert (quota["primary"]["usedPercent"], quota["primary"]["windowMinutes"]) == (64, 300)
    assert (quota["secondary"]["usedPercent"], quota["secondary"]["windowMinutes"]) == (33, 10080)
    assert 7190 <= seconds_from_now(quota["primary"]["resetsAt"]) <= 7201
    assert 399_990 <= seconds_from_now(quota["secondary"]["resetsAt"]) <= 400_001
    assert cached.json()["cached"] is True
    assert cached.json()["quota"]["primary"]["resetsAt"] == quota["primary"]["resetsAt"]
    (call,) = rig.up.codex.requests_to("/wham/usage")
    assert call.header("chatgpt-account-id") == account_id(BOB)


async def test_quota_without_an_email_is_the_active_accounts(rig: Rig) -> None:
    answer = await rig.admin.get("/accounts/quota")

    assert answer.json()["email"] == ADA
    (call,) = rig.up.codex.requests_to("/wham/usage")
    assert call.header("chatgpt-account-id") == account_id(ADA)


async def test_quota_all_asks_every_account_at_once_and_names_the_one_that_failed(rig: Rig) -> None:
    now = time.time()
    for email in (ADA, BOB):
        body = StampedQuota(Quota(primary=Window(20, 300, 9000)), now).wham_usage(
            rig.identities[email], now, limit_reached=False
        )
        rig.up.codex.script(HttpReply(200, body, delay=0.5), account=account_id(email), endpoint="usage")
    rig.up.codex.script(server_error(), account=account_id(CYD), endpoint="usage")

    answer = await rig.admin.get("/accounts/quota/all")

    assert answer.status_code == 200, answer.text
    entries = {entry["email"]: entry for entry in answer.json()["accounts"]}
    assert set(entries) == set(EMAILS)
    for email in (ADA, BOB):
        assert entries[email]["quota"]["source"] == "usage"
        assert entries[email]["quota"]["primary"]["usedPercent"] == 20
    assert entries[CYD]["quota"] is None
    assert entries[CYD]["error"]
    received = [call.received_at for call in rig.up.codex.requests_to("/wham/usage")]
    assert len(received) == 3
    assert max(received) - min(received) < 0.45, "all three asked before the first slow answer came"


# --- usage counters ----------------------------------------------------------------------------------


async def test_usage_counts_requests_tokens_and_errors_per_model_and_day(rig: Rig) -> None:
    rig.up.codex.set_default(
        text("ok", usage=Usage(input_tokens=100, cached_tokens=40, output_tokens=30, reasoning_tokens=12))
    )
    rig.up.codex.script(server_error(), account=account_id(ADA))  # ada fails once, bob answers
    await rig.ask()
    await rig.admin.post("/accounts/switch", json={"email": ADA})
    await rig.ask()
    await rig.ask(stream=True)
    await rig.ask(model="gpt-5.4-mini")
    await rig.admin.get("/accounts/quota", params={"email": ADA, "refresh": "true"})

    async def counted() -> bool:
        usage = (await rig.admin.get("/accounts/usage", params={"email": ADA})).json()
        return bool(usage["totals"]["requests"] == 4)

    await eventually(counted)
    usage = (await rig.admin.get("/accounts/usage", params={"email": ADA})).json()

    assert (usage["success"], usage["email"]) == (True, ADA)
    totals = usage["totals"]
    assert totals | {"latencyMsTotal": 0} == {
        "requests": 4,
        "inputTokens": 300,
        "cachedTokens": 120,
        "outputTokens": 90,
        "reasoningTokens": 36,
        "errors": 1,
        "latencyMsTotal": 0,
        "cost": 0.0,
    }
    assert totals["latencyMsTotal"] > 0
    assert set(usage["byModel"]) == {UPSTREAM_MODEL, "gpt-5.4-mini"}
    assert (usage["byModel"][UPSTREAM_MODEL]["requests"], usage["byModel"][UPSTREAM_MODEL]["errors"]) == (
        3,
        1,
    )
    assert usage["byModel"]["gpt-5.4-mini"]["outputTokens"] == 30
    (day,) = usage["byDay"]
    assert day["date"] == datetime.now(UTC).date().isoformat()
    assert day["requests"] == 4
    upstream = usage["upstream"]
    assert (upstream["email"], upstream["account_id"]) == (ADA, account_id(ADA))
    assert "primary_window" in upstream["rate_limit"]
    everyone = (await rig.admin.get("/accounts/usage")).json()
    assert (everyone["email"], everyone["totals"]["requests"]) == (None, 5)
    assert set(everyone["upstream"]) == {ADA}


async def test_usage_is_counted_under_the_model_the_lane_sent_upstream(rig: Rig) -> None:
    await rig.ask(model=MODEL)

    async def counted() -> bool:
        body = (await rig.admin.get("/accounts/usage", params={"email": ADA})).json()
        return bool(body["totals"]["requests"] == 1)

    await eventually(counted)
    body = (await rig.admin.get("/accounts/usage", params={"email": ADA})).json()
    assert list(body["byModel"]) == [UPSTREAM_MODEL]


# --- tokens and models -------------------------------------------------------------------------------


async def test_refresh_without_an_email_refreshes_the_active_account(rig: Rig) -> None:
    answer = await rig.admin.post("/accounts/refresh")

    assert answer.status_code == 200, answer.text
    assert (answer.json()["success"], answer.json()["email"]) == (True, ADA)
    assert [a.account_id for a in rig.up.oauth.refresh_attempts] == [account_id(ADA)]


async def test_refresh_all_runs_concurrently_and_reports_each_account(rig: Rig) -> None:
    rig.up.oauth.refresh_delay = 0.5
    rig.up.oauth.fail_refresh("server_error", account=account_id(CYD))

    answer = await rig.admin.post("/accounts/refresh/all")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    assert body["results"][ADA] == {"success": True}
    assert body["results"][BOB] == {"success": True}
    assert body["results"][CYD]["success"] is False
    assert body["results"][CYD]["error"]
    received = [call.received_at for call in rig.up.oauth.requests_to("/oauth/token")]
    assert len(received) == 3
    assert max(received) - min(received) < 0.45, "all three asked before the first slow answer came"
    cyd = await rig.account(CYD)
    assert cyd["status"] == "ok", "an issuer outage is no reason to call the login invalid"


async def test_models_of_an_account_come_from_the_backend(rig: Rig) -> None:
    rig.up.codex.set_models(["gpt-5.5", "gpt-5.4-mini"])

    answer = await rig.admin.get("/accounts/models", params={"email": BOB})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["success"], body["email"]) == (True, BOB)
    assert [model["id"] for model in body["models"]] == ["gpt-5.5", "gpt-5.4-mini"]
    (call,) = rig.up.codex.requests_to("/codex/models")
    assert call.header("chatgpt-account-id") == account_id(BOB)


async def test_adding_an_account_again_updates_it_instead_of_adding_a_second(rig: Rig) -> None:
    before = await rig.accounts()

    await rig.import_auth_json(CYD)
    await rig.login(ADA)

    listing = (await rig.admin.get("/accounts")).json()
    assert listing["total"] == 3
    assert [account["email"] for account in listing["accounts"]] == list(EMAILS)
    assert {e: a["addedAt"] for e, a in (await rig.accounts()).items()} == {
        e: a["addedAt"] for e, a in before.items()
    }


async def test_removing_an_account_keeps_the_others_and_moves_the_active_role(rig: Rig) -> None:
    answer = await rig.admin.delete(f"/accounts/{ADA}")

    assert answer.status_code == 200, answer.text
    assert answer.json()["success"] is True
    listing = (await rig.admin.get("/accounts")).json()
    assert (listing["total"], listing["activeAccount"]) == (2, BOB)
    await rig.ask()
    assert rig.served_by() == [BOB]


# --- bad input ---------------------------------------------------------------------------------------


UNKNOWN = "nobody@example.com"
ROUTES_NAMING_AN_ACCOUNT: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/accounts/switch", {"email": UNKNOWN}),
    ("DELETE", f"/accounts/{UNKNOWN}", None),
    ("POST", f"/accounts/{UNKNOWN}/refresh", None),
    ("POST", "/accounts/refresh", {"email": UNKNOWN}),
    ("GET", f"/accounts/quota?email={UNKNOWN}", None),
    ("GET", f"/accounts/usage?email={UNKNOWN}", None),
    ("GET", f"/accounts/models?email={UNKNOWN}", None),
]


async def test_an_unknown_email_is_a_404_naming_it_on_every_route(rig: Rig) -> None:
    for method, path, body in ROUTES_NAMING_AN_ACCOUNT:
        answer = await rig.admin.request(method, path, json=body)

        assert UNKNOWN in refusal(answer, 404), f"{method} {path}"
    assert (await rig.admin.get("/accounts")).json()["total"] == 3
    assert rig.up.oauth.requests == [], "nothing was refreshed"


@pytest.mark.parametrize(
    ("path", "field"),
    [("/accounts/switch", "email"), ("/settings/account-strategy", "strategy")],
)
async def test_a_missing_field_is_a_400_naming_it(rig: Rig, path: str, field: str) -> None:
    answer = await rig.admin.post(path, json={})

    assert refusal(answer, 400).startswith(f"{field}:")


async def test_a_strategy_not_in_the_list_is_a_400_listing_the_allowed_ones(rig: Rig) -> None:
    answer = await rig.admin.post("/settings/account-strategy", json={"strategy": "random"})

    message = refusal(answer, 400)
    for allowed in ("sticky", "round-robin", "quota-aware"):
        assert allowed in message
    current = (await rig.admin.get("/settings/account-strategy")).json()
    assert (current["strategy"], current["strategies"]) == (
        "sticky",
        ["sticky", "round-robin", "quota-aware"],
    )


# --- a database that refuses writes ------------------------------------------------------------------


async def impatient_store(home: Path) -> Store:
    """The real SQLite store, giving up on a locked database after 0.2 s instead of 5 s."""
    return await SQLiteStore.open(home, busy_timeout=0.2)


async def test_a_locked_database_is_a_clear_5xx_and_nothing_changes(tmp_path: Path) -> None:
    async with accounts_gateway(tmp_path, store_factory=impatient_store) as rig:
        newcomer = rig.auth_json(rig.up.registry.add("dan@example.com", account_id="acc-dan"))
        holder = sqlite3.connect(rig.home / DB_FILENAME, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            imported = await rig.admin.post("/accounts/import", json={"path": str(newcomer)})
            switched = await rig.admin.post("/accounts/switch", json={"email": BOB})
            removed = await rig.admin.delete(f"/accounts/{CYD}")
            strategy = await rig.admin.post("/settings/account-strategy", json={"strategy": "round-robin"})
            listing = (await rig.admin.get("/accounts")).json()
            current = (await rig.admin.get("/settings/account-strategy")).json()["strategy"]
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        for answer in (imported, switched, removed, strategy):
            message = refusal(answer, 500)
            assert "locked" in message
            assert str(rig.home) in message, "names the file to look at"
            assert answer.headers["retry-after"] == "1"
        assert (listing["total"], listing["activeAccount"], current) == (3, ADA, "sticky")
        await rig.restart()
        listing = (await rig.admin.get("/accounts")).json()
        assert (listing["total"], listing["activeAccount"]) == (3, ADA)
        assert (await rig.admin.get("/settings/account-strategy")).json()["strategy"] == "sticky"


async def test_requests_are_still_answered_while_the_database_is_locked(tmp_path: Path) -> None:
    async with accounts_gateway(tmp_path, store_factory=impatient_store) as rig:
        holder = sqlite3.connect(rig.home / DB_FILENAME, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with anyio.fail_after(5):
                assert await rig.ask()
                assert await rig.ask(stream=True)
        finally:
            holder.execute("ROLLBACK")
            holder.close()


# --- the command line --------------------------------------------------------------------------------


async def relaygate(rig: Rig, tmp_path: Path, *args: str) -> str:
    """Run ``relaygate accounts ARGS`` in a new process against the test server; its stdout."""
    port = rig.url.rsplit(":", 1)[1]
    env = {
        "PATH": str(Path(sys.executable).parent),
        "RELAYGATE_HOST": "127.0.0.1",
        "RELAYGATE_PORT": port,
        # Were the CLI to fall back to in-process, it would find this empty home and no account.
        "RELAYGATE_HOME": str(tmp_path / "cli-home"),
    }
    done = await anyio.run_process(
        [str(Path(sys.executable).parent / "relaygate"), "accounts", *args], env=env, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def test_the_cli_lists_and_sets_the_strategy_through_the_running_gateway(
    rig: Rig, tmp_path: Path
) -> None:
    listed = orjson.loads(await relaygate(rig, tmp_path, "list", "--json"))
    await relaygate(rig, tmp_path, "strategy", "round-robin")

    assert (listed["total"], listed["activeAccount"]) == (3, ADA)
    assert [account["email"] for account in listed["accounts"]] == list(EMAILS)
    assert (await rig.admin.get("/settings/account-strategy")).json()["strategy"] == "round-robin"
    await rig.ask()
    await rig.ask()
    assert rig.served_by() == [ADA, BOB]
