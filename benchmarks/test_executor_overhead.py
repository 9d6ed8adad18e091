"""The harness's own cost per op (issue 16): ``Session.run`` on a chain of trivial ops,
with the compiled plan and without it, beside the bare kernels (no time asserted here:
``scripts/executor_overhead.py`` prints µs per op, session minus kernels)."""

from __future__ import annotations

import numpy as np
import pytest

import hwbench
from hwbench.harness.measure.executor_overhead import bare_kernels, trivial_graph
from hwbench.models.model import Model

OPS = 200


@pytest.fixture(scope="module")
def model():
    return Model(f"trivial_{OPS}", trivial_graph(OPS))


@pytest.mark.parametrize("path", ["plan", "normal", "bare"])
def test_trivial_ops_chain(benchmark, backend, model, path):
    # by name: a session's backend (check_finite off, as Session sets it up)
    sess = hwbench.Session(model, backend=backend.full_name, plan=path != "normal")
    x = np.random.default_rng(0).standard_normal(model.graph.inputs[0].shape,
                                                 dtype=np.float32)
    if path == "bare":
        run = bare_kernels(sess.backend, OPS, x, model.graph.initializers["b"])
    else:
        def run():
            return sess.run({"x": x})
    benchmark.extra_info["ops"] = OPS
    benchmark(lambda: (run(), sess.backend.synchronize()))
