from __future__ import annotations

import os

import pytest
from hypothesis import settings

# CI runs the same examples every time, so a red build always points at a change, not at chance;
# locally every run explores new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
