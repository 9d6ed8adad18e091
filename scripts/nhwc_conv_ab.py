"""One conv (with its post-op) in oneDNN's blocked nChw16c against NHWC ("acdb"), per
shape, alternating in one process on buffers already in each layout (issue 16:
EfficientNet-B0's and MobileNet v3's depthwise and 1×1 convs at batch 1).

    PYTHONPATH=. python scripts/nhwc_conv_ab.py [--threads 2] [--repeats 200] [--batch 1]
        [SHAPE ...]

A SHAPE is ``in,size,out,kernel,stride,groups,activation`` (groups 0: depthwise; default:
B0's and MobileNet v3's large-spatial convs). Threads spin (``OMP_WAIT_POLICY=ACTIVE``
unless set). Prints µs per call (one thread: the calling thread's CPU seconds, more: the
clock, medians), NHWC÷blocked and the implementation oneDNN chose for each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

SHAPES = [
    # EfficientNet-B0
    "32,112,32,3,1,0,silu", "32,112,16,1,1,1,", "16,112,96,1,1,1,silu",
    "96,112,96,3,2,0,silu", "96,56,24,1,1,1,", "24,56,144,1,1,1,silu",
    "144,56,144,3,1,0,silu", "144,56,24,1,1,1,", "144,56,144,5,2,0,silu",
    "144,28,40,1,1,1,", "40,28,240,1,1,1,silu", "240,28,240,5,1,0,silu",
    "80,14,480,1,1,1,silu", "480,14,480,3,1,0,silu", "672,14,672,5,1,0,silu",
    # MobileNet v3 large
    "16,112,16,3,1,0,relu", "16,112,64,1,1,1,relu", "64,112,64,3,2,0,relu",
    "24,56,72,1,1,1,relu", "72,56,72,3,1,0,relu", "72,56,72,5,2,0,relu",
    "40,28,240,1,1,1,hardswish", "240,28,240,3,2,0,hardswish",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shapes", nargs="*", default=SHAPES)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")
    from hwbench.backends.cpu import onednn
    from hwbench.backends.cpu.onednn import ARG_BIAS, ARG_DST, ARG_SRC, ARG_WEIGHTS
    from hwbench.backends.cpu.primitives import Conv
    from hwbench.kernels import spec

    d = onednn.load()
    d.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    total = {"blocked": 0.0, "nhwc": 0.0}
    for shape in args.shapes:
        c, size, k, r, stride, groups, act = shape.split(",")
        c, size, k, r, stride, groups = (int(v) for v in (c, size, k, r, stride, groups))
        pad = r // 2
        p = spec.ConvProblem(args.batch, c, size, size, k, r, r, (stride, stride),
                             (pad, pad, pad, pad), groups=groups or c, has_bias=True)
        calls, impls = {}, {}
        for layout in total:
            conv = Conv(d, p, layout, None, act or None)
            mds = conv.prim.mds
            bufs = {a: (rng.standard_normal(mds[a].size // 4) * 0.3).astype(np.float32)
                    for a in (ARG_SRC, ARG_WEIGHTS)}
            bufs[ARG_BIAS] = rng.standard_normal(k).astype(np.float32)
            bufs[ARG_DST] = np.zeros(mds[ARG_DST].size // 4, np.float32)
            calls[layout] = (conv.prim, bufs)
            impls[layout] = conv.impl
        times: dict[str, list[float]] = {name: [] for name in calls}
        order = list(calls)
        for i in range(args.repeats):
            for name in order[::1 if i % 2 else -1]:
                prim, bufs = calls[name]
                t = clock()
                prim.execute(bufs)
                times[name].append(clock() - t)
        med = {name: statistics.median(v) * 1e6 for name, v in times.items()}
        for name in total:
            total[name] += med[name]
        print(f"{shape:28s} blocked {med['blocked']:7.1f}  nhwc {med['nhwc']:7.1f} µs  "
              f"nhwc÷blocked {med['nhwc'] / med['blocked']:4.2f}  "
              f"({impls['blocked']} | {impls['nhwc']})", flush=True)
    print(f"sum: blocked {total['blocked']:.0f} µs, nhwc {total['nhwc']:.0f} µs, "
          f"ratio {total['nhwc'] / total['blocked']:.2f}")


if __name__ == "__main__":
    main()
