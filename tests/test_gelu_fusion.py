"""``gelu_fusion.fuse_gelu``: the erf and tanh GELU subgraphs exporters write become one
Gelu node, near misses stay as they are, and the fused graph computes what the unfused
one does on every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tolerances import assert_close

from hwbench.backends.reference import ReferenceBackend
from hwbench.graph import Executor, load_onnx, optimize
from hwbench.graph.gelu_fusion import fuse_gelu

onnx = pytest.importorskip("onnx", reason="the onnx wheel (pip install 'hwbench[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

F32 = TensorProto.FLOAT
SHAPE = [2, 5, 24]
SQRT2 = math.sqrt(2.0)


class _G:
    """A tiny graph builder: MatMul layers with GELU variants between them."""

    def __init__(self, rng):
        self.rng, self.nodes, self.inits, self.n = rng, [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}{self.n}"

    def const(self, value):
        name = self.name("k")
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def op(self, kind, inputs, **attrs):
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def linear(self, x):
        w = (self.rng.standard_normal((24, 24)) / 3).astype(np.float32)
        return self.op("MatMul", [x, self.const(w)])

    def gelu_erf(self, x, *, half_first=False, as_mul=False, sqrt2=SQRT2):
        scaled = (self.op("Mul", [self.const(1 / sqrt2), x]) if as_mul
                  else self.op("Div", [x, self.const(sqrt2)]))
        one_plus = self.op("Add", [self.const(1.0), self.op("Erf", [scaled])])
        if half_first:
            return self.op("Mul", [self.op("Mul", [x, self.const(0.5)]), one_plus])
        return self.op("Mul", [self.const(0.5), self.op("Mul", [one_plus, x])])

    def gelu_tanh(self, x, cube_coef=0.044715):
        cube = self.op("Mul", [self.op("Pow", [x, self.const(3.0)]), self.const(cube_coef)])
        inner = self.op("Mul", [self.op("Add", [x, cube]),
                                self.const(math.sqrt(2 / math.pi))])
        t = self.op("Add", [self.op("Tanh", [inner]), self.const(1.0)])
        return self.op("Mul", [self.op("Mul", [self.const(0.5), x]), t])

    def build(self, x, *outputs):
        g = helper.make_graph(self.nodes, "gelu", [helper.make_tensor_value_info(x, F32, SHAPE)],
                              [helper.make_tensor_value_info(y, F32, SHAPE) for y in outputs],
                              self.inits)
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
        return optimize(load_onnx(model))


def gelu_graph(rng):
    """Four GELUs that fuse (erf three ways, tanh), then three near misses: a wrong
    constant, a wrong cube coefficient, and an erf whose input is read twice."""
    b = _G(rng)
    h = b.gelu_erf(b.linear("x"))
    h = b.gelu_erf(b.linear(h), half_first=True)
    h = b.gelu_erf(b.linear(h), as_mul=True)
    h = b.gelu_tanh(b.linear(h))
    h = b.gelu_erf(b.linear(h), sqrt2=1.5)                    # not √2
    h = b.gelu_tanh(b.linear(h), cube_coef=0.05)              # not 0.044715
    z = b.linear(h)
    scaled = b.op("Div", [z, b.const(math.sqrt(2.0))])
    e = b.op("Erf", [scaled])
    tail = b.op("Mul", [b.op("Mul", [z, b.op("Add", [e, b.const(1.0)])]), b.const(0.5)])
    y = b.op("Add", [tail, scaled])                           # scaled read twice
    return b.build("x", y), {"x": rng.standard_normal(SHAPE).astype(np.float32)}


def test_fuse_gelu_fires_on_the_exported_forms_only(rng):
    graph, _ = gelu_graph(rng)
    before = graph.op_counts()
    fused = fuse_gelu(graph.copy())
    counts = fused.op_counts()
    gelus = [n for n in fused.nodes if n.op_type == "Gelu"]
    assert [n.attrs["approximate"] for n in gelus] == ["none", "none", "none", "tanh"]
    assert counts["Erf"] == before["Erf"] - 3 == 2
    assert counts["Tanh"] == before["Tanh"] - 1 == 1
    assert counts["Pow"] == 1
    assert len(fused.nodes) == len(graph.nodes) - 3 * 4 - 7  # 5 nodes -> 1, 8 -> 1
    assert fused.output_names == graph.output_names


def test_fuse_gelu_leaves_a_graph_output_inside_the_pattern(rng):
    b = _G(rng)
    x = b.linear("x")
    scaled = b.op("Div", [x, b.const(math.sqrt(2.0))])
    e = b.op("Erf", [scaled])
    y = b.op("Mul", [b.op("Mul", [x, b.op("Add", [e, b.const(1.0)])]), b.const(0.5)])
    assert fuse_gelu(b.build("x", y)).op_counts().get("Gelu") == 1
    assert fuse_gelu(b.build("x", y, e)).op_counts().get("Gelu", 0) == 0


def test_fused_gelu_gives_the_unfused_outputs(backend, rng):
    graph, feeds = gelu_graph(rng)
    want = Executor(graph, ReferenceBackend()).run(feeds)
    fused = Executor(fuse_gelu(graph.copy()), backend).run(feeds)
    for got, ref in zip(fused, want, strict=True):
        assert_close(got, np.asarray(ref, np.float64), 24 * 7, backend=backend)
    if not backend.name.startswith("systolic"):  # it quantizes each MatMul's output
        plain = Executor(graph, backend).run(feeds)
        for got, ref in zip(fused, plain, strict=True):
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
