"""The shared upstream client on a real loopback server: what a POST carries and what it keeps."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
from httpx_aiohttp import AiohttpTransport
from litestar import Litestar, Request, Response, post
from litestar.response import Stream

from gateway_core import upstream
from gateway_core.upstream import (
    READ_BUFFER,
    close_response,
    create_http_client,
    read_body,
    send_streaming,
)
from tests.serving import serve

pytestmark = pytest.mark.anyio

SEEN: list[dict[str, Any]] = []


@post("/echo", status_code=200)
async def echo(request: Request[Any, Any, Any]) -> Response[bytes]:
    SEEN.append({"headers": dict(request.headers), "body": await request.body()})
    return Response(b"pong", headers={"set-cookie": "__cf_bm=tracker; Path=/"}, media_type="text/plain")


@post("/stream", status_code=200)
async def endless() -> Stream:
    """An answer that keeps its connection busy: a first chunk, then nothing until the client leaves."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"data: {}\n\n"
        await anyio.sleep_forever()

    return Stream(chunks(), media_type="text/event-stream")


@dataclass(frozen=True)
class Timeouts:
    connect_timeout: float = 3.0
    first_event_timeout: float = 20.0
    idle_timeout: float = 45.0


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    SEEN.clear()
    async with serve(Litestar([echo, endless], openapi_config=None, logging_config=None)) as url:
        yield url


async def post_twice(client: httpx.AsyncClient, url: str) -> list[bytes]:
    bodies = []
    for body in (b'{"n":1}', b'{"n":2}'):
        response = await send_streaming(
            client,
            url,
            headers={"content-type": "application/json", "user-agent": "relaygate-test"},
            body=body,
            deadline=anyio.current_time() + 10,
            upstream="the test upstream",
            what="POST /echo",
        )
        bodies.append(await read_body(response, anyio.current_time() + 10))
        await close_response(response)
    return bodies


async def test_the_shared_client_posts_the_body_and_headers_it_is_given(base_url: str) -> None:
    client = create_http_client(Timeouts(), max_connections=4)
    async with client:
        answers = await post_twice(client, f"{base_url}/echo")

    assert answers == [b"pong", b"pong"]
    assert [seen["body"] for seen in SEEN] == [b'{"n":1}', b'{"n":2}']
    assert all(seen["headers"]["user-agent"] == "relaygate-test" for seen in SEEN)
    assert all(seen["headers"]["content-type"] == "application/json" for seen in SEEN)
    # A body of known length, to the host of the URL; never chunked.
    assert all(seen["headers"]["content-length"] == "7" for seen in SEEN)
    assert all("transfer-encoding" not in seen["headers"] for seen in SEEN)
    assert all(seen["headers"]["host"] == base_url.removeprefix("http://") for seen in SEEN)


async def test_the_shared_client_reads_ahead_of_the_gateway_only_a_little(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upstream, "RECEIVE_BUFFER", 24 * 1024)  # not a size the kernel picks itself
    client = create_http_client(Timeouts(), max_connections=4)
    async with client:
        await post_twice(client, f"{base_url}/echo")
        transport = client._transport
        assert isinstance(transport, AiohttpTransport)
        session = transport.client  # the aiohttp session, made by the first request
        assert isinstance(session, aiohttp.ClientSession)
        async with session.post(f"{base_url}/stream", data=b"{}") as response:
            low, high = response.content.get_read_buffer_limits()
            assert response.connection is not None, "the answer is still open"
            assert response.connection.transport is not None
            sock = response.connection.transport.get_extra_info("socket")
            received = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    # aiohttp stops reading the socket at `high` bytes not yet consumed (its default is 128 KiB).
    assert (low, high) == (READ_BUFFER, 2 * READ_BUFFER)
    assert received == 2 * 24 * 1024, "the kernel's buffer is the one asked for (Linux doubles it)"


async def test_the_shared_client_keeps_no_cookies_from_an_upstream(base_url: str) -> None:
    client = create_http_client(Timeouts(), max_connections=4)
    async with client:
        await post_twice(client, f"{base_url}/echo")

    assert "cookie" not in SEEN[1]["headers"]
    assert not client.cookies


async def test_a_client_a_plugin_built_itself_is_used_as_it_is(base_url: str) -> None:
    hooked: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        hooked.append(str(request.url))

    async with httpx.AsyncClient(event_hooks={"request": [on_request]}) as client:
        await post_twice(client, f"{base_url}/echo")

    assert hooked == [f"{base_url}/echo"] * 2
    assert SEEN[1]["headers"].get("cookie") == "__cf_bm=tracker", "its own cookie jar is honoured"


async def test_an_open_answer_keeps_no_body_or_credentials_it_was_sent_with(base_url: str) -> None:
    client = create_http_client(Timeouts(), max_connections=4)
    async with client:
        response = await send_streaming(
            client,
            f"{base_url}/echo",
            headers={"content-type": "application/json", "authorization": "Bearer secret-token"},
            body=b'{"big": "' + b"x" * 100_000 + b'"}',
            deadline=anyio.current_time() + 10,
            upstream="the test upstream",
            what="POST /echo",
        )
        try:
            assert response.request.content == b""
            assert str(response.request.url) == f"{base_url}/echo"
            assert "authorization" not in response.request.headers, "nor the credentials"
            assert len(SEEN[0]["body"]) > 100_000, "the whole body was sent"
        finally:
            await close_response(response)
