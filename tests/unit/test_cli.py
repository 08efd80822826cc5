"""``relaygate accounts …`` against a running test gateway, and in-process when none answers.

The command runs in a worker thread with its own event loop, exactly as from a shell, while the test
gateway (when there is one) serves from the test's loop.
"""

from __future__ import annotations

import gc
import io
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import orjson
import pytest
from litestar import Litestar

from gateway_core.gateway import Gateway
from gateway_core.settings import Settings
from gateway_server import ServerConfig, cli_backends, create_app
from gateway_server.cli import GC_YOUNG_THRESHOLD, main
from gateway_server.cli_backends import gateway_url
from gateway_server.cli_output import duration, table
from tests.serving import serve
from tests.unit._fake_account_pool import AccountsPlugin, FakeAccountPool, failing
from tests.unit._fake_provider import FakeProvider


def gateway_with(*pools: FakeAccountPool) -> Gateway:
    return Gateway.from_plugins(AccountsPlugin(*pools), load_entrypoints=False, settings={})


async def relaygate(*argv: str) -> int:
    """Run the command line as a user would (its own event loop, in a thread); its exit status."""
    return await anyio.to_thread.run_sync(main, list(argv))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the developer's environment; state (if any is opened) under a temporary home."""
    for name in ("RELAYGATE_API_KEY", "RELAYGATE_HOST", "RELAYGATE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELAYGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


@pytest.fixture
def pool() -> FakeAccountPool:
    return FakeAccountPool()


def point_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("RELAYGATE_HOST", "127.0.0.1")
    monkeypatch.setenv("RELAYGATE_PORT", url.rsplit(":", 1)[1])


@pytest.fixture
async def running(pool: FakeAccountPool, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A gateway on the fake pool, where the CLI looks for one."""
    app = create_app(gateway_with(pool), config=ServerConfig(port=0))
    async with serve(app) as url:
        point_at(monkeypatch, url)
        yield url


@pytest.fixture
def local(pool: FakeAccountPool, monkeypatch: pytest.MonkeyPatch) -> FakeAccountPool:
    """No gateway answers; the in-process one is built on the fake pool."""
    monkeypatch.setenv("RELAYGATE_PORT", str(closed_port()))

    @asynccontextmanager
    async def open_fake(settings: Settings) -> AsyncIterator[Gateway]:
        yield gateway_with(pool)

    monkeypatch.setattr(cli_backends, "open_local_gateway", open_fake)
    return pool


# --- against a running gateway ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_list_prints_a_table_marking_the_active_account(
    running: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await relaygate("accounts", "list") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["EMAIL", "PLAN", "STATUS", "5H", "USED", "WEEK", "USED", "LAST", "USED"]
    assert lines[1].split()[:6] == ["*", "alice@example.com", "plus", "ok", "7%", "2.5%"]
    assert "cooling until 2030-01-01 00:00Z" in out
    assert "invalid: refresh_token_reused" in out
    assert "3 account(s)" in out


@pytest.mark.anyio
async def test_json_output_is_the_admin_api_body(running: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await relaygate("accounts", "list", "--json") == 0
    printed = orjson.loads(capsys.readouterr().out)
    async with httpx.AsyncClient(base_url=running) as http:
        served = (await http.get("/accounts")).json()
    # `resetsInSeconds` counts down from the moment of each call: the two may be a second apart.
    printed_resets, served_resets = _resets(printed), _resets(served)
    assert without_resets(printed) == without_resets(served)
    assert printed_resets
    assert all(0 <= a - b <= 1 for a, b in zip(printed_resets, served_resets, strict=True))


def _resets(value: object) -> list[int]:
    if isinstance(value, dict):
        own = [value["resetsInSeconds"]] if isinstance(value.get("resetsInSeconds"), int) else []
        return own + [n for item in value.values() for n in _resets(item)]
    if isinstance(value, list):
        return [n for item in value for n in _resets(item)]
    return []


def without_resets(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_resets(v) for k, v in value.items() if k != "resetsInSeconds"}
    if isinstance(value, list):
        return [without_resets(item) for item in value]
    return value


@pytest.mark.anyio
async def test_switch_remove_and_import_go_through_the_gateway(
    running: str, pool: FakeAccountPool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await relaygate("accounts", "switch", "bob@example.com") == 0
    assert await relaygate("accounts", "remove", "carol@example.com") == 0
    assert await relaygate("accounts", "import", "--path", "/tmp/auth.json") == 0
    out = capsys.readouterr().out
    assert "Switched to account: bob@example.com" in out
    assert "Account carol@example.com removed" in out
    assert "Account imported@example.com imported" in out
    assert ("switch", "bob@example.com") in pool.calls
    assert ("import_credentials", "/tmp/auth.json") in pool.calls


@pytest.mark.anyio
async def test_an_unknown_email_exits_1_with_one_line(
    running: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await relaygate("accounts", "switch", "nobody@example.com") == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == "relaygate: account nobody@example.com not found"
    assert "Traceback" not in captured.err
    assert captured.out == ""


@pytest.mark.anyio
async def test_refresh_one_active_or_all(
    running: str, pool: FakeAccountPool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await relaygate("accounts", "refresh") == 0
    assert await relaygate("accounts", "refresh", "carol@example.com") == 0
    pool.refresh_errors["bob@example.com"] = failing("refresh token reused")
    assert await relaygate("accounts", "refresh", "--all") == 1, "a failed account fails the command"
    out = capsys.readouterr().out
    assert "Tokens of alice@example.com refreshed" in out
    assert "Tokens of carol@example.com refreshed" in out
    assert "bob@example.com    failed: refresh token reused" in out
    assert ("refresh", None) in pool.calls
    assert ("refresh", "carol@example.com") in pool.calls


@pytest.mark.anyio
async def test_quota_of_the_active_account_one_account_or_all(
    running: str, pool: FakeAccountPool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await relaygate("accounts", "quota") == 0
    first = capsys.readouterr().out
    assert first.splitlines()[1].split()[:4] == ["alice@example.com", "7%", "in", "1h20m"]
    assert "(cached; updated 2025-06-01 11:59Z)" in first

    assert await relaygate("accounts", "quota", "bob@example.com", "--refresh") == 0
    assert "(fetched now;" in capsys.readouterr().out
    assert ("quota", "bob@example.com", True) in pool.calls

    pool.quota_errors["carol@example.com"] = failing("wham/usage answered 502")
    assert await relaygate("accounts", "quota", "--all") == 0
    every = capsys.readouterr().out
    assert "error: wham/usage answered 502" in every
    assert len(every.splitlines()) == 4


@pytest.mark.anyio
async def test_usage_prints_totals_models_and_days(running: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await relaygate("accounts", "usage") == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage of all accounts")
    assert "1,300" in out
    assert "gpt-5.4-mini" in out
    assert "2025-05-31" in out


@pytest.mark.anyio
async def test_strategy_shows_sets_and_refuses_unknown_names(
    running: str, pool: FakeAccountPool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await relaygate("accounts", "strategy") == 0
    assert (
        "Account strategy: sticky (strategies: sticky, round-robin, quota-aware)" in capsys.readouterr().out
    )
    assert await relaygate("accounts", "strategy", "round-robin") == 0
    assert pool.current_strategy == "round-robin"
    assert await relaygate("accounts", "strategy", "random") == 1
    assert "quota-aware" in capsys.readouterr().err


@pytest.mark.anyio
async def test_add_waits_for_the_browser_login(
    running: str, pool: FakeAccountPool, capsys: pytest.CaptureFixture[str]
) -> None:
    status: list[int] = []

    async def run_command() -> None:
        status.append(await relaygate("accounts", "add", "--no-browser", "--timeout", "20"))

    async with anyio.create_task_group() as group:
        group.start_soon(run_command)
        while not pool.pending:  # noqa: ASYNC110 - plain data, shared with the command's thread
            await anyio.sleep(0.02)
        async with httpx.AsyncClient(base_url=running) as http:
            page = await http.get("/auth/callback", params={"code": "grace", "state": pool.pending[0]})
            assert page.status_code == 200
    assert status == [0]
    captured = capsys.readouterr()
    assert "https://auth.example/oauth/authorize?state=state-1" in captured.err
    assert captured.out.strip() == "Account grace@example.com added"


@pytest.mark.anyio
async def test_add_opens_the_browser_unless_told_not_to(
    running: str, pool: FakeAccountPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def open_browser(url: str) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr("webbrowser.open", open_browser)
    monkeypatch.setattr(
        sys, "stdin", io.StringIO("http://localhost:1455/auth/callback?code=h&state=state-1\n")
    )
    assert await relaygate("accounts", "add", "--timeout", "20") == 0
    assert opened == ["https://auth.example/oauth/authorize?state=state-1"]
    assert "h@example.com" in [account.email for account in pool.items]


@pytest.mark.anyio
async def test_add_gives_up_after_its_timeout(running: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await relaygate("accounts", "add", "--no-browser", "--timeout", "0.3") == 1
    assert "no login completed within 0.3 seconds" in capsys.readouterr().err


@pytest.mark.anyio
async def test_the_api_key_is_sent(
    pool: FakeAccountPool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(gateway_with(pool), config=ServerConfig(port=0, api_key="s3cret"))
    async with serve(app) as url:
        point_at(monkeypatch, url)
        monkeypatch.setenv("RELAYGATE_API_KEY", "s3cret")
        assert await relaygate("accounts", "list") == 0
        monkeypatch.setenv("RELAYGATE_API_KEY", "wrong")
        assert await relaygate("accounts", "list") == 1
    assert "missing or invalid API key" in capsys.readouterr().err


@pytest.mark.anyio
async def test_something_else_on_the_port_is_not_mistaken_for_the_gateway(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(Litestar(route_handlers=[], logging_config=None)) as url:
        point_at(monkeypatch, url)
        assert await relaygate("accounts", "list") == 1
    assert "is not a relaygate gateway" in capsys.readouterr().err


# --- in-process, when no gateway answers --------------------------------------------------------------


@pytest.mark.anyio
async def test_local_mode_runs_on_the_pool_in_process(
    local: FakeAccountPool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await relaygate("accounts", "switch", "bob@example.com") == 0
    assert await relaygate("accounts", "list", "--json") == 0
    printed = orjson.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert printed["activeAccount"] == "bob@example.com"
    assert set(printed) == {"accounts", "activeAccount", "total"}
    assert ("switch", "bob@example.com") in local.calls


@pytest.mark.anyio
async def test_local_add_completes_from_a_pasted_code(
    local: FakeAccountPool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("not-a-url-or-code?\nfrank\n"))
    assert await relaygate("accounts", "add", "--no-browser", "--json", "--timeout", "20") == 0
    captured = capsys.readouterr()
    body = orjson.loads(captured.out)
    assert (body["success"], body["email"]) == (True, "frank@example.com")
    assert "paste again" in captured.err, "a wrong paste is reported and the command keeps waiting"
    assert ("finish_login_manual", "frank") in local.calls


@pytest.mark.anyio
async def test_local_add_notices_the_listener_completing_the_login(
    local: FakeAccountPool, capsys: pytest.CaptureFixture[str]
) -> None:
    local.complete_on_poll = True
    assert await relaygate("accounts", "add", "--no-browser", "--timeout", "20") == 0
    assert capsys.readouterr().out.strip() == "Account polled1@example.com added"


@pytest.mark.anyio
async def test_local_mode_without_accounts_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RELAYGATE_PORT", str(closed_port()))

    @asynccontextmanager
    async def no_pools(settings: Settings) -> AsyncIterator[Gateway]:
        yield Gateway([FakeProvider("kilo")])

    monkeypatch.setattr(cli_backends, "open_local_gateway", no_pools)
    assert await relaygate("accounts", "list") == 1
    assert capsys.readouterr().err.strip() == "relaygate: no provider with accounts is installed"


@pytest.mark.anyio
async def test_local_mode_with_an_unusable_home_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "a-file"
    home.write_text("")
    monkeypatch.setenv("RELAYGATE_HOME", str(home))
    monkeypatch.setenv("RELAYGATE_PORT", str(closed_port()))
    assert await relaygate("accounts", "list") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"relaygate: cannot open the state store in {home}:")
    assert "Traceback" not in err


# --- serve ------------------------------------------------------------------------------------------


def test_serve_refuses_to_start_on_a_store_it_cannot_open(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "a-file"
    home.write_text("")
    monkeypatch.setenv("RELAYGATE_HOME", str(home))

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr("uvicorn.run", never)
    assert main(["serve", "--port", str(closed_port())]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"relaygate: not starting: cannot open the state store in {home}:")


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """The collector as it was: ``serve`` tunes it for the whole process."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("collector_restored")
def test_serve_runs_the_server_with_a_tuned_garbage_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def record(app: Litestar, **options: Any) -> None:
        seen.update(options, threshold=gc.get_threshold(), frozen=gc.get_freeze_count())

    gc.unfreeze()
    monkeypatch.setattr("uvicorn.run", record)
    assert main(["serve", "--port", "9123"]) == 0
    assert seen["threshold"][0] == GC_YOUNG_THRESHOLD
    assert seen["frozen"] > 0  # what startup built is out of every later collection
    served = (seen["host"], seen["port"], seen["loop"], seen["http"], seen["ws"])
    assert served == ("127.0.0.1", 9123, "uvloop", "httptools", "none")


# --- pieces -----------------------------------------------------------------------------------------


def test_a_server_bound_to_every_interface_is_reached_on_loopback() -> None:
    assert (
        gateway_url(Settings({"RELAYGATE_HOST": "0.0.0.0", "RELAYGATE_PORT": "9000"}))
        == "http://127.0.0.1:9000"
    )
    assert gateway_url(Settings({})) == "http://127.0.0.1:8081"
    assert gateway_url(Settings({"RELAYGATE_HOST": "::"})) == "http://[::1]:8081"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (45, "45s"),
        (720, "12m"),
        (4851, "1h20m"),
        (3 * 86400 + 4 * 3600 + 5, "3d04h"),
        (-5, "0s"),
    ],
)
def test_durations_read_like_a_clock(seconds: int | None, text: str) -> None:
    assert duration(seconds) == text


def test_tables_align_columns() -> None:
    assert table(("A", "LONGER"), [["x", "1"], ["yyy", "22"]]) == "A    LONGER\nx    1\nyyy  22"
