"""The float32 GEMM alone: opencl's packed SGEMM (PoCL on a CPU) against cpu's (oneDNN /
MKL) in GFLOP/s, on ResNet-50's conv shapes as GEMMs and on squares (issue 16).

Each shape is M x N x K (M: output channels, N: output pixels, K: C * R * S, as the conv
lowers it); both backends run it in this process, taking turns call by call, and each
one's fastest of ``--reps`` calls counts (opencl: the device time of its profiling events,
packing included; cpu: wall time). ``--conv`` times the whole conv (im2col, GEMM, epilogue)
of the ResNet-50 layers instead. ``--params MR=6,MBLK=8,...`` runs opencl with other tile
parameters (the defaults otherwise). ``--kernels`` also prints each opencl kernel's share
(profiling events of its launches, over the timed calls).

    python scripts/opencl_gemm_bench.py --reps 7
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from hwbench.backends import get_backend
from hwbench.backends.opencl import compiler

# (name, M, N, K); the conv form: (name, C, H, K, R, stride)
GEMMS = (("res 3x3 64@56", 64, 3136, 576), ("res 1x1 64->256@56", 256, 3136, 64),
         ("res 3x3 256@14", 256, 196, 2304), ("res 1x1 1024->256@14", 256, 196, 1024),
         ("res 3x3 512@7", 512, 49, 4608), ("square 512", 512, 512, 512),
         ("square 1024", 1024, 1024, 1024))
CONVS = (("res 3x3 64@56", 64, 56, 64, 3, 1), ("res 1x1 64->256@56", 64, 56, 256, 1, 1),
         ("res 3x3 256@14", 256, 14, 256, 3, 1), ("res 1x1 1024->256@14", 1024, 14, 256, 1, 1),
         ("res 3x3 512@7", 512, 7, 512, 3, 1), ("res 1x1 256->1024@14", 256, 14, 1024, 1, 1))


def best(fn, reps: int) -> float:
    return min(fn() for _ in range(reps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--conv", action="store_true")
    ap.add_argument("--params", default="")
    ap.add_argument("--kernels", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="cpu threads (POCL_MAX_PTHREAD_COUNT sets opencl's)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time both by the process's CPU seconds (needs --threads 1 and "
                         "POCL_MAX_PTHREAD_COUNT=1): steadier than wall time on a busy "
                         "machine, whose other load then counts for neither")
    ap.add_argument("--only", default="", help="comma-separated substrings of shape names")
    args = ap.parse_args()
    if args.cpu_time and (args.threads != 1 or os.environ.get("POCL_MAX_PTHREAD_COUNT") != "1"):
        ap.error("--cpu-time needs --threads 1 and POCL_MAX_PTHREAD_COUNT=1")
    options = {}
    if args.params:
        params = dict(item.split("=") for item in args.params.split(","))
        options = {"gemm_kernel": "sgemm_packed",
                   "gemm_params": {k: int(v) for k, v in params.items()}}
    events: list[tuple[str, object]] = []
    if args.kernels:
        launch = compiler.Program.launch

        def recorded(self, name, *rest, **kw):
            event = launch(self, name, *rest, **kw)
            events.append((name, event))
            return event

        compiler.Program.launch = recorded
    ocl = get_backend("opencl", check_finite=False, **options)
    cpu = get_backend("cpu", check_finite=False, threads=args.threads)
    rng = np.random.default_rng(0)
    shapes = CONVS if args.conv else GEMMS
    if args.only:
        shapes = tuple(s for s in shapes if any(o in s[0] for o in args.only.split(",")))
    print(f"{'shape':24s} {'opencl GF/s':>12s} {'cpu GF/s':>10s} {'ocl/cpu':>8s} {'diff':>9s}")
    for shape in shapes:
        if args.conv:
            name, c, h, k, r, stride = shape
            x = rng.standard_normal((1, c, h, h)).astype(np.float32)
            w = rng.standard_normal((k, c, r, r)).astype(np.float32)
            w /= np.float32(np.sqrt(c * r * r))
            flops = 2.0 * k * c * r * r * (h // stride) ** 2
            call = lambda be, x, w, r=r, s=stride: be.conv2d(  # noqa: E731
                x, w, stride=s, padding=r // 2, activation="relu")
        else:
            name, m, n, k = shape
            x = rng.standard_normal((m, k)).astype(np.float32)
            w = rng.standard_normal((k, n)).astype(np.float32) / np.float32(np.sqrt(k))
            flops = 2.0 * m * n * k
            call = lambda be, x, w: be.gemm(x, w)  # noqa: E731
        ox, ow = ocl.asarray(x), ocl.asarray(w)
        cx, cw = cpu.asarray(x), cpu.asarray(w)
        got = ocl.to_numpy(call(ocl, ox, ow))
        want = cpu.to_numpy(call(cpu, cx, cw))
        diff = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))
        t_ocl, t_cpu = [], []
        events.clear()
        clock = time.process_time if args.cpu_time else time.perf_counter
        for _ in range(args.reps):
            if args.cpu_time:
                start = clock()
                call(ocl, ox, ow)
                ocl.synchronize()
                t_ocl.append(clock() - start)
            else:
                t_ocl.append(ocl.device_seconds(call, ocl, ox, ow)[1])
            start = clock()
            call(cpu, cx, cw)
            cpu.synchronize()
            t_cpu.append(clock() - start)
        go, gc = flops / min(t_ocl) / 1e9, flops / min(t_cpu) / 1e9
        print(f"{name:24s} {go:12.1f} {gc:10.1f} {go / gc:8.2f} {diff:9.1e}", flush=True)
        if events:
            spent: dict[str, list[float]] = {}
            for kernel, event in events:
                spent.setdefault(kernel, []).append(
                    (event.profile.end - event.profile.start) * 1e-6)
            print("    " + ", ".join(f"{k} {min(v):.3f} ms" for k, v in spent.items()))


if __name__ == "__main__":
    main()
