"""fp32 ``cpu`` vs onnxruntime, both engines in one process, timed alternately (issue 16).

    PYTHONPATH=. python scripts/fusion_bench.py [--threads 2] [--repeats 7] [--batch 1,8]
        [--profile] [--gomp-spincount 30000] [--cpu-time] [--dim sequence=32] model ...

Prints, per model and batch, each engine's median seconds per run and hwbench's speed as
a ratio of onnxruntime's (>1: hwbench faster), then the geometric mean. ``--profile``
also prints hwbench's top op types by time. Timings on a shared machine are noisy: the
ratio of medians taken side by side is what to read.

``--cpu-time`` (with ``--threads 1``) times each run by the calling thread's CPU seconds
instead of the clock: both engines then run on that thread alone, and other processes
on a busy machine no longer count (their cache traffic still does).

onnxruntime's pool spins between ops; hwbench's OpenMP threads sleep (PASSIVE, robust on
a busy machine) and then pay a wake-up per parallel region, so at batch 1 it keeps small
problems on one thread. ``--gomp-spincount N`` lets hwbench's idle threads spin N rounds
first (set before libgomp loads; 30000 is about 1 ms on the 2-core Zen 4 VM): like
against like on a dedicated, idle machine, where the cpu backend then splits all but
tiny problems (``CpuBackend.small_problem``). A bounded count, not
``OMP_WAIT_POLICY=ACTIVE``: threads spinning for ever would take a core from
onnxruntime while it runs in the same process. On a busy machine spinning is ruinous
for both engines.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np
import onnxruntime as ort

from hwbench.models import load_model
from hwbench.models.sample_inputs import batch_feeds
from hwbench.models.session import Session

CLOCK = time.perf_counter  # --cpu-time: time.thread_time


def _median(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = CLOCK()
        run()
        times.append(CLOCK() - t)
    return statistics.median(times)


def bench(name: str, batch: int, threads: int, repeats: int, profile: bool,
          dims: dict[str, int] | None = None) -> float:
    model = load_model(name, batch=batch, dims=dims)
    feeds, _ = batch_feeds(model.graph, batch, seed=0)
    hw = Session(model, "cpu", threads=threads, profile=profile)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    rt = ort.InferenceSession(model.to_onnx().SerializeToString(), options,
                              providers=["CPUExecutionProvider"])
    got, want = hw.run(feeds), rt.run(None, feeds)
    err = max(float(np.max(np.abs(g - w))) / max(float(np.max(np.abs(w))), 1e-30)
              for g, w in zip(got, want, strict=True))
    hw_s, rt_s = [], []
    for _ in range(repeats):  # alternate so both see the same machine load
        hw_s.append(_median(lambda: hw.run(feeds), 1))
        rt_s.append(_median(lambda: rt.run(None, feeds), 1))
    h, r = statistics.median(hw_s), statistics.median(rt_s)
    print(f"{name:22s} b{batch}  hwbench {h * 1e3:8.2f} ms  onnxruntime {r * 1e3:8.2f} ms  "
          f"ratio {r / h:5.2f}x  (max rel diff {err:.1e})", flush=True)
    if profile:
        ops = sorted(hw.op_seconds.items(), key=lambda kv: -kv[1])[:8]
        total = sum(hw.op_seconds.values())
        print("    " + ", ".join(f"{k} {v / total:.0%}" for k, v in ops))
    return r / h


def add_cpu_time_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--cpu-time``, shared with per_node_vs_onnxruntime.py."""
    p.add_argument("--cpu-time", action="store_true",
                   help=f"time {what} by the calling thread's CPU seconds (needs --threads 1)")


def add_dim_option(p: argparse.ArgumentParser) -> None:
    """``--dim NAME=SIZE`` (repeatable), shared with per_node_vs_onnxruntime.py: the
    transformers' sequence as the zoo run sizes it (``--dim sequence=32``)."""
    p.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                   help="size a symbolic dimension, e.g. sequence=32 (repeatable)")


def chosen_dims(p: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, int]:
    """``--dim`` as ``load_model``'s ``dims``."""
    dims = {}
    for item in args.dim:
        name, _, size = item.partition("=")
        if not name or not size.isdigit():
            p.error(f"--dim takes NAME=SIZE, got {item!r}")
        dims[name] = int(size)
    return dims


def chosen_clock(p: argparse.ArgumentParser, args: argparse.Namespace):
    """time.thread_time under --cpu-time (one thread only: other threads' work would not
    count), else time.perf_counter."""
    if not args.cpu_time:
        return time.perf_counter
    if args.threads != 1:
        p.error("--cpu-time needs --threads 1: other threads' work would not count")
    return time.thread_time


def main() -> None:
    global CLOCK
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch", default="1,8")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--gomp-spincount", type=int,
                   help="hwbench's idle OpenMP threads spin this many rounds before they "
                        "sleep (default: they sleep at once)")
    add_cpu_time_option(p, "runs")
    add_dim_option(p)
    args = p.parse_args()
    CLOCK = chosen_clock(p, args)
    dims = chosen_dims(p, args)
    if args.gomp_spincount is not None:  # libgomp reads it once, when the cpu backend loads
        os.environ["GOMP_SPINCOUNT"] = str(args.gomp_spincount)
    ratios = {b: [] for b in map(int, args.batch.split(","))}
    for name in args.models:
        for b in ratios:
            try:
                ratios[b].append(bench(name, b, args.threads, args.repeats, args.profile,
                                       dims))
            except Exception as exc:  # noqa: BLE001 - one model's failure costs one row
                print(f"{name:22s} b{b}  failed: {type(exc).__name__}: {str(exc)[:200]}")
    for b, rs in ratios.items():
        print(f"geomean b{b}: {math.exp(sum(map(math.log, rs)) / len(rs)):.2f}x "
              f"(min {min(rs):.2f}x) over {len(rs)} models")


if __name__ == "__main__":
    main()
