"""Reproduce the translator's shipped metrics from seed 0 on each backend given.

Trains with ``hwbench train``'s defaults (``translator.Config()``) on every backend, then
checks each run's test exact match and character error rate against the shipped
weights' within the stated tolerance (``--tolerance``, default one point of exact match
and CER), and on ``numpy`` the weights themselves against the shipped ones. Backends
round float32 differently, so their weights differ while their metrics agree. A run takes
about a minute per backend on a 2-core machine.

    python scripts/translator_reproduce.py --backends numpy,cpu
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from hwbench.backends import get_backend
from hwbench.models import translator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=0.01)
    args = parser.parse_args()
    shipped_params = translator.load_params()
    failed = False
    for name in args.backends.split(","):
        be = get_backend(name)
        shipped = translator.evaluate(be, shipped_params)
        params, report = translator.train(be, seed=args.seed)
        s = report.scores
        ok = (abs(s.exact_match - shipped.exact_match) <= args.tolerance
              and abs(s.cer - shipped.cer) <= args.tolerance)
        line = (f"{name}: {report.seconds:.0f} s, {report.samples_per_second:,.0f} samples/s; "
                f"exact match {s.exact_match:.4f} (shipped {shipped.exact_match:.4f}), "
                f"CER {s.cer:.4f} (shipped {shipped.cer:.4f})")
        if name == "numpy" and args.seed == 0:
            diff = max(float(np.abs(params[k] - shipped_params[k]).max()) for k in params)
            line += f"; largest weight difference from the shipped {diff:.2g}"
        print(("ok   " if ok else "FAIL ") + line, flush=True)
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
