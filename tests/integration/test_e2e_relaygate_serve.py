"""``make run`` as a new user: ``relaygate serve`` started as its own process (the installed console
script, configured only by ``RELAYGATE_*`` variables), logged into through its admin API, answering
the Anthropic SDK, and stopping cleanly on SIGTERM. Also its refusal to expose itself: a non-loopback
bind without ``RELAYGATE_API_KEY`` stops before listening (DESIGN §5, §9).

The fake upstreams run in the test's event loop; the server process reaches them on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import anthropic
import anyio
import anyio.abc
import httpx
import pytest

from tests.e2e_support import EMAIL, MODEL, TIMEOUT, browse, free_port
from tests.fakes import run_fake_upstreams, text

RELAYGATE = Path(sys.executable).with_name("relaygate")
"""The console script ``pip install`` put beside the interpreter, as ``make run`` starts it."""
START_WITHIN = 30.0
STOP_WITHIN = 15.0


def server_env(tmp_path: Path, settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of a user's shell, with the gateway's home and clients' files in ``tmp_path``
    and no ``RELAYGATE_*`` variable but ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("RELAYGATE_")}
    env.update(
        HOME=str(tmp_path),
        RELAYGATE_HOME=str(tmp_path / ".relaygate"),
        RELAYGATE_CODEX_AUTH_FILE=str(tmp_path / ".codex" / "auth.json"),
        RELAYGATE_CLAUDE_SETTINGS=str(tmp_path / ".claude" / "settings.json"),
    )
    env.update(settings)
    return env


async def wait_for_health(url: str, process: anyio.abc.Process, log: Path) -> None:
    """Poll ``GET /health`` until the server answers; fail with its log if it exits first."""
    with anyio.fail_after(START_WITHIN):
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if process.returncode is not None:
                    output = await anyio.Path(log).read_text()
                    pytest.fail(f"relaygate serve exited with {process.returncode}:\n{output}")
                try:
                    if (await client.get(f"{url}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.1)


@pytest.mark.anyio
async def test_relaygate_serve_logs_in_answers_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "relaygate.log"
    async with run_fake_upstreams() as up:
        identity = up.registry.add(EMAIL, account_id="acc-dev", plan_type="plus")
        up.codex.script(text("Hello from a fresh install."))
        env = server_env(
            tmp_path,
            {**up.env(), "RELAYGATE_PORT": str(port), "RELAYGATE_OAUTH_CALLBACK_PORT": str(free_port())},
        )
        with log.open("wb") as output:
            process = await anyio.open_process(
                [str(RELAYGATE), "serve"], env=env, stdout=output, stderr=output
            )
        try:
            await wait_for_health(url, process, log)
            async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as admin:
                started = (await admin.post("/accounts/add")).json()
                up.oauth.login_as(identity)
                page = await browse(started["oauth_url"])
                listing = (await admin.get("/accounts")).json()
            async with anthropic.AsyncAnthropic(
                base_url=url, api_key="sk-ant-placeholder", max_retries=0, timeout=TIMEOUT
            ) as claude:
                message = await claude.messages.create(
                    model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "say hi"}]
                )
        finally:
            if process.returncode is None:
                os.kill(process.pid, signal.SIGTERM)
            with anyio.fail_after(STOP_WITHIN):
                code = await process.wait()

    output_text = await anyio.Path(log).read_text()
    assert page.status == 200, page.text
    assert [account["email"] for account in listing["accounts"]] == [EMAIL]
    assert [block.text for block in message.content if block.type == "text"] == [
        "Hello from a fresh install."
    ]
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal so the exit status says how
    # the process ended (as a shell or a service manager expects).
    assert code in (0, -signal.SIGTERM), output_text
    assert "Application shutdown complete" in output_text
    assert "Traceback" not in output_text
    home = tmp_path / ".relaygate"
    assert [path.name for path in home.iterdir() if path.name.endswith(("-wal", "-shm", "-journal"))] == [], (
        "the state store was closed"
    )


def test_relaygate_serve_refuses_a_public_address_without_an_api_key(tmp_path: Path) -> None:
    env = server_env(tmp_path, {"RELAYGATE_HOST": "0.0.0.0", "RELAYGATE_PORT": str(free_port())})

    done = subprocess.run(
        [str(RELAYGATE), "serve"], env=env, capture_output=True, text=True, timeout=START_WITHIN, check=False
    )

    assert done.returncode != 0
    assert "RELAYGATE_API_KEY" in done.stderr
    assert "listening" not in done.stderr
