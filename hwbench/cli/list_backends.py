"""``hwbench list``: every backend, available or why not, with its versions."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.markup import escape
from rich.table import Table

from hwbench.backends import list_backends
from hwbench.cli.options import cell, make_console


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("list", help="show every backend: available or why not, "
                              "versions")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
    make_console().print(table)
    return 0
