"""The task suites' models (BEGAN's generator, the translator's decoding loop), fp32 ``cpu``
against onnxruntime in one process, timed alternately as the harness times them (issue 16).

    PYTHONPATH=. python scripts/task_models_bench.py [--threads 2] [--batch 1,8]
        [--repeats 200] [--cpu-time] [began] [translator]

One call is what a zoo row's ``seconds`` is: ``began`` one batch's generation
(``Session.run``), ``translator`` one batch's translation (the encoder once, then
``dates.TARGET_LENGTH`` decoder steps through ``export.decode``). Prints each engine's
median and least µs per call and hwbench's speed as a ratio of onnxruntime's (>1: hwbench
faster). On a busy machine read the ratio of the two least times taken side by side;
``--cpu-time`` (with ``--threads 1``) counts the calling thread's CPU time only.
``--alone`` times hwbench alone (median, least, 90th percentile): onnxruntime's pool
spins between its runs, and with hwbench's OpenMP threads spinning too
(``GOMP_SPINCOUNT``, ``--omp-wait active``) two threads on two busy cores stall.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort

from hwbench.harness.suites import began_suite, translator_suite
from hwbench.models.model import Model
from hwbench.models.session import Session
from hwbench.models.translator import export

CLOCK = time.perf_counter


def _ort(model: Model, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(model.to_onnx().SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def calls(name: str, batch: int, threads: int) -> tuple[Callable, Callable]:
    """(hwbench's call, onnxruntime's call) of one zoo row's timed work, after checking
    that both give the same answers."""
    if name == "began":
        model = began_suite.case_model(batch)
        feeds = {"z": began_suite.latents(batch, 16)}
        hw, rt = Session(model, "cpu", threads=threads), _ort(model, threads)
        got, want = hw.run(feeds)[0], rt.run(None, feeds)[0]
        print(f"  began b{batch}: max |hwbench - onnxruntime| {np.max(np.abs(got - want)):.1e}")
        return (lambda: hw.run(feeds)), (lambda: rt.run(None, feeds))
    encoder, step = translator_suite.case_models(batch)
    sources, _ = translator_suite._sentences(batch)
    feeds = export.source_feeds(sources[:batch], translator_suite.SEQUENCE)
    hw_e, hw_s = Session(encoder, "cpu", threads=threads), Session(step, "cpu", threads=threads)
    rt_e, rt_s = _ort(encoder, threads), _ort(step, threads)
    hw = lambda: export.decode(hw_e.run, hw_s.run, feeds)  # noqa: E731
    rt = lambda: export.decode(lambda f: rt_e.run(None, f),  # noqa: E731
                               lambda f: rt_s.run(None, f), feeds)
    if not np.array_equal(hw(), rt()):
        print(f"  translator b{batch}: hwbench's ids differ from onnxruntime's")
    return hw, rt


def bench(name: str, batch: int, threads: int, repeats: int, alone: bool = False) -> float:
    hw, rt = calls(name, batch, threads)
    for _ in range(20):
        hw(), rt()
    hw_s, rt_s = [], []
    for _ in range(repeats):  # alternate so both see the same machine load
        for fn, out in ((hw, hw_s),) if alone else ((hw, hw_s), (rt, rt_s)):
            t = CLOCK()
            fn()
            out.append(CLOCK() - t)
    if alone:  # onnxruntime's idle pool out of the way (its threads spin between runs)
        print(f"{name:11s} b{batch}  hwbench {statistics.median(hw_s) * 1e6:7.0f} us "
              f"(least {min(hw_s) * 1e6:6.0f}, p90 {np.percentile(hw_s, 90) * 1e6:6.0f})",
              flush=True)
        return 0.0
    h, r = statistics.median(hw_s), statistics.median(rt_s)
    print(f"{name:11s} b{batch}  hwbench {h * 1e6:7.0f} us (least {min(hw_s) * 1e6:6.0f})  "
          f"onnxruntime {r * 1e6:7.0f} us (least {min(rt_s) * 1e6:6.0f})  ratio {r / h:4.2f}x "
          f"(least/least {min(rt_s) / min(hw_s):4.2f}x)", flush=True)
    return r / h


def main() -> None:
    global CLOCK
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=["began", "translator"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", default="1,8")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--alone", action="store_true",
                   help="time hwbench only (onnxruntime's session made, never run in the loop)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time by the calling thread's CPU seconds (needs --threads 1)")
    args = p.parse_args()
    if args.cpu_time:
        if args.threads != 1:
            p.error("--cpu-time needs --threads 1: other threads' work would not count")
        CLOCK = time.thread_time
    for name in args.models:
        for b in map(int, args.batch.split(",")):
            bench(name, b, args.threads, args.repeats, args.alone)


if __name__ == "__main__":
    main()
