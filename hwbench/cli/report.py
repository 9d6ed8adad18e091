"""``hwbench report``: a Markdown and self-contained HTML report of saved results."""

from __future__ import annotations

import argparse
from typing import Any

from hwbench.cli.options import make_console, say
from hwbench.harness.results.report import write_report


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="Markdown and self-contained HTML report of "
                              "results")
    p.add_argument("results", nargs="+", help="results JSON files, pytest-benchmark JSON or "
                   "storage folders (several runs of one benchmark give history plots)")
    p.add_argument("-o", "--output", default="report", help="folder to write into "
                   "(default: report/): report.md, report.html and the PNGs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = make_console()
    report = write_report(args.results, args.output)
    say(console, f"report: {report.markdown} and {report.html} ({len(report.images)} plots)")
    for note in report.notes:
        say(console, note, "note:", "yellow")
    return 0
