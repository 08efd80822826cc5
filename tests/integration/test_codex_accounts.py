"""The Codex account pool against the fake OAuth issuer and the fake Codex backend (DESIGN §7).

Logins go through the real one-shot listener on 127.0.0.1 (the test plays the browser), tokens are
refreshed at the fake issuer (which rotates refresh tokens and counts every refresh), and state
lives in a real store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import orjson
import pytest

from gateway_core.accounts import AccountPool, LoginStart
from gateway_core.errors import AuthenticationError, InvalidRequestError, NotFoundError, RateLimitError
from gateway_core.models import ModelInfo, Usage
from gateway_core.store import (
    AccountRecord,
    MarkKind,
    MemoryStore,
    SQLiteStore,
    Store,
    StoreError,
    Tokens,
    UsageIncrement,
)
from gateway_providers.codex.accounts import CodexAccountPool, Lease
from gateway_providers.codex.config import CodexSettings
from gateway_providers.codex.login import CallbackPortInUseError
from gateway_providers.codex.oauth import PROFILE_CLAIM, LoginDenied
from tests.fakes import FakeUpstreams, Identity, Quota, Window, run_fake_upstreams
from tests.fakes.jwt import decode_jwt
from tests.fixtures import load_json

pytestmark = pytest.mark.anyio

LONG = 3600.0
"""Lifetime of tokens that need no refresh (well past the 5-minute margin)."""
SHORT = 60.0
"""Lifetime of tokens the pool must refresh before use."""


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstreams]:
    async with run_fake_upstreams() as fakes:
        fakes.oauth.access_lifetime = LONG
        yield fakes


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def pool(
    up: FakeUpstreams, store: MemoryStore, http: httpx.AsyncClient
) -> AsyncIterator[CodexAccountPool]:
    async with open_pool(up, store, http) as opened:
        yield opened


def settings_for(up: FakeUpstreams, *, port: int = 0) -> CodexSettings:
    return CodexSettings(base_url=up.codex.base_url, oauth_issuer=up.oauth.base_url, callback_port=port)


class open_pool:
    """``async with open_pool(up, store, http) as pool``: a pool closed (and flushed) on exit."""

    def __init__(self, up: FakeUpstreams, store: Store, http: httpx.AsyncClient, **options: Any) -> None:
        options.setdefault("flush_interval", 0.05)
        self.pool = CodexAccountPool(store, settings_for(up), http, **options)

    async def __aenter__(self) -> CodexAccountPool:
        return self.pool

    async def __aexit__(self, *exc: object) -> None:
        await self.pool.aclose()


async def seed(
    up: FakeUpstreams, store: Store, email: str, *, lifetime: float = LONG, plan: str = "plus"
) -> Identity:
    """Store an account whose tokens the fake issuer minted (as if logged in earlier)."""
    identity = up.registry.add(email, account_id=f"acc-{email.split('@')[0]}", plan_type=plan)
    tokens = up.oauth.issue_tokens(identity, lifetime=lifetime)
    await store.upsert_account(
        AccountRecord(
            email=email,
            tokens=Tokens(
                access_token=tokens.access_token, refresh_token=tokens.refresh_token, id_token=tokens.id_token
            ),
            account_id=identity.account_id,
            plan_type=plan,
            access_expires_at=datetime.fromtimestamp(decode_jwt(tokens.access_token)["exp"], UTC),
            last_refresh=datetime.now(UTC),
        )
    )
    return identity


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 5.0) -> None:
    """Wait until ``check()`` holds (background writes land on their own schedule)."""
    with anyio.fail_after(within):
        for _ in range(int(within / 0.02) + 1):
            if await check():
                return
            await anyio.sleep(0.02)
    pytest.fail(f"still not true after {within} s")


async def browse(http: httpx.AsyncClient, start: LoginStart) -> httpx.Response:
    """Play the browser: open the authorize URL and follow the issuer's redirect to the listener."""
    return await http.get(start.oauth_url, follow_redirects=True)


CODEX_BODY: dict[str, Any] = {
    "model": "gpt-5.5",
    "instructions": "You are a helpful assistant.",
    "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "conversation-1",
}
"""A request the fake Codex backend accepts (as in tests/integration/test_fakes.py)."""


def headers_for(used_primary: float, used_secondary: float = 0) -> dict[str, str]:
    return {
        "x-codex-primary-used-percent": str(used_primary),
        "x-codex-primary-window-minutes": "300",
        "x-codex-secondary-used-percent": str(used_secondary),
        "x-codex-secondary-window-minutes": "10080",
    }


# --- the pool is an AccountPool ------------------------------------------------------------------


async def test_the_pool_implements_the_core_account_pool_interface(pool: CodexAccountPool) -> None:
    assert isinstance(pool, AccountPool)
    assert pool.provider == "codex"


# --- browser login through the one-shot listener -------------------------------------------------


async def test_login_through_the_listener_stores_the_account_from_the_id_token(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore, http: httpx.AsyncClient
) -> None:
    up.oauth.login_as(up.registry.add("ada@example.com", account_id="acc-ada", plan_type="pro"))

    start = await pool.begin_login()
    page = await browse(http, start)

    assert page.status_code == 200
    assert "ada@example.com" in page.text
    [info] = await pool.accounts()
    assert (info.email, info.account_id, info.plan_type) == ("ada@example.com", "acc-ada", "pro")
    assert info.is_active
    assert info.status == "ok"
    stored = await store.get_account("ada@example.com")
    assert stored is not None
    assert stored.tokens.id_token is not None
    assert up.oauth.exchanges == 1


async def test_login_start_carries_no_verifier(pool: CodexAccountPool) -> None:
    start = await pool.begin_login()

    assert {f.name for f in dataclasses.fields(LoginStart)} == {"oauth_url", "state", "callback_port"}
    query = parse_qs(urlsplit(start.oauth_url).query)
    assert "code_verifier" not in query
    assert query["state"] == [start.state]
    assert query["redirect_uri"] == [f"http://localhost:{start.callback_port}/auth/callback"]


async def test_the_listener_closes_after_the_login(
    up: FakeUpstreams, pool: CodexAccountPool, http: httpx.AsyncClient
) -> None:
    start = await pool.begin_login()
    await browse(http, start)
    await anyio.sleep(0.05)

    with pytest.raises(httpx.ConnectError):
        await http.get(f"http://127.0.0.1:{start.callback_port}/auth/callback")


async def test_a_second_login_while_one_is_pending_reuses_the_listener(
    up: FakeUpstreams, pool: CodexAccountPool, http: httpx.AsyncClient
) -> None:
    up.oauth.login_as(up.registry.add("one@example.com"))
    up.oauth.login_as(up.registry.add("two@example.com"))

    first = await pool.begin_login()
    second = await pool.begin_login()
    await browse(http, first)
    await browse(http, second)

    assert first.callback_port == second.callback_port
    assert [a.email for a in await pool.accounts()] == ["one@example.com", "two@example.com"]


async def test_the_listener_answers_404_to_other_paths(
    pool: CodexAccountPool, http: httpx.AsyncClient
) -> None:
    start = await pool.begin_login()

    answer = await http.get(f"http://127.0.0.1:{start.callback_port}/favicon.ico")

    assert answer.status_code == 404


async def test_only_a_get_completes_a_login(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore, http: httpx.AsyncClient
) -> None:
    start = await pool.begin_login()
    callback = up.oauth.login(start.oauth_url).replace("localhost", "127.0.0.1")

    head = await http.head(callback)
    post = await http.post(callback)
    get = await http.get(callback)

    assert (head.status_code, post.status_code, get.status_code) == (405, 405, 200)
    assert len(await store.list_accounts()) == 1


async def test_a_login_begun_after_another_finished_gets_a_listener(
    up: FakeUpstreams, pool: CodexAccountPool, http: httpx.AsyncClient
) -> None:
    first = await pool.begin_login()
    await browse(http, first)
    second = await pool.begin_login()
    await anyio.sleep(0.05)

    page = await browse(http, second)

    assert page.status_code == 200


async def test_a_wrong_state_is_refused_and_nothing_is_stored(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore, http: httpx.AsyncClient
) -> None:
    start = await pool.begin_login()
    callback = up.oauth.login(start.oauth_url).replace(start.state, "forged-state")

    answer = await http.get(callback.replace("localhost", "127.0.0.1"))

    assert answer.status_code == 400
    assert "Nothing was stored" in answer.text
    assert await store.list_accounts() == []
    assert up.oauth.exchanges == 0


async def test_finish_login_with_an_unknown_state_is_a_400(
    pool: CodexAccountPool, store: MemoryStore
) -> None:
    await pool.begin_login()

    with pytest.raises(InvalidRequestError) as caught:
        await pool.finish_login(code="ac_x", state="unknown")

    assert caught.value.param == "state"
    assert await store.list_accounts() == []


async def test_a_state_completes_only_one_login(
    up: FakeUpstreams, pool: CodexAccountPool, http: httpx.AsyncClient
) -> None:
    start = await pool.begin_login()
    callback = up.oauth.login(start.oauth_url)
    await pool.finish_login_manual(callback)

    with pytest.raises(InvalidRequestError):
        await pool.finish_login_manual(callback)


async def test_a_denied_login_shows_the_reason_and_stores_nothing(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore, http: httpx.AsyncClient
) -> None:
    up.oauth.deny_next("missing_codex_entitlement")

    page = await browse(http, await pool.begin_login())

    assert page.status_code == 403
    assert "no Codex entitlement" in page.text
    assert await store.list_accounts() == []


async def test_a_pasted_denial_raises_the_reason(up: FakeUpstreams, pool: CodexAccountPool) -> None:
    up.oauth.deny_next("missing_codex_entitlement")
    start = await pool.begin_login()

    with pytest.raises(LoginDenied, match="no Codex entitlement"):
        await pool.finish_login_manual(up.oauth.login(start.oauth_url))


async def test_manual_paste_of_the_callback_url_completes_the_login(
    up: FakeUpstreams, pool: CodexAccountPool
) -> None:
    up.oauth.login_as(up.registry.add("paste@example.com", account_id="acc-paste"))
    start = await pool.begin_login()

    info = await pool.finish_login_manual(up.oauth.login(start.oauth_url))

    assert (info.email, info.account_id) == ("paste@example.com", "acc-paste")


async def test_manual_paste_of_the_bare_code_completes_the_latest_login(
    up: FakeUpstreams, pool: CodexAccountPool
) -> None:
    up.oauth.login_as(up.registry.add("code@example.com"))
    start = await pool.begin_login()
    code = parse_qs(urlsplit(up.oauth.login(start.oauth_url)).query)["code"][0]

    info = await pool.finish_login_manual(code)

    assert info.email == "code@example.com"


async def test_a_pasted_code_without_a_login_in_progress_is_a_400(pool: CodexAccountPool) -> None:
    with pytest.raises(InvalidRequestError, match="no login in progress"):
        await pool.finish_login_manual("ac_whatever")


async def test_logging_in_again_updates_the_account_without_a_duplicate(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    identity = up.registry.add("dup@example.com", plan_type="plus")
    for _ in range(2):
        up.oauth.login_as(identity)
        start = await pool.begin_login()
        await pool.finish_login_manual(up.oauth.login(start.oauth_url))

    assert [a.email for a in await pool.accounts()] == ["dup@example.com"]
    assert len(await store.list_accounts()) == 1


def _busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def busy_port() -> Iterator[int]:
    yield from _busy_port()


async def test_a_busy_callback_port_fails_naming_the_setting(
    up: FakeUpstreams, store: MemoryStore, http: httpx.AsyncClient, busy_port: int
) -> None:
    pool = CodexAccountPool(store, settings_for(up, port=busy_port), http)
    try:
        with pytest.raises(CallbackPortInUseError) as caught:
            await pool.begin_login()
    finally:
        await pool.aclose()

    assert "RELAYGATE_OAUTH_CALLBACK_PORT" in caught.value.message
    assert caught.value.status == 409


async def test_without_a_listener_the_login_completes_through_finish_login(
    up: FakeUpstreams, store: MemoryStore, http: httpx.AsyncClient, busy_port: int
) -> None:
    up.oauth.login_as(up.registry.add("app@example.com"))
    pool = CodexAccountPool(store, settings_for(up, port=busy_port), http, callback_listener=False)
    try:
        start = await pool.begin_login()
        query = parse_qs(urlsplit(up.oauth.login(start.oauth_url)).query)
        info = await pool.finish_login(code=query["code"][0], state=query["state"][0])
    finally:
        await pool.aclose()

    assert start.callback_port == busy_port
    assert info.email == "app@example.com"


async def test_a_login_times_out_and_the_listener_closes(
    up: FakeUpstreams, store: MemoryStore, http: httpx.AsyncClient
) -> None:
    async with open_pool(up, store, http, login_timeout=0.1) as pool:
        start = await pool.begin_login()
        await anyio.sleep(0.3)

        with pytest.raises(InvalidRequestError):
            await pool.finish_login(code="ac_late", state=start.state)
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{start.callback_port}/auth/callback")


# --- import --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["oauth/auth_json_chatgpt.json", "oauth/auth_json_legacy.json"])
async def test_import_of_both_auth_json_layouts(
    fixture: str, pool: CodexAccountPool, store: MemoryStore, tmp_path: Path
) -> None:
    path = tmp_path / "auth.json"
    path.write_bytes(orjson.dumps(load_json(fixture)))

    info = await pool.import_credentials(str(path))

    assert info.email == "user@example.com"
    assert info.plan_type == "pro"
    assert info.is_active
    stored = await store.get_account("user@example.com")
    assert stored is not None
    assert stored.tokens.refresh_token in ("refresh-123", "rt-123")


async def test_import_reads_the_configured_auth_file_by_default(
    up: FakeUpstreams, store: MemoryStore, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    tokens = up.oauth.issue_tokens(up.registry.add("cli@example.com"))
    path = tmp_path / "auth.json"
    path.write_bytes(orjson.dumps(tokens.auth_json()))
    settings = dataclasses.replace(settings_for(up), auth_file=path)
    pool = CodexAccountPool(store, settings, http)
    try:
        info = await pool.import_credentials()
        lease = await pool.acquire()
    finally:
        await pool.aclose()

    assert info.email == "cli@example.com"
    assert lease.access_token == tokens.access_token


async def test_import_of_a_missing_file_is_a_404(pool: CodexAccountPool, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        await pool.import_credentials(str(tmp_path / "absent.json"))


# --- choosing an account -------------------------------------------------------------------------


async def test_acquire_without_accounts_is_a_401_at_once(pool: CodexAccountPool) -> None:
    with anyio.fail_after(1):
        with pytest.raises(AuthenticationError) as caught:
            await pool.acquire()

    assert caught.value.code == "no_accounts"


async def test_a_lease_carries_the_account_and_hides_its_token(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    identity = await seed(up, store, "a@example.com")

    lease = await pool.acquire()

    assert (lease.email, lease.account_id) == ("a@example.com", identity.account_id)
    assert lease.access_token not in repr(lease)
    assert lease.auth_headers() == {
        "authorization": f"Bearer {lease.access_token}",
        "chatgpt-account-id": identity.account_id,
    }


async def test_the_first_account_becomes_active(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    await seed(up, store, "b@example.com")

    infos = await pool.accounts()

    assert [(a.email, a.is_active) for a in infos] == [("a@example.com", True), ("b@example.com", False)]


async def test_sticky_serves_the_active_account_every_time(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    for name in "abc":
        await seed(up, store, f"{name}@example.com")
    await pool.switch("b@example.com")

    emails = [(await pool.acquire()).email for _ in range(5)]

    assert emails == ["b@example.com"] * 5


async def test_sticky_moves_on_when_the_active_account_is_limited_and_says_so(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    for name in "abc":
        await seed(up, store, f"{name}@example.com")
    await pool.switch("b@example.com")
    lease = await pool.acquire()

    await pool.mark_rate_limited(lease, resets_at=datetime.now(UTC) + timedelta(hours=1), reason="limit")
    emails = [(await pool.acquire()).email for _ in range(3)]

    assert emails == ["c@example.com"] * 3
    assert [a.email for a in await pool.accounts() if a.is_active] == ["c@example.com"]


async def test_an_excluded_active_account_keeps_its_role(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    await seed(up, store, "b@example.com")

    lease = await pool.acquire(exclude=frozenset({"a@example.com"}))

    assert lease.email == "b@example.com"
    assert (await pool.acquire()).email == "a@example.com"


async def test_round_robin_takes_the_accounts_in_turn(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    for name in "abc":
        await seed(up, store, f"{name}@example.com")
    await pool.set_strategy("round-robin")

    emails = [(await pool.acquire()).email for _ in range(4)]

    assert emails == ["a@example.com", "b@example.com", "c@example.com", "a@example.com"]


async def test_quota_aware_picks_the_lowest_binding_window(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    for name in "abc":
        await seed(up, store, f"{name}@example.com")
    await pool.set_strategy("quota-aware")
    pool.observe_headers(Lease("a@example.com", "", ""), headers_for(10, 90))
    pool.observe_headers(Lease("b@example.com", "", ""), headers_for(60, 20))
    pool.observe_headers(Lease("c@example.com", "", ""), headers_for(40, 50))

    assert (await pool.acquire()).email == "c@example.com"


async def test_an_unknown_strategy_is_refused_listing_the_allowed_ones(pool: CodexAccountPool) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await pool.set_strategy("random")  # type: ignore[arg-type]

    assert "sticky, round-robin, quota-aware" in caught.value.message
    assert await pool.strategy() == "sticky"


async def test_every_account_cooling_is_a_429_with_the_earliest_reset(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    await seed(up, store, "b@example.com")
    now = datetime.now(UTC)
    await pool.mark_rate_limited(await pool.acquire(), resets_at=now + timedelta(seconds=900), reason="limit")
    await pool.mark_rate_limited(await pool.acquire(), resets_at=now + timedelta(seconds=300), reason="limit")

    with anyio.fail_after(1):
        with pytest.raises(RateLimitError) as caught:
            await pool.acquire()

    assert caught.value.retry_after is not None
    assert 298 <= caught.value.retry_after <= 301
    statuses = {a.email: (a.status, a.cooling_until) for a in await pool.accounts()}
    assert statuses["b@example.com"][0] == "cooling"


async def test_a_cooled_account_serves_again_after_its_reset(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    lease = await pool.acquire()

    await pool.mark_rate_limited(lease, resets_at=datetime.now(UTC) + timedelta(seconds=0.2), reason="limit")
    await anyio.sleep(0.3)

    assert (await pool.acquire()).email == "a@example.com"


async def test_every_account_invalid_is_a_401_naming_the_reasons(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    await pool.mark_invalid(await pool.acquire(), "refused twice")

    with pytest.raises(AuthenticationError) as caught:
        await pool.acquire()

    assert "a@example.com: refused twice" in caught.value.message


async def test_removing_the_active_account_picks_another(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    await seed(up, store, "b@example.com")

    await pool.remove("a@example.com")

    assert [(a.email, a.is_active) for a in await pool.accounts()] == [("b@example.com", True)]
    assert await store.get_setting("codex.active_account") == "b@example.com"
    with pytest.raises(NotFoundError):
        await pool.remove("a@example.com")


# --- tokens --------------------------------------------------------------------------------------


async def test_a_token_near_expiry_is_refreshed_before_use(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    identity = await seed(up, store, "a@example.com", lifetime=SHORT)
    old = await store.get_account("a@example.com")
    assert old is not None

    lease = await pool.acquire()

    stored = await store.get_account("a@example.com")
    assert stored is not None
    assert up.oauth.refresh_count(identity.account_id) == 1
    assert lease.access_token != old.tokens.access_token
    # The rotated refresh token is on the store by the time the new access token is handed out.
    assert stored.tokens.access_token == lease.access_token
    assert stored.tokens.refresh_token != old.tokens.refresh_token
    assert stored.access_expires_at is not None
    assert stored.access_expires_at > datetime.now(UTC) + timedelta(minutes=30)


async def test_fifty_concurrent_acquires_cause_one_refresh(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    identity = await seed(up, store, "a@example.com", lifetime=SHORT)
    up.oauth.refresh_delay = 0.2
    leases: list[Lease] = []

    async def one() -> None:
        leases.append(await pool.acquire())

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(one)

    assert up.oauth.refresh_count(identity.account_id) == 1
    assert [a.outcome for a in up.oauth.refresh_attempts] == ["ok"]
    assert len({lease.access_token for lease in leases}) == 1


async def test_concurrent_401s_refresh_once_and_share_the_new_token(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    identity = await seed(up, store, "a@example.com")
    lease = await pool.acquire()
    up.oauth.refresh_delay = 0.1

    renewed = await asyncio.gather(*(pool.refresh_after_unauthorized(lease) for _ in range(10)))

    assert up.oauth.refresh_count(identity.account_id) == 1
    tokens = {r.access_token for r in renewed if r is not None}
    assert len(tokens) == 1
    assert lease.access_token not in tokens


async def test_a_401_refresh_lets_the_fake_backend_accept_the_new_token(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore, http: httpx.AsyncClient
) -> None:
    identity = await seed(up, store, "a@example.com")
    lease = await pool.acquire()
    up.registry.revoke_account(identity.account_id)

    renewed = await pool.refresh_after_unauthorized(lease)

    assert renewed is not None
    answer = await http.get(f"{up.codex.base_url}/wham/usage", headers=renewed.auth_headers())
    assert answer.status_code == 200


async def test_a_permanent_refresh_failure_marks_the_account_invalid(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    identity = await seed(up, store, "a@example.com", lifetime=SHORT)
    up.oauth.fail_refresh("reused", account=identity.account_id)

    with pytest.raises(AuthenticationError):
        await pool.acquire()

    [info] = await pool.accounts()
    assert info.status == "invalid"
    assert info.invalid_reason is not None
    assert "refresh_token_reused" in info.invalid_reason
    assert [m.kind for m in await store.list_marks("a@example.com")] == [MarkKind.INVALID]


async def test_a_failed_refresh_moves_the_request_to_the_next_account(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    first = await seed(up, store, "a@example.com", lifetime=SHORT)
    await seed(up, store, "b@example.com")
    up.oauth.fail_refresh("expired", account=first.account_id)

    assert (await pool.acquire()).email == "b@example.com"


async def test_refresh_clears_the_invalid_mark(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    identity = await seed(up, store, "a@example.com", lifetime=SHORT)
    up.oauth.fail_refresh("invalidated", account=identity.account_id)
    with pytest.raises(AuthenticationError):
        await pool.acquire()

    info = await pool.refresh("a@example.com")

    assert info.status == "ok"
    assert info.invalid_reason is None
    assert await store.list_marks("a@example.com") == []
    assert (await pool.acquire()).email == "a@example.com"


async def test_a_transient_refresh_failure_keeps_serving_the_current_token(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    identity = await seed(up, store, "a@example.com", lifetime=SHORT)
    before = await store.get_account("a@example.com")
    assert before is not None
    up.oauth.fail_refresh("server_error", account=identity.account_id)

    lease = await pool.acquire()

    assert lease.access_token == before.tokens.access_token
    assert (await pool.accounts())[0].status == "ok"


async def test_while_the_issuer_fails_concurrent_requests_do_not_queue_for_it(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    identity = await seed(up, store, "a@example.com", lifetime=SHORT)
    up.oauth.fail_refresh("server_error", account=identity.account_id, times=50)

    leases = await asyncio.gather(*(pool.acquire() for _ in range(20)))

    assert up.oauth.refresh_count(identity.account_id) == 1
    assert {lease.email for lease in leases} == {"a@example.com"}


class FlakyTokenStore(MemoryStore):
    """A store whose next token write fails, as a full disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next_token_write = False

    async def update_tokens(
        self,
        email: str,
        tokens: Tokens,
        *,
        access_expires_at: datetime | None,
        refreshed_at: datetime | None = None,
    ) -> AccountRecord:
        if self.fail_next_token_write:
            self.fail_next_token_write = False
            raise StoreError("could not save tokens: disk full")
        return await super().update_tokens(
            email, tokens, access_expires_at=access_expires_at, refreshed_at=refreshed_at
        )


async def test_a_rotated_token_the_store_refused_is_kept_in_memory(
    up: FakeUpstreams, http: httpx.AsyncClient
) -> None:
    store = FlakyTokenStore()
    identity = await seed(up, store, "a@example.com", lifetime=SHORT)
    old = await store.get_account("a@example.com")
    assert old is not None
    store.fail_next_token_write = True
    async with open_pool(up, store, http) as pool:
        first = await pool.acquire()
        second = await pool.acquire()

    assert first.access_token != old.tokens.access_token
    assert second.access_token == first.access_token
    assert up.oauth.refresh_count(identity.account_id) == 1
    assert [a.outcome for a in up.oauth.refresh_attempts] == ["ok"]


async def test_refresh_all_reports_each_account(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    bad = await seed(up, store, "b@example.com")
    up.oauth.fail_refresh("expired", account=bad.account_id)

    results = await pool.refresh_all()

    assert results["a@example.com"] is None
    assert isinstance(results["b@example.com"], AuthenticationError)


async def test_a_refresh_of_an_unknown_account_is_a_404(pool: CodexAccountPool) -> None:
    with pytest.raises(NotFoundError) as caught:
        await pool.refresh("ghost@example.com")

    assert caught.value.param == "email"


async def test_an_expired_token_reads_as_expired(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com", lifetime=-10)

    [info] = await pool.accounts()

    assert info.token_expired


# --- the provider's failover loop, played against the fake backend --------------------------------


async def serve_one(pool: CodexAccountPool, http: httpx.AsyncClient, url: str) -> str:
    """One request through the lease API as the provider uses it; returns the account that answered."""
    tried: set[str] = set()
    refreshed: set[str] = set()
    renewed: Lease | None = None
    while True:
        lease = renewed or await pool.acquire(exclude=frozenset(tried))
        renewed = None
        answer = await http.post(url, json=CODEX_BODY, headers=lease.auth_headers())
        pool.observe_headers(lease, answer.headers, status=answer.status_code)
        if answer.status_code == 200:
            pool.record_usage(lease, model="gpt-5.5", usage=Usage(output_tokens=1), latency_ms=1, error=False)
            return lease.email
        if answer.status_code == 429:
            error = answer.json()["error"]
            resets_at = datetime.fromtimestamp(error["resets_at"], UTC)
            await pool.mark_rate_limited(lease, resets_at=resets_at, reason=error["type"])
        elif answer.status_code == 401 and lease.email not in refreshed:
            refreshed.add(lease.email)
            renewed = await pool.refresh_after_unauthorized(lease)
            if renewed is not None:
                continue
        elif answer.status_code == 401:
            await pool.mark_invalid(lease, "refused after a token refresh")
        else:
            raise AssertionError(f"unexpected upstream status {answer.status_code}")
        tried.add(lease.email)


async def test_fifty_requests_over_three_accounts_while_one_is_limited_and_tokens_go_stale(
    up: FakeUpstreams, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    store = await SQLiteStore.open(tmp_path)
    try:
        limited = await seed(up, store, "limited@example.com")
        expiring = await seed(up, store, "expiring@example.com", lifetime=SHORT)
        revoked = await seed(up, store, "revoked@example.com")
        up.codex.exhaust(limited.account_id, resets_in_seconds=600)
        up.registry.revoke_account(revoked.account_id)
        up.oauth.refresh_delay = 0.05
        async with open_pool(up, store, http) as pool:
            await pool.set_strategy("round-robin")
            url = f"{up.codex.base_url}/codex/responses"
            served = await asyncio.gather(*(serve_one(pool, http, url) for _ in range(50)))
            infos = {a.email: a for a in await pool.accounts()}
            # The rotated refresh tokens on the store are the live ones: refreshing again works.
            for email in ("expiring@example.com", "revoked@example.com"):
                assert (await pool.refresh(email)).status == "ok"
        accounts = await store.list_accounts()
    finally:
        await store.aclose()

    assert len(served) == 50
    assert "limited@example.com" not in served
    assert set(served) == {"expiring@example.com", "revoked@example.com"}
    assert up.oauth.refresh_count(expiring.account_id) == 2  # one in the burst, one asked for above
    assert up.oauth.refresh_count(revoked.account_id) == 2
    assert up.oauth.refresh_count(limited.account_id) == 0
    assert all(attempt.outcome == "ok" for attempt in up.oauth.refresh_attempts)
    assert infos["limited@example.com"].status == "cooling"
    assert sorted(a.email for a in accounts) == sorted(infos)


# --- restarts ------------------------------------------------------------------------------------


async def test_marks_and_the_active_account_survive_a_restart(
    up: FakeUpstreams, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    store = await SQLiteStore.open(tmp_path)
    try:
        for name in "abc":
            await seed(up, store, f"{name}@example.com")
        until = datetime.now(UTC) + timedelta(hours=2)
        async with open_pool(up, store, http) as first:
            await first.switch("c@example.com")
            await first.set_strategy("round-robin")
            await first.mark_rate_limited(Lease("a@example.com", "", ""), resets_at=until, reason="limit")
            await first.mark_invalid(await first.acquire(exclude=frozenset({"c@example.com"})), "refused")
    finally:
        await store.aclose()

    reopened = await SQLiteStore.open(tmp_path)
    try:
        async with open_pool(up, reopened, http) as second:
            infos = {a.email: a for a in await second.accounts()}
            strategy = await second.strategy()
    finally:
        await reopened.aclose()

    assert infos["a@example.com"].status == "cooling"
    assert infos["a@example.com"].cooling_until == until
    assert infos["b@example.com"].status == "invalid"
    assert infos["b@example.com"].invalid_reason == "refused"
    assert infos["c@example.com"].is_active
    assert strategy == "round-robin"


async def test_a_refreshed_token_survives_a_restart(
    up: FakeUpstreams, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    store = await SQLiteStore.open(tmp_path)
    try:
        identity = await seed(up, store, "a@example.com", lifetime=SHORT)
        async with open_pool(up, store, http) as first:
            lease = await first.acquire()
    finally:
        await store.aclose()

    reopened = await SQLiteStore.open(tmp_path)
    try:
        async with open_pool(up, reopened, http) as second:
            again = await second.acquire()
            refreshed = await second.refresh("a@example.com")
    finally:
        await reopened.aclose()

    assert again.access_token == lease.access_token
    assert refreshed.status == "ok"
    assert [a.outcome for a in up.oauth.refresh_attempts if a.account_id == identity.account_id] == [
        "ok",
        "ok",
    ]


# --- usage and quota -----------------------------------------------------------------------------


async def test_usage_is_batched_into_the_store(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    lease = await pool.acquire()
    usage = Usage(input_tokens=80, cached_input_tokens=20, output_tokens=50, reasoning_tokens=30)

    for _ in range(3):
        pool.record_usage(lease, model="gpt-5.5", usage=usage, latency_ms=12.4, error=False)
    pool.record_usage(lease, model="gpt-5.4-mini", usage=None, latency_ms=3, error=True)

    async def written() -> bool:
        return (await store.usage_report("a@example.com")).totals.requests == 4

    await eventually(written)  # by the background flusher: nothing asked for it
    report = await store.usage_report("a@example.com")
    assert report.totals.requests == 4
    assert report.totals.errors == 1
    assert report.by_model["gpt-5.5"].input_tokens == 300
    assert report.by_model["gpt-5.5"].cached_tokens == 60
    assert report.by_model["gpt-5.5"].output_tokens == 150
    assert report.by_model["gpt-5.5"].reasoning_tokens == 90
    assert (await pool.accounts())[0].last_used is not None


class FlakyUsageStore(MemoryStore):
    """A store whose next usage write fails."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def add_usage(self, increments: Iterable[UsageIncrement]) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("could not record usage: database is locked", code="SQLITE_BUSY")
        await super().add_usage(increments)


async def test_a_failing_usage_write_is_logged_and_retried_never_raised(
    up: FakeUpstreams, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyUsageStore()
    await seed(up, store, "a@example.com")
    async with open_pool(up, store, http) as pool:
        lease = await pool.acquire()
        store.failures = 1
        pool.record_usage(lease, model="gpt-5.5", usage=Usage(output_tokens=3), latency_ms=1, error=False)

        async def written() -> bool:
            return (await store.usage_report()).totals.output_tokens == 3

        await eventually(written)

    assert "could not record usage" in caplog.text


async def test_usage_summary_has_totals_models_days_and_the_upstream_snapshot(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    lease = await pool.acquire()
    pool.record_usage(
        lease, model="gpt-5.5", usage=Usage(input_tokens=5, output_tokens=7), latency_ms=1, error=False
    )
    await pool.quota("a@example.com")

    summary = await pool.usage("a@example.com")

    assert summary.totals.requests == 1
    assert summary.totals.output_tokens == 7
    assert list(summary.by_model) == ["gpt-5.5"]
    assert summary.by_day[0][0] == datetime.now(UTC).date().isoformat()
    assert summary.upstream["email"] == "a@example.com"


async def test_late_usage_of_a_removed_account_is_dropped(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    lease = await pool.acquire()
    await pool.remove("a@example.com")

    pool.record_usage(lease, model="gpt-5.5", usage=None, latency_ms=1, error=False)
    pool.observe_headers(lease, headers_for(5), status=200)
    await pool.aclose()

    assert (await store.usage_report()).totals.requests == 0


async def test_quota_is_read_from_the_headers_of_an_upstream_answer(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore, http: httpx.AsyncClient
) -> None:
    identity = await seed(up, store, "a@example.com")
    up.codex.set_quota(
        identity.account_id, Quota(primary=Window(33, 300, 1000), secondary=Window(5, 10080, 90000))
    )
    lease = await pool.acquire()
    answer = await http.post(
        f"{up.codex.base_url}/codex/responses", json=CODEX_BODY, headers=lease.auth_headers()
    )
    assert answer.status_code == 200

    pool.observe_headers(lease, answer.headers, status=answer.status_code)

    async def written() -> bool:
        stored = await store.get_account("a@example.com")
        return stored is not None and stored.quota is not None

    await eventually(written)
    [info] = await pool.accounts()
    assert info.quota is not None
    assert info.quota.source == "headers"
    assert info.quota.primary is not None
    assert info.quota.primary.used_percent == 33
    assert info.quota.secondary is not None
    assert info.quota.secondary.window_minutes == 10080
    stored = await store.get_account("a@example.com")
    assert stored is not None
    assert stored.quota is not None
    assert stored.quota["primary"]["usedPercent"] == 33


async def test_quota_is_fetched_from_wham_usage_and_then_cached(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    identity = await seed(up, store, "a@example.com")
    up.codex.set_quota(
        identity.account_id, Quota(primary=Window(12, 300, 1000), secondary=Window(3, 10080, 9000))
    )

    first, first_cached = await pool.quota("a@example.com")
    _, second_cached = await pool.quota("a@example.com")
    _, third_cached = await pool.quota("a@example.com", refresh=True)

    assert (first_cached, second_cached, third_cached) == (False, True, False)
    assert first.source == "usage"
    assert first.primary is not None
    assert first.primary.used_percent == 12
    assert first.primary.window_minutes == 300
    assert len(up.codex.requests_to("/wham/usage")) == 2
    request = up.codex.requests_to("/wham/usage")[0]
    assert request.header("chatgpt-account-id") == identity.account_id
    stored = await store.get_account("a@example.com")
    assert stored is not None
    assert stored.upstream_usage is not None
    assert stored.upstream_usage["account_id"] == identity.account_id


async def test_quota_all_answers_each_account_or_its_error(
    up: FakeUpstreams, pool: CodexAccountPool, store: MemoryStore
) -> None:
    await seed(up, store, "a@example.com")
    broken = await seed(up, store, "b@example.com")
    up.registry.revoke_account(broken.account_id)
    up.oauth.fail_refresh("expired", account=broken.account_id)

    results = await pool.quota_all()

    assert not isinstance(results["a@example.com"], Exception)
    assert isinstance(results["b@example.com"], AuthenticationError)


async def test_models_come_from_the_injected_source_with_a_lease_of_that_account(
    up: FakeUpstreams, store: MemoryStore, http: httpx.AsyncClient
) -> None:
    await seed(up, store, "a@example.com")
    await seed(up, store, "b@example.com")
    seen: list[Lease] = []

    async def source(lease: Lease) -> list[ModelInfo]:
        seen.append(lease)
        return [ModelInfo(id="gpt-5.5", provider="codex", context_window=272000)]

    async with open_pool(up, store, http, models_source=source) as pool:
        models = await pool.models("b@example.com")

    assert [m.id for m in models] == ["gpt-5.5"]
    assert [lease.email for lease in seen] == ["b@example.com"]


# --- secrets stay out of the logs ----------------------------------------------------------------


async def _raw_get(url: str) -> bytes:
    """GET without an HTTP library (whose own request log would print the callback's code)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection("127.0.0.1", parts.port)
    writer.write(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_no_token_code_or_verifier_reaches_the_logs(
    up: FakeUpstreams, store: MemoryStore, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    identity = up.registry.add("secret@example.com")
    up.oauth.login_as(identity)
    up.oauth.access_lifetime = SHORT
    caplog.set_level(logging.DEBUG)
    async with open_pool(up, store, http) as pool:
        start = await pool.begin_login()
        callback = up.oauth.login(start.oauth_url)
        answer = await _raw_get(callback)
        first = await store.get_account("secret@example.com")
        up.oauth.access_lifetime = LONG
        lease = await pool.acquire()  # refreshes: the login's token expires within 5 minutes
        up.oauth.fail_refresh("reused", account=identity.account_id)
        with pytest.raises(AuthenticationError):
            await pool.refresh("secret@example.com")
        last = await store.get_account("secret@example.com")

    assert b"200 OK" in answer
    assert first is not None
    assert last is not None
    code = parse_qs(urlsplit(callback).query)["code"][0]
    secrets = {
        code,
        first.tokens.access_token,
        first.tokens.refresh_token,
        lease.access_token,
        last.tokens.refresh_token,
    }
    secrets |= {s for s in (first.tokens.id_token, last.tokens.id_token) if s}
    text = "\n".join(record.getMessage() + repr(record.args) for record in caplog.records)
    assert "refreshed the tokens" in text  # the log did record the refresh
    for secret in secrets:
        assert secret not in text
    # The verifier only ever travelled in the exchange request.
    [exchange] = [
        r for r in up.oauth.requests_to("/oauth/token") if r.body.get("grant_type") == "authorization_code"
    ]
    assert exchange.body["code_verifier"] not in text


async def test_the_profile_claim_is_what_the_fake_issuer_sends(up: FakeUpstreams) -> None:
    # Guards the claim decoding above against drift in the fake's token shape.
    tokens = up.oauth.issue_tokens(up.registry.add("shape@example.com"))

    assert decode_jwt(tokens.access_token)[PROFILE_CLAIM]["email"] == "shape@example.com"
    assert decode_jwt(tokens.access_token)["exp"] > time.time()
