"""What a ``Session`` costs beyond its kernels, per op (issue 16: at most 3 µs).

A graph of ``ops`` trivial nodes on a tiny tensor (Relu and Add of a constant,
alternating, on ``shape``) runs three ways on one backend, each timed as the median of
``repeats`` samples of ``loops`` back-to-back calls ending in a synchronization:

- ``bare``: the backend's kernels themselves, called in a Python loop with problems
  checked beforehand (``_relu(problem, x)``, ``_add(problem, x, b)``): what no executor
  can avoid;
- ``plan``: ``Session.run`` (the compiled plan, the default);
- ``normal``: ``Session(plan=False).run`` (every node through its op function and the
  backend's checked public method).

Per op: (session time − bare time) / ops. A run's fixed costs (screening and uploading
the feed, copying the output back) are spread over the ops, so use a few hundred.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hwbench.errors import ArgumentError
from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.kernels import spec

DEFAULT_OPS = 200
DEFAULT_SHAPE = (1, 16)


def trivial_graph(ops: int = DEFAULT_OPS, shape: tuple[int, ...] = DEFAULT_SHAPE) -> Graph:
    """``ops`` nodes in a chain: Relu, Add(·, b), Relu, ... on a float32 ``shape`` input."""
    if isinstance(ops, bool) or not isinstance(ops, int) or ops < 1:
        raise ArgumentError(f"argument 'ops' must be a positive int, got {ops!r}")
    nodes, value = [], "x"
    for i in range(ops):
        out = f"v{i}"
        if i % 2:
            nodes.append(Node("Add", [value, "b"], [out], name=f"add{i}"))
        else:
            nodes.append(Node("Relu", [value], [out], name=f"relu{i}"))
        value = out
    bias = np.linspace(-0.5, 0.5, shape[-1], dtype=np.float32)
    return Graph(f"trivial_{ops}", [ValueInfo("x", tuple(shape))],
                 [ValueInfo(value, tuple(shape))], {"b": bias}, nodes, opset=17)


def _median_seconds(call: Callable[[], Any], sync: Callable[[], None], loops: int,
                    repeats: int) -> float:
    call()
    sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            call()
        sync()
        samples.append((time.perf_counter() - start) / loops)
    return statistics.median(samples)


def bare_kernels(backend: Any, ops: int, x: np.ndarray, bias: np.ndarray) -> Callable[[], Any]:
    """The chain as direct calls of the backend's private kernels (checks done once)."""
    dx, db = backend.asarray(x), backend.asarray(bias)
    relu = spec.check_unary(dx, "x", "relu")
    add = spec.check_binary(dx, db, "add")
    backend._begin_kernel("relu", relu)  # the cpu backend's thread count for this size
    kernels = [(backend._add, add, True) if i % 2 else (backend._relu, relu, False)
               for i in range(ops)]

    def run() -> Any:
        y = dx
        for kernel, problem, binary in kernels:
            y = kernel(problem, y, db) if binary else kernel(problem, y)
        return y
    return run


def measure_overhead(backend: str, ops: int = DEFAULT_OPS,
                     shape: tuple[int, ...] = DEFAULT_SHAPE, loops: int = 20,
                     repeats: int = 7) -> dict[str, Any]:
    """One backend's row: µs per op of the bare kernels, and what the plan and the normal
    path add to them."""
    from hwbench.models.model import Model
    from hwbench.models.session import Session

    model = Model(f"trivial_{ops}", trivial_graph(ops, shape))
    plan = Session(model, backend=backend)
    normal = Session(model, backend=backend, plan=False)
    steps = len(plan.executor._steps)
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    feeds = {"x": x}
    sync = plan.backend.synchronize
    expected = normal.run(feeds)[0]
    if not np.array_equal(plan.run(feeds)[0], expected):
        raise AssertionError(f"{backend}: the plan's output differs from the normal path's")
    bare = bare_kernels(plan.backend, steps, x, model.graph.initializers["b"])
    if not np.array_equal(plan.backend.to_numpy(bare()), expected):
        raise AssertionError(f"{backend}: the bare kernels' output differs from the session's")
    seconds = {
        "bare": _median_seconds(bare, sync, loops, repeats),
        "plan": _median_seconds(lambda: plan.run(feeds), sync, loops, repeats),
        "normal": _median_seconds(lambda: normal.run(feeds), sync, loops, repeats),
    }
    us = {k: v * 1e6 / steps for k, v in seconds.items()}
    return {"backend": backend, "ops": steps, "shape": list(shape),
            "bare_us_per_op": round(us["bare"], 3),
            "plan_overhead_us_per_op": round(us["plan"] - us["bare"], 3),
            "normal_overhead_us_per_op": round(us["normal"] - us["bare"], 3),
            "prepared_steps": plan.executor.plan.prepared_steps}
