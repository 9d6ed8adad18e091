"""Whole models on opencl with the packed GEMM's newer paths off (A) and on (B), and cpu,
in one process taking turns run by run (issue 16): the stride-2 phase split
(``phases.py``) and the per-launch work-item blocks (``blocking.py``).

    PYTHONPATH=. python scripts/opencl_gemm_models_ab.py --models resnet50 --batch 1,8
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hwbench.backends import get_backend
from hwbench.models import load_model
from hwbench.models.sample_inputs import batch_feeds
from hwbench.models.session import Session


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,efficientnet_b0,mobilenet_v2,densenet121")
    ap.add_argument("--batch", default="1,8")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    print(f"{'model':18s} {'b':>2s} {'A ms':>8s} {'B ms':>8s} {'cpu ms':>8s} {'A/B':>5s} "
          f"{'cpu/A':>6s} {'cpu/B':>6s} {'max|B-A|':>9s}   (median of {args.reps})")
    for name in args.models.split(","):
        for batch in (int(b) for b in args.batch.split(",")):
            model = load_model(name, batch=batch)
            feeds, _ = batch_feeds(model.graph, batch, seed=0)
            before = get_backend("opencl", check_finite=False)
            before.gemm_engine.phase_split = False
            before.gemm_engine.fit_blocks = 0
            sessions = [Session(model, before), Session(model, "opencl"), Session(model, "cpu")]
            outs = [s.run(feeds) for s in sessions]
            a, b = (np.asarray(o[0]) for o in outs[:2])
            times: list[list[float]] = [[], [], []]
            for rep in range(args.reps):
                # A and B take turns being the one run right after cpu (colder caches)
                for i in ((0, 1, 2) if rep % 2 == 0 else (1, 0, 2)):
                    start = time.perf_counter()
                    sessions[i].run(feeds)
                    times[i].append(time.perf_counter() - start)
            ta, tb, tc = (float(np.median(t)) * 1e3 for t in times)
            print(f"{name:18s} {batch:2d} {ta:8.1f} {tb:8.1f} {tc:8.1f} {ta / tb:5.2f} "
                  f"{tc / ta:6.2f} {tc / tb:6.2f} {float(np.max(np.abs(b - a))):9.1e}",
                  flush=True)
            del sessions


if __name__ == "__main__":
    main()
