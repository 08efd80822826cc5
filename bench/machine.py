"""The machine and the software a run measured: written at the top of the report."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "relaygate",
    "litestar",
    "uvicorn",
    "uvloop",
    "httptools",
    "httpx",
    "httpx-aiohttp",
    "aiohttp",
    "orjson",
    "pydantic",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def litellm_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    try:
        found = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found.stdout.strip() or None


def describe(litellm_venv: Path) -> dict[str, str]:
    info = {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count() or 0),
        "usable cores": str(len(os.sched_getaffinity(0))),
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    for package in PACKAGES:
        info[package] = _version(package)
    info["litellm"] = litellm_version(litellm_venv) or "not installed"
    return info


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) // 1024} MiB"
    except OSError:
        pass
    return "unknown"
