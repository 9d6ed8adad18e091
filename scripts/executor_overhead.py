"""The harness's own cost per op (issue 16): a graph of N trivial ops on each backend,
``Session.run`` (the compiled plan, and the normal path) minus the bare kernels.

    python scripts/executor_overhead.py [--ops 200] [--backends numpy,cpu,...] [--json F]

Prints one row per backend (µs per op); the machine may be busy: compare the columns of
one run, not runs on different days.
"""

from __future__ import annotations

import argparse
import json
import sys

from hwbench.backends import backend_names
from hwbench.errors import HwbenchError
from hwbench.harness.measure.executor_overhead import DEFAULT_OPS, measure_overhead
from hwbench.pytest_plugin import availability


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=DEFAULT_OPS)
    parser.add_argument("--backends", default=",".join(backend_names("known")))
    parser.add_argument("--loops", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'backend':12s} {'ops':>5s} {'bare µs/op':>11s} {'plan +µs/op':>12s} "
          f"{'normal +µs/op':>14s}")
    for name in args.backends.split(","):
        ok, why = availability(name)
        if not ok:
            print(f"{name:12s} skipped: {why}")
            continue
        try:
            row = measure_overhead(name, args.ops, loops=args.loops, repeats=args.repeats)
        except HwbenchError as exc:
            print(f"{name:12s} failed: {exc}")
            continue
        rows.append(row)
        print(f"{name:12s} {row['ops']:5d} {row['bare_us_per_op']:11.2f} "
              f"{row['plan_overhead_us_per_op']:12.2f} {row['normal_overhead_us_per_op']:14.2f}",
              flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
