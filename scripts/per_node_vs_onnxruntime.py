"""Where hwbench's ``cpu`` loses time to onnxruntime, node by node (issue 16).

    PYTHONPATH=. python scripts/per_node_vs_onnxruntime.py [--threads 2] [--batch 1]
        [--runs 20] [--top 15] [--cpu-time] [--dim sequence=32] [--backend cpu] model ...

Both engines run the model in one process: hwbench with every step of its compiled plan
(what ``Session.run`` replays) timed alone, onnxruntime with its own
profiler (``SessionOptions.enable_profiling``: one JSON event per node run). The two fuse
differently (hwbench's FusedConv, onnxruntime's NCHWc Conv+Clip, ...), so nodes are
matched by what they compute, not by name: a conv by its input, weight and output shapes,
any other op by its type and first input's shape. Prints, per model, the rows where
hwbench spends the most time over onnxruntime (µs per run summed over the nodes of that
key, the least of ``--runs`` runs: the least disturbed by other processes) and a summary
per kind of node (1×1 conv, depthwise 3×3, ...). The node timings include each engine's
per-node overhead; on a busy machine compare ratios within one run, never across runs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
from fusion_bench import (  # scripts/ is on sys.path
    add_cpu_time_option,
    add_dim_option,
    chosen_clock,
    chosen_dims,
)

from hwbench.models import load_model
from hwbench.models.sample_inputs import batch_feeds
from hwbench.models.session import Session

CLOCK = time.perf_counter  # --cpu-time: time.thread_time
CONV_OPS = {"Conv", "FusedConv", "com.hwbench:FusedConv"}
Key = tuple


def _channels(c: int) -> int:
    """onnxruntime's NCHWc convs report channels padded to its block (16 with AVX-512,
    8 with AVX2): a conv is keyed by its channels rounded up to 16 on both sides."""
    return c if c <= 4 else -(-c // 16) * 16


def node_key(op: str, in_shapes: list[Any], out_shapes: list[Any]) -> Key:
    """What a node computes, in terms both engines report: op family and shapes."""
    shape = lambda s: tuple(int(d) for d in s) if s is not None else None  # noqa: E731
    if op in CONV_OPS:
        (n, c, h, w), (o, i, kh, kw), y = in_shapes[0], in_shapes[1], out_shapes[0]
        return ("Conv", (n, _channels(c), h, w), (_channels(o), _channels(i), kh, kw),
                (y[0], _channels(y[1]), *y[2:]))
    return (op.split(":")[-1], shape(in_shapes[0]) if in_shapes else None)


def kind_of(key: Key) -> str:
    """A coarse class for the summary: conv by kernel and grouping, else the op."""
    if key[0] != "Conv":
        return key[0]
    _, x, w, y = key
    kh, kw = w[2:]
    depthwise = w[1] == 1 and x[1] > 1
    stride = "/2" if x[2] != y[2] and x[2] >= 2 * y[2] - 1 else ""
    return f"conv {'dw ' if depthwise else ''}{kh}x{kw}{stride}"


def describe(key: Key) -> str:
    if key[0] != "Conv":
        return f"{key[0]} {list(key[1]) if key[1] else ''}"
    _, x, w, y = key
    return f"{kind_of(key)} {x[1]}->{y[1]} @{y[2]}x{y[3]} (in {x[2]}x{x[3]})"


def plan_calls(source: str) -> list[list[str]]:
    """The names of the functions each step of a compiled plan calls, step by step
    (``hwbench.graph.plan``'s source: a step is one ``F<k>(...)`` call, one ``H<k>(...)``
    call (a backend's ``_prepared_step``), or a chain of kernel calls ``_r0 = K..(...)``,
    ..., ``v = K..(...)``; a prepared call whose thread setup the plan hoisted is called
    as ``IK..[0](...)``)."""
    steps: list[list[str]] = []
    chained = False
    for line in source.splitlines()[1:]:
        m = re.match(r"\s+(\w+) = ([KFH]\d+|IK\d+\[0\])\(", line)
        if not m:
            continue
        if not chained:
            steps.append([])
        steps[-1].append(m.group(2))
        chained = m.group(1).startswith("_r")
    return steps


def hwbench_per_node(session: Session, feeds: dict, runs: int) -> tuple[dict, dict]:
    """µs per run per key (the least of ``runs``), each step of the compiled plan (what
    ``Session.run`` replays) timed alone, and node counts per key."""
    session.run(feeds)  # builds the plan
    ex = session.executor
    ex._entry = ex._plain_entry  # the plan's steps, not a chained or recorded run
    namespace = ex.plan._fn.__globals__
    totals: dict[Key, float] = collections.defaultdict(float)
    counts: collections.Counter = collections.Counter()
    calls = plan_calls(ex.plan.source)
    if len(calls) != len(ex._steps):
        raise RuntimeError(f"plan source has {len(calls)} steps, executor {len(ex._steps)}")

    def timed(key: Key, fn: Callable) -> Callable:
        def run(*args: Any, **kwargs: Any) -> Any:
            t = CLOCK()
            out = fn(*args, **kwargs)
            totals[key] += CLOCK() - t
            return out
        return run

    for step, names in zip(ex._steps, calls, strict=True):
        key = node_key(step.kind, step.in_shapes, step.out_shapes)
        counts[key] += 1
        for name in names:
            if name.endswith("[0]"):  # a fresh one-item list: the plan's own stays as it is
                # and is read at each call: its first call puts the fast path built from
                # its arguments there (``cpu/prepared.py``); a wrapped ``first`` would
                # build it again on every call (what made the sums exceed the run ~10x)
                own = namespace[name[:-3]]
                namespace[name[:-3]] = [timed(key, lambda *a, _own=own, **k: _own[0](*a, **k))]
            else:
                namespace[name] = timed(key, namespace[name])
    session.run(feeds)  # warm-up of the timed plan
    best: dict[Key, float] = {}
    for _ in range(runs):
        totals.clear()
        session.run(feeds)
        for k, v in totals.items():
            best[k] = min(best.get(k, v), v)
    return {k: v * 1e6 for k, v in best.items()}, dict(counts)


def onnxruntime_per_node(model_bytes: bytes, feeds: dict, threads: int,
                         runs: int) -> tuple[dict, dict, float]:
    """µs per run per key from onnxruntime's profiler (the least of ``runs``), node
    counts per key, and the median ms of unprofiled runs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    plain = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    plain.run(None, feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        plain.run(None, feeds)
        times.append(time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        for _ in range(runs + 1):
            session.run(None, feeds)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    node_events = [e for e in events if e.get("cat") == "Node"
                   and e["name"].endswith("_kernel_time")]
    per_run_nodes = len(node_events) // (runs + 1)
    best: dict[Key, float] = {}
    counts: collections.Counter = collections.Counter()
    for run in range(1, runs + 1):  # run 0 is the warm-up
        totals: dict[Key, float] = collections.defaultdict(float)
        for e in node_events[run * per_run_nodes:(run + 1) * per_run_nodes]:
            args = e["args"]
            ins = [next(iter(d.values())) for d in args.get("input_type_shape", [])]
            outs = [next(iter(d.values())) for d in args.get("output_type_shape", [])]
            key = node_key(args["op_name"], ins, outs)
            totals[key] += e["dur"]
            counts[key] += run == 1
        for k, v in totals.items():
            best[k] = min(best.get(k, v), v)
    return best, dict(counts), float(np.median(times)) * 1e3


def run_ms(session: Session, feeds: dict, runs: int) -> float:
    """Median ms of ``runs`` whole runs after one warm-up."""
    session.run(feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(feeds)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3

def compare(name: str, batch: int, threads: int, runs: int, top: int,
            dims: dict[str, int] | None = None, backend: str = "cpu") -> None:
    model = load_model(name, batch=batch, dims=dims)
    feeds, _ = batch_feeds(model.graph, batch, seed=0)
    hw_ms = run_ms(Session(model, backend, threads=threads), feeds, runs)
    hw, hw_counts = hwbench_per_node(Session(model, backend, threads=threads), feeds, runs)
    rt, rt_counts, rt_ms = onnxruntime_per_node(model.to_onnx().SerializeToString(), feeds,
                                                threads, runs)
    print(f"\n== {name} b{batch}, {threads} threads: run {hw_ms:.2f} ms hwbench vs "
          f"{rt_ms:.2f} ms onnxruntime ({rt_ms / hw_ms:.2f}x); per-node sums "
          f"{sum(hw.values()) / 1e3:.2f} vs {sum(rt.values()) / 1e3:.2f} ms")
    if sum(hw.values()) / 1e3 > 1.5 * hw_ms:
        print("warning: hwbench's per-node sums exceed its run time by more than 1.5x: the "
              "timed steps ran slower than the plan does; read the by-kind split, not the µs")
    print_node_table(hw, rt, ("hw", "rt"), top, hw_counts, rt_counts)


def print_node_table(mine: dict, theirs: dict, labels: tuple[str, str], top: int,
                     my_counts: dict, their_counts: dict | None = None) -> None:
    """The ``top`` nodes (matched by shapes) where ``mine`` loses most µs to ``theirs``,
    then the totals by kind of node."""
    a, b = labels
    keys = set(mine) | set(theirs)
    rows = sorted(keys, key=lambda k: -(mine.get(k, 0.0) - theirs.get(k, 0.0)))
    counted = f"n {a}/{b}" if their_counts is not None else "n"
    print(f"{'node (matched by shapes)':48s} {counted:>8s} {a + ' us':>8s} {b + ' us':>8s} "
          f"{b + '/' + a:>7s} {'lost us':>8s}")
    for k in rows[:top]:
        m, o = mine.get(k, 0.0), theirs.get(k, 0.0)
        ratio = f"{o / m:7.2f}" if m and o else "      -"
        n = f"{my_counts.get(k, 0):>3d}/{their_counts.get(k, 0):<4d}" \
            if their_counts is not None else f"{my_counts.get(k, 0):>8d}"
        print(f"{describe(k)[:48]:48s} {n} {m:8.0f} {o:8.0f} {ratio} {m - o:8.0f}")
    by_kind: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for k in keys:
        by_kind[kind_of(k)][0] += mine.get(k, 0.0)
        by_kind[kind_of(k)][1] += theirs.get(k, 0.0)
    print(f"by kind ({a}/{b} us): " + "; ".join(
        f"{kind} {m:.0f}/{o:.0f}" for kind, (m, o) in
        sorted(by_kind.items(), key=lambda kv: -(kv[1][0] - kv[1][1])) if m + o > 20))


def main() -> None:
    global CLOCK
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--backend", default="cpu",
                   help="hwbench's backend, e.g. cpu:float32-requant for a quantized file")
    add_cpu_time_option(p, "hwbench's steps")
    add_dim_option(p)
    args = p.parse_args()
    CLOCK = chosen_clock(p, args)
    dims = chosen_dims(p, args)
    for name in args.models:
        compare(name, args.batch, args.threads, args.runs, args.top, dims, args.backend)


if __name__ == "__main__":
    main()
