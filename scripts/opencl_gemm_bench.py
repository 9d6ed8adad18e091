"""The float32 GEMM alone: opencl's packed SGEMM (PoCL on a CPU) against cpu's (oneDNN /
MKL) in GFLOP/s, on ResNet-50's conv shapes as GEMMs and on squares (issue 16).

Each shape is M x N x K (M: output channels, N: output pixels, K: C * R * S, as the conv
lowers it); both backends run it in this process, taking turns call by call, and each
one's fastest of ``--reps`` calls counts (opencl: the device time of its profiling events,
packing included; cpu: wall time). ``--conv`` times the whole conv (im2col, GEMM, epilogue)
of the ResNet-50 layers instead. ``--params MR=6,WIDE=1,...`` runs opencl with other tile
parameters (the rest: the defaults); several sets, separated by ``;``, run side by side
(one column each, taking turns with cpu). ``--kernels`` also prints each opencl kernel's share
(profiling events of its launches, over the timed calls). The first opencl column runs
right after cpu each round and reads a few percent to 20 % slow on small shapes (cold
caches): put a throwaway set first (``--params "S2=1;S2=0;S2=1"``) and compare the rest.

    python scripts/opencl_gemm_bench.py --reps 7
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from hwbench.backends import get_backend
from hwbench.backends.opencl import blocking, compiler, tile_params

# (name, M, N, K); the conv form: (name, C, H, K, R, stride)
GEMMS = (("res 3x3 64@56", 64, 3136, 576), ("res 1x1 64->256@56", 256, 3136, 64),
         ("res 3x3 256@14", 256, 196, 2304), ("res 1x1 1024->256@14", 256, 196, 1024),
         ("res 3x3 512@7", 512, 49, 4608), ("square 512", 512, 512, 512),
         ("square 1024", 1024, 1024, 1024))
CONVS = (("res 3x3 64@56", 64, 56, 64, 3, 1), ("res 1x1 64->256@56", 64, 56, 256, 1, 1),
         ("res 3x3 256@14", 256, 14, 256, 3, 1), ("res 1x1 1024->256@14", 1024, 14, 256, 1, 1),
         ("res 3x3 512@7", 512, 7, 512, 3, 1), ("res 1x1 256->1024@14", 256, 14, 1024, 1, 1),
         ("inc 1x1 192->64@28", 192, 28, 64, 1, 1), ("inc 1x1 480->16@14", 480, 14, 16, 1, 1),
         ("inc 5x5 16->32@28", 16, 28, 32, 5, 1), ("inc 3x3 96->128@28", 96, 28, 128, 3, 1),
         ("inc 1x1 832->384@7", 832, 7, 384, 1, 1), ("mb2 1x1 24->144@56", 24, 56, 144, 1, 1),
         ("mb2 1x1 144->24@56", 144, 56, 24, 1, 1), ("mb2 1x1 320->1280@7", 320, 7, 1280, 1, 1),
         ("alex 5x5 48->128@27", 48, 27, 128, 5, 1), ("eff 1x1 40->240@28", 40, 28, 240, 1, 1),
         ("eff 1x1 112->672@14", 112, 14, 672, 1, 1), ("eff 1x1 672->112@14", 672, 14, 112, 1, 1),
         ("eff 1x1 16->96@112", 16, 112, 96, 1, 1), ("eff 1x1 1152->192@7", 1152, 7, 192, 1, 1),
         ("res 7x7/2 3->64@224", 3, 224, 64, 7, 2), ("mb2 3x3/2 3->32@224", 3, 224, 32, 3, 2),
         ("sq 3x3/2 3->64@224", 3, 224, 64, 3, 2), ("k72 3x3/2 8->64@112", 8, 112, 64, 3, 2),
         ("k144 3x3/2 16->64@112", 16, 112, 64, 3, 2), ("k288 3x3/2 32->64@56", 32, 56, 64, 3, 2),
         ("k576 3x3/2 64->128@56", 64, 56, 128, 3, 2),
         ("k75 5x5/2 3->32@224", 3, 224, 32, 5, 2),
         ("res 3x3/2 128@56", 128, 56, 128, 3, 2), ("res 1x1/2 512->1024@28", 512, 28, 1024, 1, 2))


def best(fn, reps: int) -> float:
    return min(fn() for _ in range(reps))


def record_launches() -> list[tuple[str, object]]:
    """A list that gets (kernel name, profiling event) for every opencl launch from now on
    (``compiler.Program.launch`` wrapped): ``--kernels``' per-kernel split."""
    events: list[tuple[str, object]] = []
    launch = compiler.Program.launch

    def recorded(self, name, *rest, **kw):
        event = launch(self, name, *rest, **kw)
        events.append((name, event))
        return event

    compiler.Program.launch = recorded
    return events


def kernel_seconds(events: list[tuple[str, object]]) -> dict[str, list[float]]:
    """Kernel name -> the device seconds of each of its recorded launches."""
    out: dict[str, list[float]] = {}
    for kernel, event in events:
        event.wait()
        out.setdefault(kernel, []).append((event.profile.end - event.profile.start) * 1e-9)
    return out


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
    ap.add_argument("--batch", type=int, default=1, help="images per conv (--conv)")
    ap.add_argument("--only", default="", help="comma-separated substrings of shape names")
    args = ap.parse_args()
    if args.cpu_time and (args.threads != 1 or os.environ.get("POCL_MAX_PTHREAD_COUNT") != "1"):
        ap.error("--cpu-time needs --threads 1 and POCL_MAX_PTHREAD_COUNT=1")
    variants: list[dict[str, int] | None] = [None]
    fits = [blocking.ITEMS_PER_UNIT]
    splits = [True]
    if args.params:
        sets = [{k: int(v) for k, v in (item.split("=") for item in text.split(","))}
                for text in args.params.split(";")]
        # FIT: work-items per compute unit wanted (blocking.py); 0: the tuned blocks as they are
        fits = [one.pop("FIT", blocking.ITEMS_PER_UNIT) for one in sets]
        # S2=0: stride-2 convs through im2col (phases.py off)
        splits = [bool(one.pop("S2", 1)) for one in sets]
        variants = [{**tile_params.DEFAULTS["sgemm_packed"], **one} for one in sets]
    events = record_launches() if args.kernels else []
    ocls = [get_backend("opencl", check_finite=False, gemm_params=v) for v in variants]
    for ocl, fit, split in zip(ocls, fits, splits, strict=True):
        ocl.gemm_engine.fit_blocks = fit
        ocl.gemm_engine.phase_split = split
    cpu = get_backend("cpu", check_finite=False, threads=args.threads)
    rng = np.random.default_rng(0)
    shapes = CONVS if args.conv else GEMMS
    if args.only:
        shapes = tuple(s for s in shapes if any(o in s[0] for o in args.only.split(",")))
    heads = "".join(f" {'opencl' + str(i) + ' GF/s':>13s} {'/cpu':>5s}" for i in range(len(ocls)))
    print(f"{'shape':24s}{heads} {'cpu GF/s':>9s} {'diff':>8s}")
    for shape in shapes:
        if args.conv:
            name, c, h, k, r, stride = shape
            x = rng.standard_normal((args.batch, c, h, h)).astype(np.float32)
            w = rng.standard_normal((k, c, r, r)).astype(np.float32)
            w /= np.float32(np.sqrt(c * r * r))
            flops = 2.0 * args.batch * k * c * r * r * (-(-h // stride)) ** 2
            call = lambda be, x, w, r=r, s=stride: be.conv2d(  # noqa: E731
                x, w, stride=s, padding=r // 2, activation="relu")
        else:
            name, m, n, k = shape
            x = rng.standard_normal((m, k)).astype(np.float32)
            w = rng.standard_normal((k, n)).astype(np.float32) / np.float32(np.sqrt(k))
            flops = 2.0 * m * n * k
            call = lambda be, x, w: be.gemm(x, w)  # noqa: E731
        cx, cw = cpu.asarray(x), cpu.asarray(w)
        want = cpu.to_numpy(call(cpu, cx, cw))
        operands, diff = [], 0.0
        for ocl in ocls:
            ox, ow = ocl.asarray(x), ocl.asarray(w)
            operands.append((ox, ow))
            got = ocl.to_numpy(call(ocl, ox, ow))
            diff = max(diff, float(np.max(np.abs(got - want)) / np.max(np.abs(want))))
        t_ocl: list[list[float]] = [[] for _ in ocls]
        t_cpu = []
        events.clear()
        clock = time.process_time if args.cpu_time else time.perf_counter
        for _ in range(args.reps):
            for ocl, (ox, ow), spent in zip(ocls, operands, t_ocl, strict=True):
                if args.cpu_time:
                    start = clock()
                    call(ocl, ox, ow)
                    ocl.synchronize()
                    spent.append(clock() - start)
                else:
                    spent.append(ocl.device_seconds(call, ocl, ox, ow)[1])
            start = clock()
            call(cpu, cx, cw)
            cpu.synchronize()
            t_cpu.append(clock() - start)
        gc = flops / min(t_cpu) / 1e9
        cols = "".join(f" {flops / min(t) / 1e9:13.1f} {flops / min(t) / 1e9 / gc:5.2f}"
                       for t in t_ocl)
        print(f"{name:24s}{cols} {gc:9.1f} {diff:8.1e}", flush=True)
        if events:
            print("    " + ", ".join(f"{k} {min(v) * 1e3:.3f} ms"
                                  for k, v in kernel_seconds(events).items()))

if __name__ == "__main__":
    main()
