"""``hwbench roofline``: redraw the roofline plot of a saved ``hwbench run``."""

from __future__ import annotations

import argparse
from typing import Any

from hwbench.cli.options import make_console, say
from hwbench.harness.results.result_files import read_result
from hwbench.harness.results.roofline import plot_roofline, roofline_path


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("roofline", help="redraw the roofline plot of a saved `run`")
    p.add_argument("results", help="a models results JSON written by `hwbench run`")
    p.add_argument("-o", "--output", default=None, metavar="PNG",
                   help="where to write it (default: roofline-<stem>.png beside it)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    result = read_result(args.results)
    plot = plot_roofline(result, args.output or roofline_path(args.results))
    say(console, f"roofline: {plot.path} ({len(plot.points)} points, "
                 f"{len(plot.ceilings)} backends with ceilings)")
    for reason in plot.skipped:
        say(console, reason, "not placed:", "yellow")
    return 0
