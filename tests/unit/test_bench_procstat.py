"""The benchmark reads a server's memory from ``/proc`` and can restart its peak for one phase.

A child process touches a large buffer and frees it: its peak stays above its RSS until the bench
restarts the peak, after which the peak is what the process holds now.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from bench import procstat

MIB = 1024

_CHILD = """
import sys
buffer = bytearray(64 * 1024 * 1024)
for offset in range(0, len(buffer), 4096):
    buffer[offset] = 1
del buffer
print("freed", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def child() -> Iterator[int]:
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert process.stdin is not None
        assert process.stdout.readline().strip() == "freed"
        yield process.pid
        process.stdin.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_peak_restarts_from_the_current_rss(child: int) -> None:
    rss, peak = procstat.memory_kib([child])
    assert peak - rss >= 48 * MIB, "the freed buffer counts in the peak, not in the RSS"

    assert procstat.reset_peak([child])

    rss_after, peak_after = procstat.memory_kib([child])
    assert peak_after < rss + 8 * MIB
    assert peak_after >= rss_after


def test_a_process_that_is_gone_counts_as_zero_and_cannot_be_reset() -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as process:
        process.wait(timeout=10)

    assert procstat.memory_kib([process.pid]) == (0, 0)
    assert not procstat.reset_peak([process.pid])
