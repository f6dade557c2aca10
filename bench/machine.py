"""Where a machine's CPU went between two readings (Linux ``/proc``), for the benchmarks.

A benchmark that compares one ``serve`` with two on the same machine needs to know how much
of the machine one ``serve`` left idle: two can only be faster by what was idle (see
docs/performance.md, "Why scale-out stops near 1.5 ×"). :func:`reading` takes the machine's
busy time and every process's CPU time; :func:`split` says, for the time between two
readings, how many cores were busy and who used them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Reading:
    """The machine's busy and idle CPU seconds so far, every process's, and when."""

    at: float
    busy_s: float
    idle_s: float
    processes: Mapping[int, tuple[str, float]]  # pid -> (command name, CPU seconds so far)


def reading(at: float) -> Reading:
    """The CPU times now (``at`` is the caller's clock, kept for the interval)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle = ticks[3] + ticks[4]
    processes: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # ended while we looked
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw.rsplit(")", 1)[1].split()
        processes[int(entry.name)] = (name, (int(rest[11]) + int(rest[12])) / _TICK)
    return Reading(at, (sum(ticks) - idle) / _TICK, idle / _TICK, processes)


def split(
    before: Reading, after: Reading, groups: Mapping[str, Iterable[int]]
) -> tuple[float, int, dict[str, float]]:
    """(busy cores on average, cores, cores used by each group) between two readings.

    ``groups`` names sets of pids (a server and its children, say); every other process
    is grouped by its command name (``postgres``, ``wrk``). What no process accounts for
    (interrupts, processes that ended in between) is under ``"kernel and ended"``.
    """
    wall = max(1e-9, after.at - before.at)
    cores = os.cpu_count() or 1
    busy = (after.busy_s - before.busy_s) / wall
    named = {pid: group for group, pids in groups.items() for pid in pids}
    used: dict[str, float] = {}
    for pid, (name, cpu) in after.processes.items():
        was = before.processes.get(pid)
        delta = cpu - (was[1] if was and was[0] == name else 0.0)
        if delta > 0:
            key = named.get(pid, name)
            used[key] = used.get(key, 0.0) + delta / wall
    used["kernel and ended"] = max(0.0, busy - sum(used.values()))
    return busy, cores, used


def describe(busy: float, cores: int, used: Mapping[str, float], top: int = 5) -> str:
    """One line: busy cores of all, then the largest users."""
    largest = sorted(used.items(), key=lambda kv: -kv[1])[:top]
    return f"{busy:.2f} of {cores} cores busy: " + ", ".join(
        f"{name} {value:.2f}" for name, value in largest if value >= 0.01
    )
