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

from fusion_bench import add_dim_option, chosen_dims  # scripts/ is on sys.path
from per_node_vs_onnxruntime import hwbench_per_node, print_node_table, run_ms

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


def compare(name: str, batch: int, runs: int, top: int, dims: dict | None) -> None:
    model = load_model(name, batch=batch, dims=dims)
    feeds, _ = batch_feeds(model.graph, batch, seed=0)
    whole = {b: run_ms(Session(model, b), feeds, runs) for b in ("cpu", "opencl")}
    per = {}
    for backend in ("cpu", "opencl"):
        session = Session(model, backend)
        session.run(feeds)
        session.run(feeds)
        if backend == "opencl":
            synchronized(session)
        per[backend] = hwbench_per_node(session, feeds, runs)
    (cpu, cpu_n), (ocl, _) = per["cpu"], per["opencl"]
    print(f"\n== {name} b{batch}: run {whole['opencl']:.2f} ms opencl vs {whole['cpu']:.2f} "
          f"ms cpu ({whole['cpu'] / whole['opencl']:.2f}x); per-node sums "
          f"{sum(ocl.values()) / 1e3:.2f} vs {sum(cpu.values()) / 1e3:.2f} ms")
    print_node_table(ocl, cpu, ("ocl", "cpu"), top, cpu_n)

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
