"""Peak resident memory of a server, read from /proc: the process and every process under it
(a gunicorn master and its workers, say), each one's peak summed.

Linux keeps each process's peak (VmHWM) and resets it on `echo 5 > /proc/PID/clear_refs`;
so a peak is taken per workload. Where that reset is refused, the peak since the process
started is all there is (`can_reset_peaks` tells).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PROC = Path("/proc")
MAX_PROCESSES = 64  # a bound on the walk down the tree
_HWM = re.compile(r"^VmHWM:\s+(\d+) kB$", re.MULTILINE)


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants, parents first (one that has gone counts for nothing)."""
    found: list[int] = []
    pending = [pid]
    while pending and len(found) < MAX_PROCESSES:
        current = pending.pop(0)
        found.append(current)
        for task in _read_paths(PROC / str(current) / "task"):
            pending += [int(child) for child in _read(task / "children").split()]
    return found


def can_reset_peaks() -> bool:
    """Whether peaks can be reset here: tried on this process's own, which nothing reads."""
    return _reset_peak(os.getpid())


class ServerMemory:
    """The peak RSS of one server's processes since the last `reset`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def reset(self) -> None:
        for pid in process_tree(self.pid):
            _reset_peak(pid)

    def peak_mib(self) -> float:
        total_kib = 0
        for pid in process_tree(self.pid):
            match = _HWM.search(_read(PROC / str(pid) / "status"))
            total_kib += int(match.group(1)) if match else 0
        return total_kib / 1024


def _reset_peak(pid: int) -> bool:
    try:
        (PROC / str(pid) / "clear_refs").write_text("5", encoding="ascii")
    except OSError:  # refused, or the process has just exited
        return False
    return True


def _read(path: Path) -> str:
    try:
        return path.read_text("ascii", errors="replace")
    except OSError:
        return ""


def _read_paths(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except OSError:
        return []
