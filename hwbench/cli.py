"""The ``hwbench`` command: ``list``, ``kernels`` and ``run``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwbench.backends import default_threads, expand_backends, list_backends
from hwbench.errors import ArgumentError, HwbenchError

RUN_HELP = """Run whole models on every chosen backend, side by side, and save the results.

Per backend, model, batch size and precision: latency p50/p90/p99 at batch 1 (MLPerf
SingleStream), samples/s and GFLOP/s at every batch (Offline: the largest), and
accuracy: top-1 on the digits test split for the digits models, and for every model the
agreement with the float64 reference. Each backend runs in its own worker process; a
crash or hang costs one row. `hwbench kernels` times the kernels alone."""


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _csv(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}"
                                         ) from None


def _common_options(p: argparse.ArgumentParser) -> None:
    """Options every measuring command shares."""
    p.add_argument("--backend", default="all",
                   help="'all' (every available backend) or a comma list, e.g. numpy,cpu:mkl")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per backend (default: HWBENCH_NUM_THREADS or all cores)")
    p.add_argument("--max-time", type=float, default=5.0, help="seconds of samples at most")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds a backend may run one case before it counts as hung")
    p.add_argument("--output", default="results",
                   help="folder for the JSON results (default: results/)")
    p.add_argument("--no-save", action="store_true", help="do not write a results file")


def build_parser() -> argparse.ArgumentParser:
    from hwbench import __version__
    from hwbench.harness.kernel_suite import OPS
    from hwbench.kernels.shapes import PROBLEM_SETS

    parser = argparse.ArgumentParser(
        prog="hwbench",
        description="Deep-learning kernels on many backends, measured side by side.")
    parser.add_argument("--version", action="version", version=f"hwbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="show every backend: available or why not, versions")
    p_list.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("kernels", help="time every kernel at DeepBench / ResNet-50 / small "
                       "shapes")
    _common_options(p)
    p.add_argument("--op", type=_csv, default=OPS,
                   help=f"comma list of ops (default all: {','.join(OPS)})")
    p.add_argument("--shapes", choices=PROBLEM_SETS, default="small",
                   help="problem set (default: small)")
    p.add_argument("--batch", type=int, default=1, help="N for resnet50/small/headline convs")
    p.add_argument("--repeats", type=int, default=10, help="timed samples per kernel")
    p.add_argument("--min-time", type=float, default=0.2, help="seconds of samples at least")
    p.add_argument("--peers", type=_csv, default=(),
                   help="comma list of peer libraries timed alongside (torch)")
    p.add_argument("--peak", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the CPU's FMA peak and report %% of it (default: on)")
    p.add_argument("--no-check-finite", action="store_true",
                   help="skip the NaN/inf screening of inputs (recorded in the results)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")

    p = sub.add_parser("run", help="run models on every backend: throughput and accuracy",
                       description=RUN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_options(p)
    p.add_argument("--model", default="default",
                   help="'default' (digits models, alexnet, resnet50, vgg19, squeezenet), "
                        "'all', or a comma list of zoo names / .onnx files")
    p.add_argument("--batch", type=_ints, default=(1, 8),
                   help="comma list of batch sizes (default 1,8): latency at 1, throughput "
                        "at the largest")
    p.add_argument("--precision", type=_csv, default=("fp32",),
                   help="comma list: fp32, int8 (default fp32)")
    p.add_argument("--peers", type=_csv, default=(),
                   help="comma list of whole-model peers run alongside (onnxruntime)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per case")
    p.add_argument("--min-time", type=float, default=0.5, help="seconds of runs at least")
    p.add_argument("--markdown", default=None, metavar="FILE",
                   help="also write a Markdown summary table to FILE")
    p.add_argument("--csv", default=None, metavar="FILE",
                   help="also write a CSV summary (one line per row) to FILE")
    p_train = sub.add_parser(
        "train", help="train a digits model (mlp, lenet, autoencoder) with a backend's kernels")
    p_train.add_argument("--model", required=True, help="mlp, lenet or autoencoder")
    p_train.add_argument("--backend", default="numpy", help="backend whose kernels train it")
    p_train.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    p_train.add_argument("--epochs", type=int, default=None, help="default: the model's own")
    p_train.add_argument("--threads", type=int, default=None, help="backend threads")
    p_train.add_argument("--output", default=None,
                         help="weights file to write (default: results/weights/MODEL.npz)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        if args.command == "list":
            return cmd_list(args, console)
        if args.command == "train":
            return cmd_train(args, console)
        if args.command == "run":
            return cmd_run(args, console)
        return cmd_kernels(args, console)
    except HwbenchError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    rows = list_backends()
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], indent=1))
        return 0
    table = Table(title="hwbench backends")
    for column in ("backend", "available", "devices", "versions / why not"):
        table.add_column(column)
    for row in rows:
        detail = ", ".join(f"{k} {v}" for k, v in row.versions.items()) if row.available else (
            row.reason)
        table.add_row(row.name, "[green]yes[/]" if row.available else "[red]no[/]",
                      ", ".join(row.devices), detail)
    console.print(table)
    return 0


def _targets(args: argparse.Namespace, known_peers: tuple[str, ...]) -> list[tuple[str, bool]]:
    """(name, is_peer) for every backend of ``--backend`` and every ``--peers`` entry."""
    targets = [(name, False) for name in expand_backends(args.backend)]
    for name in args.peers:
        if name not in known_peers:
            raise ArgumentError(f"argument 'peers': unknown peer {name!r}; known: "
                                f"{', '.join(known_peers)}")
        targets.append((name, True))
    if args.threads is not None and args.threads < 1:
        raise ArgumentError(f"argument '--threads' must be a positive int, got {args.threads}")
    return targets


def _drive(console: Console, jobs: list[dict[str, Any]], names: list[str],
           result: dict[str, Any], path: Any, timeout: float, make_row, prepare=None) -> bool:
    """Run ``jobs`` side by side over ``names`` (one per case), saving after every row.

    ``make_row(index, row)`` completes a worker's row. Returns True if interrupted.
    """
    from hwbench.harness import isolation
    from hwbench.harness.results import write_json_atomic

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting workers", total=len(names) * len(jobs))
        try:
            for message in isolation.run_side_by_side(jobs, len(names), timeout, prepare):
                kind, name = message["type"], message["backend"]
                if kind == "info":
                    result["backends"][name] = message["info"]
                elif kind == "fatal":
                    console.print(f"[yellow]{name} could not run:[/] {message['reason']}")
                    result.setdefault("failed_backends", {})[name] = message["reason"]
                    progress.advance(task, len(names))
                elif kind == "start":
                    progress.update(task, description=f"{name} {names[message['index']]}")
                elif kind == "row":
                    row = make_row(message["index"], {"backend": name, **message["row"]})
                    result["rows"].append(row)
                    if path:  # after every row: an interrupted run keeps what it measured
                        write_json_atomic(path, result)
                    progress.advance(task)
        except KeyboardInterrupt:
            result["interrupted"] = True
            if path:
                write_json_atomic(path, result)
            return True
    return False


def _report_failures(console: Console, rows: list[dict[str, Any]], what: str) -> None:
    unsupported: dict[str, int] = {}
    for row in rows:
        if row.get("status") == "ok":
            continue
        reason = str(row.get("reason", ""))
        if row.get("status") == "unsupported" or reason.startswith("UnsupportedError"):
            unsupported[row["backend"]] = unsupported.get(row["backend"], 0) + 1
        else:
            console.print(f"[yellow]{row['backend']} {row.get(what, '?')}:[/] {reason}")
    for name, count in unsupported.items():
        console.print(f"{name}: {count} case(s) not supported (see the rows' reasons)")


def cmd_kernels(args: argparse.Namespace, console: Console) -> int:
    from hwbench.harness import kernel_suite
    from hwbench.harness.environment import environment
    from hwbench.harness.peers import PEERS
    from hwbench.harness.results import default_result_path, new_result

    targets = _targets(args, PEERS)
    if not targets:
        console.print("[bold red]error:[/] no available backend to run (see `hwbench list`)")
        return 2
    options = {"threads": args.threads if args.threads is not None else default_threads(),
               "check_finite": not args.no_check_finite}
    env = environment()
    peak = _measure_peak(options["threads"], console) if args.peak else None
    env["fma_peak"] = peak
    result = new_result("kernels", env, shapes=args.shapes, batch=args.batch, ops=list(args.op),
                        threads=options["threads"], backends={})
    path = None if args.no_save else default_result_path(args.output, "kernels")
    specs = kernel_suite.plan(tuple(args.op), args.shapes, args.batch)
    timing = {"repeats": args.repeats, "min_time": args.min_time, "max_time": args.max_time}
    jobs = [{"kind": "kernels", "backend": name, "peer": is_peer, "options": options,
             "ops": list(args.op), "shapes": args.shapes, "batch": args.batch,
             "seed": args.seed, "timing": timing} for name, is_peer in targets]

    def make_row(index: int, worker_row: dict[str, Any]) -> dict[str, Any]:
        row = {"op": specs[index].op, "case": specs[index].name, **worker_row}
        _add_peak_fraction(row, peak)
        return row

    interrupted = _drive(console, jobs, [spec.name for spec in specs], result, path,
                         args.timeout, make_row)
    console.print(_table(result["rows"], peak, [name for name, _ in targets]))
    if path:
        console.print(f"results: {path}" + (" (interrupted: partial)" if interrupted else ""))
    _report_failures(console, result["rows"], "case")
    return 130 if interrupted else 0


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from hwbench.harness import model_suite
    from hwbench.harness.environment import environment
    from hwbench.harness.peers import MODEL_PEERS
    from hwbench.harness.results import default_result_path, new_result

    targets = _targets(args, MODEL_PEERS)
    if not targets:
        console.print("[bold red]error:[/] no available backend to run (see `hwbench list`)")
        return 2
    models = model_suite.expand_models(args.model)
    cases = model_suite.plan(models, list(args.batch), list(args.precision))
    options = {"threads": args.threads if args.threads is not None else default_threads()}
    result = new_result("models", environment(), models=models, batches=list(args.batch),
                        precisions=list(args.precision), threads=options["threads"],
                        backends={})
    path = None if args.no_save else default_result_path(args.output, "models")
    timing = {"repeats": args.repeats, "min_time": args.min_time, "max_time": args.max_time}
    jobs = [{"kind": "models", "backend": name, "peer": is_peer, "options": options,
             "models": models, "batches": list(args.batch), "precisions": list(args.precision),
             "timing": timing} for name, is_peer in targets]
    with model_suite.reference_folder() as folder:
        references: dict[tuple[str, int], str] = {}

        def prepare(index: int) -> dict[str, Any]:
            case = cases[index]
            key = (case.model, case.batch)
            if key not in references:  # the float64 run, once per model and batch
                references[key] = model_suite.reference_outputs(case, folder)
            return {"reference": references[key]}

        def make_row(index: int, worker_row: dict[str, Any]) -> dict[str, Any]:
            case = cases[index]
            return {"model": case.model, "batch": case.batch, "precision": case.precision,
                    **worker_row}

        interrupted = _drive(console, jobs, [case.name for case in cases], result, path,
                             args.timeout, make_row, prepare)
    console.print(_run_table(result["rows"], [name for name, _ in targets]))
    if path:
        console.print(f"results: {path}" + (" (interrupted: partial)" if interrupted else ""))
    _write_summaries(args, result["rows"], console)
    _report_failures(console, result["rows"], "model")
    return 130 if interrupted else 0


def _write_summaries(args: argparse.Namespace, rows: list[dict[str, Any]],
                     console: Console) -> None:
    from hwbench.files import write_atomic
    from hwbench.harness.summary import to_csv, to_markdown

    for target, render in ((args.markdown, to_markdown), (args.csv, to_csv)):
        if target:
            text = render(rows)
            write_atomic(target, lambda fh, text=text: fh.write(text))
            console.print(f"summary: {target}")


def _run_table(rows: list[dict[str, Any]], order: list[str]) -> Table:
    rank = {name: i for i, name in enumerate(order)}
    rows = sorted(rows, key=lambda r: (r.get("model", ""), r.get("precision", ""),
                                       r.get("batch", 0), rank.get(r.get("backend"), 99)))
    table = Table(title="hwbench run")
    for column, justify in (("model", "left"), ("batch", "right"), ("prec.", "left"),
                            ("backend", "left"), ("p50", "right"), ("p99", "right"),
                            ("samples/s", "right"), ("GFLOP/s", "right"),
                            ("accuracy", "right"), ("vs fp64", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        head = (row.get("model", "?"), str(row.get("batch", "?")), row.get("precision", "?"),
                row.get("backend", "?"))
        if row.get("status") != "ok":
            shown = "unsupported" if row.get("status") == "unsupported" else (
                f"[red]{str(row.get('reason', ''))[:40]}[/]")
            table.add_row(*head, "—", "", "", "", "", shown)
            continue
        p50 = _seconds(row["latency_p50"]) if "latency_p50" in row else ""
        p99 = _seconds(row["latency_p99"]) if "latency_p99" in row else ""
        if "top1" in row:
            acc = f"top-1 {100 * row['top1']:.1f}%"
        elif "mse" in row:
            acc = f"mse {row['mse']:.4f}"
        else:
            acc = ""
        agree = f"{row['rel_error']:.1e}" if "rel_error" in row else ""
        if "top1_agreement" in row:
            agree += f" ({100 * row['top1_agreement']:.0f}% top-1)"
        table.add_row(*head, p50, p99, f"{row['samples_per_s']:.1f}",
                      f"{row.get('gflops', 0):.1f}", acc, agree)
    return table


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from hwbench.backends import get_backend
    from hwbench.models import digits

    options = {} if args.threads is None else {"threads": args.threads}
    be = get_backend(args.backend, **options)
    console.print(f"training {args.model} on {be.full_name} (seed {args.seed}) ...")
    params, report = digits.train(be, args.model, seed=args.seed, epochs=args.epochs)
    output = args.output or f"results/weights/{args.model}.npz"
    meta = {"backend": be.full_name, "seed": report.seed, "epochs": report.epochs,
            report.metric_name: report.metric, "backend_info": be.info()}
    digits.save_params(output, args.model, params, meta)
    console.print(f"{args.model}: {report.epochs} epochs in {report.seconds:.1f} s "
                  f"({report.samples_per_second:,.0f} samples/s), final loss "
                  f"{report.losses[-1]:.4g}, test {report.metric_name} {report.metric:.4f}")
    console.print(f"weights: {output}")
    return 0


def _add_peak_fraction(row: dict[str, Any], peak: dict[str, Any] | None) -> None:
    """% of the measured CPU FMA peak, for float32 GEMM/conv rows of host-CPU backends."""
    host_cpu = row.get("backend", "").split(":")[0] in ("cpu", "numpy", "torch")
    if peak and host_cpu and row.get("status") == "ok" and row["op"] in ("gemm", "conv2d"):
        row["fraction_of_peak"] = row["gflops"] / peak["gflops"]


def _measure_peak(threads: int, console: Console) -> dict[str, Any] | None:
    from hwbench.harness.peak import available_isas, measure_fma_peak

    if not available_isas():
        console.print("[yellow]FMA peak not measured:[/] needs x86-64 Linux")
        return None
    peak = measure_fma_peak(threads=threads)
    console.print(f"measured FMA peak: {peak.gflops:.1f} GFLOP/s float32 "
                  f"({peak.threads} threads, {peak.isa})")
    return {"gflops": peak.gflops, "threads": peak.threads, "isa": peak.isa,
            "spread": peak.spread}


def _table(rows: list[dict[str, Any]], peak: dict[str, Any] | None,
           order: list[str]) -> Table:
    """One line per (case, backend), backends side by side for each case."""
    from hwbench.harness.kernel_suite import OPS

    rank = {name: i for i, name in enumerate(order)}
    first_seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        first_seen.setdefault(row.get("case", ""), i)
    rows = sorted(rows, key=lambda r: (OPS.index(r["op"]) if r.get("op") in OPS else 99,
                                       first_seen.get(r.get("case", ""), 0),
                                       rank.get(r["backend"], 99)))
    table = Table(title="hwbench kernels" + (f" — FMA peak {peak['gflops']:.0f} GFLOP/s"
                                             if peak else ""))
    for column, justify in (("backend", "left"), ("op", "left"), ("case", "left"),
                            ("median", "right"), ("spread", "right"), ("GFLOP/s", "right"),
                            ("% peak", "right"), ("GB/s", "right"), ("error", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        if row.get("status") != "ok":
            reason = str(row.get("reason", ""))
            shown = "unsupported" if reason.startswith("UnsupportedError") else (
                f"[red]{reason[:40]}[/]")
            table.add_row(row["backend"], row.get("op", "?"), row.get("case", "?"), "—", "", "",
                          "", "", shown)
            continue
        err = (f"{row['mismatches']} diff" if "mismatches" in row
               else f"{row['rel_error']:.1e}")
        frac = row.get("fraction_of_peak")
        table.add_row(
            row["backend"], row["op"], row["case"], _seconds(row["seconds"]),
            f"{100 * row['timing']['spread']:.1f}%", f"{row['gflops']:.1f}",
            f"{100 * frac:.0f}%" if frac else "", f"{row['gbytes_per_s']:.1f}", err)
    return table


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e9:.3g} ns"


if __name__ == "__main__":
    sys.exit(main())

