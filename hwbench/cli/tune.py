"""``hwbench tune``: search an OpenCL device's GEMM tile parameters, store the fastest."""

from __future__ import annotations

import argparse
from typing import Any

from hwbench.backends import parse_backend_name
from hwbench.cli.options import make_console, say
from hwbench.errors import ArgumentError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("tune", help="search an OpenCL device's GEMM tile parameters "
                              "and store the fastest in the per-user tuning cache")
    p.add_argument("--backend", default="opencl", help="opencl or opencl:N / opencl:NAME")
    p.add_argument("--op", choices=("gemm", "gemm_int8"), default="gemm",
                   help="which kernel's parameters: the float32 SGEMM or the exact int8 GEMM")
    p.add_argument("--size", type=int, default=1024, help="M = N = K of the timed GEMM")
    p.add_argument("--budget", type=float, default=300.0,
                   help="seconds to search at most (the defaults are always tried)")
    p.add_argument("--no-save", action="store_true", help="report only; store nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    base, device = parse_backend_name(args.backend)
    if base != "opencl":
        raise ArgumentError(f"argument '--backend': only opencl devices are tuned, got "
                            f"{args.backend!r}")
    # Here, not at the top: the OpenCL backend package adds ~0.1 s to every command's start.
    from hwbench.backends.opencl import autotune, tile_params

    unit = "GOP/s" if args.op == "gemm_int8" else "GFLOP/s"

    def report(trial: Any) -> None:
        speed = f"{trial.gflops:8.1f} {unit}" if trial.gflops else f"skipped: {trial.note}"
        say(console, f"  {trial.params}  {speed}")

    be, trials = autotune.search(device, args.size, args.budget, report=report,
                                 store=not args.no_save, op=args.op)
    timed = [t for t in trials if t.gflops]
    if not timed:
        console.print("[bold red]no candidate ran[/]")
        return 1
    best = max(timed, key=lambda t: t.gflops)
    say(console, f"{be.info()['device_name']} ({be.dev.cache_key}): best {best.params} at "
                 f"{best.gflops:.1f} {unit} over {len(trials)} candidates"
                 + ("" if args.no_save else f"; stored in {tile_params.tuning_file()}"))
    return 0
