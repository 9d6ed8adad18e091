"""``hwbench node-resources``: this machine's backends as Ray custom resources."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hwbench.harness.sweep.point import node_resources


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("node-resources", help="this machine's backends as Ray custom "
                              "resources (JSON for `ray start --resources`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(node_resources()))
    return 0
