"""The example plugin, pip-installed and reached through its entry point (DESIGN §3).

INSTALLS INTO THE RUNNING ENVIRONMENT: the module fixture pip-installs ``examples/echo_provider``
(``--no-deps --no-build-isolation --no-index``: offline, built with the hatchling already installed)
into this interpreter's environment and uninstalls it afterwards, so reruns start clean. A failed
install fails every test here (in the test body, not its setup), with pip's output; never a skip.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anthropic
import pytest

from gateway_core import (
    Gateway,
    Message,
    MessageDelta,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    Plugins,
    Request,
    Settings,
    TextDelta,
    TextPart,
    create_plugin_manager,
)
from gateway_core.store import MemoryStore
from gateway_server import ServerConfig, create_app
from tests.serving import serve

ECHO_SOURCE = Path(__file__).resolve().parents[2] / "examples" / "echo_provider"
DISTRIBUTION = "relaygate-echo"

pytestmark = pytest.mark.anyio

Installed = subprocess.CompletedProcess[str]


def pip(*arguments: str) -> Installed:
    command = [sys.executable, "-m", "pip", *arguments, "--disable-pip-version-check", "--no-input"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def forget_echo_modules() -> None:
    for name in [name for name in sys.modules if name.partition(".")[0] == "relaygate_echo"]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def echo_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """pip-install a copy of the example (the source tree stays untouched); uninstall at the end."""
    source = tmp_path_factory.mktemp("plugin") / "echo_provider"
    shutil.copytree(ECHO_SOURCE, source)
    result = pip("install", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir", str(source))
    importlib.invalidate_caches()  # entry points and imports must see the new distribution
    try:
        yield result
    finally:
        pip("uninstall", "--yes", DISTRIBUTION)
        importlib.invalidate_caches()
        forget_echo_modules()


# The built-in providers load too (they are entry points like echo); point them at a closed loopback
# port so that listing models never leaves the machine.
OFFLINE = {
    "RELAYGATE_CODEX_BASE_URL": "http://127.0.0.1:9/backend-api",
    "RELAYGATE_OAUTH_ISSUER": "http://127.0.0.1:9",
    "RELAYGATE_KILO_BASE_URL": "http://127.0.0.1:9/api/gateway",
}


@pytest.fixture
async def gateways() -> AsyncIterator[list[Gateway]]:
    """Gateways a test builds, closed after it (their providers hold HTTP clients)."""
    built: list[Gateway] = []
    yield built
    for gateway in built:
        await gateway.aclose()


def gateway_with(
    echo_installed: Installed, gateways: list[Gateway], settings: dict[str, str] | None = None
) -> Gateway:
    """A gateway from the installed plugins; fails the calling test (not its setup) when pip failed."""
    if echo_installed.returncode != 0:
        pytest.fail(
            f"pip install of {ECHO_SOURCE} failed with exit code {echo_installed.returncode}\n"
            f"--- stdout\n{echo_installed.stdout}\n--- stderr\n{echo_installed.stderr}",
            pytrace=False,
        )
    gateway = Gateway.from_plugin_manager(
        create_plugin_manager(), settings=Settings({**OFFLINE, **(settings or {})})
    )
    gateways.append(gateway)
    return gateway


def ask(text: str) -> Request:
    return Request(model="echo/echo-1", messages=(Message(role="user", content=(TextPart(text=text),)),))


async def test_the_installed_plugin_is_found_through_its_entry_point(
    echo_installed: Installed, gateways: list[Gateway]
) -> None:
    gateway = gateway_with(echo_installed, gateways)

    assert "echo" in Plugins(create_plugin_manager()).names()
    assert "echo" in gateway.providers


async def test_complete_on_echo_model_returns_the_echoed_text(
    echo_installed: Installed, gateways: list[Gateway]
) -> None:
    gateway = gateway_with(echo_installed, gateways)
    response = await gateway.complete(ask("hello from the echo plugin"))

    assert [part.model_dump()["text"] for part in response.content] == ["hello from the echo plugin"]
    assert response.model == "echo/echo-1"
    assert response.stop_reason == "end_turn"
    assert response.usage.output_tokens == 5


async def test_the_echo_stream_is_a_complete_canonical_answer(
    echo_installed: Installed, gateways: list[Gateway]
) -> None:
    gateway = gateway_with(echo_installed, gateways)
    async with await gateway.stream(ask("two words")) as stream:
        assert (stream.provider, stream.upstream_model) == ("echo", "echo-1")
        events = [event async for event in stream]

    assert [type(event) for event in events] == [
        MessageStart,
        PartStart,
        TextDelta,
        TextDelta,
        PartStop,
        MessageDelta,
        MessageStop,
    ]


async def test_echo_counts_tokens_as_whitespace_separated_words(
    echo_installed: Installed, gateways: list[Gateway]
) -> None:
    gateway = gateway_with(echo_installed, gateways)
    assert await gateway.count_tokens(ask("one two  three\nfour")) == 4


async def test_the_echo_model_is_listed_by_the_name_that_reaches_it(
    echo_installed: Installed, gateways: list[Gateway]
) -> None:
    gateway = gateway_with(echo_installed, gateways)
    assert ("echo/echo-1", "echo") in [(model.id, model.provider) for model in await gateway.models()]


async def test_the_plugin_reads_its_settings_from_the_host(
    echo_installed: Installed, gateways: list[Gateway]
) -> None:
    configured = gateway_with(echo_installed, gateways, {"RELAYGATE_ECHO_PREFIX": "echo: "})

    response = await configured.complete(ask("hi"))

    assert response.content[0].model_dump()["text"] == "echo: hi"


async def test_the_installed_plugin_is_reached_through_the_server_by_model_name(
    echo_installed: Installed, gateways: list[Gateway], tmp_path: Path
) -> None:
    gateway = gateway_with(echo_installed, gateways)
    app = create_app(gateway, config=ServerConfig(port=0, home=tmp_path), store=MemoryStore())
    async with (
        serve(app) as url,
        anthropic.AsyncAnthropic(base_url=url, api_key="unused", max_retries=0) as client,
    ):
        raw = await client.messages.with_raw_response.create(
            model="echo/echo-1", max_tokens=50, messages=[{"role": "user", "content": "through the server"}]
        )
        message = await raw.parse()
        listed = [model.id for model in (await client.models.list()).data]

    assert [block.text for block in message.content if block.type == "text"] == ["through the server"]
    assert message.model == "echo/echo-1"
    assert raw.headers["x-relaygate-provider"] == "echo"
    assert "echo/echo-1" in listed
