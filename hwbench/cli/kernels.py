"""``hwbench kernels``: time every kernel at DeepBench / ResNet-50 / small shapes."""

from __future__ import annotations

import argparse
from typing import Any

from hwbench.backends import default_threads
from hwbench.cli import measuring
from hwbench.cli.options import comma_list, make_console, measuring_options, say
from hwbench.harness.measure.peak_trust import add_peak_fraction, finish_machine_state
from hwbench.harness.results.result_files import create_result_file, new_result
from hwbench.harness.results.tables import kernels_table
from hwbench.harness.running.drive import drive
from hwbench.harness.running.environment import environment
from hwbench.harness.running.machine_state import Monitor as MachineMonitor
from hwbench.harness.suites import kernel_suite
from hwbench.harness.suites.peers import PEERS
from hwbench.kernels.shapes import PROBLEM_SETS


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("kernels", help="time every kernel at DeepBench / ResNet-50 / "
                              "small shapes")
    measuring_options(p)
    ops = kernel_suite.OPS
    p.add_argument("--op", type=comma_list, default=ops,
                   help=f"comma list of ops (default all: {','.join(ops)})")
    p.add_argument("--shapes", choices=PROBLEM_SETS, default="small",
                   help="problem set (default: small)")
    p.add_argument("--batch", type=int, default=1, help="N for resnet50/small/headline convs")
    p.add_argument("--repeats", type=int, default=10, help="timed samples per kernel")
    p.add_argument("--min-time", type=float, default=0.2, help="seconds of samples at least")
    p.add_argument("--peers", type=comma_list, default=(),
                   help="comma list of peer libraries timed alongside (torch, clblast[:DEVICE])")
    p.add_argument("--peak", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the CPU's FMA peak and report %% of it (default: on)")
    p.add_argument("--no-check-finite", action="store_true",
                   help="skip the NaN/inf screening of inputs (recorded in the results)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    targets = measuring.targets(args, PEERS)
    if not targets:
        console.print(measuring.NO_BACKEND)
        return 2
    options = {"threads": args.threads if args.threads is not None else default_threads(),
               "check_finite": not args.no_check_finite}
    wait = measuring.openmp_wait(args, console)
    env = environment(wait)
    monitor = MachineMonitor().start()
    peak = measuring.measure_peak(options["threads"], console) if args.peak else None
    env["fma_peak"] = peak
    result = new_result("kernels", env, shapes=args.shapes, batch=args.batch, ops=list(args.op),
                        threads=options["threads"], backends={})
    path = None if args.no_save else create_result_file(args.output, "kernels", result)
    measuring.add_reference_workload(env, options["threads"], path, console)
    specs = kernel_suite.plan(tuple(args.op), args.shapes, args.batch)
    timing = {"repeats": args.repeats, "min_time": args.min_time, "max_time": args.max_time}
    jobs = [{"kind": "kernels", "backend": name, "peer": is_peer, "options": options,
             "omp_wait": wait,
             "ops": list(args.op), "shapes": args.shapes, "batch": args.batch,
             "seed": args.seed, "timing": timing} for name, is_peer in targets]

    def make_row(index: int, worker_row: dict[str, Any]) -> dict[str, Any]:
        row = {"op": specs[index].op, "case": specs[index].name, "omp_wait": wait["policy"],
               **worker_row}
        add_peak_fraction(row, peak)
        return row

    with measuring.ProgressBar(console) as progress:
        interrupted = drive(jobs, [spec.name for spec in specs], result, path, args.timeout,
                            make_row, progress)
    finish_machine_state(result, monitor, path)
    console.print(kernels_table(result["rows"], peak, [name for name, _ in targets]))
    measuring.print_trust_notes(console, result)
    if path:
        say(console, f"results: {path}" + (" (interrupted: partial)" if interrupted else ""))
    measuring.report_failures(console, result["rows"], "case")
    return 130 if interrupted else measuring.exit_status(console, result)
