"""hwbench's int8 zoo graphs (``quantize_model``, as ``hwbench run --precision int8`` makes
them) and onnxruntime's QDQ files, on ``cpu:float32-requant`` beside onnxruntime on the
same quantized file, in one process, interleaved (issue 16's int8 goal).

    python scripts/int8_zoo_ab.py mobilenet_v2 efficientnet_b0 DIR/resnet18_qdq.onnx [...]
        [--batch 1,8] [--threads 1] [--rounds 7] [--cache DIR] [--backends cpu:float32-requant]

A zoo name is loaded as the harness loads it (seeded random weights), quantized once by
``quantize_model`` and cached as ``CACHE/NAME_int8.onnx``; a file runs as it is. Each
batch size rewrites the graph's batch, and onnxruntime reads that same graph. Every engine
runs once per round; the row gives the least CPU time (``time.process_time``: on a busy
machine it counts this process's work only; with threads > 1 it sums the threads) of
``--rounds`` and onnxruntime's time ÷ hwbench's, then the geometric mean per batch.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np


def int8_model(name: str, cache: str, batch: int):
    """The quantized model of zoo name or file ``name`` at ``batch`` (cached: quantized
    once at batch 1, then its batch rewritten; at ``batch`` where the graph folded it
    into a Reshape, as ConvNeXt's; calibration does not depend on the batch)."""
    from hwbench.errors import UnsupportedError
    from hwbench.graph.onnx_import import save_onnx
    from hwbench.harness.suites.model_suite import ModelCase, load_case_model
    from hwbench.models import load_model, quantize_model

    def cached(b: int):
        path = os.path.join(cache, f"{name}_int8{'' if b == 1 else f'_b{b}'}.onnx")
        if not os.path.exists(path):
            save_onnx(quantize_model(load_case_model(ModelCase(name, b, "int8", ()))).graph,
                      path)
        return load_model(path)

    model = load_model(name) if name.endswith(".onnx") else cached(1)
    if model.batch == batch:
        return model
    try:
        return model.with_batch(batch)
    except UnsupportedError:
        if name.endswith(".onnx"):
            raise
        return cached(batch)


def measure(model, batch: int, backends: list[str], threads: int, rounds: int) -> dict:
    """Least CPU seconds of each engine over ``rounds`` interleaved rounds."""
    import onnxruntime as ort

    from hwbench.models import Session

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    inner = ort.InferenceSession(model.to_onnx().SerializeToString(), options,
                                 providers=["CPUExecutionProvider"])
    feed = inner.get_inputs()[0]
    shape = model.input_shapes[model.inputs[0]]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    engines = {"onnxruntime": lambda: inner.run(None, {feed.name: x})}
    for name in backends:
        session = Session(model, name, threads=threads)
        engines[name] = (lambda s: lambda: s.run({feed.name: x}))(session)
    best = {name: math.inf for name in engines}
    for fn in engines.values():
        fn()
    for _ in range(rounds):
        for name, fn in engines.items():
            start = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--backends", default="cpu:float32-requant")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "int8_zoo"))
    args = parser.parse_args(argv)
    os.makedirs(args.cache, exist_ok=True)
    backends = args.backends.split(",")
    batches = [int(b) for b in args.batch.split(",")]
    ratios: dict[tuple[int, str], list[float]] = {}
    print(f"load average {os.getloadavg()[0]:.1f}; {args.threads} thread(s), least CPU "
          f"time of {args.rounds} interleaved rounds", flush=True)
    for name in args.models:
        for batch in batches:
            model = int8_model(name, args.cache, batch)
            best = measure(model, batch, backends, args.threads, args.rounds)
            t_ort = best["onnxruntime"]
            row = [f"{os.path.basename(name)} b{batch}", f"onnxruntime {t_ort * 1e3:.2f} ms"]
            for b in backends:
                ratios.setdefault((batch, b), []).append(t_ort / best[b])
                row.append(f"{b} {best[b] * 1e3:.2f} ms ({t_ort / best[b]:.2f}x)")
            print(" | ".join(row), flush=True)
    for (batch, b), values in sorted(ratios.items()):
        mean = math.exp(sum(math.log(v) for v in values) / len(values))
        print(f"geometric mean b{batch} {b}: {mean:.2f}x over {len(values)} models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
