"""The examples in examples/ run as documented."""

from __future__ import annotations

import subprocess
import sys

from tests.fixtures import REPO_ROOT


def test_library_example_runs_and_prints_the_translated_answers() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "library_use.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("complete: ")
    assert '"text":"HELLO GATEWAY "' in lines[0]
    assert lines[1] == "stream: HELLO GATEWAY (served by shout/loud-1)"
    assert lines[2].startswith("as an OpenAI Chat request: ")
