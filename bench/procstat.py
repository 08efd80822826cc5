"""CPU time and memory of a process and its descendants, read from ``/proc`` (Linux).

CPU is ``utime + stime`` of ``/proc/<pid>/stat`` (every thread of the process, in clock ticks); memory is
``VmRSS`` (now) and ``VmHWM`` (the peak so far) of ``/proc/<pid>/status``; the peak can be restarted from
the current RSS (``/proc/<pid>/clear_refs``) to measure one phase of a long run. A server that forks
workers is measured as the sum over its tree. A process that is gone counts as zero.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                pending.extend(int(child) for child in (task / "children").read_text().split())
            except (OSError, ValueError):
                continue
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` and their descendants."""
    total = 0
    for root in pids:
        for pid in tree(root):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            # Fields after "(comm)": state is index 0, utime index 11, stime index 12.
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def memory_kib(pids: Iterable[int]) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` in KiB, summed over ``pids`` and their descendants."""
    rss = hwm = 0
    for root in pids:
        for pid in tree(root):
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
    return rss, hwm


def reset_peak(pids: Iterable[int]) -> bool:
    """Restart ``VmHWM`` of ``pids`` and their descendants from their current RSS, so that the next
    reading is the peak of what happened since. False if the kernel refused for any of them."""
    done = True
    for root in pids:
        for pid in tree(root):
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                done = False
    return done
