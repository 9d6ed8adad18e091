"""The translator's decode with the step chain, without it (the plan's replay), and through
onnxruntime, alternated in one process (issue 16; ``hwbench/graph/step_chain.py``).

    PYTHONPATH=. python scripts/step_chain_ab.py [--batch 1,8] [--repeats 300]

Per batch: the median µs of one decode (the encoder once, ``dates.TARGET_LENGTH``
decoder steps through ``export.decode``, as a zoo row's ``seconds``) of each engine,
one thread each, timed by the calling thread's CPU seconds (other processes on a busy
machine no longer count), and onnxruntime's time ÷ each of hwbench's (>1: hwbench
faster). The three decodes give the same characters (checked first).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort

from hwbench.graph import step_chain
from hwbench.harness.suites import translator_suite
from hwbench.models.model import Model
from hwbench.models.session import Session
from hwbench.models.translator import export


def _ort(model: Model) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    return ort.InferenceSession(model.to_onnx().SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def decoders(batch: int) -> dict[str, Callable[[], np.ndarray]]:
    """Engine -> one decode of the first ``batch`` test sentences."""
    encoder, step = translator_suite.case_models(batch)
    sources, _ = translator_suite._sentences(batch)
    feeds = export.source_feeds(sources[:batch], translator_suite.SEQUENCE)
    chained = [Session(m, "cpu", threads=1) for m in (encoder, step)]
    limit = step_chain.STEP_CHAIN_MAX_BYTES
    step_chain.STEP_CHAIN_MAX_BYTES = 0  # sessions built (first replays) without it
    try:
        plain = [Session(m, "cpu", threads=1) for m in (encoder, step)]
        export.decode(plain[0].run, plain[1].run, feeds)
        export.decode(plain[0].run, plain[1].run, feeds)
    finally:
        step_chain.STEP_CHAIN_MAX_BYTES = limit
    rt = [_ort(m) for m in (encoder, step)]
    runs = {"step chain": lambda: export.decode(chained[0].run, chained[1].run, feeds),
            "plan": lambda: export.decode(plain[0].run, plain[1].run, feeds),
            "onnxruntime": lambda: export.decode(lambda f: rt[0].run(None, f),
                                                 lambda f: rt[1].run(None, f), feeds)}
    ids = [run() for run in runs.values()]
    ids = [run() for run in runs.values()]  # the chain built on the second
    if not all(np.array_equal(ids[0], other) for other in ids[1:]):
        raise SystemExit(f"batch {batch}: the engines decode different characters")
    if not all(s.executor.step_chained for s in chained):
        print(f"  batch {batch}: not every graph is step-chained")
    return runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", default="1,8")
    p.add_argument("--repeats", type=int, default=300)
    args = p.parse_args()
    clock = time.thread_time
    for batch in map(int, args.batch.split(",")):
        runs = decoders(batch)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):  # alternated: each sees the same machine load
            for name, run in runs.items():
                start = clock()
                run()
                times[name].append(clock() - start)
        med = {name: statistics.median(t) * 1e6 for name, t in times.items()}
        print(f"b{batch}: " + ", ".join(f"{n} {v:.0f} µs" for n, v in med.items())
              + f"; onnxruntime ÷ step chain {med['onnxruntime'] / med['step chain']:.2f}×,"
              f" ÷ plan {med['onnxruntime'] / med['plan']:.2f}×", flush=True)


if __name__ == "__main__":
    main()
