"""LayerNormalization, N-D MatMul and ReduceX together in a graph (an attention-shaped
block with constant weights): every backend's Session against float64, the int8 model
(constant-weight N-D MatMul as a 1×1 QLinearConv over its rows), the systolic workload's
layers and the ops' FLOP counts."""

from __future__ import annotations

import numpy as np
import pytest
from tolerances import QUANTIZED_FLOAT_TOL, quantizes_float_math

from hwbench.graph.ir import Graph, Node, ValueInfo
from hwbench.graph.ops import op_def
from hwbench.models import Model, Session

B, S, D = 2, 5, 8


def _block(rng) -> tuple[Model, np.ndarray, np.ndarray]:
    w = rng.standard_normal((D, D)).astype(np.float32)
    g = rng.standard_normal(D).astype(np.float32)
    nodes = [Node("MatMul", ["x", "w"], ["h"]),
             Node("LayerNormalization", ["h", "g"], ["n"], {"axis": -1, "epsilon": 1e-5}),
             Node("Transpose", ["n"], ["nt"], {"perm": [0, 2, 1]}),
             Node("MatMul", ["n", "nt"], ["att"]),
             Node("ReduceMean", ["att"], ["y"], {"axes": [-1], "keepdims": 0})]
    graph = Graph("block", [ValueInfo("x", (B, S, D))], [ValueInfo("y", (B, S))],
                  {"w": w, "g": g}, nodes, 13)
    x = rng.standard_normal((B, S, D)).astype(np.float32)
    h = x.astype(np.float64) @ w
    n = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5) * g
    return Model("block", graph), x, (n @ n.transpose(0, 2, 1)).mean(-1)


def test_block_on_every_backend(backend, rng):
    model, x, want = _block(rng)
    got = Session(model, backend=backend).run({"x": x})[0]
    assert got.shape == (B, S)
    err = np.abs(got - want).max() / np.abs(want).max()
    assert err <= (QUANTIZED_FLOAT_TOL if quantizes_float_math(backend) else 1e-5)


def test_int8_block_quantizes_the_nd_matmul_by_constant_weights(rng):
    from hwbench.models.quantization import quantize_model

    model, x, want = _block(rng)
    quantized = quantize_model(model, x)
    assert quantized.graph.op_counts()["QLinearConv"] == 1  # x @ w; n @ nt stays float
    got = Session(quantized, backend="numpy").run({"x": x})[0]
    assert np.abs(got - want).max() / np.abs(want).max() < 0.1


def test_systolic_workload_and_flops(rng):
    from hwbench.harness.suites.simulate import model_layers

    model, _, _ = _block(rng)
    layers = model_layers(model)
    kinds = [(getattr(x, "op", None) or x.kind) for x in layers]
    assert kinds.count("gemm") == 2 and "layer_norm" in kinds and "reduce" in kinds
    matmul = op_def("MatMul").flops(Node("MatMul", ["a", "b"], ["y"]), [(B, S, D), (B, D, S)])
    assert matmul == 2 * B * S * S * D
    reduce = Node("ReduceMean", ["a"], ["y"], {"axes": [-1]})
    assert op_def("ReduceMean").flops(reduce, [(B, S, S)]) == B * S * S
    with pytest.raises(Exception, match="inner dimensions differ"):
        op_def("MatMul").shape(Node("MatMul", ["a", "b"], ["y"], name="mm"),
                               [(B, S, D), (B, S, D)], model.graph)
