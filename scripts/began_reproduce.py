"""Reproduce the BEGAN's shipped metrics from seed 0 on each backend given.

Trains with ``hwbench train --model began``'s defaults (``began.Config()``) on every
backend, then checks each run's FID and digits made (LeNet, >= 5 % of 1,000 images)
against the shipped weights' metadata within the stated tolerance (``--fid-tolerance``,
default 15 % of the shipped FID; ``--classes-tolerance``, default 1 digit fewer), and on
``numpy`` the weights themselves against the shipped ones. Backends round float32
differently and a GAN amplifies that, so their weights differ while their metrics land
near each other (seed 0: numpy FID 37.9, cpu 35.4, both all ten digits; cpu's oneDNN
need not repeat its own bits either). A run takes about 80 s of CPU time per backend
with one thread (4-5 min of wall time on the busy 2-core VM).

    python scripts/began_reproduce.py --backends numpy,cpu
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from hwbench.backends import get_backend
from hwbench.models import began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="backend threads (1: these GEMMs are small)")
    parser.add_argument("--fid-tolerance", type=float, default=0.15,
                        help="allowed FID rise over the shipped one, as a fraction")
    parser.add_argument("--classes-tolerance", type=int, default=1,
                        help="allowed shortfall in digits made")
    args = parser.parse_args()
    shipped = began.load_meta()["metrics"]["generated"]
    gen, disc = began.load()
    shipped_params = gen + disc
    failed = False
    for name in args.backends.split(","):
        be = get_backend(name, threads=args.threads)
        params, report = began.train(be, seed=args.seed)
        made = report.metrics["generated"]
        ok = (made["fid"] <= shipped["fid"] * (1.0 + args.fid_tolerance)
              and made["classes_made"] >= shipped["classes_made"] - args.classes_tolerance)
        line = (f"{name}: {report.seconds:.0f} s, {report.samples_per_second:,.0f} samples/s; "
                f"FID {made['fid']:.1f} (shipped {shipped['fid']:.1f}), digits made "
                f"{made['classes_made']} (shipped {shipped['classes_made']}), class entropy "
                f"{made['class_entropy_bits']:.2f} bits "
                f"(shipped {shipped['class_entropy_bits']:.2f})")
        if name == "numpy" and args.seed == 0:
            diff = max(float(np.abs(a - b).max())
                       for pa, pb in zip(params, shipped_params, strict=True)
                       for a, b in zip(pa, pb, strict=True))
            line += f"; largest weight difference from the shipped {diff:.2g}"
        print(("ok   " if ok else "FAIL ") + line, flush=True)
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
