"""A 1×1 conv (+SiLU) with oneDNN's fused 3×3 depthwise post-op (+SiLU) against the two
convs run one after the other (issue 16: EfficientNet's expand conv and depthwise conv).

    PYTHONPATH=. python scripts/dw_post_op_probe.py [--threads 2] [--repeats 200]
        [--gomp-spincount 30000] [SHAPE ...]

A SHAPE is ``in,size,out,stride`` (default: B0's four 1×1 → 3×3 depthwise pairs). Both
forms alternate in one process on the same blocked buffers; prints µs per call (one
thread: the calling thread's CPU seconds, more: the clock), the implementation oneDNN
chose and whether the fused form gives the pair's outputs bit for bit. Not wired into
the backend: a measurement of what the fusion would buy.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import time
from functools import partial

import numpy as np

SHAPES = ["16,112,96,2", "24,56,144,1", "80,14,480,1", "192,7,1152,1"]
ARG_ATTR_POST_OP_DW = 16384  # oneDNN v3's DNNL_ARG_ATTR_POST_OP_DW
QUERY_EXEC_ARG_MD = 255
F32 = 3


def fused_pair(d, a, size: int, out: int, stride: int):
    """The 1×1 conv ``a``'s problem with SiLU, a 3×3 depthwise post-op of ``stride`` and
    SiLU again: (primitive, its argument descriptors)."""
    from hwbench.backends.cpu import onednn
    from hwbench.backends.cpu.onednn import ARG_BIAS, ARG_DST, ARG_SRC, ARG_WEIGHTS, Primitive
    from hwbench.backends.cpu.primitives import ONEDNN_ACTIVATIONS

    lib = d.lib
    lib.dnnl_post_ops_append_dw.argtypes = [ctypes.c_void_p] + [ctypes.c_int] * 3 \
        + [ctypes.c_int64] * 3
    alg, alpha, beta = ONEDNN_ACTIVATIONS["silu"]
    attr = d.attr()
    ops = ctypes.c_void_p()
    d.check(lib.dnnl_post_ops_create(ctypes.byref(ops)), "post_ops_create")
    try:
        d.check(lib.dnnl_post_ops_append_eltwise(ops, d.alg[alg], alpha, beta), "eltwise")
        d.check(lib.dnnl_post_ops_append_dw(ops, F32, F32, F32, 3, stride, 1), "append_dw")
        d.check(lib.dnnl_post_ops_append_eltwise(ops, d.alg[alg], alpha, beta), "eltwise")
        d.check(lib.dnnl_primitive_attr_set_post_ops(attr.handle, ops), "set_post_ops")
    finally:
        lib.dnnl_post_ops_destroy(ops)
    p = a.problem
    # the descriptors must outlive the call (each frees its handle when collected)
    wei = d.memory_desc((out, p.c, 1, 1), "f32", tag="any")
    bias = d.memory_desc((out,), "f32", tag="a")
    dst = d.memory_desc((1, out, size, size), "f32", tag="any")
    pd = d.create_pd(
        "dnnl_convolution_forward_primitive_desc_create", d.engine,
        d.prop["forward_inference"], d.alg["convolution_direct"], a.prim.mds[ARG_SRC].handle,
        wei.handle, bias.handle, dst.handle, onednn.Dims(1, 1), onednn.Dims(0, 0),
        onednn.Dims(0, 0), onednn.Dims(0, 0), attr.handle)

    def exec_md(arg: int):
        clone = ctypes.c_void_p()
        d.check(lib.dnnl_memory_desc_clone(
            ctypes.byref(clone), lib.dnnl_primitive_desc_query_md(pd, QUERY_EXEC_ARG_MD, arg)),
            "memory_desc_clone")
        return onednn.MemoryDesc(d, clone, owned=True)

    dw = ARG_ATTR_POST_OP_DW
    mds = {arg: exec_md(arg) for arg in (ARG_SRC, ARG_WEIGHTS, ARG_BIAS, ARG_DST,
                                         dw | ARG_WEIGHTS, dw | ARG_BIAS)}
    return Primitive(d, pd, mds), mds


def run_all(calls: list) -> None:
    """Execute each (primitive, buffers) in turn."""
    for prim, buffers in calls:
        prim.execute(buffers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("shapes", nargs="*", default=SHAPES)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--gomp-spincount", type=int, default=None,
                   help="let libgomp's idle threads spin N rounds (set before it loads)")
    args = p.parse_args()
    if args.gomp_spincount is not None:
        os.environ["GOMP_SPINCOUNT"] = str(args.gomp_spincount)
    from hwbench.backends.cpu import onednn
    from hwbench.backends.cpu.onednn import ARG_BIAS, ARG_DST, ARG_SRC, ARG_WEIGHTS
    from hwbench.backends.cpu.primitives import Conv, reorder
    from hwbench.kernels import spec

    d = onednn.load()
    d.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    dw = ARG_ATTR_POST_OP_DW
    for shape in args.shapes:
        c, size, out, stride = (int(v) for v in shape.split(","))
        a = Conv(d, spec.ConvProblem(1, c, size, size, out, 1, 1, has_bias=True),
                 "blocked", None, "silu")
        b = Conv(d, spec.ConvProblem(1, out, size, size, out, 3, 3, (stride, stride),
                                     (1, 1, 1, 1), groups=out, has_bias=True),
                 "blocked", None, "silu")
        fused, mds = fused_pair(d, a, size, out, stride)

        def draw(md, scale=1.0):
            return (rng.standard_normal(md.size // 4) * scale).astype(np.float32)

        x, w1, w2 = draw(a.prim.mds[ARG_SRC]), draw(a.prim.mds[ARG_WEIGHTS], 0.25), \
            draw(b.prim.mds[ARG_WEIGHTS], 0.3)
        b1, b2 = draw(mds[ARG_BIAS], 0.25), draw(mds[ARG_BIAS], 0.25)
        w2f = w2
        if mds[dw | ARG_WEIGHTS] != b.prim.mds[ARG_WEIGHTS]:
            w2f = np.zeros(mds[dw | ARG_WEIGHTS].size // 4, np.float32)
            reorder(d, b.prim.mds[ARG_WEIGHTS], mds[dw | ARG_WEIGHTS]).execute(
                {ARG_SRC: w2, ARG_DST: w2f})
        mid = np.zeros(a.prim.mds[ARG_DST].size // 4, np.float32)
        y_pair = np.zeros(b.prim.mds[ARG_DST].size // 4, np.float32)
        y_fused = np.zeros(mds[ARG_DST].size // 4, np.float32)

        pair = partial(run_all, [
            (a.prim, {ARG_SRC: x, ARG_WEIGHTS: w1, ARG_BIAS: b1, ARG_DST: mid}),
            (b.prim, {ARG_SRC: mid, ARG_WEIGHTS: w2, ARG_BIAS: b2, ARG_DST: y_pair})])
        one = partial(run_all, [(fused, {ARG_SRC: x, ARG_WEIGHTS: w1, ARG_BIAS: b1,
                                         ARG_DST: y_fused, dw | ARG_WEIGHTS: w2f,
                                         dw | ARG_BIAS: b2})])
        pair()
        one()
        same = mds[ARG_DST] == b.prim.mds[ARG_DST] and np.array_equal(y_pair, y_fused)
        times: dict[str, list[float]] = {"pair": [], "fused": []}
        for i in range(args.repeats):
            for name, form in (("pair", pair), ("fused", one))[::1 if i % 2 else -1]:
                t = clock()
                form()
                times[name].append(clock() - t)
        med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
        print(f"{c:4d}->{out:4d} @{size:3d} dw/{stride}: pair {med['pair']:7.0f}  fused "
              f"{med['fused']:7.0f} µs  fused÷pair {med['fused'] / med['pair']:4.2f}  "
              f"bit for bit {same}  ({fused.impl})", flush=True)


if __name__ == "__main__":
    main()
