"""What the second thread buys each node, hwbench ``cpu`` beside onnxruntime (issue 16).

    PYTHONPATH=.:scripts python scripts/thread_scaling_per_node.py [--batch 1] [--runs 20]
        [--gomp-spincount 30000] [--top 25] model

Times every node on 1 and on 2 threads in one process (``per_node_vs_onnxruntime``'s
matching by shapes, the least of ``--runs`` runs) and prints, per node, each engine's
1-thread ÷ 2-thread speed-up and the µs hwbench loses to onnxruntime on 2 threads. On a
busy machine a second thread is often not free: read the rows side by side, not alone.
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--gomp-spincount", type=int, default=None,
                   help="let libgomp's idle threads spin N rounds (set before it loads)")
    args = p.parse_args()
    if args.gomp_spincount is not None:
        os.environ["GOMP_SPINCOUNT"] = str(args.gomp_spincount)
    sys.path.insert(0, os.path.dirname(__file__))
    from per_node_vs_onnxruntime import describe, hwbench_per_node, onnxruntime_per_node

    from hwbench.models import load_model
    from hwbench.models.sample_inputs import batch_feeds
    from hwbench.models.session import Session

    model = load_model(args.model, batch=args.batch)
    feeds, _ = batch_feeds(model.graph, args.batch, seed=0)
    onnx_bytes = model.to_onnx().SerializeToString()
    hw = {t: hwbench_per_node(Session(model, "cpu", threads=t), feeds, args.runs)[0]
          for t in (1, 2)}
    rt = {t: onnxruntime_per_node(onnx_bytes, feeds, t, args.runs)[0] for t in (1, 2)}
    keys = set(hw[2]) | set(rt[2])
    ms = {(e, t): sum(times[t].values()) / 1e3 for e, times in (("hw", hw), ("rt", rt))
          for t in (1, 2)}
    print(f"== {args.model} b{args.batch}: per-node sums (ms) hwbench 1t {ms['hw', 1]:.2f} "
          f"2t {ms['hw', 2]:.2f}; onnxruntime 1t {ms['rt', 1]:.2f} 2t {ms['rt', 2]:.2f}")
    print(f"{'node (matched by shapes)':44s} {'hw 1t':>7s} {'hw 2t':>7s} {'x':>5s} "
          f"{'rt 1t':>7s} {'rt 2t':>7s} {'x':>5s} {'lost 2t':>8s}")
    rows = sorted(keys, key=lambda k: -(hw[2].get(k, 0.0) - rt[2].get(k, 0.0)))
    for k in rows[:args.top]:
        h1, h2, r1, r2 = hw[1].get(k, 0.0), hw[2].get(k, 0.0), rt[1].get(k, 0.0), rt[2].get(k, 0.0)
        hx = f"{h1 / h2:5.2f}" if h2 else "    -"
        rx = f"{r1 / r2:5.2f}" if r2 else "    -"
        print(f"{describe(k)[:44]:44s} {h1:7.0f} {h2:7.0f} {hx} {r1:7.0f} {r2:7.0f} {rx} "
              f"{h2 - r2:8.0f}")


if __name__ == "__main__":
    main()
