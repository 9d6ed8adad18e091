"""Where ``opencl`` loses time to ``cpu``, node by node (issue 16).

    PYTHONPATH=. python scripts/opencl_per_node.py [--batch 1] [--runs 10] [--top 15]
        [--dim sequence=32] model ...

Both backends run the model's compiled plan in this process, every step timed alone
(``per_node_vs_onnxruntime.hwbench_per_node``'s wrapping; on opencl each step ends with
``synchronize()``, so a step's time is its kernels' and its host work's). Nodes are matched
by what they compute (op and shapes), the least of ``--runs`` runs per key. Prints the rows
where opencl spends the most over cpu and a summary per kind of node. Compare ratios
within one run: other processes' load reaches both backends alike only roughly.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
from fusion_bench import add_dim_option, chosen_dims  # scripts/ is on sys.path
from per_node_vs_onnxruntime import describe, hwbench_per_node, kind_of

from hwbench.models import load_model
from hwbench.models.sample_inputs import batch_feeds
from hwbench.models.session import Session


def synchronized(session: Session) -> Session:
    """``session`` whose plan steps end with the backend's ``synchronize`` (wrapping the
    namespace's kernel calls, as ``hwbench_per_node`` does after this)."""
    namespace = session.executor.plan._fn.__globals__
    sync = session.backend.synchronize
    for name, fn in list(namespace.items()):
        if name[:1] in "KFH" and name[1:].isdigit() and callable(fn):
            def run(*args, _fn=fn, **kwargs):
                out = _fn(*args, **kwargs)
                sync()
                return out
            namespace[name] = run
        elif name.startswith("IK") and isinstance(fn, list):
            own = fn
            namespace[name] = [lambda *a, _own=own, **k: (_own[0](*a, **k), sync())[0]]
    return session


def run_ms(session: Session, feeds: dict, runs: int) -> float:
    session.run(feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(feeds)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def compare(name: str, batch: int, runs: int, top: int, dims: dict | None) -> None:
    model = load_model(name, batch=batch, dims=dims)
    feeds, _ = batch_feeds(model.graph, batch, seed=0)
    whole = {b: run_ms(Session(model, b), feeds, runs) for b in ("cpu", "opencl")}
    per = {}
    for backend in ("cpu", "opencl"):
        session = Session(model, backend)
        session.run(feeds)
        session.run(feeds)
        # the plan's steps, not a chained or recorded run that bypasses them
        ex = session.executor
        ex._entry = ex._plain_entry
        if backend == "opencl":
            synchronized(session)
        per[backend] = hwbench_per_node(session, feeds, runs)
    (cpu, cpu_n), (ocl, _) = per["cpu"], per["opencl"]
    print(f"\n== {name} b{batch}: run {whole['opencl']:.2f} ms opencl vs {whole['cpu']:.2f} "
          f"ms cpu ({whole['cpu'] / whole['opencl']:.2f}x); per-node sums "
          f"{sum(ocl.values()) / 1e3:.2f} vs {sum(cpu.values()) / 1e3:.2f} ms")
    keys = set(cpu) | set(ocl)
    rows = sorted(keys, key=lambda k: -(ocl.get(k, 0.0) - cpu.get(k, 0.0)))
    print(f"{'node (matched by shapes)':52s} {'n':>3s} {'ocl us':>8s} {'cpu us':>8s} "
          f"{'cpu/ocl':>7s} {'lost us':>8s}")
    for k in rows[:top]:
        o, c = ocl.get(k, 0.0), cpu.get(k, 0.0)
        ratio = f"{c / o:7.2f}" if o and c else "      -"
        print(f"{describe(k)[:52]:52s} {cpu_n.get(k, 0):>3d} {o:8.0f} {c:8.0f} {ratio} "
              f"{o - c:8.0f}")
    by_kind: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for k in keys:
        by_kind[kind_of(k)][0] += ocl.get(k, 0.0)
        by_kind[kind_of(k)][1] += cpu.get(k, 0.0)
    print("by kind (opencl/cpu us): " + "; ".join(
        f"{kind} {o:.0f}/{c:.0f}" for kind, (o, c) in
        sorted(by_kind.items(), key=lambda kv: -(kv[1][0] - kv[1][1])) if o + c > 20))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--top", type=int, default=15)
    add_dim_option(p)
    args = p.parse_args()
    for name in args.models:
        compare(name, args.batch, args.runs, args.top, chosen_dims(p, args))


if __name__ == "__main__":
    main()
