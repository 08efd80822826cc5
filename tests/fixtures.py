"""Access to the recorded wire traffic in ../shared/protocols/fixtures (manifest: its README.md).

Every file but ``claude_code/*`` opens with a provenance line that is dropped here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("RELAYGATE_FIXTURES", REPO_ROOT.parent / "shared" / "protocols" / "fixtures"))


def fixture_path(relative: str) -> Path:
    path = FIXTURES / relative
    if not path.exists():
        raise FileNotFoundError(f"fixture {relative} not found under {FIXTURES}")
    return path


def fixture_files(folder: str, pattern: str) -> list[Path]:
    """The fixture files of ``folder`` matching ``pattern``, sorted, never empty."""
    files = sorted((FIXTURES / folder).glob(pattern))
    if not files:
        raise FileNotFoundError(f"no fixtures {folder}/{pattern} under {FIXTURES}")
    return files


def _payload(path: Path) -> bytes:
    raw = path.read_bytes()
    return raw.split(b"\n", 1)[1]


def load_json(relative: str | Path) -> Any:
    """A ``.json`` fixture without its ``// source:`` line (a ``claude_code`` capture as it is)."""
    path = relative if isinstance(relative, Path) else fixture_path(relative)
    if path.parent.name == "claude_code":
        return orjson.loads(path.read_bytes())
    return orjson.loads(_payload(path))


def load_sse(relative: str | Path) -> bytes:
    """An ``.sse`` fixture's stream body, without the provenance comment line."""
    path = relative if isinstance(relative, Path) else fixture_path(relative)
    return _payload(path)


def load_http(relative: str | Path) -> tuple[int, dict[str, str], bytes]:
    """An ``.http`` fixture as (status, headers with lower-case names, body)."""
    path = relative if isinstance(relative, Path) else fixture_path(relative)
    head, _, body = _payload(path).partition(b"\n\n")
    status_line, *header_lines = head.decode().splitlines()
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def claude_code_body(name: str) -> dict[str, Any]:
    """The request body of a Claude Code capture, e.g. ``claude_code_body("cc332_p_text_main")``."""
    capture: dict[str, Any] = load_json(fixture_path(f"claude_code/{name}_request.json"))
    body: dict[str, Any] = capture["body"]
    return body
