"""``hwbench run``: whole models on every chosen backend, side by side, saved."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from hwbench.backends import default_threads
from hwbench.cli import measuring
from hwbench.cli.options import (
    comma_list,
    dimension,
    integers,
    make_console,
    measuring_options,
    say,
)
from hwbench.errors import HwbenchError
from hwbench.files import write_atomic
from hwbench.harness.measure.peak_trust import finish_machine_state
from hwbench.harness.results.backend_ratios import ratio_lines
from hwbench.harness.results.result_files import create_result_file, new_result
from hwbench.harness.results.roofline import ceiling_lines, plot_roofline, roofline_path
from hwbench.harness.results.summary import to_csv, to_markdown
from hwbench.harness.results.tables import run_table
from hwbench.harness.running.drive import drive
from hwbench.harness.running.environment import environment
from hwbench.harness.running.machine_state import Monitor as MachineMonitor
from hwbench.harness.suites import model_suite
from hwbench.harness.suites.peers import MODEL_PEERS

HELP = """Run whole models on every chosen backend, side by side, and save the results.

Per backend, model, batch size and precision: latency p50/p90/p99 at batch 1 (MLPerf
SingleStream), samples/s and GFLOP/s at every batch (Offline: the largest), and
accuracy: top-1 on the digits test split for the digits models, and for every model the
agreement with the float64 reference. Each backend runs in its own worker process; a
crash or hang costs one row. `hwbench kernels` times the kernels alone."""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("run", help="run models on every backend: throughput and "
                              "accuracy", description=HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    measuring_options(p)
    p.add_argument("--model", default="default",
                   help="'default' (digits models, alexnet, resnet50, vgg19, squeezenet), "
                        "'all' (every zoo model, translator and began included), or a "
                        "comma list of zoo names / .onnx files")
    p.add_argument("--batch", type=integers, default=(1, 8),
                   help="comma list of batch sizes (default 1,8): latency at 1, throughput "
                        "at the largest")
    p.add_argument("--precision", type=comma_list, default=("fp32",),
                   help="comma list: fp32, int8 (default fp32)")
    p.add_argument("--dim", type=dimension, action="append", default=[], metavar="NAME=SIZE",
                   help="size of a symbolic input dimension, by the name the file gives "
                        "it, e.g. --dim sequence=128, for every selected model that has it "
                        "(refused if none has; repeatable; the batch dimension takes "
                        "--batch)")
    p.add_argument("--peers", type=comma_list, default=(),
                   help="comma list of whole-model peers run alongside (onnxruntime)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per case")
    p.add_argument("--min-time", type=float, default=0.5, help="seconds of runs at least")
    p.add_argument("--markdown", default=None, metavar="FILE",
                   help="also write a Markdown summary table to FILE")
    p.add_argument("--csv", default=None, metavar="FILE",
                   help="also write a CSV summary (one line per row) to FILE")
    p.add_argument("--roofline", action=argparse.BooleanOptionalAction, default=True,
                   help="measure each backend's GEMM/streaming ceilings (~1.5 s each) and "
                        "draw roofline-<results stem>.png beside the JSON (default: on)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    targets = measuring.targets(args, MODEL_PEERS)
    if not targets:
        console.print(measuring.NO_BACKEND)
        return 2
    models = model_suite.expand_models(args.model)
    dims = dict(args.dim)
    cases = model_suite.plan(models, list(args.batch), list(args.precision), dims)
    options = {"threads": args.threads if args.threads is not None else default_threads()}
    wait = measuring.openmp_wait(args, console)
    env = environment(wait)
    monitor = MachineMonitor().start()
    if args.roofline:  # the host CPU's FMA peak: a dashed line on the roofline
        env["fma_peak"] = measuring.measure_peak(options["threads"], console, seconds=0.1,
                                                 repeats=5)
    result = new_result("models", env, models=models, batches=list(args.batch),
                        precisions=list(args.precision), threads=options["threads"],
                        backends={})
    path = None if args.no_save else create_result_file(args.output, "models", result)
    measuring.add_reference_workload(env, options["threads"], path, console)
    timing = {"repeats": args.repeats, "min_time": args.min_time, "max_time": args.max_time}
    jobs = [{"kind": "models", "backend": name, "peer": is_peer, "options": options,
             "omp_wait": wait,
             "models": models, "batches": list(args.batch), "precisions": list(args.precision),
             "dims": dims,
             "timing": timing, "ceilings": args.roofline} for name, is_peer in targets]
    with model_suite.reference_folder() as folder:
        references: dict[tuple[str, int], str] = {}

        def prepare(index: int) -> dict[str, Any]:
            case = cases[index]
            key = (case.model, case.batch)
            if key not in references:  # the float64 run, once per model (largest batch)
                paths = model_suite.reference_outputs(case, folder, list(args.batch))
                references.update({(case.model, b): path for b, path in paths.items()})
            return {"reference": references[key]}

        def make_row(index: int, worker_row: dict[str, Any]) -> dict[str, Any]:
            case = cases[index]
            return {"model": case.model, "batch": case.batch, "precision": case.precision,
                    **({"dims": dict(case.dims)} if case.dims else {}),
                    "omp_wait": wait["policy"], **worker_row}

        with measuring.ProgressBar(console) as progress:
            interrupted = drive(jobs, [case.name for case in cases], result, path,
                                args.timeout, make_row, progress, prepare)
    finish_machine_state(result, monitor, path)
    console.print(run_table(result["rows"], [name for name, _ in targets]))
    for line in ratio_lines(result["rows"], [name for name, _ in targets]):
        say(console, line, "ratio:")
    measuring.print_trust_notes(console, result)
    if path:
        say(console, f"results: {path}" + (" (interrupted: partial)" if interrupted else ""))
    _write_summaries(args, result["rows"], console, result.get("machine_state"))
    if args.roofline and not interrupted:
        _draw_roofline(result, path, console)
    measuring.report_failures(console, result["rows"], "model")
    return 130 if interrupted else measuring.exit_status(console, result)


def _write_summaries(args: argparse.Namespace, rows: list[dict[str, Any]],
                     console: Console, machine: dict[str, Any] | None = None) -> None:
    """``--markdown`` and ``--csv``."""
    for target, render in ((args.markdown, to_markdown), (args.csv, to_csv)):
        if target:
            text = render(rows, machine)
            write_atomic(target, lambda fh, text=text: fh.write(text))
            say(console, f"summary: {target}")


def _draw_roofline(result: dict[str, Any], results_path: Path | None,
                   console: Console) -> None:
    """Print the ceilings; draw the plot beside the results file (a run without a file,
    or with nothing to place, keeps its exit status and says why there is no plot)."""
    for line in ceiling_lines(result):
        say(console, f"ceilings: {line}")
    if results_path is None:
        return
    try:
        plot = plot_roofline(result, roofline_path(results_path))
    except HwbenchError as exc:
        say(console, exc, "roofline not drawn:", "yellow")
        return
    say(console, f"roofline: {plot.path}")
