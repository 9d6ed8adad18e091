"""What several commands share: option parsers, the measuring options, literal printing."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from hwbench.harness.results.tables import cell
from hwbench.harness.running import omp_wait

__all__ = ["cell", "comma_list", "dimension", "integers", "make_console", "measuring_options",
           "say"]


def comma_list(value: str) -> tuple[str, ...]:
    """``--op gemm,conv2d`` -> ``("gemm", "conv2d")``, blanks dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def integers(value: str) -> tuple[int, ...]:
    """``--batch 1,8`` -> ``(1, 8)``."""
    try:
        return tuple(int(part) for part in comma_list(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}"
                                         ) from None


def dimension(value: str) -> tuple[str, int]:
    """``--dim NAME=SIZE``."""
    name, sep, size = value.partition("=")
    try:
        number = int(size)
    except ValueError:
        number = 0
    if not sep or not name.strip() or number < 1:
        raise argparse.ArgumentTypeError(f"expected NAME=SIZE with a positive integer SIZE, "
                                         f"got {value!r}")
    return name.strip(), number


def measuring_options(p: argparse.ArgumentParser) -> None:
    """Options every measuring command (``kernels``, ``run``) shares."""
    p.add_argument("--backend", default="all",
                   help="'all' (every available backend) or a comma list, e.g. numpy,cpu:mkl "
                        "(cpu:float32-requant: int8 requantized in float32 by oneDNN, "
                        "within 1 LSB of exact; BACKEND:onnxruntime-requant, e.g. "
                        "numpy:onnxruntime-requant, cpu:mkl+onnxruntime-requant: int8 "
                        "as onnxruntime computes it, bit for bit; neither part of 'all')")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per backend (default: HWBENCH_NUM_THREADS or all cores)")
    p.add_argument("--omp-wait", choices=omp_wait.CHOICES, default="auto",
                   help="how the workers' OpenMP threads wait between parallel regions: "
                        "passive (sleep at once: right on a shared machine), active (spin "
                        "~0.3 ms: GOMP_SPINCOUNT=30000, faster small kernels on an idle "
                        "machine), auto (default: your OMP_WAIT_POLICY/GOMP_SPINCOUNT if "
                        "set, else active when the machine is quiet before the run)")
    p.add_argument("--max-time", type=float, default=5.0, help="seconds of samples at most")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds a backend may run one case before it counts as hung")
    p.add_argument("--output", default="results",
                   help="folder for the JSON results (default: results/)")
    p.add_argument("--no-save", action="store_true", help="do not write a results file")


def make_console() -> Console:
    """The console every command prints to. Off a terminal (CI logs, pipes) rich would
    wrap tables at 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 160)


def say(console: Console, text: Any, label: str = "", style: str = "") -> None:
    """Print ``text`` literally, after an optional styled ``label``. Every line holding a
    string from a user, a file or an exception goes through here: rich would read
    ``[cuda]`` or ``[/x]`` in it as markup, dropping words or raising ``MarkupError``."""
    line = Text()
    if label:
        line.append(label, style=style)
        line.append(" ")
    line.append(str(text))
    console.print(line)
