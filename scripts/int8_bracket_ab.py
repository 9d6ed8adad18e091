"""The exact int8 mode with and without its bracketed QLinearConv, beside onnxruntime and
the float model on ``cpu``, in one process (issue 16).

    python scripts/int8_bracket_ab.py DIR/resnet18 [...] [--threads 1] [--rounds 9]

Each argument names ``PREFIX_qdq.onnx`` (and ``PREFIX_float.onnx`` for the fp32 column,
if present), as ``quantize_static`` leaves them. Runs every engine once per round,
interleaved, and prints the least CPU time (``time.process_time``: on a busy machine it
counts only this process's work; with threads > 1 it sums the threads) of ``--rounds``,
and onnxruntime's time ÷ each. Also checks the two exact variants give the same bits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def measure(prefix: str, threads: int, rounds: int) -> str:
    """One model's row: least CPU time of each engine over interleaved rounds."""
    import onnxruntime as ort

    from hwbench.backends.cpu import int8_bracket
    from hwbench.graph.executor import Executor
    from hwbench.graph.onnx_import import load_onnx
    from hwbench.graph.passes import optimize
    from hwbench.models.session import session_backend

    path = f"{prefix}_qdq.onnx"
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(feed.shape).astype(np.float32)
    graph = optimize(load_onnx(path))

    def executor(graph, name="cpu"):
        ex = Executor(graph, session_backend(name, threads=threads))
        return lambda: ex.replay({feed.name: x})

    def exact(enabled: bool):
        run = executor(graph)

        def call():
            int8_bracket.ENABLED = enabled
            try:
                return run()
            finally:
                int8_bracket.ENABLED = True
        return call

    engines = {"onnxruntime": lambda: session.run(None, {feed.name: x}),
               "exact before": exact(False), "exact bracket": exact(True)}
    if os.path.exists(f"{prefix}_float.onnx"):
        engines["cpu fp32"] = executor(optimize(load_onnx(f"{prefix}_float.onnx")))
    same = all(np.array_equal(a, b) for a, b in zip(
        engines["exact before"](), engines["exact bracket"](), strict=True))
    times: dict[str, list[float]] = {k: [] for k in engines}
    for run in engines.values():
        run()
    for _ in range(rounds):
        for name, run in engines.items():
            start = time.process_time()
            run()
            times[name].append(time.process_time() - start)
    best = {k: min(v) for k, v in times.items()}
    ort_s = best["onnxruntime"]
    cells = [f"{k} {v * 1e3:.1f} ms" + ("" if k == "onnxruntime" else f" ({ort_s / v:.2f}x)")
             for k, v in best.items()]
    return f"{os.path.basename(prefix)}: " + " | ".join(cells) + f" | same bits {same}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}, {args.threads} thread(s), CPU time, "
          f"least of {args.rounds} interleaved rounds")
    for prefix in args.prefixes:
        print(measure(prefix, args.threads, args.rounds), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
