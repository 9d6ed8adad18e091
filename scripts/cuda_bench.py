"""The cuda backend's acceptance measurements (issue 6), run by scripts/gpu-check.sh.

Each contender runs the same problem on the same GPU in this process, timed the same
way (warm-up, then the median of samples of back-to-back calls between two device
synchronizations), and every result is checked before it is timed:

- fp32 GEMM 8192³: cuda backend vs ``cupy.matmul`` (target >= 0.97x);
- int8 GEMM 8192³: cuda backend (exact int32) vs ``torch._int_mm`` (target >= 2x), both
  checked exactly against a float64 product of the first rows (exact at these sizes);
- conv2d at batch 64 on AlexNet's and ResNet-50's layers: cuda backend (cuDNN) vs
  ``torch.nn.functional.conv2d`` with cudnn.benchmark on and TF32 off (target >= 1.0x);
- ResNet-50 at batch 64: ``hwbench.Session`` on cuda vs PyTorch eager on the GPU run
  op by op through the same executor (the CPU peer's structure, on CUDA tensors).

Writes one JSON file (``--out``) and prints a table. Needs a GPU, CuPy and PyTorch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from typing import Any

import numpy as np

ALEXNET_CONVS = [  # (c, h, w, k, r, s, stride, pad, groups) at 224x224 (bvlc_alexnet)
    (3, 224, 224, 96, 11, 11, 4, 0, 1),
    (96, 27, 27, 256, 5, 5, 1, 2, 2),
    (256, 13, 13, 384, 3, 3, 1, 1, 1),
    (384, 13, 13, 384, 3, 3, 1, 1, 2),
    (384, 13, 13, 256, 3, 3, 1, 1, 2),
]


def seconds(fn, sync, warmup: int = 3, samples: int = 7, min_time: float = 0.05) -> float:
    """Median seconds per call: ``samples`` samples of back-to-back calls, each lasting
    at least ``min_time``, bracketed by ``sync()``."""
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    one = max(time.perf_counter() - t0, 1e-6)
    calls = max(1, int(min_time / one))
    out = []
    for _ in range(samples):
        sync()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        out.append((time.perf_counter() - t0) / calls)
    return statistics.median(out)


def gemm_fp32(be, cp, torch, n: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    a = be.asarray(rng.standard_normal((n, n), np.float32))
    b = be.asarray(rng.standard_normal((n, n), np.float32))
    ours = be.gemm(a, b)
    ref = cp.matmul(a[:64].astype(cp.float64), b.astype(cp.float64))
    err = float(cp.abs(ours[:64] - ref).max() / cp.abs(ref).max())
    sync = be.synchronize
    t_ours = seconds(lambda: be.gemm(a, b), sync)
    t_cupy = seconds(lambda: cp.matmul(a, b), sync)
    flops = 2 * n**3
    return {"n": n, "rel_error": err, "hwbench_s": t_ours, "cupy_matmul_s": t_cupy,
            "hwbench_tflops": flops / t_ours / 1e12, "cupy_tflops": flops / t_cupy / 1e12,
            "ratio_vs_cupy": t_cupy / t_ours, "target": ">= 0.97"}


def gemm_int8(be, cp, torch, n: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    a_h = rng.integers(-128, 128, (n, n), dtype=np.int8)
    b_h = rng.integers(-128, 128, (n, n), dtype=np.int8)
    a, b = be.asarray(a_h), be.asarray(b_h)
    ours = be.gemm_int8(a, b)
    rows = 64
    ref = cp.matmul(a[:rows].astype(cp.float64), b.astype(cp.float64))  # exact: |sum| < 2**27
    mismatches = int(cp.count_nonzero(ours[:rows].astype(cp.float64) != ref))
    ta, tb = torch.as_tensor(a_h, device="cuda"), torch.as_tensor(b_h, device="cuda")
    theirs = torch._int_mm(ta, tb)
    torch_mismatches = int((cp.asarray(theirs[:rows]).astype(cp.float64) != ref).sum())
    sync = be.synchronize
    t_ours = seconds(lambda: be.gemm_int8(a, b), sync)
    t_torch = seconds(lambda: torch._int_mm(ta, tb), torch.cuda.synchronize)
    ops = 2 * n**3
    return {"n": n, "mismatches_first_rows": mismatches,
            "torch_mismatches_first_rows": torch_mismatches, "hwbench_s": t_ours,
            "torch_int_mm_s": t_torch, "hwbench_tops": ops / t_ours / 1e12,
            "torch_tops": ops / t_torch / 1e12, "ratio_vs_torch": t_torch / t_ours,
            "target": ">= 2.0, exact", "int8_gemm": be.info()["int8_gemm"],
            "padding": be.info()["int8_gemm_padding"]}


def conv_layers(be, cp, torch, batch: int) -> list[dict[str, Any]]:
    from hwbench.kernels.shapes import resnet50_convs

    f = torch.nn.functional
    layers = [("alexnet", (batch, c, h, w, k, r, s, (st, st), (p, p, p, p), (1, 1), g))
              for c, h, w, k, r, s, st, p, g in ALEXNET_CONVS]
    layers += [("resnet50", (q.n, q.c, q.h, q.w, q.k, q.r, q.s, q.stride, q.padding,
                             q.dilation, q.groups)) for q in resnet50_convs(batch)]
    rows = []
    rng = np.random.default_rng(2)
    for model, (n, c, h, w, k, r, s, stride, pads, dil, g) in layers:
        x_h = rng.standard_normal((n, c, h, w), np.float32)
        w_h = (rng.standard_normal((k, c // g, r, s)) / np.sqrt(c // g * r * s)).astype(
            np.float32)
        x, wt = be.asarray(x_h), be.asarray(w_h)
        kw = dict(stride=stride, padding=pads, dilation=dil, groups=g)
        ours = be.conv2d(x, wt, **kw)
        tx, tw = torch.as_tensor(x_h, device="cuda"), torch.as_tensor(w_h, device="cuda")
        tpad = (pads[0], pads[1])  # symmetric in these layers
        theirs = f.conv2d(tx, tw, None, stride, tpad, dil, g)
        diff = float(cp.abs(ours - cp.asarray(theirs)).max() / cp.abs(ours).max())
        t_ours = seconds(lambda x=x, wt=wt, kw=kw: be.conv2d(x, wt, **kw), be.synchronize)
        t_torch = seconds(lambda tx=tx, tw=tw, stride=stride, tpad=tpad, dil=dil, g=g:
                          f.conv2d(tx, tw, None, stride, tpad, dil, g), torch.cuda.synchronize)
        rows.append({"model": model, "shape": [n, c, h, w, k, r, s], "stride": list(stride),
                     "padding": list(pads), "groups": g, "rel_diff_vs_torch": diff,
                     "hwbench_s": t_ours, "torch_s": t_torch, "ratio_vs_torch": t_torch / t_ours})
        del x, wt, ours, tx, tw, theirs
    return rows


def torch_cuda_peer(torch):
    """PyTorch eager on the GPU behind the kernel interface (TorchPeer on CUDA tensors)."""
    from hwbench.harness.suites.peers import TorchPeer

    class TorchCudaPeer(TorchPeer):
        name = "torch-cuda"

        def asarray(self, x):
            if isinstance(x, torch.Tensor):
                return x
            return torch.as_tensor(np.ascontiguousarray(x), device="cuda")

        def to_numpy(self, x):
            return x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)

        def empty(self, shape, dtype=np.float32):
            return torch.empty(tuple(shape), dtype=getattr(torch, np.dtype(dtype).name),
                               device="cuda")

        def synchronize(self):
            torch.cuda.synchronize()

        def _all_finite(self, x):
            return bool(torch.isfinite(x).all())

    return TorchCudaPeer(None, check_finite=False)


def resnet50(be_name: str, torch, batch: int) -> dict[str, Any]:
    import hwbench

    model = hwbench.load_model("resnet50", batch=batch).randomized()
    x = np.random.default_rng(3).standard_normal(model.input_shapes[model.inputs[0]],
                                                 np.float32)
    feeds = {model.inputs[0]: x}
    ours = hwbench.Session(model, backend=be_name)
    peer = torch_cuda_peer(torch)
    theirs = hwbench.Session(model, backend=peer)
    y_ours, y_theirs = ours.run(feeds)[0], theirs.run(feeds)[0]
    diff = float(np.abs(y_ours - y_theirs).max() / np.abs(y_theirs).max())
    t_ours = seconds(lambda: ours.run(feeds), ours.backend.synchronize, samples=5)
    t_torch = seconds(lambda: theirs.run(feeds), torch.cuda.synchronize, samples=5)
    return {"batch": batch, "rel_diff_vs_torch": diff, "hwbench_s": t_ours,
            "torch_eager_s": t_torch, "hwbench_images_per_s": batch / t_ours,
            "torch_images_per_s": batch / t_torch, "ratio_vs_torch": t_torch / t_ours,
            "target": ">= 1.0", "note": "feeds uploaded and outputs downloaded in both"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="cuda-bench.json")
    parser.add_argument("--size", type=int, default=8192, help="M = N = K of the GEMMs")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--only", default="gemm,int8,conv,resnet50")
    args = parser.parse_args(argv)

    import cupy as cp
    import torch

    from hwbench.backends import get_backend

    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False  # the same math mode as ours: fp32
    torch.backends.cuda.matmul.allow_tf32 = False
    be = get_backend("cuda", check_finite=False)
    report: dict[str, Any] = {"info": be.info(), "torch": torch.__version__,
                              "torch_cudnn": torch.backends.cudnn.version()}
    steps = {"gemm": lambda: gemm_fp32(be, cp, torch, args.size),
             "int8": lambda: gemm_int8(be, cp, torch, args.size),
             "conv": lambda: conv_layers(be, cp, torch, args.batch),
             "resnet50": lambda: resnet50("cuda", torch, args.batch)}
    for name in args.only.split(","):
        start = time.perf_counter()
        try:
            report[name] = steps[name]()
        except Exception as exc:  # noqa: BLE001 - one failed step, the others still run
            report[name] = {"error": f"{type(exc).__name__}: {exc}",
                            "traceback": traceback.format_exc()}
        print(f"== {name} ({time.perf_counter() - start:.1f} s)", flush=True)
        print(json.dumps(report[name], indent=1, default=str)[:4000], flush=True)
        cp.get_default_memory_pool().free_all_blocks()
    report["info"] = be.info()  # with the libraries and padding the steps used
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=1, default=str)
    if isinstance(report.get("conv"), list):
        ratios = [row["ratio_vs_torch"] for row in report["conv"]]
        print(f"conv: ratio vs torch min {min(ratios):.2f}, geomean "
              f"{float(np.exp(np.mean(np.log(ratios)))):.2f} over {len(ratios)} layers")
    for name in ("gemm", "int8", "resnet50"):
        row = report.get(name, {})
        ratio = next((v for k, v in row.items() if k.startswith("ratio")), None)
        print(f"{name}: ratio {ratio} (target {row.get('target')})"
              if ratio is not None else f"{name}: {row.get('error')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
