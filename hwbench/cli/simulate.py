"""``hwbench simulate``: a workload on a systolic-array accelerator's timing model."""

from __future__ import annotations

import argparse
from typing import Any

from hwbench.backends.systolic.config import PRESETS, load_config
from hwbench.cli.options import dimension, make_console, say
from hwbench.errors import ArgumentError
from hwbench.harness.running.timing import format_seconds
from hwbench.harness.suites import simulate

HELP = """Simulate a workload on a systolic-array accelerator (the systolic backend's
analytic timing model) and write COMPUTE_REPORT.csv (SCALE-Sim's columns first) and
simulate.json under OUTPUT/simulate/. The workload is a SCALE-Sim topology CSV or a model
(zoo name or .onnx); the machine a preset or a SCALE-Sim .cfg file."""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("simulate", help="simulate a model or a SCALE-Sim topology on "
                              "a systolic array (cycles, utilization, memory traffic)",
                              description=HELP)
    p.add_argument("--config", default="tpu-v1",
                   help=f"a preset ({', '.join(PRESETS)}) or a SCALE-Sim .cfg file")
    workload = p.add_mutually_exclusive_group(required=True)
    workload.add_argument("--topology", metavar="CSV", help="a SCALE-Sim topology CSV")
    workload.add_argument("--model", metavar="NAME|FILE.onnx", help="a zoo model or .onnx")
    p.add_argument("--batch", type=int, default=1, help="batch size of --model (default 1)")
    p.add_argument("--dim", type=dimension, action="append", default=[], metavar="NAME=SIZE",
                   help="size of a symbolic input dimension of an .onnx --model, by name "
                        "(repeatable)")
    p.add_argument("--dataflow", choices=("ws", "os", "is"), default=None,
                   help="override the config's dataflow")
    p.add_argument("--array", default=None, metavar="ROWSxCOLS",
                   help="override the array size, e.g. 128x128")
    p.add_argument("--compare", default=None, metavar="CSV",
                   help="SCALE-Sim's COMPUTE_REPORT.csv for the same workload: compute cycles "
                        "side by side, every difference accounted for")
    p.add_argument("--output", default="results", help="folder for the reports (default: "
                   "results/)")
    p.add_argument("--no-save", action="store_true", help="do not write the reports")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    if args.batch < 1:
        raise ArgumentError(f"argument '--batch' must be >= 1, got {args.batch}")
    config = load_config(args.config).with_overrides(dataflow=args.dataflow, array=args.array)
    sim = simulate.run_simulation(config, topology=args.topology, model=args.model,
                                  batch=args.batch, dims=dict(args.dim) or None)
    if args.compare:
        simulate.compare_with_scalesim(sim, args.compare)
    console.print(simulate.layer_table(sim))
    s = sim.summary
    say(console, f"{sim.workload} on {config.name} ({s['array']}, {s['dataflow']}, "
                 f"{config.clock_hz / 1e6:g} MHz): {s['cycles']:,} cycles = "
                 f"{format_seconds(s['seconds'])}, {s['tops']:.2f} of {s['peak_tops']:.1f} "
                 f"TOP/s peak, utilization {100 * s['utilization']:.1f} %; simulated in "
                 f"{sim.simulation_seconds * 1e3:.1f} ms")
    if sim.comparison:
        console.print(simulate.comparison_table(sim))
    if not args.no_save:
        csv_path, json_path = simulate.write_reports(sim, args.output)
        say(console, f"reports: {csv_path} and {json_path}")
    return 0
