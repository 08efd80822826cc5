"""The bundled server with the real ``codex`` plugin over three ChatGPT accounts on the fake upstreams.

:func:`accounts_gateway` starts the fakes (Codex backend, OAuth issuer), builds the app the way
``relaygate serve`` does — ``create_app`` with ``RELAYGATE_*`` settings, the codex plugin loaded
through its entry point, the SQLite store in ``RELAYGATE_HOME`` — serves it on a loopback port, and
adds three accounts the way a user does: two browser logins (``POST /accounts/add``, the fake issuer
approves, its redirect lands on the pool's one-shot callback listener) and one import of a Codex CLI
``auth.json`` (``POST /accounts/import``). :meth:`Rig.restart` stops the server and starts a new app
on the same home, so a test can check what survives.

:func:`start_child` runs :mod:`tests.e2e_accounts_child`, the process the kill -9 tests kill.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import anyio
import anyio.abc
import httpx
import orjson
import pytest

from gateway_core.settings import Settings
from gateway_core.store import Store
from gateway_server import ServerConfig, create_app
from tests.fakes import FakeUpstreams, Identity, run_fake_upstreams
from tests.serving import serve

REPO = Path(__file__).resolve().parent.parent

EMAILS = ("ada@example.com", "bob@example.com", "cyd@example.com")
"""The three accounts, in the order they are added (the first becomes the active one)."""

MODEL = "claude-sonnet-5"
"""What the client asks for: the sonnet lane, served by codex ``gpt-5.5``."""
UPSTREAM_MODEL = "gpt-5.5"

TOKEN_LIFETIME = 3600.0
"""Access tokens the gateway need not refresh before use (well past its 5-minute margin)."""


def account_id(email: str) -> str:
    """``acc-ada`` for ``ada@example.com``: the ChatGPT account id the fakes give each identity."""
    return f"acc-{email.split('@')[0]}"


def free_port() -> int:
    """A loopback port nobody listens on right now (for the pool's OAuth callback listener)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def iso_time(value: str) -> datetime:
    """An admin API timestamp (``2025-01-31T12:00:00.000Z``) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def by_email(listing: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``GET /accounts`` (or ``/accounts/status``) as email -> Account."""
    return {account["email"]: account for account in listing["accounts"]}


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 5.0) -> None:
    """Wait until ``check()`` holds: some writes land after the answer has reached the client."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {within} s")
        await anyio.sleep(0.02)


@dataclass
class Rig:
    """A running gateway over the fakes, and clients for it."""

    up: FakeUpstreams
    home: Path
    settings: Settings
    identities: dict[str, Identity]
    store_factory: Callable[[Path], Awaitable[Store]] | None = None
    url: str = ""
    admin: httpx.AsyncClient = field(init=False)
    claude: anthropic.AsyncAnthropic = field(init=False)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def start(self) -> None:
        stack = self._stack = contextlib.AsyncExitStack()
        config = ServerConfig(port=0, home=self.home)
        store: Store | None = None
        if self.store_factory is not None:
            store = await self.store_factory(self.home)
            stack.push_async_callback(store.aclose)
        self.url = await stack.enter_async_context(
            serve(create_app(config=config, settings=self.settings, store=store))
        )
        self.admin = await stack.enter_async_context(httpx.AsyncClient(base_url=self.url, timeout=20))
        self.claude = await stack.enter_async_context(
            anthropic.AsyncAnthropic(base_url=self.url, api_key="unused", max_retries=0, timeout=20)
        )

    async def stop(self) -> None:
        """Stop the server: the app closes the gateway (flushing queued writes) and the store."""
        await self._stack.aclose()

    async def restart(self) -> None:
        """A new process's view: a new app, a new pool, the same ``RELAYGATE_HOME``."""
        await self.stop()
        await self.start()

    # --- accounts ------------------------------------------------------------------------------

    async def login(self, email: str) -> dict[str, Any]:
        """Add ``email`` with a browser login: ``POST /accounts/add``, the issuer approves, and its
        redirect reaches the pool's one-shot callback listener."""
        start = await self.admin.post("/accounts/add")
        assert start.status_code == 200, start.text
        self.up.oauth.login_as(self.identities[email])
        async with httpx.AsyncClient(timeout=10) as browser:
            page = await browser.get(start.json()["oauth_url"], follow_redirects=True)
        assert page.status_code == 200, page.text
        assert email in page.text
        return await self.account(email)

    def auth_json(self, identity: Identity) -> Path:
        """The ``auth.json`` the Codex CLI would have written for ``identity`` (fresh tokens)."""
        tokens = self.up.oauth.issue_tokens(identity, lifetime=TOKEN_LIFETIME)
        path = self.home.parent / f"{identity.email.split('@')[0]}-auth.json"
        path.write_bytes(orjson.dumps(tokens.auth_json()))
        return path

    async def import_auth_json(self, email: str) -> dict[str, Any]:
        """Add ``email`` from the ``auth.json`` the Codex CLI would have written for it."""
        path = self.auth_json(self.identities[email])
        answer = await self.admin.post("/accounts/import", json={"path": str(path)})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def accounts(self) -> dict[str, dict[str, Any]]:
        answer = await self.admin.get("/accounts")
        assert answer.status_code == 200, answer.text
        return by_email(answer.json())

    async def account(self, email: str) -> dict[str, Any]:
        return (await self.accounts())[email]

    async def active(self) -> str | None:
        active: str | None = (await self.admin.get("/accounts")).json()["activeAccount"]
        return active

    async def set_strategy(self, strategy: str) -> None:
        answer = await self.admin.post("/settings/account-strategy", json={"strategy": strategy})
        assert answer.status_code == 200, answer.text

    # --- inference -----------------------------------------------------------------------------

    async def ask(self, *, stream: bool = False, model: str = MODEL, text: str = "hi") -> str:
        """One Anthropic SDK request; the answer's text. A stream must end normally (an in-band error
        event would make the SDK raise)."""
        messages: Any = [{"role": "user", "content": text}]
        if not stream:
            message = await self.claude.messages.create(model=model, max_tokens=64, messages=messages)
            assert message.stop_reason == "end_turn"
            return "".join(block.text for block in message.content if block.type == "text")
        async with self.claude.messages.stream(model=model, max_tokens=64, messages=messages) as events:
            kinds = [event.type async for event in events]
            final = await events.get_final_message()
        assert kinds[0] == "message_start"
        assert kinds[-1] == "message_stop"
        assert final.stop_reason == "end_turn"
        return "".join(block.text for block in final.content if block.type == "text")

    def served_by(self) -> list[str]:
        """The email of every account the fake backend received a ``/codex/responses`` call from."""
        by_id = {account_id(email): email for email in self.identities}
        return [by_id[str(call.header("chatgpt-account-id"))] for call in self.up.codex.responses_calls()]

    def refresh_outcomes(self, email: str) -> list[str]:
        """What the issuer said to each refresh of ``email``'s tokens (``ok``, ``reused``, …)."""
        return [a.outcome for a in self.up.oauth.refresh_attempts if a.account_id == account_id(email)]


@contextlib.asynccontextmanager
async def accounts_gateway(
    tmp_path: Path,
    *,
    seed: bool = True,
    store_factory: Callable[[Path], Awaitable[Store]] | None = None,
) -> AsyncIterator[Rig]:
    """The fakes and a served gateway on a home in ``tmp_path``; with ``seed``, the three accounts
    added (``ada`` and ``bob`` by browser login, ``cyd`` imported), ``ada`` active."""
    async with run_fake_upstreams() as up:
        up.oauth.access_lifetime = TOKEN_LIFETIME
        identities = {
            email: up.registry.add(email, account_id=account_id(email), plan_type="plus") for email in EMAILS
        }
        home = tmp_path / "home"
        settings = Settings(
            {
                **up.env(),
                "RELAYGATE_HOME": str(home),
                "RELAYGATE_OAUTH_CALLBACK_PORT": str(free_port()),
                "RELAYGATE_CODEX_AUTH_FILE": str(tmp_path / "no-codex-auth.json"),
            }
        )
        rig = Rig(up=up, home=home, settings=settings, identities=identities, store_factory=store_factory)
        await rig.start()
        try:
            if seed:
                await rig.login(EMAILS[0])
                await rig.login(EMAILS[1])
                await rig.import_auth_json(EMAILS[2])
                up.oauth.reset()  # count refreshes from here on
                up.codex.reset()
            yield rig
        finally:
            await rig.stop()


# --- the kill -9 child --------------------------------------------------------------------------------


async def start_child(home: Path, up: FakeUpstreams, email: str, *, pause: bool) -> anyio.abc.Process:
    """Start :mod:`tests.e2e_accounts_child` in a new interpreter (the fakes keep serving from this
    loop); ``pause`` makes it stop dead right after the rotated tokens are committed."""
    command = [
        sys.executable,
        "-m",
        "tests.e2e_accounts_child",
        str(home),
        up.codex.base_url,
        up.oauth.base_url,
        email,
    ]
    if pause:
        command.append("--pause")
    env = {name: value for name, value in os.environ.items() if not name.startswith("RELAYGATE_")}
    # stderr is inherited: a child's traceback lands in the test's captured output.
    return await anyio.open_process(command, cwd=REPO, env=env, stderr=None)


async def read_until(process: anyio.abc.Process, word: str, *, within: float = 15.0) -> None:
    """Read the child's stdout until a line equal to ``word``."""
    assert process.stdout is not None
    buffer = b""
    with anyio.fail_after(within):
        while word.encode() not in buffer.splitlines():
            try:
                buffer += await process.stdout.receive()
            except anyio.EndOfStream:
                pytest.fail(f"the child exited before saying {word!r}; it said {buffer.decode()!r}")
