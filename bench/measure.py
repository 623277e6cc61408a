"""What the benchmarks read from Linux's /proc: CPU time and memory of processes, the machine's
busy time, UDP drops, and the process tree (to find the SFU's processes)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Collection
from pathlib import Path

CLOCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces): field 3 (state) first."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads) so far; 0 once it is gone."""
    try:
        fields = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (0 once it is gone)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return pages * PAGE / 2**20


def machine_idle_seconds() -> float:
    """CPU seconds the whole machine has spent idle (all cores; /proc/stat idle and iowait). The
    kernel measures idle time exactly on tickless cores, where its busy counters (ticks) miss
    short bursts of work: over a window, busy = cores × seconds − idle."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (values[3] + values[4]) / CLOCK


def udp_receive_buffer_errors() -> int:
    """The machine's count of UDP datagrams dropped for a full socket buffer (/proc/net/snmp)."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return ""


def parents() -> dict[int, int]:
    """Every process's parent (pid → ppid), from /proc/<pid>/stat."""
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                out[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
    return out


def descendants(pid: int, exclude: Collection[int] = ()) -> list[int]:
    """Every process below ``pid``, not entering the subtrees of ``exclude``."""
    below: dict[int, list[int]] = {}
    for child, parent in parents().items():
        below.setdefault(parent, []).append(child)
    out: list[int] = []
    todo = [c for c in below.get(pid, []) if c not in exclude]
    while todo:
        child = todo.pop()
        out.append(child)
        todo += [c for c in below.get(child, []) if c not in exclude]
    return sorted(out)


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (prctl PR_SET_PDEATHSIG), so a
    killed benchmark leaves nothing behind."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, sig, 0, 0, 0)
