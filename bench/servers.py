"""Starting and stopping the processes of a run, each pinned to a core, each stopped by its own PID.

Every server binds 127.0.0.1 on a free port and writes its output to a log file in the run's folder. A
server that does not answer its health URL in time, or exits, is reported with the end of its log; the
run goes on without it. Processes are started in their own session, so stopping one (SIGTERM, then
SIGKILL) also stops the workers it may have forked, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

HOST = "127.0.0.1"
# The bench talks to 127.0.0.1 only; an HTTP proxy from the environment must not be consulted.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def pinned(command: Sequence[str], core: int | None) -> list[str]:
    """``command`` run on one core (``taskset -c``), when pinning is on and taskset is installed."""
    if core is None or shutil.which("taskset") is None:
        return list(command)
    return ["taskset", "-c", str(core), *command]


@dataclass
class Server:
    """A started process, or the reason it is not there."""

    name: str
    url: str = ""
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    reason: str | None = None
    info: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def up(self) -> bool:
        return self.process is not None and self.reason is None and self.process.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        if self.log is None or not self.log.exists():
            return ""
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(line.strip() for line in text[-lines:])


def start(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    core: int | None,
    env: Mapping[str, str],
    logs: Path,
    cwd: Path,
) -> Server:
    log = logs / f"{name}.log"
    server = Server(name=name, url=f"http://{HOST}:{port}", log=log)
    try:
        with log.open("wb") as out:
            server.process = subprocess.Popen(
                pinned(command, core),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
    except OSError as exc:
        server.reason = f"cannot start {command[0]}: {exc}"
    return server


def http(method: str, url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """One request to 127.0.0.1 (health checks, admin calls, mock control); status 0 when unreachable."""
    data = None if body is None else orjson.dumps(body)
    headers = {"content-type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except (urllib.error.URLError, OSError):
        return 0, b""


def wait_ready(server: Server, health_path: str, timeout: float) -> None:
    """Poll ``health_path`` until it answers 200; otherwise set ``server.reason``."""
    if server.reason is not None or server.process is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            server.reason = f"exited with status {code} while starting: {server.log_tail()}"
            return
        status, _ = http("GET", server.url + health_path, timeout=2.0)
        if status == 200:
            return
        time.sleep(0.1)
    server.reason = f"did not answer {health_path} within {timeout:g} s: {server.log_tail()}"


def stop(server: Server, grace: float = 5.0) -> None:
    """Stop the process started for ``server`` (its session: the PID we started and its children)."""
    process = server.process
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(grace)
