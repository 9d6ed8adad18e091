"""Does hwbench tell the truth on a busy machine? ``python -m hwbench.harness.running.busy_check``.

Runs ``hwbench kernels --backend cpu --shapes small`` and ``hwbench run --backend cpu
--model lenet`` on the machine as it is ("idle"), then again with a busy loop on every
core beside them ("busy"), and prints, per row, the busy/idle ratio of its figures and
whether a row more than ``LIMIT`` times slower carries a flag. The promise it checks:
every row either stays within ``LIMIT``x of its idle figure or is flagged. Exit status 0
when it holds, 1 when a row is slower than that without a flag, 2 when a run failed.

The busy loops are child processes, killed whatever happens (``finally``). Results go
to a temporary folder, never to ``results/``. Extra arguments go to both commands (e.g.
``--backend cpu:mkl``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hwbench.harness.running.timing import format_seconds

LIMIT = 2.0
COMMANDS = {
    "kernels": ["kernels", "--backend", "cpu", "--shapes", "small"],
    "run": ["run", "--backend", "cpu", "--model", "lenet"],
}


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@contextmanager
def busy_loops(count: int):
    """``count`` processes spinning in pure Python, killed when the block ends."""
    loops: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            loops.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        yield loops
    finally:
        for proc in loops:
            proc.kill()
        for proc in loops:
            proc.wait()


def run_command(args: list[str], folder: Path) -> dict[str, Any]:
    """Run one hwbench command, its results into ``folder``; returns the results JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "hwbench.cli", *args, "--output", str(folder)],
                          capture_output=True, text=True, timeout=1800, check=False)
    files = sorted(folder.glob("*.json"))
    if done.returncode != 0 or not files:
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise RuntimeError(f"hwbench {' '.join(args)} exited {done.returncode}: {tail}")
    return json.loads(files[-1].read_text())


def row_key(row: dict[str, Any]) -> str:
    if "model" in row:
        return f"{row.get('backend')} {row['model']}/b{row.get('batch')}/{row.get('precision')}"
    return f"{row.get('backend')} {row.get('op')} {row.get('case')}"


def metrics(row: dict[str, Any]) -> dict[str, float]:
    """The figures compared: the median, and the p99 latency where there is one."""
    out = {}
    for name, key in (("median", "seconds"), ("p99", "latency_p99")):
        value = row.get(key)
        if isinstance(value, (int, float)) and value > 0:
            out[name] = float(value)
    return out


def compare_rows(idle: dict[str, Any], busy: dict[str, Any], limit: float = LIMIT
                 ) -> list[dict[str, Any]]:
    """One entry per (row, figure) present in both runs: ratio, flags, verdict."""
    idle_rows = {row_key(r): r for r in idle.get("rows", []) if r.get("status") == "ok"}
    out = []
    for row in busy.get("rows", []):
        key = row_key(row)
        if row.get("status") != "ok" or key not in idle_rows:
            continue
        before = metrics(idle_rows[key])
        for name, value in metrics(row).items():
            if name not in before:
                continue
            ratio = value / before[name]
            flags = list(row.get("flags") or [])
            verdict = ("within" if ratio <= limit else "flagged" if flags else "UNFLAGGED")
            out.append({"row": key, "figure": name, "idle": before[name], "busy": value,
                        "ratio": ratio, "flags": flags, "verdict": verdict})
    return out




def report(name: str, idle: dict[str, Any], busy: dict[str, Any],
           entries: list[dict[str, Any]]) -> list[str]:
    lines = [f"== hwbench {name}: idle machine_state "
             f"{json.dumps(_brief(idle.get('machine_state')))}",
             f"== hwbench {name}: busy machine_state "
             f"{json.dumps(_brief(busy.get('machine_state')))}",
             f"{'row':<52} {'figure':<6} {'idle':>9} {'busy':>9} {'ratio':>7}  verdict, flags"]
    for e in entries:
        lines.append(f"{e['row'][:52]:<52} {e['figure']:<6} {format_seconds(e['idle']):>9} "
                     f"{format_seconds(e['busy']):>9} {e['ratio']:6.2f}x  {e['verdict']}"
                     + (f" [{', '.join(e['flags'])}]" if e["flags"] else ""))
    over = [e for e in entries if e["ratio"] > LIMIT]
    lines.append(f"-- {len(entries)} figures; {len(entries) - len(over)} within {LIMIT:g}x; "
                 f"{len(over)} over, of which {sum(e['verdict'] == 'flagged' for e in over)} "
                 f"flagged and {sum(e['verdict'] == 'UNFLAGGED' for e in over)} not")
    return lines


def _brief(state: Any) -> dict[str, Any]:
    if not isinstance(state, dict):
        return {}
    keep = ("busy", "others_share", "steal_share", "load_before", "load_after", "busy_rows")
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in state.items()
            if k in keep}


def main(argv: list[str] | None = None) -> int:
    extra = list(sys.argv[1:] if argv is None else argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="hwbench-busy-check-") as tmp:
        for name, args in COMMANDS.items():
            try:
                idle = run_command(args + extra, Path(tmp) / f"{name}-idle")
                with busy_loops(cores()):
                    busy = run_command(args + extra, Path(tmp) / f"{name}-busy")
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"hwbench {name}: {exc}")
                return 2
            entries = compare_rows(idle, busy)
            print("\n".join(report(name, idle, busy, entries)), flush=True)
            failed |= any(e["verdict"] == "UNFLAGGED" for e in entries)
    print("RESULT: " + ("a row over the limit was not flagged" if failed else
                        f"every row within {LIMIT:g}x of idle or flagged"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
