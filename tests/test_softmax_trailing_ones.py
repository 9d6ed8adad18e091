"""Softmax before opset 13 on [N, C, 1, 1] (SqueezeNet's, Inception's classifier): the
2-D view's rows are the axis itself, so the node is one softmax kernel call over that
axis (a prepared step on cpu), with the bits of the reshape-softmax-reshape it was."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import hwbench
from hwbench.pytest_plugin import availability


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("shape, axis", [((2, 10, 1, 1), 1), ((3, 4, 6, 1), 2), ((2, 3, 4), 1)])
def test_opset11_softmax_with_trailing_ones(tmp_path, backend, shape, axis):
    if not availability(backend)[0]:
        pytest.skip(f"{backend} unavailable")
    value = helper.make_tensor_value_info
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=axis)], "sm",
                              [value("x", TensorProto.FLOAT, list(shape))],
                              [value("y", TensorProto.FLOAT, list(shape))])
    path = str(tmp_path / "s.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    sess = hwbench.Session(hwbench.load_model(path), backend, threads=1)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    rows = int(np.prod(shape[:axis]))
    be = sess.executor.backend
    want = be.to_numpy(be.reshape(be.softmax(be.reshape(be.asarray(x), (rows, -1)), axis=1),
                                  shape))
    for _ in range(2):
        (got,) = sess.run({"x": x})
        assert np.asarray(got).tobytes() == want.tobytes()
    one_call = all(d == 1 for d in shape[axis + 1:])
    if backend == "cpu":
        assert (sess.executor.plan.prepared_steps == 1) == one_call
