"""The ``hwbench`` command, one module per subcommand:

- ``list`` (``list_backends``): every backend, available or why not, with versions;
- ``kernels``: time every kernel at DeepBench / ResNet-50 / small shapes;
- ``run``: whole models on every backend, throughput and accuracy;
- ``roofline``: redraw the roofline plot of a saved ``run``;
- ``train``: train a digits model with one backend's kernels;
- ``tune``: search an OpenCL device's GEMM parameters;
- ``compare``: what got slower or less accurate between two runs;
- ``report``: Markdown and HTML report of saved results;
- ``simulate``: a workload on the systolic accelerator's timing model;
- ``sweep``: a grid of simulate/run points on Ray or local processes;
- ``node-resources`` (``node_resources``): this machine's backends as Ray resources.

Each module's ``add_parser`` sets its ``run`` as the parser's ``func``; ``main`` checks the
options (``checks``) and calls it. The measuring, saving and rendering live in the harness.
"""

from __future__ import annotations

import argparse

from hwbench.cli import (
    compare,
    kernels,
    list_backends,
    node_resources,
    report,
    roofline,
    run,
    simulate,
    sweep,
    train,
    tune,
)
from hwbench.cli.checks import check_options
from hwbench.cli.options import make_console, say
from hwbench.errors import HwbenchError
from hwbench.version import __version__

# In the order ``hwbench --help`` lists them.
COMMANDS = (list_backends, kernels, run, roofline, train, tune, compare, report, simulate,
            sweep, node_resources)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwbench",
        description="Deep-learning kernels on many backends, measured side by side.")
    parser.add_argument("--version", action="version", version=f"hwbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_options(args)  # numbers and destinations, before anything runs
        return args.func(args)
    except HwbenchError as exc:
        say(make_console(), exc, "error:", "bold red")
        return 2
