"""The bundled server as a user runs it, on the fake upstreams, for the end-to-end tests.

:func:`served_gateway` starts the three fakes, builds the app exactly as ``relaygate serve`` does —
``create_app`` with ``RELAYGATE_*`` settings pointing at the fakes, the ``codex`` plugin loaded from
its entry point, the SQLite store opened in ``RELAYGATE_HOME`` (a folder under ``tmp_path``) — and
serves it on a loopback port. :meth:`Served.login` adds an account the way a new user does: ``POST
/accounts/add``, then a browser that opens the returned URL at the fake issuer and follows its redirect
to the pool's one-shot callback listener.

The fake issuer here remembers every token set it mints (:class:`RecordingOAuth`), so a test can check
that none of them, nor a code or a PKCE verifier, ever reaches a response body or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anthropic
import httpx
import openai
import pytest
from aiohttp import web

from gateway_core.formats.anthropic import StreamDecoder
from gateway_core.settings import Settings
from gateway_core.sse import SSEDecoder
from gateway_core.streaming import StreamEvent
from gateway_server import ServerConfig, create_app
from tests.fakes import FakeCodex, FakeKilo, FakeOAuth, FakeUpstreams, Identity, IdentityRegistry, TokenSet
from tests.fakes.codex_answers import SSE_CONTENT_TYPE, CodexCall, StreamReply
from tests.fakes.responses_stream import encode_events
from tests.serving import serve

MODEL = "claude-opus-5-5"
"""What the clients ask for: the opus lane, served by codex ``gpt-5.5``."""
UPSTREAM_MODEL = "gpt-5.5"

EMAIL = "dev@example.com"
ACCOUNT_ID = "acc-dev"
PLAN = "plus"

TIMEOUT = 20.0
"""Client timeouts: far above any answer here, below the suite's 120 s, so a hang fails cleanly."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RecordingOAuth(FakeOAuth):
    """The fake issuer, remembering every token set it mints (code exchanges and refreshes)."""

    def __init__(self, registry: IdentityRegistry | None = None) -> None:
        super().__init__(registry)
        self.issued: list[TokenSet] = []

    def issue_tokens(self, identity: Identity, *, lifetime: float | None = None) -> TokenSet:
        tokens = super().issue_tokens(identity, lifetime=lifetime)
        self.issued.append(tokens)
        return tokens

    def secrets(self) -> set[str]:
        """Every token it minted, and every code and PKCE verifier it was sent."""
        found = {t for s in self.issued for t in (s.id_token, s.access_token, s.refresh_token)}
        for call in self.requests_to("/oauth/token", "POST"):
            if isinstance(call.body, dict):
                for name in ("code", "code_verifier", "refresh_token"):
                    if isinstance(call.body.get(name), str):
                        found.add(call.body[name])
        return found


@dataclass
class Served:
    """A running gateway over the fakes, with an admin client."""

    up: FakeUpstreams
    oauth: RecordingOAuth
    identity: Identity
    home: Path
    url: str
    admin: httpx.AsyncClient

    @property
    def codex(self) -> FakeCodex:
        return self.up.codex

    def anthropic(self, *, api_key: str = "sk-ant-placeholder") -> anthropic.AsyncAnthropic:
        """An Anthropic SDK client for the gateway (use it with ``async with``); the key is what
        Claude Code sends when the gateway has none of its own."""
        return anthropic.AsyncAnthropic(base_url=self.url, api_key=api_key, max_retries=0, timeout=TIMEOUT)

    def openai(self) -> openai.AsyncOpenAI:
        """An OpenAI SDK client for the gateway's ``/v1`` (use it with ``async with``)."""
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)

    # --- logging in ------------------------------------------------------------------------------

    async def begin_login(self) -> dict[str, Any]:
        """``POST /accounts/add``: the login URL to open, and its state."""
        answer = await self.admin.post("/accounts/add")
        assert answer.status_code == 200, answer.text
        started: dict[str, Any] = answer.json()
        return started

    async def login(self) -> dict[str, Any]:
        """Log in as a new user does; the account as ``GET /accounts`` lists it."""
        started = await self.begin_login()
        self.oauth.login_as(self.identity)
        page = await browse(started["oauth_url"])
        assert page.status == 200, page.text
        assert self.identity.email in page.text
        return await self.account()

    def callback_url(self, oauth_url: str) -> str:
        """The redirect the issuer sends the browser to after approving ``oauth_url`` (a one-time
        code and the login's state), without following it."""
        return self.oauth.login(oauth_url, self.identity)

    def on_gateway(self, callback_url: str) -> str:
        """The same callback, aimed at the gateway's own ``GET /auth/callback``."""
        return f"{self.url}/auth/callback?{urlsplit(callback_url).query}"

    async def accounts(self) -> dict[str, Any]:
        answer = await self.admin.get("/accounts")
        assert answer.status_code == 200, answer.text
        listing: dict[str, Any] = answer.json()
        return listing

    async def account(self) -> dict[str, Any]:
        listed: list[dict[str, Any]] = (await self.accounts())["accounts"]
        (account,) = [a for a in listed if a["email"] == self.identity.email]
        return account


@dataclass(frozen=True)
class Page:
    """What a browser saw at the end of its redirects."""

    status: int
    text: str
    url: str


async def browse(url: str) -> Page:
    """Open ``url`` as a browser does, following redirects (the issuer's 302 to the callback).

    aiohttp rather than httpx: httpx logs every URL it requests, so the test's own browser would put
    the one-time code in the captured log that the secrecy test inspects.
    """
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as browser,
        browser.get(url) as page,
    ):
        return Page(page.status, await page.text(), str(page.url))


@contextlib.asynccontextmanager
async def served_gateway(
    tmp_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    keepalive_seconds: float | None = None,
) -> AsyncIterator[Served]:
    """The fakes and the gateway built from ``RELAYGATE_*`` settings (plus ``env``), served on a
    loopback port, with ``RELAYGATE_HOME`` in ``tmp_path``; no account yet."""
    registry = IdentityRegistry()
    oauth = RecordingOAuth(registry)
    up = FakeUpstreams(registry, FakeCodex(registry), oauth, FakeKilo())
    async with up.codex, up.oauth, up.kilo:
        identity = registry.add(EMAIL, account_id=ACCOUNT_ID, plan_type=PLAN)
        home = tmp_path / "relaygate-home"
        settings = Settings(
            {
                **up.env(),
                "RELAYGATE_HOME": str(home),
                "RELAYGATE_OAUTH_CALLBACK_PORT": str(free_port()),
                "RELAYGATE_CODEX_AUTH_FILE": str(tmp_path / "no-codex-auth.json"),
                "RELAYGATE_CLAUDE_SETTINGS": str(tmp_path / "claude-settings.json"),
                **(env or {}),
            }
        )
        config = ServerConfig.from_settings(settings, port=0)
        if keepalive_seconds is not None:
            config = dataclasses.replace(config, keepalive_seconds=keepalive_seconds)
        async with (
            serve(create_app(config=config, settings=settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as admin,
        ):
            yield Served(up=up, oauth=oauth, identity=identity, home=home, url=url, admin=admin)


# --- reading answers --------------------------------------------------------------------------------


def sse_frames(raw: bytes) -> list[tuple[str | None, str]]:
    """An SSE body as ``(event, data)`` pairs."""
    decoder = SSEDecoder()
    return [(e.event, e.data) for e in [*decoder.feed(raw), *decoder.flush()]]


def anthropic_events(raw: bytes) -> list[StreamEvent]:
    """An Anthropic SSE body decoded to canonical events by the format's own decoder."""
    decoder = StreamDecoder()
    sse = SSEDecoder()
    events: list[StreamEvent] = []
    for frame in [*sse.feed(raw), *sse.flush()]:
        events.extend(decoder.feed(frame))
    events.extend(decoder.close())
    return events


async def within(seconds: float, call: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    """``call()``'s result and how long it took; fails (instead of hanging) after ``seconds``."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(seconds):
            result = await call()
    except TimeoutError:
        pytest.fail(f"no answer within {seconds} s")
    return result, time.monotonic() - started


# --- scripted upstream answers the fakes do not offer -------------------------------------------------


@dataclass(frozen=True)
class Spliced:
    """A generated Codex stream, edited on the wire: the first ``keep`` events, then ``pause``
    seconds of silence, then ``tail`` raw bytes, then (with ``rest``) the remaining events; the body
    ends cleanly, or with ``abort`` the connection drops without the chunked terminator.

    ``keep`` counts events up to and including the first one named ``after`` when it is set (the
    stream is committed by then: the client already has its status and first content).
    """

    reply: StreamReply
    keep: int = 0
    after: str | None = None
    pause: float = 0.0
    tail: bytes = b""
    rest: bool = False
    abort: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)

    async def respond(self, call: CodexCall) -> web.StreamResponse:
        events = self.reply.events(call)
        keep = self.keep
        if self.after is not None:
            keep = next(i for i, (name, _) in enumerate(events) if name == self.after) + 1
        frames = encode_events(events)
        response = web.StreamResponse(
            status=200, headers={"content-type": SSE_CONTENT_TYPE, **call.quota_headers, **self.headers}
        )
        await response.prepare(call.request)
        for frame in frames[:keep]:
            await response.write(frame)
        if self.pause:
            await asyncio.sleep(self.pause)
        if self.tail:
            await response.write(self.tail)
        if self.rest:
            for frame in frames[keep:]:
                await response.write(frame)
        if self.abort and call.request.transport is not None:
            call.request.transport.close()
            return response
        await response.write_eof()
        return response


@dataclass(frozen=True)
class Dripping:
    """A generated Codex stream sent one event every ``interval`` seconds; :attr:`hung_up` is set when
    the gateway closes the connection before the end (its client went away)."""

    reply: StreamReply
    interval: float
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)

    async def respond(self, call: CodexCall) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={"content-type": SSE_CONTENT_TYPE, **call.quota_headers}
        )
        await response.prepare(call.request)
        try:
            for frame in encode_events(self.reply.events(call)):
                await response.write(frame)
                await asyncio.sleep(self.interval)
            await response.write_eof()
        except ConnectionError:
            self.hung_up.set()
        return response
