"""A tiny graph's chained run against the plan's replay it replaces, and onnxruntime,
alternated in one process (issue 16; ``hwbench/graph/chain.py``).

    PYTHONPATH=. python scripts/chain_ab.py [--threads 1] [--batch 1,8] [--precision int8]
        [model ...]

Per model and batch: µs per ``Session.run`` with the plan's generated entry (before the
chain) and with the chained one (the default), and onnxruntime's on the same file; the
median of alternated samples. ``--threads 1`` times by process CPU seconds (other
processes on a busy machine no longer count), more threads by the clock.
``--precision int8``: the model quantized (``Session(precision="int8")``) on
``cpu:float32-requant``, onnxruntime on the same quantized file.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import onnxruntime as ort

from hwbench.models import load_model
from hwbench.models.sample_inputs import batch_feeds
from hwbench.models.session import Session


def per_call(run, clock, n: int = 2000) -> float:
    start = clock()
    for _ in range(n):
        run()
    return (clock() - start) / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=["mlp", "autoencoder", "lenet"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", default="1,8")
    p.add_argument("--samples", type=int, default=15)
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    args = p.parse_args()
    clock = time.process_time if args.threads == 1 else time.perf_counter
    for name in args.models:
        for batch in map(int, args.batch.split(",")):
            model = load_model(name, batch=batch)
            feeds, _ = batch_feeds(model.graph, batch, seed=0)
            backend = "cpu" if args.precision == "fp32" else "cpu:float32-requant"
            sess = Session(model, backend, threads=args.threads, precision=args.precision)
            sess.run(feeds), sess.run(feeds)  # traced; the first replay builds the chain
            ex = sess.executor
            if not ex.chained:
                print(f"{name:12s} b{batch}: not chained")
                continue
            chained, plan = ex._entry, ex._compile_entry()
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
            rt = ort.InferenceSession(sess.model.to_onnx().SerializeToString(), options,
                                      providers=["CPUExecutionProvider"])
            rt.run(None, feeds)
            before, after, peer = [], [], []
            for _ in range(args.samples):
                ex._entry = plan
                before.append(per_call(partial(sess.run, feeds), clock))
                ex._entry = chained
                after.append(per_call(partial(sess.run, feeds), clock))
                peer.append(per_call(partial(rt.run, None, feeds), clock))
            b, a, r = map(statistics.median, (before, after, peer))
            print(f"{name:12s} b{batch} t{args.threads}: plan {b:7.2f} µs, chained {a:7.2f} "
                  f"µs ({b / a:.2f}x), onnxruntime {r:7.2f} µs; hwbench ÷ onnxruntime "
                  f"speed {r / b:.2f}x -> {r / a:.2f}x", flush=True)


if __name__ == "__main__":
    main()
