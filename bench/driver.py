"""Driving the load generator process from the orchestrator: one JSON command per line, bounded waits."""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from bench import servers, targets, workloads


class BenchError(Exception):
    """The run cannot go on (the mock upstream or the load generator is missing)."""


class LoadGenerator:
    """The load generator process, driven one JSON command per line."""

    def __init__(self, folder: Path, core: int | None) -> None:
        self.log = folder / "loadgen.log"
        with self.log.open("wb") as errors:
            self.process = subprocess.Popen(
                servers.pinned([sys.executable, "-m", "bench.loadgen"], core),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd=workloads.REPO_ROOT,
                env=targets.clean_environment(),
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def call(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one command and wait for its answer at most ``timeout`` seconds."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        try:
            stdin.write(orjson.dumps(command) + b"\n")
            stdin.flush()
        except BrokenPipeError:
            raise BenchError(f"the load generator exited: {self.log.read_text()[-500:]}") from None
        ready, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if ready else b""
        if not line:
            raise BenchError(
                f"the load generator did not answer in {timeout:g} s: {self.log.read_text()[-500:]}"
            )
        result: dict[str, Any] = orjson.loads(line)
        if "fatal" in result:
            raise BenchError(f"the load generator failed: {result['fatal']}")
        return result

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(b'{"op":"quit"}\n')
                self.process.stdin.close()
                self.process.wait(5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(5)
