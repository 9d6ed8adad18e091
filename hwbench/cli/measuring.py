"""What the measuring commands (``kernels``, ``run``) share: targets, the progress bar,
the FMA peak and reference workload lines, trust notes, failures and the exit status."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hwbench.backends import expand_backends
from hwbench.cli.checks import outcome
from hwbench.cli.options import say
from hwbench.errors import ArgumentError, UnsupportedError
from hwbench.harness.measure import peak as fma_peak
from hwbench.harness.measure import reference_workload
from hwbench.harness.results.summary import trust_lines
from hwbench.harness.results.tables import FLAG_MARK
from hwbench.harness.running import omp_wait

NO_BACKEND = "[bold red]error:[/] no available backend to run (see `hwbench list`)"


def targets(args: argparse.Namespace, known_peers: tuple[str, ...]) -> list[tuple[str, bool]]:
    """(name, is_peer) for every backend of ``--backend`` and every ``--peers`` entry."""
    found = [(name, False) for name in expand_backends(args.backend)]
    for name in args.peers:
        if name.partition(":")[0] not in known_peers:
            raise ArgumentError(f"argument 'peers': unknown peer {name!r}; known: "
                                f"{', '.join(known_peers)}")
        found.append((name, True))
    if args.threads is not None and args.threads < 1:
        raise ArgumentError(f"argument '--threads' must be a positive int, got {args.threads}")
    return found


def openmp_wait(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """``--omp-wait`` resolved (``omp_wait.resolve``), and said on the console."""
    wait = omp_wait.resolve(args.omp_wait)
    say(console, f"{wait['policy']} ({wait['why']})", "OpenMP threads wait:")
    return wait


class ProgressBar:
    """``drive``'s progress on the console: a transient bar, and the lines it must say."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=True)
        self.task: Any = None

    def __enter__(self) -> ProgressBar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def start(self, total: int) -> None:
        self.task = self.bar.add_task("starting workers", total=total)

    def case(self, backend: str, case: str) -> None:
        self.bar.update(self.task, description=escape(f"{backend} {case}"))

    def advance(self, turns: int = 1) -> None:
        self.bar.advance(self.task, turns)

    def backend_failed(self, backend: str, reason: str) -> None:
        say(self.console, reason, f"{backend} could not run:", "yellow")

    def warning(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}")


def measure_peak(threads: int, console: Console, **how: Any) -> dict[str, Any] | None:
    """``how``: ``measure_fma_peak``'s seconds/repeats (``run`` takes a quicker look)."""
    if not fma_peak.available_isas():
        console.print("[yellow]FMA peak not measured:[/] needs x86-64 Linux")
        return None
    try:
        peak = fma_peak.measure_fma_peak(threads=threads, **how)
    except UnsupportedError as exc:  # e.g. executable memory refused: report, go on
        say(console, exc, "FMA peak not measured:", "yellow")
        return None
    console.print(f"measured FMA peak: {peak.gflops:.1f} GFLOP/s float32 "
                  f"({peak.threads} threads, {peak.isa}, best of {peak.repeats} trials)"
                  + ("" if peak.reliable else f" [yellow]unreliable: {escape(peak.reason)}[/]"))
    return peak.to_dict()


def add_reference_workload(env: dict[str, Any], threads: int, path: Any,
                           console: Console) -> None:
    """Saved runs also time the fixed reference workload (`hwbench compare --normalized`)."""
    if path is None:
        return
    env["reference_workload"] = ref = reference_workload.measure_reference_isolated(threads)
    console.print(f"reference workload: {ref['gemm']['gflops']:.1f} GFLOP/s (sgemm 512³), "
                  f"{ref['stream']['gbytes_per_s']:.1f} GB/s (add)")


def print_trust_notes(console: Console, result: dict[str, Any]) -> None:
    """The lines under a table that say which figures cannot be trusted, and why."""
    for line in trust_lines(result.get("rows", []), result.get("machine_state"),
                            (result.get("environment") or {}).get("fma_peak")):
        console.print(f"[yellow]{FLAG_MARK} {escape(line)}[/]")


def report_failures(console: Console, rows: list[dict[str, Any]], what: str) -> None:
    """Each failed row's reason; unsupported ones counted per backend."""
    unsupported: dict[str, int] = {}
    for row in rows:
        if row.get("status") == "ok":
            continue
        if row.get("status") == "unsupported":
            unsupported[row["backend"]] = unsupported.get(row["backend"], 0) + 1
        else:
            say(console, str(row.get("reason", "")), f"{row['backend']} {row.get(what, '?')}:",
                "yellow")
    for name, count in unsupported.items():
        say(console, f"{name}: {count} case(s) not supported (see the rows' reasons)")


def exit_status(console: Console, result: dict[str, Any]) -> int:
    """1 when no row succeeded; else 0, saying how many did not."""
    status, message = outcome(result["rows"], result.get("failed_backends"))
    if message:
        console.print(f"[bold red]error:[/] {message}" if status else
                      f"[yellow]note:[/] {message}")
    return status
