"""SiLU on EfficientNet-B0's convolutions: oneDNN's ``eltwise_swish`` post-op against the
conv without it followed by a standalone in-place ``eltwise_swish`` over its blocked output
(issue 16: would a separate jit eltwise pass vectorise better than the post-op?).

    PYTHONPATH=. python scripts/silu_post_op_ab.py [--threads 1] [--repeats 40]

Both forms alternate in one process, per layer shape (batch 1); one thread is timed by
the calling thread's CPU seconds, two by the clock. Prints µs per call of the fused conv,
the split pair and the conv alone, and whether the two forms agree bit for bit.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.onednn import ARG_BIAS, ARG_DST, ARG_SRC, ARG_WEIGHTS, Primitive
from hwbench.backends.cpu.primitives import ONEDNN_ACTIVATIONS, Conv
from hwbench.kernels import spec

# (in channels, input size, out channels, kernel, stride, groups): the SiLU convs of B0
SHAPES = [(3, 224, 32, 3, 2, 1), (32, 112, 32, 3, 1, 32), (16, 112, 96, 1, 1, 1),
          (96, 112, 96, 3, 2, 96), (24, 56, 144, 1, 1, 1), (144, 56, 144, 3, 1, 144),
          (144, 56, 144, 5, 2, 144), (40, 28, 240, 1, 1, 1), (240, 28, 240, 3, 2, 240),
          (80, 14, 480, 1, 1, 1), (480, 14, 480, 3, 1, 480), (192, 7, 1152, 1, 1, 1),
          (320, 7, 1280, 1, 1, 1)]


def swish_in_place(d: onednn.OneDNN, md: onednn.MemoryDesc) -> Primitive:
    """``eltwise_swish`` over a buffer of descriptor ``md`` (the conv's blocked dst)."""
    alg, alpha, beta = ONEDNN_ACTIVATIONS["silu"]
    attr = d.attr()  # alive until the descriptor is made
    pd = d.create_pd("dnnl_eltwise_forward_primitive_desc_create", d.engine,
                     d.prop["forward_inference"], d.alg[alg], md.handle, md.handle,
                     alpha, beta, attr.handle)
    return Primitive(d, pd, {ARG_SRC: md, ARG_DST: md})


def split(conv: Primitive, swish: Primitive, buffers: dict, dst: dict) -> None:
    """The conv without its activation, then the swish over its output in place."""
    conv.execute(buffers)
    swish.execute(dst)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=40)
    args = p.parse_args()
    d = onednn.load()
    d.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    totals = np.zeros(3)
    for c, h, k, r, s, g in SHAPES:
        prob = spec.ConvProblem(1, c, h, h, k, r, r, (s, s), (r // 2,) * 4, groups=g,
                                has_bias=True)
        fused = Conv(d, prob, "blocked", None, "silu")
        plain = Conv(d, prob, "blocked", None, None, dst_like=fused)
        swish = swish_in_place(d, fused.prim.mds[ARG_DST])
        bf = {arg: rng.standard_normal(fused.prim.mds[arg].size // 4).astype(np.float32)
              for arg in (ARG_SRC, ARG_WEIGHTS, ARG_DST)}
        bf[ARG_BIAS] = rng.standard_normal(k).astype(np.float32)
        bp = {arg: v.copy() for arg, v in bf.items()}
        dst = {ARG_SRC: bp[ARG_DST], ARG_DST: bp[ARG_DST]}
        forms = (partial(fused.prim.execute, bf),
                 partial(split, plain.prim, swish, bp, dst),
                 partial(plain.prim.execute, bp))
        for form in forms[:2]:
            form()
        same = np.array_equal(bf[ARG_DST], bp[ARG_DST])
        times: list[list[float]] = [[], [], []]
        for _ in range(args.repeats):
            for j, form in enumerate(forms):
                t = clock()
                form()
                times[j].append(clock() - t)
        med = np.array([statistics.median(t) * 1e6 for t in times])
        totals += med
        print(f"{c:4d}->{k:4d} {r}x{r}/{s} g{g:<4d} @{h:3d}: post-op {med[0]:7.1f}  split "
              f"{med[1]:7.1f}  conv alone {med[2]:7.1f} µs  split÷post-op "
              f"{med[1] / med[0]:4.2f}  bit for bit {same}  ({fused.impl})", flush=True)
    print(f"all: post-op {totals[0]:.0f}  split {totals[1]:.0f}  conv alone {totals[2]:.0f} "
          f"µs  split÷post-op {totals[1] / totals[0]:.3f}")


if __name__ == "__main__":
    main()
