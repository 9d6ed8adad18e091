"""EfficientNet-B0's squeeze-and-excitation pool and gate Mul on nChw16c, form by form
(issue 16: onnxruntime's GlobalAveragePool and gate Mul cost less at batch 1).

    PYTHONPATH=. python scripts/se_block_ab.py [--threads 1] [--repeats 40]

Per SE shape (batch 1), the forms alternate in one process, each on its own buffers;
one thread is timed by the calling thread's CPU seconds, two by the clock. Pool:
oneDNN's average pooling with the whole image as its kernel (``whole``, what the cpu
backend runs), the same average as two poolings, down the columns (kernel (H, 1)) then
along the row left (``split``), and as a batched matmul of a 1/HW row by each channel
block's (HW, 16) pixels (``matmul``). Mul: the blocked binary into a fresh buffer
(``out``) and in place into the activation (``in place``, ``cpu/binary_in_place.py``).
Prints µs per call (least of the repeats) and each pool's largest difference from the
float64 mean. Every form reads data the last repeats left in cache: a model's steps
read what the step before wrote, a larger share from memory.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.blocked_ops import BlockedBinary
from hwbench.backends.cpu.bound_primitive import BoundPrimitive
from hwbench.backends.cpu.layouts import BLOCKED_TAG
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_SRC_1, ARG_WEIGHTS
from hwbench.backends.cpu.primitives import build_pooling
from hwbench.backends.cpu.reductions import build_matmul
from hwbench.kernels import spec

# (channels, size) at each SE block of B0 (each shape once)
SHAPES = [(32, 112), (96, 56), (144, 56), (144, 28), (240, 28), (240, 14), (480, 14),
          (672, 14), (672, 7), (1152, 7)]
FORMS = ("whole", "split", "matmul", "out", "in place")


def pool(d: onednn.OneDNN, c: int, h: int, w: int, kernel: tuple[int, int]) -> Callable:
    """``run(src address, dst address)``: average pooling of (1, c, h, w) nChw16c with
    ``kernel`` as its stride too."""
    p = spec.PoolProblem(1, c, h, w, kernel, kernel, kind="avg")
    return BoundPrimitive(build_pooling(d, p, BLOCKED_TAG), {}, (ARG_SRC, ARG_DST)).runner()


def forms(d: onednn.OneDNN, c: int, h: int, rng: np.random.Generator) -> tuple[list, list]:
    """The five forms' calls for one shape, and the pools' outputs with the float64 mean
    (to check; they also keep every buffer the calls write alive)."""
    cp, hw = -(-c // 16) * 16, h * h
    x = rng.standard_normal(cp * hw).astype(np.float32)
    outs = [np.empty(cp, np.float32) for _ in range(3)]
    mid = np.empty(cp * h, np.float32)
    ax, am = x.ctypes.data, mid.ctypes.data
    whole, col, row = pool(d, c, h, h, (h, h)), pool(d, c, h, h, (h, 1)), pool(d, c, 1, h, (1, h))
    mm = build_matmul(d, (1, 1, hw), (cp // 16, hw, 16), (cp // 16, 1, 16))
    mean = np.full(hw, 1.0 / hw, np.float32)
    matmul = BoundPrimitive(mm, {ARG_SRC: mean}, (ARG_WEIGHTS, ARG_DST)).runner()
    mul = BlockedBinary(d, "binary_mul", (1, c, h, h), (1, c, 1, 1))
    gate = rng.standard_normal(cp).astype(np.float32)
    gated = BoundPrimitive(mul.prim, {ARG_SRC_1: gate}, (ARG_SRC, ARG_DST)).runner()
    fresh, own = np.empty_like(x), x.copy()

    def split() -> None:
        col(ax, am)
        row(am, outs[1].ctypes.data)
    calls = [partial(whole, ax, outs[0].ctypes.data), split,
             partial(matmul, ax, outs[2].ctypes.data),
             partial(gated, ax, fresh.ctypes.data),
             partial(gated, own.ctypes.data, own.ctypes.data)]
    ref = x.reshape(cp // 16, hw, 16).astype(np.float64).mean(1).reshape(-1)
    return calls, [(o, ref, (x, mid, fresh, own)) for o in outs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args()
    d = onednn.load()
    d.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    total = np.zeros(len(FORMS))
    print(f"{'shape':>14} " + " ".join(f"{f:>8}" for f in FORMS) + "  max |pool - mean|")
    for c, h in SHAPES:
        calls, checks = forms(d, c, h, rng)
        best = np.full(len(FORMS), np.inf)
        for _ in range(args.repeats):
            for j, call in enumerate(calls):
                t = clock()
                call()
                best[j] = min(best[j], clock() - t)
        best *= 1e6
        total += best
        errs = " ".join(f"{np.abs(o - r).max():.1e}" for o, r, _ in checks)
        print(f"{c:>5}x{h:>3}x{h:<3} " + " ".join(f"{t:8.1f}" for t in best) + f"  {errs}")
    print(f"{'total':>14} " + " ".join(f"{t:8.1f}" for t in total))


if __name__ == "__main__":
    main()
