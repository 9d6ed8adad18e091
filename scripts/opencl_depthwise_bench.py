"""Depthwise convs alone: opencl (PoCL on a CPU) against cpu, on the zoo's shapes (issue 16).

Each row is one depthwise conv with a fused SiLU (EfficientNet's; MobileNet's are ReLU6 /
hardswish, the same cost here) at ``--batch``; both backends run it in this process,
taking turns call by call, each one's fastest of ``--reps`` counting (opencl: the device
time of its profiling events, the padding pass included; cpu: wall time). ``--kernels``
also prints each opencl kernel's share.

    python scripts/opencl_depthwise_bench.py --batch 8 --reps 9
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from opencl_gemm_bench import kernel_seconds, record_launches  # scripts/ is on sys.path

from hwbench.backends import get_backend

# (name, channels, input size, kernel, stride)
SHAPES = (("eff 5x5 672@14", 672, 14, 5, 1), ("eff 5x5 1152@7", 1152, 7, 5, 1),
          ("eff 3x3/2 96@112", 96, 112, 3, 2), ("eff 5x5/2 144@56", 144, 56, 5, 2),
          ("eff 5x5 240@28", 240, 28, 5, 1), ("eff 3x3 480@14", 480, 14, 3, 1),
          ("eff 3x3 144@56", 144, 56, 3, 1), ("eff 3x3 32@112", 32, 112, 3, 1),
          ("eff 5x5/2 672@14", 672, 14, 5, 2), ("eff 3x3 1152@7", 1152, 7, 3, 1),
          ("mb2 3x3 576@14", 576, 14, 3, 1), ("mb2 3x3 960@7", 960, 7, 3, 1),
          ("shf 3x3 116@28", 116, 28, 3, 1), ("cnx 7x7 96@56", 96, 56, 7, 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--only", default="", help="comma-separated name prefixes")
    p.add_argument("--activation", default="silu")
    p.add_argument("--kernels", action="store_true")
    args = p.parse_args()
    events = record_launches() if args.kernels else []
    ocl, cpu = get_backend("opencl"), get_backend("cpu")
    rng = np.random.default_rng(0)
    act = args.activation if args.activation != "none" else None
    print(f"{'conv':20s} {'ocl us':>8s} {'cpu us':>8s} {'cpu/ocl':>7s}  max |diff|")
    for name, c, size, k, stride in SHAPES:
        if args.only and not any(name.startswith(s) for s in args.only.split(",")):
            continue
        x = rng.standard_normal((args.batch, c, size, size)).astype(np.float32)
        w = rng.standard_normal((c, 1, k, k)).astype(np.float32) / k
        b = rng.standard_normal(c).astype(np.float32)
        kw = dict(stride=stride, padding=k // 2, groups=c, activation=act)
        xo, wo, bo = ocl.asarray(x), ocl.asarray(w), ocl.asarray(b)
        xc, wc, bc = cpu.asarray(x), cpu.asarray(w), cpu.asarray(b)
        ocl_t, cpu_t = [], []
        events.clear()
        for _ in range(args.reps):
            yo, t = ocl.device_seconds(ocl.conv2d, xo, wo, bo, **kw)
            ocl_t.append(t)
            start = time.perf_counter()
            yc = cpu.conv2d(xc, wc, bc, **kw)
            cpu_t.append(time.perf_counter() - start)
        diff = float(np.max(np.abs(ocl.to_numpy(yo) - cpu.to_numpy(yc))))
        o, c_ = min(ocl_t) * 1e6, min(cpu_t) * 1e6
        print(f"{name:20s} {o:8.0f} {c_:8.0f} {c_ / o:7.2f}  {diff:.1e}", flush=True)
        if events:
            print("    " + ", ".join(f"{k} {min(v) * 1e6:.0f} us"
                                  for k, v in kernel_seconds(events).items()))


if __name__ == "__main__":
    main()
