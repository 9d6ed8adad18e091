"""What else the machine was doing while hwbench measured: load, steal, other processes.

Why: on a shared machine a benchmark's figures can be wrong by 100x with a tight spread
(OpenMP threads waiting for a core a busy neighbour holds), so a result must say how busy
the machine was, and flag its rows when it was too busy to trust them.

Read from Linux's /proc, before and after a run (or one row):

- ``load_before`` / ``load_after``: the 1-, 5- and 15-minute load averages.
- ``steal_share``: the share of all CPU time the hypervisor gave to other guests
  (``steal`` in /proc/stat; ``None`` where the kernel does not report it).
- ``others_share``: the share of all CPU time (every core, 0..1) that processes outside
  our own process tree spent busy: total busy jiffies from /proc/stat minus the user and
  system jiffies of our process and its descendants (children that exited and were reaped
  count through their parent's ``cutime``/``cstime``).

``busy`` is true when ``others_share`` or ``steal_share`` reaches its threshold
(``BUSY_OTHERS_SHARE``, ``BUSY_STEAL_SHARE``). The load average is recorded but not used
for the verdict: it is a minute-long average that includes our own threads.
Elsewhere than Linux every figure is ``None`` and ``busy`` is false.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A quarter of the machine's CPU time taken by others: on 2 cores, one busy process.
BUSY_OTHERS_SHARE = 0.25
BUSY_STEAL_SHARE = 0.10
THRESHOLDS = {"others_share": BUSY_OTHERS_SHARE, "steal_share": BUSY_STEAL_SHARE}

# /proc/stat's "cpu" line, in order (proc(5)); guest times are already inside user/nice.
_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq")


@dataclass(frozen=True)
class CpuTimes:
    """Jiffies summed over every core since boot, from /proc/stat's first line."""

    fields: dict[str, int]
    has_steal: bool

    @property
    def total(self) -> int:
        return sum(self.fields.values())

    @property
    def busy(self) -> int:
        return sum(self.fields.get(name, 0) for name in _BUSY_FIELDS)

    @property
    def steal(self) -> int:
        return self.fields.get("steal", 0)


def parse_cpu_times(stat_text: str) -> CpuTimes | None:
    """The aggregate ``cpu`` line of /proc/stat's text; None if absent or malformed."""
    for line in stat_text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            try:
                values = [int(v) for v in parts[1:1 + len(_CPU_FIELDS)]]
            except ValueError:
                return None
            if len(values) < 4:
                return None
            return CpuTimes(dict(zip(_CPU_FIELDS, values, strict=False)),
                            has_steal=len(values) >= len(_CPU_FIELDS))
    return None


def parse_process_stat(text: str) -> tuple[int, int, int] | None:
    """(ppid, own jiffies, reaped children's jiffies) from a /proc/PID/stat line.

    The command name (field 2) is in parentheses and may hold spaces or ')': the fields
    after it are split from the *last* ')'. utime, stime, cutime, cstime are fields 14-17.
    """
    head, sep, rest = text.rpartition(")")
    if not sep or not head:
        return None
    fields = rest.split()
    try:  # rest starts at field 3 (state): field n is fields[n - 3]
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    except (IndexError, ValueError):
        return None
    return ppid, utime + stime, cutime + cstime


def tree_jiffies(root: int, proc: Path = Path("/proc")) -> int | None:
    """User + system jiffies of ``root`` and every live descendant, with their reaped
    children's; None if ``root`` cannot be read."""
    stats: dict[int, tuple[int, int, int]] = {}
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            parsed = parse_process_stat((entry / "stat").read_text(errors="replace"))
        except OSError:  # the process exited while we looked
            continue
        if parsed is not None:
            stats[int(entry.name)] = parsed
    if root not in stats:
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        _, own, reaped = stats[pid]
        total += own + reaped
        todo.extend(children.get(pid, ()))
    return total


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _load(proc: Path) -> list[float] | None:
    text = _read(proc / "loadavg")
    try:
        return [float(v) for v in text.split()[:3]] if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Snapshot:
    """The counters at one moment; two of them make a ``machine_state`` dict."""

    when: float
    load: list[float] | None
    cpu: CpuTimes | None
    ours: int | None


def snapshot(root: int | None = None, proc: Path | str = "/proc") -> Snapshot:
    """Load average, /proc/stat's CPU times and our tree's jiffies, now. ``root`` is the
    process whose tree counts as ours (default: this process)."""
    proc = Path(proc)
    stat = _read(proc / "stat")
    return Snapshot(time.monotonic(), _load(proc), parse_cpu_times(stat) if stat else None,
                    tree_jiffies(os.getpid() if root is None else root, proc))


def machine_state(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """The ``machine_state`` dict of a result (or a row) measured between two snapshots."""
    others = steal = None
    if before.cpu and after.cpu and after.cpu.total > before.cpu.total:
        elapsed = after.cpu.total - before.cpu.total
        if before.ours is not None and after.ours is not None:
            theirs = (after.cpu.busy - before.cpu.busy) - (after.ours - before.ours)
            others = min(1.0, max(0.0, theirs / elapsed))
        if before.cpu.has_steal and after.cpu.has_steal:
            steal = max(0.0, (after.cpu.steal - before.cpu.steal) / elapsed)
    busy = bool((others is not None and others >= BUSY_OTHERS_SHARE)
                or (steal is not None and steal >= BUSY_STEAL_SHARE))
    return {"busy": busy, "others_share": others, "steal_share": steal,
            "load_before": before.load, "load_after": after.load,
            "seconds": after.when - before.when, "thresholds": dict(THRESHOLDS)}


class Monitor:
    """``with Monitor() as m: ...`` then ``m.state``: the machine's state during the block."""

    def __init__(self, root: int | None = None, proc: Path | str = "/proc") -> None:
        self.root, self.proc = root, proc
        self.state: dict[str, Any] = {}

    def start(self) -> Monitor:
        self.before = snapshot(self.root, self.proc)
        return self

    def stop(self) -> dict[str, Any]:
        self.state = machine_state(self.before, snapshot(self.root, self.proc))
        return self.state

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


BUSY_ROWS_SHARE = 0.25  # a run whose window was quiet is busy when this share of rows was not


def merge(run_state: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's state: busy when its whole window was, or when at least ``BUSY_ROWS_SHARE``
    of its timed rows were measured on a busy machine. A few busy rows alone carry their
    own ``busy-machine`` flag: they do not make every other row of the run suspect
    (``compare`` holds every row of a busy run inconclusive)."""
    timed = [row for row in rows if "flags" in row]
    busy_rows = sum(1 for row in timed if "busy-machine" in (row.get("flags") or ()))
    by_rows = busy_rows > 0 and busy_rows >= BUSY_ROWS_SHARE * len(timed)
    window = bool(run_state.get("busy"))
    return {**run_state, "busy": window or by_rows, "busy_rows": busy_rows,
            "busy_because": "window" if window else "rows" if by_rows else None}


def main(argv: list[str] | None = None) -> int:
    """``python -m hwbench.harness.running.machine_state [SECONDS]``: watch, then print the JSON."""
    args = sys.argv[1:] if argv is None else argv
    try:
        seconds = float(args[0]) if args else 1.0
    except ValueError:
        seconds = -1.0
    if len(args) > 1 or not 0 < seconds <= 3600:
        print(f"argument 'SECONDS' must be one number in (0, 3600], got {args}",
              file=sys.stderr)
        return 2
    with Monitor() as monitor:
        time.sleep(seconds)
    print(json.dumps(monitor.state))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
