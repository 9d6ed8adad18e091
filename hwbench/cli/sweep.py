"""``hwbench sweep``: every point of a grid as one task, on Ray or in local processes."""

from __future__ import annotations

import argparse
from typing import Any

from hwbench.cli.options import make_console, say
from hwbench.harness.sweep import report as sweep_report
from hwbench.harness.sweep import runner
from hwbench.harness.sweep.spec import load_spec

HELP = """Run every point of a grid (a TOML spec and/or --set TABLE.KEY=VALUE) as one task:
[simulate] grids of systolic-array configurations x workloads, [run] grids of backends x
models x batches x precisions. With Ray installed the points run on a local Ray instance, or
on the cluster at --address / RAY_ADDRESS, each where its hardware is; without Ray, in local
processes. Writes OUTPUT/sweep-NAME.json as points finish (--resume skips finished ones),
a CSV and Markdown summary, and for simulator points pareto-NAME.png. See README "Sweeps"."""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("sweep", help="run a grid of simulate/run points on Ray (or "
                              "local processes), resumable", description=HELP,
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    spec = load_spec(args.spec, args.overrides)
    say(console, f"sweep {spec.name}: {len(spec.points)} points")
    progress = runner.RichProgress(console)
    try:
        done = runner.run_sweep(spec, args.output, resume=args.resume, executor=args.executor,
                                address=args.address, workers=args.workers,
                                timeout=args.timeout, progress=progress)
    finally:
        progress.stop()
    payload, path = done.results.payload, done.results.path
    counts = {status: sum(r.get("status") == status for r in payload["rows"])
              for status in ("ok", "refused", "failed")}
    console.print(f"{done.executor}: {done.completed} point(s) run, {done.skipped} "
                  f"finished before, in {done.wall_seconds:.1f} s; all {len(payload['rows'])}: "
                  f"{counts['ok']} ok, "
                  f"{counts['refused']} refused, {counts['failed']} failed"
                  + (f", {done.retried} retried" if done.retried else ""))
    for note in done.notes:
        say(console, note, "note:", "yellow")
    for label in done.failed:
        say(console, label, "failed:", "red")
    say(console, f"results: {path}" + (" (interrupted: --resume continues it)"
                                        if done.interrupted else ""))
    for summary in sweep_report.write_summaries(payload, path):
        say(console, f"summary: {summary}")
    if not args.no_plot:
        plot = sweep_report.plot_pareto(payload, sweep_report.pareto_path(path))
        if plot:
            say(console, f"pareto: {plot}")
    if not done.interrupted and payload["rows"] and not counts["ok"]:
        console.print("[bold red]error:[/] nothing ran: no point succeeded")
    return 130 if done.interrupted else (1 if counts["failed"] or not counts["ok"] else 0)
