"""``hwbench compare``: what got slower or less accurate between two runs."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape

from hwbench.cli.options import make_console
from hwbench.harness.results import compare

# Summary words that deserve the reader's eye (printed in yellow).
LOUD_WORDS = ("DIFFERENT", "INCONCLUSIVE", "UNDECIDED", "INVALID")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("compare", help="what got slower or less accurate between two "
                              "runs (hwbench results or pytest-benchmark JSON)")
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    result = compare.compare_paths(args.old, args.new, args.fail_on, args.normalized,
                                   args.confirm)
    console.print(compare.table(result, "changed" if args.changed else "all"))
    for line in compare.summary_lines(result):
        loud = any(word in line for word in LOUD_WORDS)
        console.print(line, style="yellow" if loud else None, markup=False)
    if result.failed:
        console.print(f"[bold red]FAIL:[/] {escape(result.failure_text())}")
        return 1
    return 0
