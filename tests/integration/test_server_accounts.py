"""The admin account routes of the bundled server, on a scripted account pool (DESIGN §6, §6.1, §7, §8).

The pool is installed the way a provider with accounts installs it — a plugin registering a provider
and ``registry.register_account_pool(pool)`` — and the server is the real one on a loopback port.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_core.gateway import Gateway
from gateway_core.settings import Settings
from gateway_core.store import MemoryStore, StoreError
from gateway_server import ServerConfig, create_app
from gateway_server.app import open_state_store
from tests.serving import serve
from tests.unit._fake_account_pool import AccountsPlugin, FakeAccountPool, failing
from tests.unit._fake_provider import FakeProvider

ACCOUNT_KEYS = {
    "email",
    "accountId",
    "planType",
    "addedAt",
    "lastUsed",
    "isActive",
    "tokenExpired",
    "status",
    "coolingUntil",
    "invalidReason",
    "quota",
}
QUOTA_KEYS = {"primary", "secondary", "credits", "planType", "updatedAt", "source"}
WINDOW_KEYS = {"usedPercent", "windowMinutes", "resetsAt", "resetsInSeconds"}
COUNTER_KEYS = {"requests", "inputTokens", "cachedTokens", "outputTokens", "reasoningTokens", "errors"}


def gateway_with(*pools: FakeAccountPool) -> Gateway:
    return Gateway.from_plugins(AccountsPlugin(*pools), load_entrypoints=False, settings={})


@pytest.fixture
def pool() -> FakeAccountPool:
    return FakeAccountPool()


@pytest.fixture
async def http(pool: FakeAccountPool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(gateway_with(pool), config=ServerConfig(port=0))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


def refusal(answer: httpx.Response) -> str:
    """The admin error message, after checking the error shape."""
    body = answer.json()
    assert set(body) == {"success", "error"}
    assert body["success"] is False
    message: str = body["error"]
    return message


# --- listing ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_list_has_the_seed_shape_and_names_the_active_account(http: httpx.AsyncClient) -> None:
    body = (await http.get("/accounts")).json()
    assert set(body) == {"accounts", "activeAccount", "total"}
    assert body["activeAccount"] == "alice@example.com"
    assert body["total"] == 3
    assert [set(account) for account in body["accounts"]] == [ACCOUNT_KEYS] * 3
    alice, bob, carol = body["accounts"]
    assert alice == {
        "email": "alice@example.com",
        "accountId": "acct-alice",
        "planType": "plus",
        "addedAt": "2025-01-02T03:04:05.000Z",
        "lastUsed": "2025-06-01T12:00:00.000Z",
        "isActive": True,
        "tokenExpired": False,
        "status": "ok",
        "coolingUntil": None,
        "invalidReason": None,
        "quota": alice["quota"],
    }
    assert (bob["status"], bob["coolingUntil"]) == ("cooling", "2030-01-01T00:00:00.000Z")
    assert (carol["status"], carol["invalidReason"]) == ("invalid", "refresh_token_reused")


@pytest.mark.anyio
async def test_quota_and_window_shapes(http: httpx.AsyncClient) -> None:
    quota = (await http.get("/accounts")).json()["accounts"][0]["quota"]
    assert set(quota) == QUOTA_KEYS
    assert set(quota["primary"]) == set(quota["secondary"]) == WINDOW_KEYS
    assert quota["credits"] == {"hasCredits": False, "unlimited": False, "balance": None}
    assert (quota["planType"], quota["source"], quota["updatedAt"]) == (
        "plus",
        "headers",
        "2025-06-01T11:59:00.000Z",
    )
    assert quota["primary"] == {
        "usedPercent": 7.0,
        "windowMinutes": 300,
        "resetsAt": None,
        "resetsInSeconds": 4851,
    }
    assert quota["secondary"]["resetsAt"] == "2030-01-01T00:00:00.000Z"
    assert quota["secondary"]["resetsInSeconds"] > 86400, "counted from now when the reset time is known"


def keys_of(value: Any) -> set[str]:
    """Every object key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value).union(*(keys_of(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(item) for item in value))
    return set()


@pytest.mark.anyio
async def test_no_token_field_ever_appears(http: httpx.AsyncClient) -> None:
    listed = (await http.get("/accounts")).json()
    started = (await http.post("/accounts/add")).json()
    secret_keys = {
        key for key in keys_of([listed, started]) if "token" in key.lower() or "verifier" in key.lower()
    }
    assert secret_keys == {"tokenExpired"}


@pytest.mark.anyio
async def test_status_counts_accounts_by_status_and_names_the_active_one(http: httpx.AsyncClient) -> None:
    body = (await http.get("/accounts/status")).json()
    assert set(body) == {"total", "active", "available", "cooling", "invalid", "accounts"}
    assert (body["total"], body["active"], body["available"], body["cooling"], body["invalid"]) == (
        3,
        "alice@example.com",
        1,
        1,
        1,
    )
    assert len(body["accounts"]) == 3


# --- adding ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_add_returns_the_login_url_but_never_the_verifier(http: httpx.AsyncClient) -> None:
    answer = await http.post("/accounts/add")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "oauth_url",
        "oauth_url": "https://auth.example/oauth/authorize?state=state-1",
        "state": "state-1",
        "callback_port": 1455,
    }


@pytest.mark.anyio
async def test_callback_with_the_pending_state_stores_the_account(
    http: httpx.AsyncClient, pool: FakeAccountPool
) -> None:
    state = (await http.post("/accounts/add")).json()["state"]
    page = await http.get("/auth/callback", params={"code": "dave", "state": state})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "dave@example.com" in page.text
    assert "dave@example.com" in [account.email for account in pool.items]


@pytest.mark.anyio
async def test_callback_with_a_wrong_state_is_a_400_page_and_stores_nothing(
    http: httpx.AsyncClient, pool: FakeAccountPool
) -> None:
    await http.post("/accounts/add")
    before = list(pool.items)
    page = await http.get("/auth/callback", params={"code": "eve", "state": "forged"})
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "state" in page.text
    assert pool.items == before
    assert pool.pending == ["state-1"]


@pytest.mark.anyio
async def test_callback_without_code_is_a_400_page(http: httpx.AsyncClient) -> None:
    page = await http.get("/auth/callback", params={"state": "state-1"})
    assert page.status_code == 400
    assert "code" in page.text


@pytest.mark.anyio
async def test_callback_error_from_the_issuer_is_named_on_the_page(
    http: httpx.AsyncClient, pool: FakeAccountPool
) -> None:
    page = await http.get(
        "/auth/callback",
        params={"error": "access_denied", "error_description": "missing_codex_entitlement", "state": "x"},
    )
    assert page.status_code == 400
    assert "missing_codex_entitlement" in page.text
    assert "does not include Codex" in page.text
    assert not [call for call in pool.calls if call[0] == "finish_login"]


@pytest.mark.anyio
async def test_callback_page_escapes_what_the_query_says(http: httpx.AsyncClient) -> None:
    page = await http.get(
        "/auth/callback", params={"error": "x", "error_description": "<script>alert(1)</script>"}
    )
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text


@pytest.mark.anyio
@pytest.mark.parametrize("field", ["callbackUrl", "url", "code", "input"])
async def test_manual_add_accepts_each_documented_field(
    http: httpx.AsyncClient, pool: FakeAccountPool, field: str
) -> None:
    state = (await http.post("/accounts/add")).json()["state"]
    pasted = f"http://localhost:1455/auth/callback?code=frank&state={state}" if field != "code" else "frank"
    answer = await http.post("/accounts/add/manual", json={field: pasted})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["success"], body["email"]) == (True, "frank@example.com")
    assert "frank@example.com" in body["message"]
    assert set(body["account"]) == ACCOUNT_KEYS
    assert pool.calls[-2][:2] == ("finish_login_manual", pasted)


@pytest.mark.anyio
async def test_manual_add_without_input_names_every_accepted_field(http: httpx.AsyncClient) -> None:
    answer = await http.post("/accounts/add/manual", json={"other": "x"})
    assert answer.status_code == 400
    message = refusal(answer)
    for field in ("callbackUrl", "url", "code", "input"):
        assert f'"{field}"' in message


@pytest.mark.anyio
async def test_manual_add_with_a_wrong_state_is_a_400(http: httpx.AsyncClient, pool: FakeAccountPool) -> None:
    await http.post("/accounts/add")
    answer = await http.post(
        "/accounts/add/manual", json={"url": "http://localhost:1455/auth/callback?code=a&state=b"}
    )
    assert answer.status_code == 400
    assert "state" in refusal(answer)
    assert len(pool.items) == 3


@pytest.mark.anyio
async def test_import_uses_the_given_path_or_the_pools_default(
    http: httpx.AsyncClient, pool: FakeAccountPool
) -> None:
    default = await http.post("/accounts/import")
    given = await http.post("/accounts/import", json={"path": "/tmp/auth.json"})
    missing = await http.post("/accounts/import", json={"path": "/tmp/missing.json"})
    assert default.status_code == given.status_code == 200
    assert default.json()["email"] == "imported@example.com"
    assert ("import_credentials", None) in pool.calls
    assert ("import_credentials", "/tmp/auth.json") in pool.calls
    assert missing.status_code == 400
    assert refusal(missing).startswith("path:")


# --- managing --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_switch_makes_the_account_active(http: httpx.AsyncClient) -> None:
    answer = await http.post("/accounts/switch", json={"email": "bob@example.com"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["success"] is True
    assert body["message"] == "Switched to account: bob@example.com"
    assert (await http.get("/accounts")).json()["activeAccount"] == "bob@example.com"


@pytest.mark.anyio
async def test_switch_to_an_unknown_email_is_a_404_naming_it(http: httpx.AsyncClient) -> None:
    answer = await http.post("/accounts/switch", json={"email": "nobody@example.com"})
    assert answer.status_code == 404
    assert "nobody@example.com" in refusal(answer)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, "email: required field is missing"),
        ({"email": None}, "email: required field is missing"),
        ({"email": 42}, "email: expected a string, got number"),
        ({"email": "  "}, "email: must not be empty"),
    ],
)
async def test_switch_with_a_bad_email_field_is_a_400_naming_it(
    http: httpx.AsyncClient, body: dict[str, Any], expected: str
) -> None:
    answer = await http.post("/accounts/switch", json=body)
    assert answer.status_code == 400
    assert refusal(answer) == expected


@pytest.mark.anyio
async def test_malformed_or_non_object_bodies_are_400(http: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    broken = await http.post("/accounts/switch", content=b"{nope", headers=headers)
    array = await http.post("/accounts/switch", content=b'["a"]', headers=headers)
    empty = await http.post("/accounts/switch", content=b"", headers=headers)
    assert broken.status_code == array.status_code == empty.status_code == 400
    assert "not valid JSON" in refusal(broken)
    assert refusal(array) == "request body must be a JSON object, got array"
    assert "empty" in refusal(empty)


@pytest.mark.anyio
async def test_remove_forgets_the_account(http: httpx.AsyncClient, pool: FakeAccountPool) -> None:
    answer = await http.delete("/accounts/bob%40example.com")
    assert answer.status_code == 200
    assert answer.json()["success"] is True
    assert "bob@example.com" in answer.json()["message"]
    assert [account.email for account in pool.items] == ["alice@example.com", "carol@example.com"]


@pytest.mark.anyio
async def test_remove_of_an_unknown_email_is_a_404(http: httpx.AsyncClient) -> None:
    answer = await http.delete("/accounts/nobody@example.com")
    assert answer.status_code == 404
    assert "nobody@example.com" in refusal(answer)


@pytest.mark.anyio
async def test_refresh_without_email_refreshes_the_active_account(
    http: httpx.AsyncClient, pool: FakeAccountPool
) -> None:
    answer = await http.post("/accounts/refresh")
    assert answer.status_code == 200
    assert answer.json()["email"] == "alice@example.com"
    assert ("refresh", None) in pool.calls


@pytest.mark.anyio
async def test_refresh_of_one_account_clears_its_invalid_mark(http: httpx.AsyncClient) -> None:
    answer = await http.post("/accounts/carol@example.com/refresh")
    assert answer.status_code == 200
    assert answer.json()["account"]["status"] == "ok"
    unknown = await http.post("/accounts/nobody@example.com/refresh")
    assert unknown.status_code == 404


@pytest.mark.anyio
async def test_refresh_all_reports_each_account(http: httpx.AsyncClient, pool: FakeAccountPool) -> None:
    pool.refresh_errors["carol@example.com"] = failing("refresh token reused")
    answer = await http.post("/accounts/refresh/all")
    assert answer.status_code == 200
    assert answer.json() == {
        "success": True,
        "results": {
            "alice@example.com": {"success": True},
            "bob@example.com": {"success": True},
            "carol@example.com": {"success": False, "error": "refresh token reused"},
        },
    }


@pytest.mark.anyio
async def test_an_upstream_failure_keeps_its_status(http: httpx.AsyncClient, pool: FakeAccountPool) -> None:
    pool.refresh_errors["alice@example.com"] = failing("token endpoint answered 500")
    answer = await http.post("/accounts/refresh")
    assert answer.status_code == 502
    assert refusal(answer) == "token endpoint answered 500"


@pytest.mark.anyio
async def test_a_store_failure_is_a_500_in_the_admin_shape(
    http: httpx.AsyncClient, pool: FakeAccountPool
) -> None:
    pool.fail_with = StoreError("could not list accounts: database is locked")
    answer = await http.get("/accounts")
    assert answer.status_code == 500
    assert refusal(answer) == "could not list accounts: database is locked"


# --- reading ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_models_default_to_the_active_account(http: httpx.AsyncClient, pool: FakeAccountPool) -> None:
    body = (await http.get("/accounts/models")).json()
    assert set(body) == {"success", "email", "models"}
    assert body == {
        "success": True,
        "email": "alice@example.com",
        "models": [{"id": "gpt-5.5", "contextWindow": 272000}, {"id": "gpt-5.4-mini"}],
    }
    await http.get("/accounts/models", params={"email": "bob@example.com"})
    assert pool.calls[-1] == ("models", "bob@example.com")


@pytest.mark.anyio
async def test_quota_answers_the_cache_unless_asked_to_refresh(http: httpx.AsyncClient) -> None:
    cached = (await http.get("/accounts/quota")).json()
    fresh = (await http.get("/accounts/quota", params={"email": "bob@example.com", "refresh": "true"})).json()
    assert set(cached) == {"success", "email", "quota", "cached"}
    assert (cached["email"], cached["cached"], cached["quota"]["source"]) == (
        "alice@example.com",
        True,
        "headers",
    )
    assert set(cached["quota"]) == QUOTA_KEYS
    assert (fresh["email"], fresh["cached"], fresh["quota"]["source"]) == ("bob@example.com", False, "usage")


@pytest.mark.anyio
async def test_quota_with_a_bad_refresh_flag_or_unknown_email(http: httpx.AsyncClient) -> None:
    bad_flag = await http.get("/accounts/quota", params={"refresh": "maybe"})
    unknown = await http.get("/accounts/quota", params={"email": "nobody@example.com"})
    assert bad_flag.status_code == 400
    assert refusal(bad_flag).startswith("refresh:")
    assert unknown.status_code == 404
    assert "nobody@example.com" in refusal(unknown)


@pytest.mark.anyio
async def test_quota_without_an_active_account_asks_for_an_email(pool: FakeAccountPool) -> None:
    pool.items = []
    app = create_app(gateway_with(pool), config=ServerConfig(port=0))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        answer = await http.get("/accounts/quota")
    assert answer.status_code == 404
    assert refusal(answer).startswith("email:")


@pytest.mark.anyio
async def test_quota_all_lists_every_account_with_errors_inline(
    http: httpx.AsyncClient, pool: FakeAccountPool
) -> None:
    pool.quota_errors["bob@example.com"] = failing("wham/usage answered 502")
    body = (await http.get("/accounts/quota/all")).json()
    assert set(body) == {"accounts"}
    alice, bob, carol = body["accounts"]
    assert set(alice) == set(carol) == {"email", "quota"}
    assert set(alice["quota"]) == QUOTA_KEYS
    assert bob == {"email": "bob@example.com", "quota": None, "error": "wham/usage answered 502"}


@pytest.mark.anyio
async def test_usage_of_all_accounts_and_of_one(http: httpx.AsyncClient, pool: FakeAccountPool) -> None:
    everyone = (await http.get("/accounts/usage")).json()
    alice = (await http.get("/accounts/usage", params={"email": "alice@example.com"})).json()
    assert {"success", "totals", "byModel", "byDay", "upstream"} <= set(everyone)
    assert everyone["success"] is True
    assert set(everyone["totals"]) >= COUNTER_KEYS
    assert (everyone["totals"]["requests"], everyone["totals"]["cachedTokens"]) == (4, 800)
    assert set(everyone["byModel"]) == {"gpt-5.5", "gpt-5.4-mini"}
    assert all(set(counters) >= COUNTER_KEYS for counters in everyone["byModel"].values())
    assert [day["date"] for day in everyone["byDay"]] == ["2025-05-31", "2025-06-01"]
    assert all(set(day) >= COUNTER_KEYS for day in everyone["byDay"])
    assert everyone["upstream"] is None
    assert alice["upstream"] == {"plan_type": "plus"}
    assert ("usage", None) in pool.calls
    assert ("usage", "alice@example.com") in pool.calls


# --- strategy --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_strategy_reads_and_sets(http: httpx.AsyncClient, pool: FakeAccountPool) -> None:
    initial = (await http.get("/settings/account-strategy")).json()
    changed = await http.post("/settings/account-strategy", json={"strategy": "quota-aware"})
    assert (initial["success"], initial["strategy"]) == (True, "sticky")
    assert changed.status_code == 200
    assert (changed.json()["success"], changed.json()["strategy"]) == (True, "quota-aware")
    assert pool.current_strategy == "quota-aware"
    assert (await http.get("/settings/account-strategy")).json()["strategy"] == "quota-aware"


@pytest.mark.anyio
async def test_unknown_strategy_is_a_400_listing_the_allowed_ones(
    http: httpx.AsyncClient, pool: FakeAccountPool
) -> None:
    answer = await http.post("/settings/account-strategy", json={"strategy": "random"})
    missing = await http.post("/settings/account-strategy", json={})
    assert answer.status_code == missing.status_code == 400
    message = refusal(answer)
    assert message.startswith("strategy:")
    for allowed in ("sticky", "round-robin", "quota-aware"):
        assert allowed in message
    assert refusal(missing) == "strategy: required field is missing"
    assert pool.current_strategy == "sticky"


# --- which pool --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_without_a_provider_with_accounts_the_routes_say_so() -> None:
    app = create_app(Gateway([FakeProvider("kilo")]), config=ServerConfig(port=0))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        listing = await http.get("/accounts")
        strategy = await http.get("/settings/account-strategy")
    assert listing.status_code == strategy.status_code == 404
    assert refusal(listing) == refusal(strategy) == "no provider with accounts is installed"


@pytest.mark.anyio
async def test_with_several_pools_codex_is_the_default_and_provider_picks_another() -> None:
    codex, other = FakeAccountPool("codex"), FakeAccountPool("other", accounts=[])
    app = create_app(gateway_with(other, codex), config=ServerConfig(port=0))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        default = (await http.get("/accounts")).json()
        chosen = (await http.get("/accounts", params={"provider": "other"})).json()
        unknown = await http.get("/accounts", params={"provider": "nope"})
    assert (default["total"], chosen["total"]) == (3, 0)
    assert unknown.status_code == 404
    assert refusal(unknown).startswith('provider: "nope" has no accounts')


# --- security ----------------------------------------------------------------------------------------

ADMIN_WRITES = [
    ("POST", "/accounts/switch"),
    ("POST", "/accounts/add"),
    ("POST", "/accounts/refresh/all"),
    ("DELETE", "/accounts/bob@example.com"),
    ("POST", "/settings/account-strategy"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("method", "path"), ADMIN_WRITES)
async def test_cross_site_origin_is_refused_on_admin_writes(
    http: httpx.AsyncClient, pool: FakeAccountPool, method: str, path: str
) -> None:
    answer = await http.request(
        method, path, json={"email": "bob@example.com"}, headers={"origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert "evil.example" in refusal(answer)
    assert pool.calls == []


@pytest.mark.anyio
async def test_another_local_port_is_another_origin(http: httpx.AsyncClient, pool: FakeAccountPool) -> None:
    answer = await http.post(
        "/accounts/switch", json={"email": "bob@example.com"}, headers={"origin": "http://localhost:3000"}
    )
    assert answer.status_code == 403
    assert pool.calls == []


@pytest.mark.anyio
async def test_the_gateways_own_origin_is_allowed(http: httpx.AsyncClient) -> None:
    own = str(http.base_url).rstrip("/")
    answer = await http.post("/accounts/switch", json={"email": "bob@example.com"}, headers={"origin": own})
    assert answer.status_code == 200


@pytest.mark.anyio
async def test_cross_site_origin_is_refused_on_admin_reads(http: httpx.AsyncClient) -> None:
    answer = await http.get("/accounts", headers={"origin": "https://evil.example"})
    assert answer.status_code == 403


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b'{"email": "bob@example.com"}'),
        ("application/x-www-form-urlencoded", b"email=bob%40example.com"),
        ("multipart/form-data; boundary=x", b"--x\r\n"),
    ],
)
async def test_a_simple_request_body_is_refused_even_without_origin(
    http: httpx.AsyncClient, pool: FakeAccountPool, content_type: str, content: bytes
) -> None:
    answer = await http.post("/accounts/switch", content=content, headers={"content-type": content_type})
    assert answer.status_code == 400
    assert refusal(answer).startswith("content-type:")
    assert pool.calls == []


@pytest.mark.anyio
async def test_a_browser_labelled_cross_site_write_is_refused(
    http: httpx.AsyncClient, pool: FakeAccountPool
) -> None:
    for site in ("cross-site", "same-site"):
        answer = await http.post("/accounts/refresh/all", headers={"sec-fetch-site": site})
        assert answer.status_code == 403
    assert pool.calls == []
    allowed = await http.post("/accounts/refresh/all", headers={"sec-fetch-site": "same-origin"})
    assert allowed.status_code == 200


@pytest.mark.anyio
async def test_a_bodiless_write_needs_no_content_type(http: httpx.AsyncClient) -> None:
    answer = await http.post("/accounts/refresh/all")
    assert answer.status_code == 200


@pytest.mark.anyio
async def test_json_with_a_charset_is_json(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/accounts/switch",
        content=b'{"email": "bob@example.com"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert answer.status_code == 200


@pytest.mark.anyio
async def test_the_api_key_guards_admin_routes(pool: FakeAccountPool) -> None:
    app = create_app(gateway_with(pool), config=ServerConfig(port=0, api_key="s3cret"))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        refused = [
            await http.get("/accounts"),
            await http.post("/accounts/switch", json={"email": "bob@example.com"}),
            await http.get("/settings/account-strategy"),
        ]
        # The browser's OAuth redirect cannot carry the key: the one-time state authenticates it.
        callback = await http.get("/auth/callback", params={"code": "x", "state": "forged"})
        allowed = await http.get("/accounts", headers={"x-api-key": "s3cret"})
        bearer = await http.post(
            "/accounts/switch", json={"email": "bob@example.com"}, headers={"authorization": "Bearer s3cret"}
        )
    assert [answer.status_code for answer in refused] == [401] * 3
    assert callback.status_code == 400
    assert allowed.status_code == bearer.status_code == 200
    assert pool.calls.count(("switch", "bob@example.com")) == 1


# --- the state store ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_app_opens_its_store_in_relaygate_home(tmp_path: Path) -> None:
    home = tmp_path / "state"
    app = create_app(settings=Settings({"RELAYGATE_HOME": str(home)}), config=ServerConfig(port=0, home=home))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        health = await http.get("/health")
        store = app.state.store
        assert await store.schema_version() >= 1
    assert health.status_code == 200
    database = home / "relaygate.db"
    assert database.exists()
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(database).st_mode) == 0o600
    with pytest.raises(StoreError):
        await store.list_accounts()  # closed when the app stopped


@pytest.mark.anyio
async def test_a_store_brought_by_the_caller_is_used_and_left_open() -> None:
    store = MemoryStore()
    app = create_app(store=store, settings=Settings({}), config=ServerConfig(port=0))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/health")).status_code == 200
        assert app.state.store is store
    assert await store.list_accounts() == []


@pytest.mark.anyio
async def test_a_store_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(StoreError) as caught:
        await open_state_store(not_a_folder)
    assert caught.value.message.startswith(f"cannot open the state store in {not_a_folder}:")
    assert "RELAYGATE_HOME" in caught.value.message
