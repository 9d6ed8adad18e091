"""EfficientNet-B0's squeeze-and-excitation pool and gate Mul on nChw16c, form by form
(issue 16: onnxruntime's GlobalAveragePool and gate Mul cost less at batch 1).

    PYTHONPATH=. python scripts/se_block_ab.py [--threads 1] [--repeats 40]

Per SE shape (batch 1), the forms alternate in one process; one thread is timed by the
calling thread's CPU seconds, two by the clock. Pool: oneDNN's average pooling with the
whole image as its kernel (``whole``), and the same average in two poolings, first down
the columns (kernel (H, 1)) then along the one row left (``split``). Mul: the blocked
binary into a fresh buffer (``out``) and in place into the activation (``in place``).
Prints µs per call (least of the repeats) and the largest difference from float64.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hwbench.backends.cpu import onednn
from hwbench.backends.cpu.blocked_ops import BlockedBinary
from hwbench.backends.cpu.layouts import BLOCKED_TAG
from hwbench.backends.cpu.bound_primitive import BoundPrimitive
from hwbench.backends.cpu.onednn import ARG_DST, ARG_SRC, ARG_SRC_1
from hwbench.backends.cpu.primitives import build_pooling
from hwbench.kernels import spec

# (channels, size) at each SE block of B0
SHAPES = [(32, 112), (96, 56), (144, 56), (144, 28), (240, 28), (240, 14), (480, 14),
          (672, 14), (672, 7), (1152, 7)]


def pool(d: onednn.OneDNN, c: int, h: int, w: int, kernel: tuple[int, int]) -> BoundPrimitive:
    """Average pooling of (1, c, h, w) nChw16c with ``kernel`` as its stride too."""
    p = spec.PoolProblem(1, c, h, w, kernel, kernel, kind="avg")
    prim = build_pooling(d, p, BLOCKED_TAG)
    return BoundPrimitive(prim, {}, (ARG_SRC, ARG_DST))


def best(fn, repeats: int, clock) -> float:
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=40)
    args = ap.parse_args()
    d = onednn.load()
    d.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    tot = np.zeros(4)
    print(f"{'shape':>14} {'whole':>7} {'split':>7} {'err w/s':>15}   {'out':>7} "
          f"{'in place':>8}  impls")
    for c, h in SHAPES:
        cp = -(-c // 16) * 16
        x = rng.standard_normal(cp * h * h).astype(np.float32)
        ref = x.reshape(cp // 16, h * h, 16).astype(np.float64).mean(1).reshape(-1)
        whole = pool(d, c, h, h, (h, h))
        col, row = pool(d, c, h, h, (h, 1)), pool(d, c, 1, h, (1, h))
        y1, mid, y2 = (np.empty(cp, np.float32), np.empty(cp * h, np.float32),
                       np.empty(cp, np.float32))
        rw, rc, rr = whole.runner(), col.runner(), row.runner()
        ax, a1, am, a2 = (a.ctypes.data for a in (x, y1, mid, y2))
        f_whole = lambda: rw(ax, a1)  # noqa: E731
        f_split = lambda: (rc(ax, am), rr(am, a2))  # noqa: E731
        shape = (1, c, h, h)
        mul = BlockedBinary(d, "binary_mul", shape, (1, c, 1, 1))
        gate = rng.standard_normal(cp).astype(np.float32)
        bm = BoundPrimitive(mul.prim, {ARG_SRC_1: gate}, (ARG_SRC, ARG_DST)).runner()
        out, xi = np.empty_like(x), x.copy()
        ao, ai = out.ctypes.data, xi.ctypes.data
        f_out = lambda: bm(ax, ao)  # noqa: E731
        f_in = lambda: bm(ai, ai)  # noqa: E731
        f_whole(), f_split()
        err = (np.abs(y1 - ref).max(), np.abs(y2 - ref).max())
        t = np.zeros(4)
        for _ in range(args.repeats):
            for j, f in enumerate((f_whole, f_split, f_out, f_in)):
                t[j] = min(t[j], best(f, 1, clock)) if t[j] else best(f, 1, clock)
        tot += t
        print(f"{c:>5}x{h:>3}x{h:<3} {t[0]:7.1f} {t[1]:7.1f} {err[0]:7.1e}/{err[1]:7.1e}   "
              f"{t[2]:7.1f} {t[3]:8.1f}  {whole.prim.impl}/{col.prim.impl}/{mul.prim.impl}")
    print(f"{'total':>14} {tot[0]:7.1f} {tot[1]:7.1f} {'':>15}   {tot[2]:7.1f} {tot[3]:8.1f}")


if __name__ == "__main__":
    main()
