"""The ``hwbench`` command: ``list``, ``kernels``, ``run``, ``roofline`` and ``train``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from hwbench.backends import default_threads, expand_backends, list_backends
from hwbench.errors import ArgumentError, HwbenchError, UnsupportedError

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


def _dim(value: str) -> tuple[str, int]:
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


def _common_options(p: argparse.ArgumentParser) -> None:
    """Options every measuring command shares."""
    p.add_argument("--backend", default="all",
                   help="'all' (every available backend) or a comma list, e.g. numpy,cpu:mkl "
                        "(cpu:float32-requant: int8 requantized in float32 by oneDNN, "
                        "within 1 LSB of exact; never part of 'all')")
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
    from hwbench.harness.suites.kernel_suite import OPS
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
                   help="comma list of peer libraries timed alongside (torch, clblast[:DEVICE])")
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
    p.add_argument("--dim", type=_dim, action="append", default=[], metavar="NAME=SIZE",
                   help="size of a symbolic input dimension of an .onnx file, by the name "
                        "the file gives it, e.g. --dim sequence=128 (repeatable; the batch "
                        "dimension takes --batch)")
    p.add_argument("--peers", type=_csv, default=(),
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
    p_roof = sub.add_parser("roofline", help="redraw the roofline plot of a saved `run`")
    p_roof.add_argument("results", help="a models results JSON written by `hwbench run`")
    p_roof.add_argument("-o", "--output", default=None, metavar="PNG",
                        help="where to write it (default: roofline-<stem>.png beside it)")
    p_train = sub.add_parser(
        "train", help="train a digits model (mlp, lenet, autoencoder) with a backend's kernels")
    p_train.add_argument("--model", required=True, help="mlp, lenet or autoencoder")
    p_train.add_argument("--backend", default="numpy", help="backend whose kernels train it")
    p_train.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    p_train.add_argument("--epochs", type=int, default=None, help="default: the model's own")
    p_train.add_argument("--threads", type=int, default=None, help="backend threads")
    p_train.add_argument("--output", default=None,
                         help="weights file to write (default: results/weights/MODEL.npz)")
    _add_tune_parser(sub)
    _add_compare_parsers(sub)
    _add_simulate_parser(sub)
    _add_sweep_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        from hwbench.harness.cli_checks import check_options

        check_options(args)  # numbers and destinations, before anything runs
        if args.command == "list":
            return cmd_list(args, console)
        if args.command == "tune":
            return cmd_tune(args, console)
        if args.command in ("compare", "report"):
            return cmd_compare(args, console) if args.command == "compare" else cmd_report(
                args, console)
        if args.command == "train":
            return cmd_train(args, console)
        if args.command == "run":
            return cmd_run(args, console)
        if args.command == "roofline":
            return cmd_roofline(args, console)
        if args.command == "simulate":
            return cmd_simulate(args, console)
        if args.command in ("sweep", "node-resources"):
            return (cmd_sweep if args.command == "sweep" else cmd_node_resources)(args, console)
        return cmd_kernels(args, console)
    except HwbenchError as exc:
        say(console, exc, "error:", "bold red")
        return 2


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


def cell(value: Any, style: str = "") -> Text:
    """A table cell shown literally (see ``say``)."""
    return Text(str(value), style=style)


def cmd_list(args: argparse.Namespace, console: Console) -> int:
    rows = list_backends()
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], indent=1))
        return 0
    table = Table(title="hwbench backends")
    for column in ("backend", "available", "devices", "versions / why not"):
        table.add_column(column)
    for row in rows:
        detail = escape(", ".join(f"{k} {v}" for k, v in row.versions.items())
                        if row.available else row.reason)  # "[cuda]" is not rich markup
        table.add_row(cell(row.name), "[green]yes[/]" if row.available else "[red]no[/]",
                      cell(", ".join(row.devices)), detail)
    console.print(table)
    return 0


def _targets(args: argparse.Namespace, known_peers: tuple[str, ...]) -> list[tuple[str, bool]]:
    """(name, is_peer) for every backend of ``--backend`` and every ``--peers`` entry."""
    targets = [(name, False) for name in expand_backends(args.backend)]
    for name in args.peers:
        if name.partition(":")[0] not in known_peers:
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
    from hwbench.harness.results.result_files import write_json_atomic
    from hwbench.harness.running import isolation
    from hwbench.harness.running.lifeline import stop_on_sigterm

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with stop_on_sigterm(), Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting workers", total=len(names) * len(jobs))
        try:
            for message in isolation.run_side_by_side(jobs, len(names), timeout, prepare):
                kind, name = message["type"], message["backend"]
                if kind == "info":
                    result["backends"][name] = message["info"]
                elif kind == "fatal":
                    say(console, message["reason"], f"{name} could not run:", "yellow")
                    result.setdefault("failed_backends", {})[name] = message["reason"]
                    progress.advance(task, len(names))
                elif kind == "start":
                    progress.update(task, description=escape(f"{name} {names[message['index']]}"))
                elif kind == "warning":  # e.g. a worker found dead between cases
                    console.print(f"[yellow]warning:[/] {escape(message['message'])}")
                    result.setdefault("warnings", []).append(message["message"])
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
            say(console, reason, f"{row['backend']} {row.get(what, '?')}:", "yellow")
    for name, count in unsupported.items():
        say(console, f"{name}: {count} case(s) not supported (see the rows' reasons)")


def cmd_kernels(args: argparse.Namespace, console: Console) -> int:
    from hwbench.harness.results.result_files import create_result_file, new_result
    from hwbench.harness.running.environment import environment
    from hwbench.harness.running.machine_state import Monitor as MachineMonitor
    from hwbench.harness.suites import kernel_suite
    from hwbench.harness.suites.peers import PEERS

    targets = _targets(args, PEERS)
    if not targets:
        console.print("[bold red]error:[/] no available backend to run (see `hwbench list`)")
        return 2
    options = {"threads": args.threads if args.threads is not None else default_threads(),
               "check_finite": not args.no_check_finite}
    env = environment()
    monitor = MachineMonitor().start()
    peak = _measure_peak(options["threads"], console) if args.peak else None
    env["fma_peak"] = peak
    result = new_result("kernels", env, shapes=args.shapes, batch=args.batch, ops=list(args.op),
                        threads=options["threads"], backends={})
    path = None if args.no_save else create_result_file(args.output, "kernels", result)
    _add_reference_workload(env, options["threads"], path, console)
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
    _finish_machine_state(result, monitor, path)
    console.print(_table(result["rows"], peak, [name for name, _ in targets]))
    _print_trust_notes(console, result)
    if path:
        say(console, f"results: {path}" + (" (interrupted: partial)" if interrupted else ""))
    _report_failures(console, result["rows"], "case")
    return 130 if interrupted else _outcome(console, result)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from hwbench.harness.results.result_files import create_result_file, new_result
    from hwbench.harness.running.environment import environment
    from hwbench.harness.running.machine_state import Monitor as MachineMonitor
    from hwbench.harness.suites import model_suite
    from hwbench.harness.suites.peers import MODEL_PEERS

    targets = _targets(args, MODEL_PEERS)
    if not targets:
        console.print("[bold red]error:[/] no available backend to run (see `hwbench list`)")
        return 2
    models = model_suite.expand_models(args.model)
    dims = dict(args.dim)
    cases = model_suite.plan(models, list(args.batch), list(args.precision), dims)
    options = {"threads": args.threads if args.threads is not None else default_threads()}
    env = environment()
    monitor = MachineMonitor().start()
    if args.roofline:  # the host CPU's FMA peak: a dashed line on the roofline
        env["fma_peak"] = _measure_peak(options["threads"], console, seconds=0.1, repeats=5)
    result = new_result("models", env, models=models, batches=list(args.batch),
                        precisions=list(args.precision), threads=options["threads"],
                        backends={})
    path = None if args.no_save else create_result_file(args.output, "models", result)
    _add_reference_workload(env, options["threads"], path, console)
    timing = {"repeats": args.repeats, "min_time": args.min_time, "max_time": args.max_time}
    jobs = [{"kind": "models", "backend": name, "peer": is_peer, "options": options,
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
                    **worker_row}

        interrupted = _drive(console, jobs, [case.name for case in cases], result, path,
                             args.timeout, make_row, prepare)
    _finish_machine_state(result, monitor, path)
    console.print(_run_table(result["rows"], [name for name, _ in targets]))
    _print_trust_notes(console, result)
    if path:
        say(console, f"results: {path}" + (" (interrupted: partial)" if interrupted else ""))
    _write_summaries(args, result["rows"], console, result.get("machine_state"))
    if args.roofline and not interrupted:
        _draw_roofline(result, path, console)
    _report_failures(console, result["rows"], "model")
    return 130 if interrupted else _outcome(console, result)


def _outcome(console: Console, result: dict[str, Any]) -> int:
    """1 when no row succeeded; else 0, saying how many did not."""
    from hwbench.harness.cli_checks import outcome

    status, message = outcome(result["rows"], result.get("failed_backends"))
    if message:
        console.print(f"[bold red]error:[/] {message}" if status else
                      f"[yellow]note:[/] {message}")
    return status


def _draw_roofline(result: dict[str, Any], results_path: Any, console: Console) -> None:
    """Print the ceilings; draw the plot beside the results file (a run without a file,
    or with nothing to place, keeps its exit status and says why there is no plot)."""
    from hwbench.harness.results.roofline import ceiling_lines, plot_roofline, roofline_path

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


def cmd_roofline(args: argparse.Namespace, console: Console) -> int:
    from hwbench.harness.results.result_files import read_result
    from hwbench.harness.results.roofline import plot_roofline, roofline_path

    result = read_result(args.results)
    plot = plot_roofline(result, args.output or roofline_path(args.results))
    say(console, f"roofline: {plot.path} ({len(plot.points)} points, "
                  f"{len(plot.ceilings)} backends with ceilings)")
    for reason in plot.skipped:
        say(console, reason, "not placed:", "yellow")
    return 0


def _write_summaries(args: argparse.Namespace, rows: list[dict[str, Any]],
                     console: Console, machine: dict[str, Any] | None = None) -> None:
    from hwbench.files import write_atomic
    from hwbench.harness.results.summary import to_csv, to_markdown

    for target, render in ((args.markdown, to_markdown), (args.csv, to_csv)):
        if target:
            text = render(rows, machine)
            write_atomic(target, lambda fh, text=text: fh.write(text))
            say(console, f"summary: {target}")


def _run_table(rows: list[dict[str, Any]], order: list[str]) -> Table:
    from hwbench.harness.results.summary import int8_drop

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
        head = tuple(cell(row.get(key, "?")) for key in ("model", "batch", "precision", "backend"))
        if row.get("status") != "ok":
            shown = "unsupported" if row.get("status") == "unsupported" else (
                cell(str(row.get("reason", ""))[:40], "red"))
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
        if row.get("inputs_cycled"):  # a batch larger than the test split repeats it
            acc += f" over {row.get('accuracy_samples')} images"
        drop = int8_drop(row, rows)
        if drop is not None:
            acc += f" ({drop:+.2f} pt vs fp32)"
        if "simulated_seconds" in row:  # a simulated accelerator: its own time beside
            sim = (f"sim {_seconds(row['simulated_seconds'])}, "
                   f"{row['simulated_tops']:.2f} TOP/s")
            acc = f"{acc}; {sim}" if acc else sim
        table.add_row(*head[:3], _flagged(row["backend"], row), p50, p99,
                      f"{row['samples_per_s']:.1f}", f"{row.get('gflops', 0):.1f}", acc, agree)
    return table


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from hwbench.backends import get_backend
    from hwbench.models import digits

    options = {} if args.threads is None else {"threads": args.threads}
    be = get_backend(args.backend, **options)
    say(console, f"training {args.model} on {be.full_name} (seed {args.seed}) ...")
    params, report = digits.train(be, args.model, seed=args.seed, epochs=args.epochs)
    output = args.output or f"results/weights/{args.model}.npz"
    meta = {"backend": be.full_name, "seed": report.seed, "epochs": report.epochs,
            report.metric_name: report.metric, "backend_info": be.info()}
    output = digits.save_params(output, args.model, params, meta, new=True)
    say(console, f"{args.model}: {report.epochs} epochs in {report.seconds:.1f} s "
                  f"({report.samples_per_second:,.0f} samples/s), final loss "
                  f"{report.losses[-1]:.4g}, test {report.metric_name} {report.metric:.4f}")
    say(console, f"weights: {output}")
    return 0


def _add_peak_fraction(row: dict[str, Any], peak: dict[str, Any] | None) -> None:
    """% of the measured CPU FMA peak, for float32 GEMM/conv rows of host-CPU backends.

    A row at more than 100 % proves the peak wrong (measured while the machine was busy):
    the peak is then marked unreliable, and so is every row that divides by one."""
    host_cpu = row.get("backend", "").split(":")[0] in ("cpu", "numpy", "torch")
    if peak and host_cpu and row.get("status") == "ok" and row["op"] in ("gemm", "conv2d"):
        row["fraction_of_peak"] = row["gflops"] / peak["gflops"]
        if row["fraction_of_peak"] > 1.0 and peak.get("reliable", True):
            peak.update(reliable=False, reason="; ".join(filter(None, [
                peak.get("reason"), f"{row['case']} on {row['backend']} ran at "
                f"{100 * row['fraction_of_peak']:.0f}% of it"])))
        if not peak.get("reliable", True):
            row["flags"] = [*row.get("flags", []), "peak-unreliable"]


def _finish_machine_state(result: dict[str, Any], monitor: Any, path: Any) -> None:
    """The run's ``machine_state`` (busy if the run's window or any row was); rows that
    divide by a peak found unreliable after they were made get their flag too."""
    from hwbench.harness.results.result_files import write_json_atomic
    from hwbench.harness.running.machine_state import merge

    monitor.stop()
    peak = (result.get("environment") or {}).get("fma_peak")
    if isinstance(peak, dict) and peak.get("reliable", True):
        _check_peak_against_ceilings(peak, result.get("backends") or {})
    if isinstance(peak, dict) and not peak.get("reliable", True):
        for row in result["rows"]:
            if "fraction_of_peak" in row and "peak-unreliable" not in row.get("flags", []):
                row["flags"] = [*row.get("flags", []), "peak-unreliable"]
    result["machine_state"] = merge(monitor.state, result["rows"])
    if path:
        write_json_atomic(path, result)


def _check_peak_against_ceilings(peak: dict[str, Any], backends: dict[str, Any]) -> None:
    """A host-CPU backend's measured GEMM ceiling above the FMA peak proves the peak low
    (the roofline would draw its 'peak' under the GEMM roofs): mark it unreliable."""
    for name, info in backends.items():
        ceilings = info.get("ceilings") if isinstance(info, dict) else None
        host = name.split(":")[0] in ("cpu", "numpy", "torch", "onnxruntime") or "CPU" in str(
            info.get("device_type", "") if isinstance(info, dict) else "")
        gflops = ceilings.get("gflops") if isinstance(ceilings, dict) else None
        if host and isinstance(gflops, (int, float)) and gflops > peak["gflops"]:
            peak.update(reliable=False, reason="; ".join(filter(None, [
                peak.get("reason"), f"{name}'s GEMM ceiling ran at "
                f"{100 * gflops / peak['gflops']:.0f}% of it"])))
            return


FLAG_MARK = "⚠"


def _flagged(text: str, row: dict[str, Any]) -> str:
    """``text`` with a visible marker when the row carries flags (listed in the notes)."""
    return f"{escape(text)} [yellow]{FLAG_MARK}[/]" if row.get("flags") else escape(text)


def _print_trust_notes(console: Console, result: dict[str, Any]) -> None:
    """The lines under a table that say which figures cannot be trusted, and why."""
    from hwbench.harness.results.summary import trust_lines

    for line in trust_lines(result.get("rows", []), result.get("machine_state"),
                            (result.get("environment") or {}).get("fma_peak")):
        console.print(f"[yellow]{FLAG_MARK} {escape(line)}[/]")


def _measure_peak(threads: int, console: Console, **how: Any) -> dict[str, Any] | None:
    """``how``: ``measure_fma_peak``'s seconds/repeats (``run`` takes a quicker look)."""
    from hwbench.harness.measure.peak import available_isas, measure_fma_peak

    if not available_isas():
        console.print("[yellow]FMA peak not measured:[/] needs x86-64 Linux")
        return None
    try:
        peak = measure_fma_peak(threads=threads, **how)
    except UnsupportedError as exc:  # e.g. executable memory refused: report, go on
        say(console, exc, "FMA peak not measured:", "yellow")
        return None
    console.print(f"measured FMA peak: {peak.gflops:.1f} GFLOP/s float32 "
                  f"({peak.threads} threads, {peak.isa}, best of {peak.repeats} trials)"
                  + ("" if peak.reliable else f" [yellow]unreliable: {escape(peak.reason)}[/]"))
    return peak.to_dict()


def _table(rows: list[dict[str, Any]], peak: dict[str, Any] | None,
           order: list[str]) -> Table:
    """One line per (case, backend), backends side by side for each case."""
    from hwbench.harness.suites.kernel_suite import OPS

    rank = {name: i for i, name in enumerate(order)}
    first_seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        first_seen.setdefault(row.get("case", ""), i)
    rows = sorted(rows, key=lambda r: (OPS.index(r["op"]) if r.get("op") in OPS else 99,
                                       first_seen.get(r.get("case", ""), 0),
                                       rank.get(r["backend"], 99)))
    table = Table(title="hwbench kernels" + (
        f" — FMA peak {peak['gflops']:.0f} GFLOP/s"
        + ("" if peak.get("reliable", True) else " (unreliable)") if peak else ""))
    modes = sorted({str(r["check_finite"]) for r in rows if r.get("check_finite")})
    if modes:  # whether any timing could include a NaN screen: none does
        table.caption = f"NaN/inf screen of the inputs: {' / '.join(modes)} (every backend)"
    for column, justify in (("backend", "left"), ("op", "left"), ("case", "left"),
                            ("median", "right"), ("spread", "right"), ("GFLOP/s", "right"),
                            ("% peak", "right"), ("GB/s", "right"), ("error", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        if row.get("status") != "ok":
            reason = str(row.get("reason", ""))
            shown = "unsupported" if reason.startswith("UnsupportedError") else (
                cell(reason[:40], "red"))
            table.add_row(cell(row["backend"]), cell(row.get("op", "?")),
                          cell(row.get("case", "?")), "—", "", "", "", "", shown)
            continue
        err = (f"{row['mismatches']} diff" if "mismatches" in row
               else f"{row['rel_error']:.1e}")
        frac = row.get("fraction_of_peak")
        table.add_row(
            _flagged(row["backend"], row), cell(row["op"]), cell(row["case"]),
            _seconds(row["seconds"]),
            f"{100 * row['timing']['spread']:.1f}%", f"{row['gflops']:.1f}",
            f"{100 * frac:.0f}%" if frac else "", f"{row['gbytes_per_s']:.1f}", err)
    return table


def _seconds(value: float) -> str:
    from hwbench.harness.running.timing import format_seconds

    return format_seconds(value)


# -- tune: kernel parameters per OpenCL device ---------------------------------------------------
def _add_tune_parser(sub: Any) -> None:
    p = sub.add_parser("tune", help="search an OpenCL device's GEMM tile parameters and "
                       "store the fastest in the per-user tuning cache")
    p.add_argument("--backend", default="opencl", help="opencl or opencl:N / opencl:NAME")
    p.add_argument("--op", choices=("gemm", "gemm_int8"), default="gemm",
                   help="which kernel's parameters: the float32 SGEMM or the exact int8 GEMM")
    p.add_argument("--size", type=int, default=1024, help="M = N = K of the timed GEMM")
    p.add_argument("--budget", type=float, default=300.0,
                   help="seconds to search at most (the defaults are always tried)")
    p.add_argument("--no-save", action="store_true", help="report only; store nothing")


def cmd_tune(args: argparse.Namespace, console: Console) -> int:
    from hwbench.backends import parse_backend_name

    base, device = parse_backend_name(args.backend)
    if base != "opencl":
        raise ArgumentError(f"argument '--backend': only opencl devices are tuned, got "
                            f"{args.backend!r}")
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


# -- compare, report: regression tracking --------------------------------------------------------
def _add_compare_parsers(sub: Any) -> None:
    p = sub.add_parser("compare", help="what got slower or less accurate between two runs "
                       "(hwbench results or pytest-benchmark JSON)")
    p.add_argument("old", help="baseline: a results JSON, pytest-benchmark JSON or storage folder")
    p.add_argument("new", help="the run to check, in the same forms")
    p.add_argument("--fail-on", action="append", default=None, metavar="METRIC:LIMIT",
                   help="exit 1 on a regression past LIMIT: median:10%% (default), "
                        "accuracy:100%% (relative error may double); repeatable")
    p.add_argument("--normalized", action="store_true",
                   help="compare times divided by each run's reference workload (for runs "
                        "from two similar machines)")
    p.add_argument("--changed", action="store_true", help="list only flagged benchmarks")
    p.add_argument("--confirm", action="append", default=None, metavar="RUN",
                   help="an independent re-run of NEW: a regression counts only if it shows "
                        "against OLD in RUN too (noisy shared machines); repeatable")
    p = sub.add_parser("report", help="Markdown and self-contained HTML report of results")
    p.add_argument("results", nargs="+", help="results JSON files, pytest-benchmark JSON or "
                   "storage folders (several runs of one benchmark give history plots)")
    p.add_argument("-o", "--output", default="report", help="folder to write into "
                   "(default: report/): report.md, report.html and the PNGs")


def _add_reference_workload(env: dict[str, Any], threads: int, path: Any,
                            console: Console) -> None:
    """Saved runs also time the fixed reference workload (`hwbench compare --normalized`)."""
    if path is None:
        return
    from hwbench.harness.measure.reference_workload import measure_reference_isolated

    env["reference_workload"] = ref = measure_reference_isolated(threads)
    console.print(f"reference workload: {ref['gemm']['gflops']:.1f} GFLOP/s (sgemm 512³), "
                  f"{ref['stream']['gbytes_per_s']:.1f} GB/s (add)")


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    from hwbench.harness.results import compare

    result = compare.compare_paths(args.old, args.new, args.fail_on, args.normalized,
                                   args.confirm)
    console.print(compare.table(result, "changed" if args.changed else "all"))
    for line in compare.summary_lines(result):
        loud = any(word in line for word in ("DIFFERENT", "INCONCLUSIVE", "UNDECIDED",
                                             "INVALID"))
        console.print(line, style="yellow" if loud else None, markup=False)
    if result.failed:
        console.print(f"[bold red]FAIL:[/] {escape(result.failure_text())}")
        return 1
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from hwbench.harness.results.report import write_report

    report = write_report(args.results, args.output)
    say(console, f"report: {report.markdown} and {report.html} ({len(report.images)} plots)")
    for note in report.notes:
        say(console, note, "note:", "yellow")
    return 0


# -- simulate: the systolic accelerator's timing model ---------------------------------------------
SIMULATE_HELP = """Simulate a workload on a systolic-array accelerator (the systolic backend's
analytic timing model) and write COMPUTE_REPORT.csv (SCALE-Sim's columns first) and
simulate.json under OUTPUT/simulate/. The workload is a SCALE-Sim topology CSV or a model
(zoo name or .onnx); the machine a preset or a SCALE-Sim .cfg file."""


def _add_simulate_parser(sub: Any) -> None:
    from hwbench.backends.systolic.config import PRESETS

    p = sub.add_parser("simulate", help="simulate a model or a SCALE-Sim topology on a "
                       "systolic array (cycles, utilization, memory traffic)",
                       description=SIMULATE_HELP)
    p.add_argument("--config", default="tpu-v1",
                   help=f"a preset ({', '.join(PRESETS)}) or a SCALE-Sim .cfg file")
    workload = p.add_mutually_exclusive_group(required=True)
    workload.add_argument("--topology", metavar="CSV", help="a SCALE-Sim topology CSV")
    workload.add_argument("--model", metavar="NAME|FILE.onnx", help="a zoo model or .onnx")
    p.add_argument("--batch", type=int, default=1, help="batch size of --model (default 1)")
    p.add_argument("--dim", type=_dim, action="append", default=[], metavar="NAME=SIZE",
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


def cmd_simulate(args: argparse.Namespace, console: Console) -> int:
    from hwbench.backends.systolic.config import load_config
    from hwbench.harness.suites import simulate

    if args.batch < 1:
        raise ArgumentError(f"argument '--batch' must be >= 1, got {args.batch}")
    config = load_config(args.config).with_overrides(dataflow=args.dataflow, array=args.array)
    sim = simulate.run_simulation(config, topology=args.topology, model=args.model,
                                  batch=args.batch, dims=dict(args.dim) or None)
    if args.compare:
        simulate.compare_with_scalesim(sim, args.compare)
    console.print(simulate.layer_table(sim))
    s = sim.summary
    say(
        console, f"{sim.workload} on {config.name} ({s['array']}, {s['dataflow']}, "
        f"{config.clock_hz / 1e6:g} MHz): {s['cycles']:,} cycles = {_seconds(s['seconds'])}, "
        f"{s['tops']:.2f} of {s['peak_tops']:.1f} TOP/s peak, utilization "
        f"{100 * s['utilization']:.1f} %; simulated in {sim.simulation_seconds * 1e3:.1f} ms")
    if sim.comparison:
        console.print(simulate.comparison_table(sim))
    if not args.no_save:
        csv_path, json_path = simulate.write_reports(sim, args.output)
        say(console, f"reports: {csv_path} and {json_path}")
    return 0


# -- sweep: grids of points on Ray or local processes ---------------------------------------------
SWEEP_HELP = """Run every point of a grid (a TOML spec and/or --set TABLE.KEY=VALUE) as one task:
[simulate] grids of systolic-array configurations x workloads, [run] grids of backends x
models x batches x precisions. With Ray installed the points run on a local Ray instance, or
on the cluster at --address / RAY_ADDRESS, each where its hardware is; without Ray, in local
processes. Writes OUTPUT/sweep-NAME.json as points finish (--resume skips finished ones),
a CSV and Markdown summary, and for simulator points pareto-NAME.png. See README "Sweeps"."""


def _add_sweep_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a grid of simulate/run points on Ray (or local "
                       "processes), resumable", description=SWEEP_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", default=None, help="the sweep spec (TOML)")
    p.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   dest="overrides", help="set or override a spec key, the value in TOML, "
                   "e.g. --set \"simulate.arrays=['64x64','128x128']\" (repeatable)")
    p.add_argument("--address", default=None, metavar="ray://HOST:PORT",
                   help="an existing Ray cluster (default: RAY_ADDRESS, else a local instance)")
    p.add_argument("--resume", action="store_true",
                   help="continue OUTPUT/sweep-NAME.json: skip the points it has finished")
    p.add_argument("--output", default="results", help="folder for the results (default: "
                   "results/)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds one point may run (default: the spec's, else 600)")
    p.add_argument("--workers", type=int, default=None,
                   help="local processes / local Ray CPUs (default: every core)")
    p.add_argument("--executor", choices=("auto", "ray", "local"), default="auto",
                   help="auto: Ray if installed, else local processes")
    p.add_argument("--no-plot", action="store_true", help="skip the Pareto PNG")
    sub.add_parser("node-resources", help="this machine's backends as Ray custom resources "
                   "(JSON for `ray start --resources`)")


def cmd_sweep(args: argparse.Namespace, console: Console) -> int:
    from hwbench.harness.sweep import report as sweep_report
    from hwbench.harness.sweep.runner import RichProgress, run_sweep
    from hwbench.harness.sweep.spec import load_spec

    spec = load_spec(args.spec, args.overrides)
    say(console, f"sweep {spec.name}: {len(spec.points)} points")
    progress = RichProgress(console)
    try:
        run = run_sweep(spec, args.output, resume=args.resume, executor=args.executor,
                        address=args.address, workers=args.workers, timeout=args.timeout,
                        progress=progress)
    finally:
        progress.stop()
    payload, path = run.results.payload, run.results.path
    counts = {status: sum(r.get("status") == status for r in payload["rows"])
              for status in ("ok", "refused", "failed")}
    console.print(f"{run.executor}: {run.completed} point(s) run, {run.skipped} "
                  f"finished before, in {run.wall_seconds:.1f} s; all {len(payload['rows'])}: "
                  f"{counts['ok']} ok, "
                  f"{counts['refused']} refused, {counts['failed']} failed"
                  + (f", {run.retried} retried" if run.retried else ""))
    for note in run.notes:
        say(console, note, "note:", "yellow")
    for label in run.failed:
        say(console, label, "failed:", "red")
    say(console, f"results: {path}" + (" (interrupted: --resume continues it)"
                                         if run.interrupted else ""))
    for summary in sweep_report.write_summaries(payload, path):
        say(console, f"summary: {summary}")
    if not args.no_plot:
        plot = sweep_report.plot_pareto(payload, sweep_report.pareto_path(path))
        if plot:
            say(console, f"pareto: {plot}")
    if not run.interrupted and payload["rows"] and not counts["ok"]:
        console.print("[bold red]error:[/] nothing ran: no point succeeded")
    return 130 if run.interrupted else (1 if counts["failed"] or not counts["ok"] else 0)


def cmd_node_resources(args: argparse.Namespace, console: Console) -> int:
    from hwbench.harness.sweep.point import node_resources

    print(json.dumps(node_resources()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
