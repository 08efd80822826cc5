"""Dependencies point inward (DESIGN §1): server -> core <- providers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import REPO_ROOT

FORBIDDEN = {
    "gateway_core": ("litestar", "uvicorn", "starlette", "fastapi", "gateway_server", "gateway_providers"),
    "gateway_server": ("gateway_providers",),
    "gateway_providers": ("litestar", "uvicorn", "gateway_server"),
}


def test_importing_the_core_loads_no_web_framework_server_or_provider() -> None:
    code = (
        "import sys, gateway_core, gateway_core.formats.anthropic, gateway_core.formats.openai_chat, "
        "gateway_core.formats.openai_responses\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'litestar', 'uvicorn', 'starlette', 'gateway_server', 'gateway_providers'})\n"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_against_the_arrows(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(_imports(path) & set(FORBIDDEN[package]))
        for path in (REPO_ROOT / package).rglob("*.py")
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}
