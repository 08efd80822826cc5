"""Browser logins in progress, and the one-shot listener the issuer redirects the browser to.

``POST /accounts/add`` starts a login (:meth:`LoginFlow.begin`): a PKCE pair and a random ``state``
are kept here, keyed by ``state``, and a tiny HTTP listener opens on
``127.0.0.1:RELAYGATE_OAUTH_CALLBACK_PORT`` (1455), because the redirect URI the public Codex client is
registered with is ``http://localhost:{port}/auth/callback``. The callback completes the login through
the same path as the gateway's own ``GET /auth/callback`` and the manual paste (the pool's
``finish_login``), so a login can finish in whichever of the three ways reaches us first.

The listener serves ``GET /auth/callback`` only (404 for anything else), answers a small HTML page,
and closes once no login is pending: after the last success, or when the logins time out (10 minutes).
A new login while one is pending reuses the open listener. When the port is taken,
:meth:`LoginFlow.begin` fails with :class:`CallbackPortInUseError` naming the setting; a pool built
with ``callback_listener=False`` opens no listener at all and relies on the gateway's
``/auth/callback`` (useful when the gateway itself listens on that port) or on the manual paste.

Nothing here logs a code, a state or a verifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Final
from urllib.parse import parse_qs, urlsplit

from gateway_core.accounts import LoginStart
from gateway_core.errors import ConflictError, GatewayError, InvalidRequestError
from gateway_providers.codex.oauth import (
    CALLBACK_PATH,
    Pkce,
    authorize_url,
    login_denied,
    new_pkce,
    new_state,
    redirect_uri,
)

logger = logging.getLogger(__name__)

LOGIN_TIMEOUT: Final = 600.0
"""Seconds a started login stays valid (and the listener open for it)."""
READ_TIMEOUT: Final = 10.0
"""Seconds a connection to the listener may take to send its request head."""
LISTEN_HOST: Final = "127.0.0.1"
PORT_SETTING: Final = "RELAYGATE_OAUTH_CALLBACK_PORT"


class CallbackPortInUseError(ConflictError):
    """The OAuth callback port is taken by another program (409)."""


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A login waiting for its callback. Holds the PKCE verifier: never shown, never logged."""

    state: str
    pkce: Pkce = field(repr=False)
    redirect_uri: str
    expires_at: float
    """``time.monotonic()`` after which the login is void."""


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    """What the listener answers one request with."""

    status: int
    title: str
    message: str


CallbackHandler = Callable[[Mapping[str, str]], Awaitable["CallbackAnswer"]]
"""Answers the query of one ``GET /auth/callback``."""

CompleteLogin = Callable[[str, str], Awaitable[str]]
"""``(code, state) -> who logged in``: the pool's ``finish_login``, reduced to the email it stored."""


def _page(answer: CallbackAnswer) -> bytes:
    title, message = html.escape(answer.title), html.escape(answer.message)
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>relaygate: "
        f"{title}</title></head><body style='font-family:sans-serif;margin:3em'>"
        f"<h1>{title}</h1><p>{message}</p></body></html>"
    ).encode()


def _response(answer: CallbackAnswer) -> bytes:
    body = _page(answer)
    reason = HTTPStatus(answer.status).phrase
    head = (
        f"HTTP/1.1 {answer.status} {reason}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


def parse_request_head(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    """``(method, path, query)`` from an HTTP/1.x request head, or ``None`` when it is not one.
    Repeated query parameters keep their first value."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    method, target = parts[0], parts[1]
    url = urlsplit(target)
    query = {name: values[0] for name, values in parse_qs(url.query, keep_blank_values=True).items()}
    return method, url.path, query


class CallbackListener:
    """A minimal HTTP/1.1 server on ``127.0.0.1:port`` handing ``GET /auth/callback`` queries to
    ``on_callback``; every connection gets one answer and is closed."""

    def __init__(
        self, port: int, on_callback: Callable[[Mapping[str, str]], Awaitable[CallbackAnswer]]
    ) -> None:
        self._requested_port = port
        self._on_callback = on_callback
        self._server: asyncio.Server | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound port (the requested one, or the one the OS chose for port 0)."""
        if self._server is None:
            return self._requested_port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        if self._server is not None:
            return
        try:
            self._server = await asyncio.start_server(self._serve, LISTEN_HOST, self._requested_port)
        except OSError as exc:
            raise CallbackPortInUseError(
                f"cannot listen for the OAuth callback on {LISTEN_HOST}:{self._requested_port} "
                f"({exc.strerror or exc}): another program uses the port. Stop it, or set {PORT_SETTING} "
                "to a free port; the gateway's own GET /auth/callback and POST /accounts/add/manual "
                "(paste the URL the browser was sent to) complete a login without this listener",
                param=PORT_SETTING,
            ) from None
        logger.info("OAuth callback listener on %s:%d", LISTEN_HOST, self.port)

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            logger.info("OAuth callback listener closed")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                return
            try:
                answer = await self._answer(head)
            except Exception:
                logger.exception("the OAuth callback failed")
                answer = CallbackAnswer(500, "Login failed", "relaygate failed to complete the login.")
            writer.write(_response(answer))
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, head: bytes) -> CallbackAnswer:
        request = parse_request_head(head)
        if request is None:
            return CallbackAnswer(400, "Bad request", "This is not an HTTP request.")
        method, path, query = request
        if path != CALLBACK_PATH:
            return CallbackAnswer(404, "Not found", "Only /auth/callback is served here.")
        if method != "GET":
            # Not even HEAD: a prefetcher must not spend the one-time code.
            return CallbackAnswer(405, "Method not allowed", "The callback is a GET request.")
        return await self._on_callback(query)


class LoginFlow:
    """Pending logins by ``state`` and the listener their callbacks reach.

    ``complete`` finishes a login from a callback (the pool's ``finish_login``); it is called only
    for a known state, and takes the pending login itself with :meth:`take`.
    """

    def __init__(
        self,
        *,
        issuer: str,
        port: int,
        complete: CompleteLogin,
        listen: bool = True,
        timeout: float = LOGIN_TIMEOUT,
    ) -> None:
        self._issuer = issuer
        self._complete = complete
        self._listen = listen
        self._timeout = timeout
        self._pending: dict[str, PendingLogin] = {}
        self._listener = CallbackListener(port, self._on_callback)
        self._watchdog: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # --- pending logins --------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._listener.running

    def pending(self) -> list[PendingLogin]:
        """The logins still waiting, oldest first (expired ones dropped)."""
        self._expire()
        return list(self._pending.values())

    def _expire(self) -> None:
        now = time.monotonic()
        for state in [s for s, p in self._pending.items() if p.expires_at <= now]:
            del self._pending[state]

    def knows(self, state: str) -> bool:
        self._expire()
        return state in self._pending

    def take(self, state: str) -> PendingLogin:
        """Remove and return the login ``state`` belongs to; an unknown or expired state is a 400 and
        changes nothing."""
        self._expire()
        pending = self._pending.pop(state, None)
        if pending is None:
            raise InvalidRequestError(
                "unknown or expired OAuth state: this callback belongs to no login in progress; "
                "start the login again with POST /accounts/add",
                param="state",
            )
        self._after_change()
        return pending

    def latest(self) -> PendingLogin | None:
        """The most recently started login still waiting (the one a pasted bare code belongs to)."""
        self._expire()
        return next(reversed(self._pending.values()), None)

    async def begin(self) -> LoginStart:
        """Start a login: open (or reuse) the listener, remember the PKCE pair under a new state."""
        if self._listen:
            await self._listener.start()
        port = self._listener.port
        pkce, state = new_pkce(), new_state()
        redirect = redirect_uri(port)
        self._pending[state] = PendingLogin(state, pkce, redirect, time.monotonic() + self._timeout)
        self._arm_watchdog()
        url = authorize_url(self._issuer, redirect=redirect, challenge=pkce.challenge, state=state)
        logger.info("OAuth login started (%d pending)", len(self._pending))
        return LoginStart(oauth_url=url, state=state, callback_port=port)

    # --- the listener's lifetime -------------------------------------------------------------------

    def _arm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Close the listener once every pending login has timed out."""
        while True:
            self._expire()
            if not self._pending:
                break
            deadline = max(p.expires_at for p in self._pending.values())
            await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
        self._watchdog = None
        if self._listener.running:
            logger.info("OAuth login timed out")
        await self._listener.aclose()

    def _after_change(self) -> None:
        """After a login left the pending set: close the listener when it was the last one."""
        if self._pending or not self._listener.running:
            return
        # Not inline: the listener may be answering the very callback that finished the login.
        task = asyncio.get_running_loop().create_task(self._close_if_idle())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_if_idle(self) -> None:
        if not self._pending:  # a login begun meanwhile keeps the listener
            await self._listener.aclose()

    async def aclose(self) -> None:
        """Forget pending logins and close the listener."""
        self._pending.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        await self._listener.aclose()
        for task in list(self._closing):
            await task

    # --- callbacks ---------------------------------------------------------------------------------

    def fail(self, state: str, error: str, description: str | None) -> GatewayError:
        """A callback carrying ``error``: the login it belongs to is over; the error says why."""
        self.take(state)
        denial = login_denied(error, description)
        logger.warning("OAuth login refused by the issuer: %s", denial.message)
        return denial

    async def _on_callback(self, query: Mapping[str, str]) -> CallbackAnswer:
        state = query.get("state", "")
        if not state or not self.knows(state):
            logger.warning("OAuth callback with an unknown or expired state refused")
            return CallbackAnswer(
                400,
                "Login failed",
                "This sign-in link does not belong to a login in progress (unknown or expired state). "
                "Nothing was stored. Start the login again.",
            )
        if "error" in query:
            denial = self.fail(state, query["error"], query.get("error_description"))
            return CallbackAnswer(denial.status, "Login refused", denial.message)
        code = query.get("code", "")
        if not code:
            return CallbackAnswer(400, "Login failed", "The callback carries neither a code nor an error.")
        try:
            who = await self._complete(code, state)
        except GatewayError as exc:
            return CallbackAnswer(exc.status, "Login failed", exc.message)
        return CallbackAnswer(
            200, "Signed in", f"{who} is now available in relaygate. You can close this tab."
        )


def parse_pasted(pasted: str) -> tuple[str | None, str | None, str | None, str | None]:
    """``(code, state, error, error_description)`` from a pasted callback URL (or its query string),
    or ``(code, None, None, None)`` for a bare authorization code."""
    text = pasted.strip()
    if not text:
        raise InvalidRequestError("paste the callback URL or the authorization code", param="url")
    if "://" in text or text.startswith("/"):
        query = urlsplit(text).query
    elif text.startswith("?") or "=" in text:
        query = text.lstrip("?")
    elif any(ch.isspace() for ch in text):
        raise InvalidRequestError("the pasted text is neither a callback URL nor a code", param="url")
    else:
        return text, None, None, None
    values = {name: v[0] for name, v in parse_qs(query, keep_blank_values=True).items()}
    return values.get("code"), values.get("state"), values.get("error"), values.get("error_description")
