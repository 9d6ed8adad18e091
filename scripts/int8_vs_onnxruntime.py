"""int8 models on hwbench's cpu backends beside onnxruntime, in one process (issue 16).

    python scripts/int8_vs_onnxruntime.py MODEL.onnx [...] [--backends cpu:float32-requant,cpu]
        [--threads 2] [--repeats 7] [--profile]

Each file (a QDQ or QOperator model, e.g. from onnxruntime's ``quantize_static``; its one
input fed N(0, 1) at its static shape) runs on onnxruntime's CPU provider and on each
backend as ``hwbench run`` runs it (a ``Session``: channels-last int8 activations, the
mode's fusions, no per-op NaN screen; the compiled plan), median of ``--repeats`` runs
after one warm-up; prints milliseconds and hwbench's speed ÷ onnxruntime's.
``--profile`` adds seconds per op type (the plain executor path, op by op). The machine
may be busy:
compare the columns of one run, not runs from different times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial

import numpy as np


def _median_s(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--backends", default="cpu:float32-requant,cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    import onnxruntime as ort

    from hwbench.models.session import Session

    print(f"load average {os.getloadavg()[0]:.1f} (busy machine: compare within a row)")
    for path in args.models:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0]
        x = np.random.default_rng(0).standard_normal(feed.shape).astype(np.float32)
        t_ort = _median_s(partial(session.run, None, {feed.name: x}), args.repeats)
        row = [os.path.basename(path), f"onnxruntime {t_ort * 1e3:.1f} ms"]
        for name in args.backends.split(","):
            # a Session, as ``hwbench run`` times it: the mode's fusions (QLinearConvAdd...)
            hw = Session(path, name, threads=args.threads, profile=args.profile)
            executor = hw.executor
            t = _median_s(partial(hw.run, {feed.name: x}), args.repeats)
            row.append(f"{name} {t * 1e3:.1f} ms ({t_ort / t:.2f}x)")
            if args.profile:
                runs = args.repeats + 1
                top = sorted(executor.op_seconds.items(), key=lambda kv: -kv[1])[:8]
                print(f"  {name}: " + ", ".join(f"{k} {v / runs * 1e3:.2f} ms"
                                                for k, v in top))
        print(" | ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
