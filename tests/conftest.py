from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

import pytest
from hypothesis import settings

# CI runs the same examples every time, so a red build always points at a change, not at chance;
# locally every run explores new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


_resolve = socket.getaddrinfo


def _is_local(host: str | bytes | None) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else host
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _loopback_only(host: str | bytes | None, *args: Any, **kwargs: Any) -> Any:
    """Tests never reach the network: resolving any name but a loopback one fails at once."""
    if not _is_local(host):
        raise socket.gaierror(
            socket.EAI_NONAME, f"tests do not leave the machine (tried to resolve {host!r})"
        )
    return _resolve(host, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.getaddrinfo = _loopback_only


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
