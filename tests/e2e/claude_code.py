"""The real Claude Code CLI for the end-to-end tests: a pinned release from the npm registry.

Installed once into a cache folder outside the source tree (``RELAYGATE_TEST_CACHE``, default
``~/.cache/relaygate-tests``) and reused by later runs. When the machine has no npm, the system package
manager installs Node.js first. Any failure raises :class:`ClaudeCodeUnavailable` with the reason and
the installer's output: the suite fails, it never skips silently.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

CLAUDE_CODE_VERSION = "2.1.332"
"""The release the suite pins (npm ``latest`` when the suite was written; protocols §6.7 describes it)."""

_INSTALL_TIMEOUT = 900
_ARCHES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


class ClaudeCodeUnavailable(RuntimeError):
    """The CLI could not be installed or does not run here."""


def cache_root() -> Path:
    return Path(os.environ.get("RELAYGATE_TEST_CACHE", Path.home() / ".cache" / "relaygate-tests"))


def install_dir(version: str = CLAUDE_CODE_VERSION) -> Path:
    return cache_root() / f"claude-code-{version}"


def _platform_package() -> str:
    arch = _ARCHES.get(platform.machine().lower())
    if arch is None or platform.system() != "Linux":
        raise ClaudeCodeUnavailable(f"no Claude Code build for {platform.system()} {platform.machine()}")
    return f"claude-code-linux-{arch}"


def binary_path(version: str = CLAUDE_CODE_VERSION) -> Path:
    """Where the native binary lands: npm installs the platform package as an optional dependency."""
    return install_dir(version) / "node_modules" / "@anthropic-ai" / _platform_package() / "claude"


def _run(command: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd)


def _reports_version(binary: Path, version: str) -> bool:
    if not binary.is_file():
        return False
    try:
        result = _run([str(binary), "--version"], timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.startswith(version)


def _ensure_npm() -> str:
    npm = shutil.which("npm")
    if npm:
        return npm
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ClaudeCodeUnavailable(
            "npm is not installed and cannot be installed here (needs apt-get as root)"
        )
    steps = [[apt, "update"], [apt, "install", "-y", "--no-install-recommends", "nodejs", "npm"]]
    for step in steps:
        result = _run(step, timeout=_INSTALL_TIMEOUT)
        if result.returncode != 0:
            raise ClaudeCodeUnavailable(
                f"{' '.join(step)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
    npm = shutil.which("npm")
    if not npm:
        raise ClaudeCodeUnavailable("apt-get installed nodejs/npm but npm is still not on PATH")
    return npm


@contextlib.contextmanager
def _install_lock(folder: Path) -> Iterator[None]:
    """One installer at a time (parallel test processes share the cache)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_claude_code(version: str = CLAUDE_CODE_VERSION) -> Path:
    """The path of a working ``claude`` binary of ``version``, installing it on first use."""
    binary = binary_path(version)
    if _reports_version(binary, version):
        return binary
    folder = install_dir(version)
    with _install_lock(folder):
        if _reports_version(binary, version):
            return binary
        npm = _ensure_npm()
        folder.mkdir(parents=True, exist_ok=True)
        command = [
            npm,
            "install",
            "--prefix",
            str(folder),
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            f"@anthropic-ai/claude-code@{version}",
        ]
        try:
            result = _run(command, timeout=_INSTALL_TIMEOUT, cwd=folder)
        except subprocess.TimeoutExpired:
            raise ClaudeCodeUnavailable(
                f"npm install of Claude Code {version} took over {_INSTALL_TIMEOUT} s"
            ) from None
        if result.returncode != 0:
            raise ClaudeCodeUnavailable(
                f"npm install of Claude Code {version} failed (exit {result.returncode}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        if not _reports_version(binary, version):
            raise ClaudeCodeUnavailable(
                f"Claude Code {version} installed into {folder}, but {binary} does not run or reports "
                f"another version.\nnpm said:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
    return binary
